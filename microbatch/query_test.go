package microbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

func TestMain(m *testing.M) {
	exitIfKillChild()  // the kill test's child process runs its query, not the tests
	exitIfOwnerChild() // so does TestOneOwnerAtATime's
	// The disk state pass's local databases (under the temporary
	// directory by default) go with the run, children's included.
	removeTemp := testenv.OwnTempDir()
	// An executor of the cluster pass runs its tasks, not the tests; in
	// the pass ($SLUICE_TEST_CLUSTER) the package's cluster starts here.
	var run clustertest.Runner
	testCluster, run = clustertest.Package(m, clusterExecutor)
	goleak.VerifyTestMain(run, goleak.Cleanup(func(code int) {
		removeTemp()
		os.Exit(code)
	}))
}

// recordingSink is a test double of an external, durable, idempotent sink:
// it keeps each committed batch's rows (rendered as text), survives the
// driver's "crashes", and can fail its next commit on demand. A writer in
// the driver's process stages its rows here and commits a key to them; a
// writer on a cluster executor (sinks.IsRemote) puts the rows themselves
// in its commit message, for the driver's instance to commit.
type recordingSink struct {
	mu        sync.Mutex
	batches   map[int64][]string
	commits   int
	failNext  error
	staged    map[string][]string // task message -> rows
	nextStage int
}

func newRecordingSink() *recordingSink {
	return &recordingSink{batches: map[int64][]string{}, staged: map[string][]string{}}
}

func (s *recordingSink) Name() string                              { return "recording" }
func (s *recordingSink) Check(m sinks.Mode, _ *arrow.Schema) error { return nil }
func (s *recordingSink) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	return &recordingWriter{s: s, tag: fmt.Sprintf("%d/%d", b.ID, task), remote: sinks.IsRemote(ctx)}, nil
}

// remoteRows is the commit message of a writer on a cluster executor.
type remoteRows struct {
	Rows []string `json:"rows"`
}

func (s *recordingSink) Commit(_ context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	rows := []string{}
	for _, m := range msgs {
		var remote remoteRows
		if len(m) > 0 && m[0] == '{' {
			if err := json.Unmarshal(m, &remote); err != nil {
				return err
			}
			rows = append(rows, remote.Rows...)
			continue
		}
		var key string
		if err := json.Unmarshal(m, &key); err != nil {
			return err
		}
		staged, ok := s.staged[key]
		if !ok {
			return fmt.Errorf("recording sink: batch %d: no rows staged under %q in this process", b.ID, key)
		}
		rows = append(rows, staged...)
	}
	if prev, done := s.batches[b.ID]; done {
		// Idempotent per batch id; a re-run must also have produced the
		// same rows, or the driver re-ran it with other offsets.
		if !slices.Equal(prev, rows) {
			return fmt.Errorf("recording sink: batch %d re-committed with different rows (%d vs %d)", b.ID, len(rows), len(prev))
		}
		return nil
	}
	s.batches[b.ID] = rows
	s.commits++
	return nil
}

func (s *recordingSink) Abort(context.Context, sinks.Batch, []sinks.CommitMessage) error { return nil }

// rows is every committed row in batch order.
func (s *recordingSink) rows() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for id := range s.batches {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		out = append(out, s.batches[id]...)
	}
	return out
}

// lastBatch is the rows of the highest committed batch (complete mode's
// current result).
func (s *recordingSink) lastBatch() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := int64(-1)
	for id := range s.batches {
		last = max(last, id)
	}
	return append([]string(nil), s.batches[last]...)
}

type recordingWriter struct {
	s      *recordingSink
	tag    string
	remote bool
	rows   []string
}

func (w *recordingWriter) Write(rec arrow.Record) error {
	w.rows = append(w.rows, render(rec)...)
	return nil
}

func (w *recordingWriter) Prepare() (sinks.CommitMessage, error) {
	if w.remote {
		return json.Marshal(remoteRows{Rows: append([]string{}, w.rows...)})
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.nextStage++
	key := fmt.Sprintf("%s#%d", w.tag, w.s.nextStage)
	w.s.staged[key] = w.rows
	return json.Marshal(key)
}

func (w *recordingWriter) Abort() error { return nil }

func render(rec arrow.Record) []string {
	var out []string
	for i := 0; i < int(rec.NumRows()); i++ {
		cells := make([]string, rec.NumCols())
		for c := range cells {
			cells[c] = exec.FormatValue(rec.Column(c), i)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "region", Type: arrow.BinaryTypes.String},
}, nil)

// input makes n records of random sizes (seeded) with ids 0..total-1.
func input(mem memory.Allocator, seed uint64, n int) []arrow.Record {
	r := rand.New(rand.NewPCG(seed, 9))
	var out []arrow.Record
	id := int64(0)
	for k := 0; k < n; k++ {
		b := array.NewRecordBuilder(mem, schema)
		for i := 0; i < 1+r.IntN(40); i++ {
			b.Field(0).(*array.Int64Builder).Append(id)
			if r.IntN(9) == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.Float64Builder).Append(float64(r.IntN(10000)) / 8)
			}
			b.Field(2).(*array.StringBuilder).Append([]string{"emea", "amer", "apac"}[r.IntN(3)])
			id++
		}
		out = append(out, b.NewRecord())
		b.Release()
	}
	return out
}

// job is the transformation under test, shared by the batch and the stream.
func job(ds *dataset.Dataset) *dataset.Dataset {
	return ds.Filter(dataset.Col("amount").Gt(100).Or(dataset.Col("region").Eq("apac"))).
		WithColumn("cents", dataset.Col("amount").Mul(100).Cast(dataset.Type(arrow.PrimitiveTypes.Int64))).
		Select("id", "region", "cents")
}

func batchRows(t *testing.T, mem memory.Allocator, recs []arrow.Record) []string {
	t.Helper()
	out, err := job(dataset.FromRecords(schema, recs...).WithConfig(dataset.Config{Allocator: mem})).CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range out {
		rows = append(rows, render(r)...)
		r.Release()
	}
	return rows
}

type fixture struct {
	mem  *memory.CheckedAllocator
	recs []arrow.Record
	want []string
}

func newFixture(t *testing.T, seed uint64, n int) *fixture {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	f := &fixture{mem: mem, recs: input(mem, seed, n)}
	f.want = batchRows(t, mem, f.recs)
	t.Cleanup(func() {
		for _, r := range f.recs {
			r.Release()
		}
		mem.AssertSize(t, 0)
	})
	return f
}

// source makes a memory source holding every input record.
func (f *fixture) source(t *testing.T, maxRows int64) *srcmem.Source {
	src, err := srcmem.New(srcmem.Config{Name: "orders", Schema: schema, MaxRowsPerBatch: maxRows})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Append(f.recs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func (f *fixture) query(src *srcmem.Source, sink sinks.Sink, fs vfs.FS) *microbatch.StreamWriter {
	ds := job(dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: f.mem, Parallelism: 2}))
	return microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(fs)
}

func TestAStreamOfSmallBatchesEqualsTheBatchJob(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	f := newFixture(t, seed, 30)
	for _, maxRows := range []int64{1, 37, 0} {
		t.Run(fmt.Sprintf("max %d rows per batch", maxRows), func(t *testing.T) {
			sink := newRecordingSink()
			var heard []int64
			q, err := f.query(f.source(t, maxRows), sink, vfs.NewMem()).Trigger(microbatch.AvailableNow()).
				OnProgress(func(p microbatch.Progress) { heard = append(heard, p.Batch) }).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			if got := sink.rows(); !slices.Equal(got, f.want) {
				t.Fatalf("seed %d: stream gave %d rows, batch %d; first difference at %d", seed, len(got), len(f.want), firstDiff(got, f.want))
			}
			if maxRows == 1 {
				total := int64(0)
				for _, r := range f.recs {
					total += r.NumRows()
				}
				if n := len(q.RecentProgress()); int64(n) != min(total, 100) {
					t.Fatalf("%d progress entries for %d one-row batches", n, total)
				}
				if int64(len(heard)) != total || heard[len(heard)-1] != total-1 {
					t.Fatalf("OnProgress heard %d batches, want every one of %d in order", len(heard), total)
				}
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRestartingAfterEveryBatchGivesTheSameOutput(t *testing.T) {
	f := newFixture(t, 7, 20)
	src := f.source(t, 25)
	sink := newRecordingSink()
	fs := vfs.NewMem()
	for i := 0; i < 100; i++ {
		q, err := f.query(src, sink, fs).Trigger(microbatch.Once()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		if q.LastProgress() == nil {
			break // no new data: done
		}
	}
	if got := sink.rows(); !slices.Equal(got, f.want) {
		t.Fatalf("restarted stream gave %d rows, batch %d", len(got), len(f.want))
	}
}

// Every durable step of the driver fails in turn, the process "crashes"
// (only synced files survive), and the query restarts: the output is always
// the batch job's, with no batch lost or written twice.
func TestACrashAtEveryDurableStepLosesAndDuplicatesNothing(t *testing.T) {
	f := newFixture(t, 11, 12)
	// A fault-free run counts the durable steps.
	probe := vfs.NewMem()
	q, err := f.query(f.source(t, 30), newRecordingSink(), probe).Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	steps := probe.Mutations()
	t.Logf("%d durable steps, %d batches", steps, len(q.RecentProgress()))
	if steps < 6 {
		t.Fatalf("only %d durable steps in a multi-batch run", steps)
	}
	for k := 0; k < steps; k++ {
		src := f.source(t, 30)
		sink := newRecordingSink()
		fs := vfs.NewMem()
		fs.FailAfter(k, errors.New("injected disk failure"))
		q, err := f.query(src, sink, fs).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err == nil {
			err = q.AwaitTermination()
		}
		if err == nil || !strings.Contains(err.Error(), "injected disk failure") {
			t.Fatalf("step %d: want the injected failure, got %v", k, err)
		}
		fs.Crash()
		fs.FailAfter(-1, nil)
		for attempt := 0; ; attempt++ {
			q, err := f.query(src, sink, fs).Trigger(microbatch.AvailableNow()).Start(context.Background())
			if err != nil {
				t.Fatalf("step %d: restart: %v", k, err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatalf("step %d: restarted query: %v", k, err)
			}
			break
		}
		if got := sink.rows(); !slices.Equal(got, f.want) {
			t.Fatalf("failure at step %d: %d rows after restart, want %d (first difference at %d)", k, len(got), len(f.want), firstDiff(got, f.want))
		}
	}
}

func TestAFailedSinkCommitIsRetriedOnRestartAndWrittenOnce(t *testing.T) {
	f := newFixture(t, 5, 10)
	src := f.source(t, 20)
	sink := newRecordingSink()
	fs := vfs.NewMem()
	sink.failNext = errors.New("sink unavailable")
	q, err := f.query(src, sink, fs).Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err == nil || !strings.Contains(err.Error(), "batch 0") || !strings.Contains(err.Error(), "sink unavailable") {
		t.Fatalf("want the sink error naming batch 0, got %v", err)
	}
	q, err = f.query(src, sink, fs).Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	if got := sink.rows(); !slices.Equal(got, f.want) {
		t.Fatalf("got %d rows, want %d", len(got), len(f.want))
	}
}

func TestTheProcessingTimeTriggerPicksUpDataAppendedWhileRunning(t *testing.T) {
	f := newFixture(t, 3, 15)
	src, err := srcmem.New(srcmem.Config{Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink := newRecordingSink()
	q, err := f.query(src, sink, vfs.NewMem()).Trigger(microbatch.ProcessingTime(0)).PollInterval(2 * time.Millisecond).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.recs {
		if err := src.Append(r); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.rows()) < len(f.want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := sink.rows(); !slices.Equal(got, f.want) {
		t.Fatalf("got %d rows, want %d", len(got), len(f.want))
	}
	if st := q.Status(); st.Active {
		t.Fatalf("status after Stop: %+v", st)
	}
}

func TestQueriesThatCannotRunAreRefusedAtStartWithAReason(t *testing.T) {
	f := newFixture(t, 1, 2)
	src := f.source(t, 0)
	fs := vfs.NewMem()
	ds := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: f.mem})
	other, err := srcmem.New(srcmem.Config{Name: "payments", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Create a checkpoint for the plain query first.
	q, err := microbatch.WriteStream(ds, newRecordingSink()).Checkpoint("/c").FS(fs).Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	if plan := q.Explain(); !strings.Contains(plan, "== Physical Plan ==\nStage 0: a task per split -> result\n  Write sink ") ||
		!strings.Contains(plan, "Scan stream "+src.Name()) {
		t.Fatalf("the query's EXPLAIN does not show its compiled plan:\n%s", plan)
	}
	cases := []struct {
		name string
		w    *microbatch.StreamWriter
		want []string
	}{
		{"a batch Dataset", microbatch.WriteStream(dataset.FromRecords(schema, f.recs...), newRecordingSink()).Checkpoint("/x").FS(fs), []string{"reads no stream"}},
		{"no checkpoint directory", microbatch.WriteStream(ds, newRecordingSink()).FS(fs), []string{"checkpoint directory is required"}},
		{"an aggregation in append mode (needs watermarks, not built yet)", microbatch.WriteStream(ds.GroupBy("region").Count(), newRecordingSink()).Checkpoint("/y").FS(fs), []string{"append output mode", "watermark"}},
		{"a distinct count", microbatch.WriteStream(ds.GroupBy("region").Agg(dataset.CountDistinct(dataset.Col("id"))), newRecordingSink()).Checkpoint("/y").FS(fs).OutputMode(sinks.Update), []string{"count_distinct"}},
		{"a streaming sort", microbatch.WriteStream(ds.OrderBy(dataset.Col("id")), newRecordingSink()).Checkpoint("/y").FS(fs), []string{"Sort", "not supported"}},
		{"complete mode without an aggregation", microbatch.WriteStream(ds, newRecordingSink()).Checkpoint("/z").FS(fs).OutputMode(sinks.Complete), []string{"complete output mode"}},
		{"another query's checkpoint", microbatch.WriteStream(dataset.ReadStream(other), newRecordingSink()).Checkpoint("/c").FS(fs), []string{"/c", "different query"}},
		{"a transformation error", microbatch.WriteStream(ds.Select("nope"), newRecordingSink()).Checkpoint("/w").FS(fs), []string{"nope"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := c.w.Start(context.Background())
			if err == nil {
				q.Stop()
				t.Fatal("started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestACorruptCheckpointFileIsAnErrorNamingIt(t *testing.T) {
	f := newFixture(t, 2, 4)
	src := f.source(t, 0)
	fs := vfs.NewMem()
	q, err := f.query(src, newRecordingSink(), fs).Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	fs.Corrupt("/ckpt/offsets/0.json", func(b []byte) []byte { b[len(b)-3] ^= 0x20; return b })
	_, err = f.query(src, newRecordingSink(), fs).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/ckpt/offsets/0.json") {
		t.Fatalf("want an error naming /ckpt/offsets/0.json, got %v", err)
	}
}
