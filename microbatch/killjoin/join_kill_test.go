// Package killjoin holds a kill test of a stream-stream outer join: two
// directory streams of Parquet files (orders and payments), a full outer
// join within a time range bounded by both watermarks, and the exactly-once
// Parquet stream sink, run as a separate process that is killed with SIGKILL
// at seeded random points and restarted. It has no non-test code.
//
// What a kill can break here and the stateless kill test cannot: the join
// keeps both sides' rows in state (two stores, committed one after the
// other), emits a pair in the batch where its later row arrives and an
// unmatched row in the batch where the watermark evicts it. A restart that
// re-ran a batch on the wrong state version, or committed one side's store
// and not the other's, would lose a pair, emit it twice, or emit a matched
// row as unmatched.
package killjoin

import (
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
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/files"
	srcpq "github.com/sluicedata/sluice/sources/parquet"
)

// The test re-executes its own binary as the query process: TestMain sees
// childEnv (a JSON child) and runs the query instead of the tests.
const (
	childEnv = "SLUICE_JOINKILL_CHILD"
	// seedEnv replays a run's seed: the same input and the same kill delays
	// (where the kills land still depends on the machine's speed).
	seedEnv = "SLUICE_JOINKILL_SEED"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	// Or an executor of the cluster test (cluster_kill_test.go).
	clustertest.ExitIfExecutor(func() (shuffle.Runner, error) { return dataset.NewTaskServer(dataset.Config{}, joinJob), nil })
	// The disk state pass's local databases go with the run.
	removeTemp := testenv.OwnTempDir()
	code := m.Run()
	removeTemp()
	os.Exit(code)
}

// The input: orders about every 100 ms of event time, payments for most of
// them (some in two parts, some too late, some stamped before the order,
// some for orders that do not exist), cut by event time into files of
// fileSpan per stream, so each batch (one file of each) moves both streams
// to the same point in event time. The last file of each stream holds a
// sentinel row a day later, which moves the watermark past everything:
// then every unmatched row has been emitted and the output equals a batch
// join's.
const (
	orders   = 20_000
	window   = 2 * time.Minute // a payment within [ordered_at, ordered_at + window] matches
	delay    = 10 * time.Second
	fileSpan = 2 * time.Minute // about 1,200 orders a file: 18 files of orders, 21 of payments
	sentinel = -1
)

var (
	start         = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts            = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	ordersSchema  = arrow.NewSchema([]arrow.Field{{Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "customer", Type: arrow.BinaryTypes.String}, {Name: "amount", Type: arrow.PrimitiveTypes.Int64}, {Name: "ordered_at", Type: ts}}, nil)
	paymentSchema = arrow.NewSchema([]arrow.Field{{Name: "payment_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "paid", Type: arrow.PrimitiveTypes.Int64}, {Name: "paid_at", Type: ts}}, nil)
	outColumns    = []string{"order_id", "customer", "amount", "ordered_at", "payment_id", "paid", "paid_at"}
)

// row is an input row: [id, order_id or 0, amount, event time in ms];
// customer is derived from the id.
type row [4]int64

// writeInput writes the seed's orders and payments into dir/orders and
// dir/payments.
func writeInput(t *testing.T, seed uint64, dir string) (ordersDir, paymentsDir string) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x6a6f696e))
	var os_, ps []row
	at := start.UnixMilli()
	ms := func(lo, hi int64) int64 { return lo + r.Int64N(hi-lo+1) }
	w := window.Milliseconds()
	for i := range int64(orders) {
		amount := ms(100, 50_000)
		os_ = append(os_, row{i, 0, amount, at})
		pay := func(t int64, paid int64) { ps = append(ps, row{int64(len(ps)) + 1, i, paid, t}) }
		switch k := r.IntN(100); {
		case k < 60:
			pay(at+ms(0, w), amount)
		case k < 68:
			pay(at+ms(0, w/2), amount/2)
			pay(at+ms(w/2, w), amount-amount/2)
		case k < 78:
			pay(at+ms(w+1, 3*w), amount)
		case k < 80:
			pay(at-ms(1, 30_000), amount)
		}
		if r.IntN(30) == 0 {
			ps = append(ps, row{int64(len(ps)) + 1, orders + i, ms(100, 900), at + ms(0, 10_000)})
		}
		at += ms(0, 200)
	}
	slices.SortStableFunc(ps, func(a, b row) int { return int(a[3] - b[3]) })
	end := at + (24 * time.Hour).Milliseconds()
	os_ = append(os_, row{sentinel, 0, 0, end})
	ps = append(ps, row{int64(len(ps)) + 1, sentinel, 0, end})
	ordersDir, paymentsDir = filepath.Join(dir, "orders"), filepath.Join(dir, "payments")
	writeChunks(t, ordersDir, "orders", ordersSchema, os_)
	writeChunks(t, paymentsDir, "payments", paymentSchema, ps)
	return ordersDir, paymentsDir
}

// writeChunks writes rows (in event-time order) as one file per fileSpan,
// in order, so the directory stream (which takes files by modification
// time, then name) reads them in event-time order.
func writeChunks(t *testing.T, dir, name string, sch *arrow.Schema, rows []row) {
	t.Helper()
	mem := memory.NewGoAllocator()
	chunk := func(r row) int64 { return max(0, (r[3]-start.UnixMilli())/fileSpan.Milliseconds()) }
	for lo, n := 0, 0; lo < len(rows); n++ {
		hi := lo
		for hi < len(rows) && chunk(rows[hi]) == chunk(rows[lo]) {
			hi++
		}
		b := array.NewRecordBuilder(mem, sch)
		for _, x := range rows[lo:hi] {
			if name == "orders" {
				b.Field(0).(*array.Int64Builder).Append(x[0])
				b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("c-%03d", uint64(x[0])*2654435761%500))
			} else {
				b.Field(0).(*array.Int64Builder).Append(x[0])
				b.Field(1).(*array.Int64Builder).Append(x[1])
			}
			b.Field(2).(*array.Int64Builder).Append(x[2])
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(x[3]))
		}
		rec := b.NewRecord()
		b.Release()
		w, err := parquet.NewFileWriter(mem, dir, fmt.Sprintf("%s-%04d", name, n), sch, parquet.Options{})
		if err == nil {
			err = w.Write(rec)
		}
		rec.Release()
		if err == nil {
			_, err = w.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		lo = hi
	}
}

// job is the query under test: orders full outer join payments within the
// window, with a bucket column the sink partitions by, so that a batch
// writes several files in several directories and a kill can leave it half
// written.
func job(o, p *dataset.Dataset) *dataset.Dataset {
	within := dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(window)))
	return o.WithWatermark("ordered_at", delay).
		JoinWhere(p.WithWatermark("paid_at", delay), []string{"order_id"}, dataset.Full, within).
		WithColumn("bucket", dataset.Col("order_id").Mod(int64(3)))
}

// child is what the child process runs: the join of the two directory
// streams into a Parquet stream sink, with the AvailableNow trigger.
type child struct {
	Checkpoint string `json:"checkpoint"`
	Out        string `json:"out"`
	Orders     string `json:"orders"`
	Payments   string `json:"payments"`
	// Cluster, when set, runs the query's tasks on a cluster's executors.
	Cluster *clustertest.Join `json:"cluster,omitempty"`
}

// joinJob is the job's code as a function of its parameters: the driver
// and every executor build it alike.
func joinJob(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	stream := func(name, dir string, sch *arrow.Schema) (*dataset.Dataset, error) {
		src, err := files.New(files.Config{Name: name, Dir: dir, Schema: sch, LogDir: vfs.Join(p["checkpoint"], "sources", name),
			MaxFilesPerBatch: 1, SettleDelay: time.Millisecond})
		if err != nil {
			return nil, err
		}
		return dataset.ReadStream(src), nil
	}
	o, err := stream("orders", p["orders"], ordersSchema)
	if err != nil {
		return nil, nil, err
	}
	pay, err := stream("payments", p["payments"], paymentSchema)
	if err != nil {
		return nil, nil, err
	}
	sink, err := parquet.NewStream(parquet.StreamConfig{Dir: p["out"], Options: parquet.Options{PartitionBy: []string{"bucket"}}, CheckpointEvery: 4})
	if err != nil {
		return nil, nil, err
	}
	return []sinks.Sink{sink}, []*dataset.Dataset{job(o, pay)}, nil
}

// runChild runs the child query to its end and returns the process's exit
// status. On success it prints one line the parent parses:
// "killtest: <batches> batches in <µs>us from <unix µs>".
func runChild(cfgJSON string) int {
	var c child
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintf(os.Stderr, "killjoin child: bad %s: %v\n", childEnv, err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "killjoin child: %v\n", err)
		return 1
	}
	began := time.Now()
	params := map[string]string{"checkpoint": c.Checkpoint, "out": c.Out, "orders": c.Orders, "payments": c.Payments}
	outs, dss, err := joinJob(params)
	if err != nil {
		return fail(err)
	}
	cfg := dataset.Config{Parallelism: 2}
	if c.Cluster != nil {
		d, err := c.Cluster.Driver()
		if err != nil {
			return fail(err)
		}
		defer d.Close()
		cfg.Cluster, cfg.Params = d, params
	}
	joined, sink := dss[0].WithConfig(cfg), outs[0]
	// Retain(3) makes the checkpoint purge old batches (and state versions)
	// as it goes, so kills also land in the purge.
	q, err := microbatch.WriteStream(joined, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(c.Checkpoint).OutputMode(sinks.Append).Retain(3).Start(context.Background())
	if err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	if err := q.AwaitTermination(); err != nil {
		return fail(err)
	}
	fmt.Printf("killtest: %d batches in %dus from %d\n", len(q.RecentProgress()), time.Since(began).Microseconds(), began.UnixMicro())
	return 0
}

// render turns records into sorted rows of text (outColumns, "|"-joined)
// and releases them.
func render(recs []arrow.Record) []string {
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

// read reads Parquet paths (a sink directory, honouring its log, or files)
// as outColumns; a table with no file yet has no rows.
func read(t *testing.T, paths ...string) []string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs, err := dataset.Read(paths...).WithConfig(dataset.Config{Allocator: mem}).Select(toAny(outColumns)...).CollectRecords(context.Background())
	if errors.Is(err, srcpq.ErrNoFiles) {
		return nil
	}
	if err != nil {
		t.Fatalf("read %v: %v", paths, err)
	}
	return render(recs)
}

// withoutSentinel drops the pair of sentinel rows.
func withoutSentinel(rows []string) []string {
	return slices.DeleteFunc(slices.Clone(rows), func(r string) bool { return strings.HasPrefix(r, strconv.Itoa(sentinel)+"|") })
}

// diff explains the first way got (sorted) differs from want (sorted).
func diff(got, want []string) string {
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			return fmt.Sprintf("%d rows, want %d: written twice: %q", len(got), len(want), got[i])
		}
	}
	i, j := 0, 0
	for i < len(got) && j < len(want) {
		switch {
		case got[i] < want[j]:
			return fmt.Sprintf("%d rows, want %d: extra %q", len(got), len(want), got[i])
		case got[i] > want[j]:
			return fmt.Sprintf("%d rows, want %d: lost %q", len(got), len(want), want[j])
		}
		i++
		j++
	}
	switch {
	case i < len(got):
		return fmt.Sprintf("%d rows, want %d: extra %q", len(got), len(want), got[i])
	case j < len(want):
		return fmt.Sprintf("%d rows, want %d: lost %q", len(got), len(want), want[j])
	}
	return ""
}

func readKillState(c child) killtest.Progress {
	return killtest.ReadProgress(c.Checkpoint, c.Out)
}

// A full outer join of two streams writing to the Parquet sink runs as a
// separate process, is killed with SIGKILL at seeded random points and
// restarted until it finishes; the table it leaves equals, row for row,
// that of a run never killed (which equals the batch join of the same
// files): no pair or unmatched row written twice, none lost, none changed.
// After every kill, what a reader sees is exactly the batches the sink
// committed, each with the rows the never-killed run wrote for it. It
// repeats with fresh checkpoints until at least minKills kills have landed.
func TestAJoinKilledAtRandomPointsWritesEveryRowExactlyOnce(t *testing.T) {
	const (
		minKills = 24
		// stalled kills in a row without a new commit double the kill
		// delays: start-up may have grown slower than it was measured.
		stalled = 10
	)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	ordersDir, paymentsDir := writeInput(t, seed, t.TempDir())
	cfg := func() child {
		dir := t.TempDir()
		return child{Checkpoint: filepath.Join(dir, "checkpoint"), Out: filepath.Join(dir, "out"), Orders: ordersDir, Payments: paymentsDir}
	}

	// The reference: a run never killed. It also measures a process's
	// start-up and a batch's time, which set the kill delays.
	ref := cfg()
	began := time.Now()
	r := killtest.Start(t, childEnv, ref)
	if r.RunOrKill(t, time.Hour) {
		t.Fatal("reference run was killed")
	}
	var batches int
	var runUs, startUs int64
	if _, err := fmt.Sscanf(r.Stdout(), "killtest: %d batches in %dus from %d", &batches, &runUs, &startUs); err != nil {
		t.Fatalf("reference run printed %q: %v", r.Stdout(), err)
	}
	batchTime := time.Duration(runUs) * time.Microsecond / time.Duration(batches)
	startup := max(time.UnixMicro(startUs).Sub(began), time.Millisecond)
	want := read(t, ref.Out)
	// Each batch's rows in the reference, to check what a reader sees
	// after a kill: the files a batch wrote are named by its id.
	perBatch := make([][]string, batches)
	for n := range perBatch {
		if files, _ := filepath.Glob(filepath.Join(ref.Out, "*", fmt.Sprintf("part-%d-*.parquet", n))); len(files) > 0 {
			perBatch[n] = read(t, files...)
		}
	}
	if got := slices.Concat(perBatch...); len(got) != len(want) {
		t.Fatalf("reference: its batches' files hold %d rows, the table %d", len(got), len(want))
	}
	unmatched := 0
	for _, row := range want {
		if strings.Contains(row, "|null|") || strings.HasSuffix(row, "|null") {
			unmatched++
		}
	}
	t.Logf("reference: %d rows (%d with a null side) in %d batches; process start-up %v, a batch %v",
		len(want), unmatched, batches, startup.Round(time.Millisecond), batchTime.Round(time.Microsecond))
	if batches < 20 || unmatched < 1000 || len(want)-unmatched < 10_000 {
		t.Fatalf("reference: %d batches, %d rows of which %d unmatched: the test wants many batches, pairs and unmatched rows", batches, len(want), unmatched)
	}
	// The same join over the same files as one batch job: an oracle that
	// shares neither the driver, the state nor the sink with the reference.
	if d := diff(withoutSentinel(want), withoutSentinel(batchJoin(t, ordersDir, paymentsDir))); d != "" {
		t.Fatalf("seed %d: the never-killed run differs from the batch join: %s", seed, d)
	}

	// Kills land from the process's start to two batches after its
	// start-up (a restart first re-runs the batch a kill interrupted), so
	// some hit start-up and recovery, most a batch in one of its phases.
	maxDelay := startup + 2*batchTime
	kills, runs, reruns := 0, 0, 0
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
			s := readKillState(c)
			phases[s.Phase]++
			if s.LastOffsets > s.LastCommit {
				reruns++
			}
			if err := s.CheckSink(); err != nil {
				t.Fatalf("seed %d: run %d, kill %d: %v", seed, runs, killed, err)
			}
			if s.LastSink >= int64(len(perBatch)) {
				t.Fatalf("seed %d: run %d, kill %d: the sink committed batch %d; the never-killed run had %d batches", seed, runs, killed, s.LastSink, len(perBatch))
			}
			// (Before its first commit the sink's directory may not exist.)
			if s.LastSink >= 0 {
				visible := slices.Concat(perBatch[:s.LastSink+1]...)
				slices.Sort(visible)
				if d := diff(read(t, c.Out), visible); d != "" {
					t.Fatalf("seed %d: run %d, kill %d (%s), batches 0..%d committed to the sink: %s", seed, runs, killed, s.Phase, s.LastSink, d)
				}
			}
			if s.LastCommit > lastCommit {
				lastCommit, noProgress = s.LastCommit, 0
			} else if noProgress++; noProgress == stalled {
				maxDelay *= 2
				noProgress = 0
				t.Logf("run %d: %d kills without a new commit, kill delays now up to %v", runs, stalled, maxDelay)
			}
		}
		kills += killed
		if d := diff(read(t, c.Out), want); d != "" {
			t.Fatalf("seed %d: run %d, killed %d times: %s", seed, runs, killed, d)
		}
	}
	t.Logf("%d kills over %d runs in %v; kills landed %v", kills, runs, time.Since(began).Round(time.Millisecond), phases)
	// Kills land in batches far more often than between them; a test whose
	// restarts never had a batch to re-run would not test recovery.
	if reruns == 0 {
		t.Fatalf("none of %d kills left a batch to re-run (kill delays up to %v)", kills, maxDelay)
	}
}

// batchJoin is the same join over the same files as one batch job: an
// oracle that shares neither the driver, the state nor the sink with a
// streaming run.
func batchJoin(t *testing.T, ordersDir, paymentsDir string) []string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	bcfg := dataset.Config{Allocator: mem, Parallelism: 2}
	recs, err := job(dataset.Read(ordersDir).WithConfig(bcfg), dataset.Read(paymentsDir).WithConfig(bcfg)).Select(toAny(outColumns)...).CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := render(recs)
	mem.AssertSize(t, 0)
	return rows
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
