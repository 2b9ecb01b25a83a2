// Package killgroups holds a kill test of FlatMapGroupsWithState: a
// session-per-customer function with event-time timeouts over a bounded
// orders stream, writing to the Parquet stream sink, run as a separate
// process that is killed with SIGKILL at seeded random points and
// restarted. It has no non-test code.
package killgroups

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

// The test re-executes its own binary as the query process: TestMain sees
// childEnv (a JSON child) and runs the query instead of the tests.
const (
	childEnv = "SLUICE_GROUPSKILL_CHILD"
	// seedEnv replays a run's seed: the same orders and the same kill
	// delays (where the kills land still depends on the machine's speed).
	seedEnv = "SLUICE_GROUPSKILL_SEED"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	// The disk state pass's local databases go with the run.
	removeTemp := testenv.OwnTempDir()
	code := m.Run()
	removeTemp()
	os.Exit(code)
}

// The input: orders one second apart in event time, moved back by up to
// 3 s, from 300 customers, so a customer orders every 5 minutes on
// average and a 2-minute session gap ends sessions all the time.
const (
	total          = 24_000
	batchRows      = 1_000 // 24 data batches
	customers      = 300
	maxDelay       = 3 * time.Second
	watermarkDelay = 5 * time.Second
	sessionGap     = 2 * time.Minute
)

var outSchema = arrow.NewSchema([]arrow.Field{
	{Name: "kind", Type: arrow.BinaryTypes.String}, // "order" or "end"
	{Name: "customer", Type: arrow.BinaryTypes.String},
	{Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, // the order; for "end", the session's first
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},        // orders in the session so far
	{Name: "cents", Type: arrow.PrimitiveTypes.Int64},    // their total
}, nil)

// session is a customer's open session.
type session struct {
	First int64 // first order id
	N     int64
	Cents int64
	Last  int64 // latest event time, ms
}

// sessions emits every order with its session's running count and total,
// and each session's totals when the watermark passes its last order plus
// the gap; then the customer starts over.
func sessions(key dataset.Key, rows arrow.Record, st *dataset.State[session], out *array.RecordBuilder) error {
	s, ok := st.Get()
	customer := key[0].(string)
	row := func(kind string, id int64) {
		out.Field(0).(*array.StringBuilder).Append(kind)
		out.Field(1).(*array.StringBuilder).Append(customer)
		out.Field(2).(*array.Int64Builder).Append(id)
		out.Field(3).(*array.Int64Builder).Append(s.N)
		out.Field(4).(*array.Int64Builder).Append(s.Cents)
	}
	if st.HasTimedOut() {
		row("end", s.First)
		st.Remove()
		return nil
	}
	ids := rows.Column(0).(*array.Int64)
	amounts := rows.Column(3).(*array.Decimal128)
	ts := rows.Column(4).(*array.Timestamp)
	for i := 0; i < ids.Len(); i++ {
		if !ok {
			s, ok = session{First: ids.Value(i)}, true
		}
		s.N++
		s.Cents += int64(amounts.Value(i).LowBits())
		s.Last = max(s.Last, int64(ts.Value(i)))
		row("order", ids.Value(i))
	}
	st.Update(s)
	st.SetTimeoutTimestamp(time.UnixMilli(s.Last).Add(sessionGap))
	return nil
}

func job(ds *dataset.Dataset) *dataset.Dataset {
	return ds.WithWatermark("ts", watermarkDelay).GroupByKey("customer").
		FlatMapGroupsWithState("killgroups.sessions", outSchema, dataset.EventTimeTimeout, dataset.StateFunc(sessions))
}

// child is what the child process runs.
type child struct {
	Checkpoint string `json:"checkpoint"`
	Out        string `json:"out"`
	Seed       uint64 `json:"seed"`
}

// runChild runs the child query to its end and returns the exit status.
// On success it prints "groupskill: <batches> batches in <µs>us from
// <unix µs>" for the parent.
func runChild(cfgJSON string) int {
	var c child
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintf(os.Stderr, "groupskill child: bad %s: %v\n", childEnv, err)
		return 2
	}
	src, err := generate.NewOrdersStream(generate.OrdersStreamConfig{
		Orders: generate.Orders{Seed: c.Seed, Customers: customers, MaxDelay: maxDelay}, Total: total, MaxRowsPerBatch: batchRows,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "groupskill child: %v\n", err)
		return 1
	}
	sink, err := parquet.NewStream(parquet.StreamConfig{Dir: c.Out, Options: parquet.Options{PartitionBy: []string{"kind"}}, CheckpointEvery: 4})
	if err != nil {
		fmt.Fprintf(os.Stderr, "groupskill child: %v\n", err)
		return 1
	}
	began := time.Now()
	ds := job(dataset.ReadStream(src).WithConfig(dataset.Config{Parallelism: 2, ShufflePartitions: 3}))
	q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(c.Checkpoint).OutputMode(sinks.Append).Retain(3).Start(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "groupskill child: start: %v\n", err)
		return 1
	}
	if err := q.AwaitTermination(); err != nil {
		fmt.Fprintf(os.Stderr, "groupskill child: %v\n", err)
		return 1
	}
	fmt.Printf("groupskill: %d batches in %dus from %d\n", len(q.RecentProgress()), time.Since(began).Microseconds(), began.UnixMicro())
	return 0
}

// readOutput reads the sink's table as a user would (files of uncommitted
// batches are invisible) and returns its rows as sorted text.
func readOutput(t *testing.T, dir string) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "_sluice_log")); err != nil {
		return nil // nothing committed yet
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs, err := dataset.Read(dir).WithConfig(dataset.Config{Allocator: mem}).
		Select("kind", "customer", "order_id", "n", "cents").CollectRecords(context.Background())
	if err != nil {
		if strings.Contains(err.Error(), "lists none") {
			return nil
		}
		t.Fatalf("read %s: %v", dir, err)
	}
	var rows []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			cells := make([]string, r.NumCols())
			for c := range cells {
				cells[c] = exec.FormatValue(r.Column(c), i)
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
		r.Release()
	}
	slices.Sort(rows)
	return rows
}

// lastOf is the largest batch number among dir's files named <N><suffix>.
func lastOf(dir string, suffixes ...string) int64 {
	last := int64(-1)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		for _, suffix := range suffixes {
			if name, ok := strings.CutSuffix(e.Name(), suffix); ok {
				if n, err := strconv.ParseInt(name, 10, 64); err == nil {
					last = max(last, n)
				}
			}
		}
	}
	return last
}

// subsetWithoutDuplicates explains how got is not a duplicate-free subset
// of want (both sorted), or returns "".
func subsetWithoutDuplicates(got, want []string) string {
	j := 0
	for i, r := range got {
		if i > 0 && got[i-1] == r {
			return fmt.Sprintf("row %q is written twice", r)
		}
		for j < len(want) && want[j] < r {
			j++
		}
		if j == len(want) || want[j] != r {
			return fmt.Sprintf("row %q is not in the never-killed run's output", r)
		}
	}
	return ""
}

// A FlatMapGroupsWithState query with event-time timeouts runs as a
// separate process, is killed with SIGKILL at seeded random points and
// restarted until it finishes: at every kill the committed output is a
// duplicate-free part of a never-killed run's, and at the end it equals
// it row for row, per-order running totals and session ends included. It
// repeats with fresh directories until at least minKills kills landed.
func TestFlatMapGroupsKilledAtRandomPointsEqualsANeverKilledRun(t *testing.T) {
	const (
		minKills = 24
		stalled  = 10 // kills in a row without a new commit double the delays
	)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x67726f7570))
	cfg := func() child {
		dir := t.TempDir()
		return child{Checkpoint: filepath.Join(dir, "checkpoint"), Out: filepath.Join(dir, "out"), Seed: seed}
	}

	ref := cfg()
	began := time.Now()
	r := killtest.Start(t, childEnv, ref)
	if r.RunOrKill(t, time.Hour) {
		t.Fatal("reference run was killed")
	}
	var batches int
	var runUs, startUs int64
	if _, err := fmt.Sscanf(r.Stdout(), "groupskill: %d batches in %dus from %d", &batches, &runUs, &startUs); err != nil {
		t.Fatalf("reference run printed %q: %v", r.Stdout(), err)
	}
	batchTime := time.Duration(runUs) * time.Microsecond / time.Duration(batches)
	startup := max(time.UnixMicro(startUs).Sub(began), time.Millisecond)
	want := readOutput(t, ref.Out)
	ends := 0
	for _, row := range want {
		if strings.HasPrefix(row, "end|") {
			ends++
		}
	}
	t.Logf("reference: %d rows (%d session ends) in %d batches; start-up %v, a batch %v", len(want), ends, batches,
		startup.Round(time.Millisecond), batchTime.Round(time.Microsecond))
	if ends < 100 || len(want)-ends != total {
		t.Fatalf("reference has %d order rows (want %d) and %d session ends (want many)", len(want)-ends, total, ends)
	}

	maxDelay := startup + 2*batchTime
	kills, runs, reruns := 0, 0, 0
	for kills < minKills {
		c := cfg()
		runs++
		killed, lastCommit, noProgress := 0, int64(-1), 0
		for {
			delay := time.Duration(rng.Int64N(int64(maxDelay)))
			r := killtest.Start(t, childEnv, c)
			if !r.RunOrKill(t, delay) {
				break
			}
			killed++
			offsets := lastOf(filepath.Join(c.Checkpoint, "offsets"), ".json")
			commits := lastOf(filepath.Join(c.Checkpoint, "commits"), ".json")
			if offsets > commits {
				reruns++
			}
			if d := subsetWithoutDuplicates(readOutput(t, c.Out), want); d != "" {
				t.Fatalf("seed %d: run %d, kill %d (offsets up to %d, commits up to %d): %s", seed, runs, killed, offsets, commits, d)
			}
			if commits > lastCommit {
				lastCommit, noProgress = commits, 0
			} else if noProgress++; noProgress == stalled {
				maxDelay *= 2
				noProgress = 0
				t.Logf("run %d: %d kills without a new commit, kill delays now up to %v", runs, stalled, maxDelay)
			}
		}
		kills += killed
		got := readOutput(t, c.Out)
		if d := subsetWithoutDuplicates(got, want); d != "" || len(got) != len(want) {
			t.Fatalf("seed %d: run %d, killed %d times: %d rows, want %d; %s", seed, runs, killed, len(got), len(want), d)
		}
	}
	t.Logf("%d kills over %d runs in %v; %d left a batch to re-run", kills, runs, time.Since(began).Round(time.Millisecond), reruns)
	if reruns == 0 {
		t.Fatalf("none of %d kills left a batch to re-run (kill delays up to %v)", kills, maxDelay)
	}
}
