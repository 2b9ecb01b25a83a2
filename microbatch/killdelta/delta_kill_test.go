// Package killdelta holds the SIGKILL test of the Delta sink: a query
// writing a Delta table is killed at seeded random points and restarted
// until it finishes, and the table, as delta-rs reads it, equals that of a
// run never killed.
package killdelta

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
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
	idelta "github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

const (
	childEnv = "SLUICE_DELTAKILL_CHILD"
	// seedEnv replays a run's seed: the same orders and the same kill
	// delays (where the kills land still depends on the machine's speed).
	seedEnv = "SLUICE_DELTAKILL_SEED"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

type child struct {
	Checkpoint string `json:"checkpoint"`
	Out        string `json:"out"`
	OrdersSeed uint64 `json:"orders_seed"`
	Total      int64  `json:"total"`
	BatchRows  int64  `json:"batch_rows"`
}

// job is stateless on purpose: the test is about the sink's commit
// protocol, and its output is a pure function of the input.
func job(ds *dataset.Dataset) *dataset.Dataset {
	return ds.Filter(dataset.Col("amount").Gt(50).Or(dataset.Col("region").Eq("apac"))).
		WithColumn("cents", dataset.Col("amount").Mul(100).Cast(dataset.Type(arrow.PrimitiveTypes.Int64))).
		WithColumn("customer", dataset.Upper(dataset.Col("customer"))).
		Select("order_id", "customer", "region", "cents", "ts")
}

func runChild(cfgJSON string) int {
	var c child
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintf(os.Stderr, "deltakill child: bad %s: %v\n", childEnv, err)
		return 2
	}
	src, err := generate.NewOrdersStream(generate.OrdersStreamConfig{
		Orders: generate.Orders{Seed: c.OrdersSeed}, Total: c.Total, MaxRowsPerBatch: c.BatchRows,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "deltakill child: %v\n", err)
		return 1
	}
	// Partitioning by region gives each batch several files in several
	// directories, so a kill can leave a batch half written; a checkpoint
	// every 4 versions puts kills in checkpoint writes too.
	// No AppID: commits carry the query's id as txn appId (Spark's rule),
	// the same across the kills' restarts on one checkpoint.
	sink, err := delta.New(delta.Config{Dir: c.Out, Options: parquet.Options{PartitionBy: []string{"region"}}, CheckpointEvery: 4})
	if err != nil {
		fmt.Fprintf(os.Stderr, "deltakill child: %v\n", err)
		return 1
	}
	began := time.Now()
	ds := job(dataset.ReadStream(src).WithConfig(dataset.Config{Parallelism: 2}))
	q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(c.Checkpoint).OutputMode(sinks.Append).Retain(3).Start(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "deltakill child: start: %v\n", err)
		return 1
	}
	if err := q.AwaitTermination(); err != nil {
		fmt.Fprintf(os.Stderr, "deltakill child: %v\n", err)
		return 1
	}
	fmt.Printf("deltakill: %d batches in %dus from %d\n", len(q.RecentProgress()), time.Since(began).Microseconds(), began.UnixMicro())
	return 0
}

// progress is where a kill left the query: the checkpoint's last offsets
// and commits entries and the table's txn version for the query.
type progress struct {
	phase                             string
	lastOffsets, lastCommit, lastSink int64
}

func readProgress(t *testing.T, c child) progress {
	t.Helper()
	p := killtest.ReadProgress(c.Checkpoint, c.Out) // its LastSink reads the Parquet sink's log: replaced below
	out := progress{lastOffsets: p.LastOffsets, lastCommit: p.LastCommit, lastSink: -1}
	snap, err := idelta.Open(vfs.OS{}, c.Out).Latest()
	switch {
	case err == nil:
		out.lastSink = snap.TxnVersion(queryID(t, c.Checkpoint))
	case !errors.Is(err, idelta.ErrNoTable):
		t.Fatalf("read the delta log of %s: %v", c.Out, err)
	}
	switch {
	case out.lastOffsets < 0:
		out.phase = "before the first batch"
	case out.lastOffsets == out.lastCommit:
		out.phase = "between batches"
	case out.lastSink == out.lastOffsets:
		out.phase = "after the sink commit, before commits/N"
	default:
		out.phase = "in a batch"
	}
	return out
}

// readDeltaRS reads the table with delta-rs: one line per row,
// "order_id|customer|region|cents|ts as integer microseconds".
const readDeltaRS = `
import sys, os
import pyarrow as pa
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1]).to_pyarrow_table()
cols = [t.column("order_id").to_pylist(), t.column("customer").to_pylist(), t.column("region").to_pylist(),
        t.column("cents").to_pylist(), t.column("ts").cast(pa.int64()).to_pylist()]
for r in zip(*cols):
    print("|".join(str(v) for v in r))
sys.stdout.flush()
os._exit(0)  # delta-rs's threads sometimes abort the interpreter's teardown
`

type row struct {
	id   int64
	text string
}

func sortRows(rows []row) []row {
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(a.id, b.id), strings.Compare(a.text, b.text)) })
	return rows
}

func deltaRSRows(t *testing.T, dir string) []row {
	t.Helper()
	var rows []row
	for _, l := range strings.Split(strings.TrimSpace(testenv.RunPython(t, readDeltaRS, dir)), "\n") {
		if l == "" {
			continue
		}
		id, _, _ := strings.Cut(l, "|")
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			t.Fatalf("delta-rs printed %q", l)
		}
		rows = append(rows, row{n, l})
	}
	return sortRows(rows)
}

// sluiceRows reads the table with dataset.Read, in the delta-rs script's rendering.
func sluiceRows(t *testing.T, dir string) []row {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs, err := dataset.Read(dir).WithConfig(dataset.Config{Allocator: mem}).
		Select("order_id", "customer", "region", "cents", "ts").CollectRecords(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var rows []row
	for _, r := range recs {
		ids := r.Column(0).(*array.Int64)
		ts := r.Column(4).(*array.Timestamp)
		for i := 0; i < int(r.NumRows()); i++ {
			cells := make([]string, 4, 5)
			for c := range cells {
				cells[c] = exec.FormatValue(r.Column(c), i)
			}
			unit := ts.DataType().(*arrow.TimestampType).Unit
			us := int64(ts.Value(i)) * map[arrow.TimeUnit]int64{arrow.Second: 1e6, arrow.Millisecond: 1e3, arrow.Microsecond: 1}[unit]
			cells = append(cells, strconv.FormatInt(us, 10))
			rows = append(rows, row{ids.Value(i), strings.Join(cells, "|")})
		}
		r.Release()
	}
	return sortRows(rows)
}

func diffRows(got, want []row) string {
	for i := 1; i < len(got); i++ {
		if got[i].id == got[i-1].id {
			return fmt.Sprintf("order %d is written twice: %q", got[i].id, got[i].text)
		}
	}
	i, j := 0, 0
	for i < len(got) && j < len(want) {
		switch {
		case got[i].id < want[j].id:
			return fmt.Sprintf("order %d is extra: %q", got[i].id, got[i].text)
		case got[i].id > want[j].id:
			return fmt.Sprintf("order %d is lost: %q", want[j].id, want[j].text)
		case got[i].text != want[j].text:
			return fmt.Sprintf("order %d differs: %q, want %q", got[i].id, got[i].text, want[j].text)
		}
		i++
		j++
	}
	switch {
	case i < len(got):
		return fmt.Sprintf("order %d is extra: %q", got[i].id, got[i].text)
	case j < len(want):
		return fmt.Sprintf("order %d is lost: %q", want[j].id, want[j].text)
	}
	return ""
}

func prefix(rows []row, id int64) []row {
	i, _ := slices.BinarySearchFunc(rows, id, func(r row, id int64) int { return cmp.Compare(r.id, id) })
	return rows[:i]
}

// A query writing a Delta table runs as a separate process, is killed with
// SIGKILL at seeded random points and restarted until it finishes; the
// table delta-rs reads then equals, row for row, the table of a run never
// killed (also read by delta-rs). After every kill sluice's reader sees
// exactly the batches the log's txn says are committed, and every few
// kills delta-rs does too. It repeats with fresh directories until at
// least minKills kills have landed.
func TestADeltaTableWrittenByAKilledQueryEqualsANeverKilledOne(t *testing.T) {
	testenv.Python(t) // skip (or fail under CI=true) before spending minutes without delta-rs
	const (
		total     = 40_000
		batchRows = 2_000 // 20 batches, a checkpoint every 4 versions
		stalled   = 10
	)
	minKills := testenv.Soak(t, 24)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x64656c74))
	cfg := func() child {
		dir := t.TempDir()
		return child{Checkpoint: filepath.Join(dir, "checkpoint"), Out: filepath.Join(dir, "out"),
			OrdersSeed: seed, Total: total, BatchRows: batchRows}
	}

	ref := cfg()
	began := time.Now()
	r := killtest.Start(t, childEnv, ref)
	if r.RunOrKill(t, time.Hour) {
		t.Fatal("reference run was killed")
	}
	var batches int
	var runUs, startUs int64
	if _, err := fmt.Sscanf(r.Stdout(), "deltakill: %d batches in %dus from %d", &batches, &runUs, &startUs); err != nil {
		t.Fatalf("reference run printed %q: %v", r.Stdout(), err)
	}
	if want := (total + batchRows - 1) / batchRows; batches != want {
		t.Fatalf("reference run: %d batches, want %d", batches, want)
	}
	batchTime := time.Duration(runUs) * time.Microsecond / time.Duration(batches)
	startup := max(time.UnixMicro(startUs).Sub(began), time.Millisecond)
	want := deltaRSRows(t, ref.Out)
	t.Logf("reference: %d rows in %d batches; process start-up %v, a batch %v", len(want), batches, startup.Round(time.Millisecond), batchTime.Round(time.Microsecond))
	if len(want) == 0 || len(want) >= total {
		t.Fatalf("reference has %d of %d rows: the filter should drop some, keep most", len(want), total)
	}
	if d := diffRows(sluiceRows(t, ref.Out), want); d != "" {
		t.Fatalf("seed %d: sluice and delta-rs read the reference table differently: %s", seed, d)
	}

	maxDelay := startup + 2*batchTime
	kills, runs, reruns, rsChecks := 0, 0, 0, 0
	phases := map[string]int{}
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
			s := readProgress(t, c)
			phases[s.phase]++
			if s.lastOffsets > s.lastCommit {
				reruns++
			}
			if s.lastSink != s.lastCommit && (s.lastSink != s.lastCommit+1 || s.lastSink != s.lastOffsets) {
				t.Fatalf("seed %d: run %d, kill %d: the table's txn is at batch %d, with offsets up to %d and commits up to %d", seed, runs, killed, s.lastSink, s.lastOffsets, s.lastCommit)
			}
			if s.lastSink >= 0 {
				visible := prefix(want, (s.lastSink+1)*batchRows)
				if d := diffRows(sluiceRows(t, c.Out), visible); d != "" {
					t.Fatalf("seed %d: run %d, kill %d (%s), batches 0..%d committed: sluice reads: %s", seed, runs, killed, s.phase, s.lastSink, d)
				}
				if (kills+killed)%6 == 0 {
					rsChecks++
					if d := diffRows(deltaRSRows(t, c.Out), visible); d != "" {
						t.Fatalf("seed %d: run %d, kill %d (%s), batches 0..%d committed: delta-rs reads: %s", seed, runs, killed, s.phase, s.lastSink, d)
					}
				}
			}
			if s.lastCommit > lastCommit {
				lastCommit, noProgress = s.lastCommit, 0
			} else if noProgress++; noProgress == stalled {
				maxDelay *= 2
				noProgress = 0
				t.Logf("run %d: %d kills without a new commit, kill delays now up to %v", runs, stalled, maxDelay)
			}
		}
		kills += killed
		if d := diffRows(deltaRSRows(t, c.Out), want); d != "" {
			t.Fatalf("seed %d: run %d, killed %d times: delta-rs reads: %s", seed, runs, killed, d)
		}
		if d := diffRows(sluiceRows(t, c.Out), want); d != "" {
			t.Fatalf("seed %d: run %d, killed %d times: sluice reads: %s", seed, runs, killed, d)
		}
	}
	t.Logf("%d kills over %d runs in %v (delta-rs read %d killed tables mid-run); kills landed %v", kills, runs, time.Since(began).Round(time.Millisecond), rsChecks, phases)
	if reruns == 0 {
		t.Fatalf("none of %d kills left a batch to re-run (kill delays up to %v)", kills, maxDelay)
	}
}

// queryID is the id of the query whose checkpoint is dir ("" before it
// made one): the txn appId of its commits.
func queryID(t *testing.T, dir string) string {
	t.Helper()
	cp, err := checkpoint.Open(vfs.OS{}, dir)
	if err != nil {
		t.Fatalf("open checkpoint %s: %v", dir, err)
	}
	m, ok, err := cp.Metadata()
	if err != nil {
		t.Fatalf("the query id of checkpoint %s: %v", dir, err)
	}
	if !ok {
		return ""
	}
	return m.QueryID
}
