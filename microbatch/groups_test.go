package microbatch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// The tests' input: id, key, event time (ms).
var keyedSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

// The tests' output: key, what happened, a number.
var groupsOut = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "event", Type: arrow.BinaryTypes.String},
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
}, nil)

type keyedRow struct {
	key string
	ts  time.Time
}

func keyedRecord(mem memory.Allocator, firstID int64, rows []keyedRow) arrow.Record {
	b := array.NewRecordBuilder(mem, keyedSchema)
	defer b.Release()
	for i, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(firstID + int64(i))
		b.Field(1).(*array.StringBuilder).Append(r.key)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts.UnixMilli()))
	}
	return b.NewRecord()
}

func emit(out *array.RecordBuilder, key, event string, n int64) {
	out.Field(0).(*array.StringBuilder).Append(key)
	out.Field(1).(*array.StringBuilder).Append(event)
	out.Field(2).(*array.Int64Builder).Append(n)
}

// runningCount is state the tests keep per key.
type runningCount struct {
	N    int64
	Last int64 // largest event time seen, ms
}

// countRows emits the key's running count after every call.
func countRows(key dataset.Key, rows arrow.Record, st *dataset.State[runningCount], out *array.RecordBuilder) error {
	s, _ := st.Get()
	s.N += rows.NumRows()
	st.Update(s)
	emit(out, key[0].(string), "count", s.N)
	return nil
}

func groupsQuery(ds *dataset.Dataset, sink sinks.Sink, fs vfs.FS) *microbatch.StreamWriter {
	return microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(fs).OutputMode(sinks.Append)
}

func runToEnd(t *testing.T, w *microbatch.StreamWriter) *microbatch.Query {
	t.Helper()
	q, err := w.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	return q
}

// batchRows is the rows the sink committed per batch, each batch sorted
// (tasks finish in any order).
func (s *recordingSink) sortedBatches() map[int64][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64][]string{}
	for id, rows := range s.batches {
		r := append([]string(nil), rows...)
		sort.Strings(r)
		out[id] = r
	}
	return out
}

// The function sees each key's rows once, and its state carries the count
// from batch to batch: the stream emits, per batch, each key of the batch
// with its count so far. Restarting the query before every batch (state
// restored from the checkpoint) changes nothing; progress reports one
// state row per key.
func TestFlatMapGroupsKeepsARunningCountPerKeyAcrossBatchesAndRestarts(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	r := rand.New(rand.NewPCG(7, 7))
	var recs []arrow.Record
	var keys []string
	for id := 0; id < 400; {
		var rows []keyedRow
		for k := 0; k < 1+r.IntN(30) && id+k < 400; k++ {
			key := fmt.Sprintf("k%02d", r.IntN(17))
			rows = append(rows, keyedRow{key: key, ts: t0.Add(time.Duration(id+k) * time.Second)})
			keys = append(keys, key)
		}
		recs = append(recs, keyedRecord(mem, int64(id), rows))
		id += len(rows)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	const perBatch = 37
	want := map[int64][]string{}
	counts := map[string]int64{}
	for b := 0; b*perBatch < len(keys); b++ {
		seen := map[string]bool{}
		batch := keys[b*perBatch : min(len(keys), (b+1)*perBatch)]
		for _, k := range batch {
			counts[k]++
		}
		for _, k := range batch {
			if !seen[k] {
				seen[k] = true
				want[int64(b)] = append(want[int64(b)], fmt.Sprintf("%s|count|%d", k, counts[k]))
			}
		}
		sort.Strings(want[int64(b)])
	}
	job := func(src *srcmem.Source) *dataset.Dataset {
		return dataset.ReadStream(src).WithConfig(cfg).GroupByKey("key").
			FlatMapGroupsWithState("test.countRows", groupsOut, dataset.NoTimeout, dataset.StateFunc(countRows))
	}
	for _, c := range []struct {
		restart bool
		mode    sinks.Mode
	}{{false, sinks.Append}, {true, sinks.Append}, {false, sinks.Update}} {
		restart := c.restart
		t.Run(fmt.Sprintf("%s mode, restart before every batch: %v", c.mode, restart), func(t *testing.T) {
			src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema, MaxRowsPerBatch: perBatch})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			src.Append(recs...)
			sink := newRecordingSink()
			fs := vfs.NewMem()
			var last *microbatch.Progress
			if restart {
				for {
					q := runToEnd(t, groupsQuery(job(src), sink, fs).OutputMode(c.mode).Trigger(microbatch.Once()))
					if q.LastProgress() == nil {
						break
					}
					last = q.LastProgress()
				}
			} else {
				last = runToEnd(t, groupsQuery(job(src), sink, fs).OutputMode(c.mode).Trigger(microbatch.AvailableNow())).LastProgress()
			}
			got := sink.sortedBatches()
			if len(got) != len(want) {
				t.Fatalf("%d batches, want %d", len(got), len(want))
			}
			for b, rows := range want {
				if !slices.Equal(got[b], rows) {
					t.Fatalf("batch %d:\n got %q\nwant %q", b, got[b], rows)
				}
			}
			if len(last.StateOperators) != 1 || last.StateOperators[0].Operator != "groups-0" ||
				last.StateOperators[0].Rows != int64(len(counts)) || last.StateOperators[0].Bytes <= 0 {
				t.Fatalf("state progress %+v, want groups-0 with %d rows", last.StateOperators, len(counts))
			}
		})
	}
}

// sessionEnd counts a key's rows and times it out gap after its latest
// event time; the timeout emits the session's end and forgets the key.
func sessionEnd(key dataset.Key, rows arrow.Record, st *dataset.State[runningCount], out *array.RecordBuilder) error {
	s, _ := st.Get()
	if st.HasTimedOut() {
		if rows.NumRows() != 0 {
			return fmt.Errorf("a timeout call got %d rows", rows.NumRows())
		}
		if !st.CurrentWatermark().After(time.UnixMilli(s.Last).Add(10 * time.Second)) {
			return fmt.Errorf("timed out at watermark %s, before its timeout", st.CurrentWatermark())
		}
		emit(out, key[0].(string), "end", s.N)
		st.Remove()
		return nil
	}
	ts := rows.Column(2).(*array.Timestamp)
	for i := 0; i < ts.Len(); i++ {
		s.Last = max(s.Last, int64(ts.Value(i)))
	}
	s.N += rows.NumRows()
	st.Update(s)
	st.SetTimeoutTimestamp(time.UnixMilli(s.Last).Add(10 * time.Second))
	return nil
}

// An event-time timeout fires once the watermark passes it, in a batch
// where the key has no rows (the no-data batch a moving watermark earns
// included), and a removed key leaves state.
func TestFlatMapGroupsEventTimeTimeoutEndsSessions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	var rows []keyedRow
	for i := 0; i <= 5; i++ {
		rows = append(rows, keyedRow{"a", t0.Add(time.Duration(i) * time.Second)})
	}
	for i := 0; i <= 50; i += 2 {
		rows = append(rows, keyedRow{"b", t0.Add(time.Duration(i) * time.Second)})
	}
	slices.SortStableFunc(rows, func(x, y keyedRow) int { return x.ts.Compare(y.ts) })
	rows = append(rows, keyedRow{"c", t0.Add(100 * time.Second)})
	rec := keyedRecord(mem, 0, rows)
	defer rec.Release()
	src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema, MaxRowsPerBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Append(rec)
	ds := dataset.ReadStream(src).WithConfig(cfg).WithWatermark("ts", 5*time.Second).GroupByKey("key").
		FlatMapGroupsWithState("test.sessionEnd", groupsOut, dataset.EventTimeTimeout, dataset.StateFunc(sessionEnd))
	sink := newRecordingSink()
	fs := vfs.NewMem()
	q := runToEnd(t, groupsQuery(ds, sink, fs).Trigger(microbatch.AvailableNow()))
	got := sink.rows()
	sort.Strings(got)
	if want := []string{"a|end|6", "b|end|26"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// a ends once the watermark (max event time - 5 s) passes 15 s, i.e.
	// after a row past 20 s: well before the end of the input.
	sb := sink.sortedBatches()
	for id, rows := range sb {
		if slices.Contains(rows, "a|end|6") && id > 10 {
			t.Fatalf("a ended in batch %d of %d", id, len(sb))
		}
	}
	if lp := q.LastProgress(); lp.StateOperators[0].Rows != 1 {
		t.Fatalf("state keeps %d keys at the end, want only c's", lp.StateOperators[0].Rows)
	}
	// A row for a at the start, far behind the watermark, is late: dropped
	// and counted, and a's ended session stays ended.
	late := keyedRecord(mem, 1000, []keyedRow{{"a", t0}, {"c", t0.Add(101 * time.Second)}})
	defer late.Release()
	src.Append(late)
	q = runToEnd(t, groupsQuery(ds, sink, fs).Trigger(microbatch.AvailableNow()))
	var dropped int64
	for _, p := range q.RecentProgress() {
		dropped += p.StateOperators[0].DroppedLate
	}
	if lp := q.LastProgress(); dropped != 1 || lp.StateOperators[0].Rows != 1 || len(sink.rows()) != 2 {
		t.Fatalf("after a late row: %d dropped, state %+v, %d output rows; want one late row dropped, c alone in state, no new output", dropped, lp.StateOperators, len(sink.rows()))
	}
}

// setClock is a query clock the test sets; After fires at once.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *setClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *setClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// idleTimeout counts a key's rows and times it out a minute of processing
// time after its last rows, emitting how many it had and forgetting the
// key, except keys named "keep*": they keep their state (and, as every
// call clears the timeout, time out no more until they have rows again).
func idleTimeout(key dataset.Key, rows arrow.Record, st *dataset.State[runningCount], out *array.RecordBuilder) error {
	s, _ := st.Get()
	if st.HasTimedOut() {
		emit(out, key[0].(string), "idle", s.N)
		if !strings.HasPrefix(key[0].(string), "keep") {
			st.Remove()
		}
		return nil
	}
	s.N += rows.NumRows()
	s.Last = st.BatchTime().UnixMilli()
	st.Update(s)
	st.SetTimeoutDuration(time.Minute)
	emit(out, key[0].(string), "count", s.N)
	return nil
}

// A processing-time timeout fires in the first batch whose recorded batch
// time is at least a minute after the key's last rows; a re-run of a batch
// whose sink commit failed uses the recorded time, not the clock's.
func TestFlatMapGroupsProcessingTimeTimeoutFollowsTheBatchTime(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ds := dataset.ReadStream(src).WithConfig(cfg).GroupByKey("key").
		FlatMapGroupsWithState("test.idleTimeout", groupsOut, dataset.ProcessingTimeTimeout, dataset.StateFunc(idleTimeout))
	sink := newRecordingSink()
	fs := vfs.NewMem()
	clock := &setClock{}
	id := int64(0)
	step := func(at time.Duration, keys ...string) error {
		var rows []keyedRow
		for _, k := range keys {
			rows = append(rows, keyedRow{k, t0})
		}
		rec := keyedRecord(mem, id, rows)
		id += int64(len(rows))
		src.Append(rec)
		rec.Release()
		clock.Set(t0.Add(at))
		q, err := groupsQuery(ds, sink, fs).Clock(clock).Trigger(microbatch.Once()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return q.AwaitTermination()
	}
	check := func(batch int64, want ...string) {
		t.Helper()
		sort.Strings(want)
		if got := sink.sortedBatches()[batch]; !slices.Equal(got, want) {
			t.Fatalf("batch %d: got %q, want %q", batch, got, want)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(step(0, "a", "a"))
	check(0, "a|count|2")
	must(step(30*time.Second, "b", "c"))
	check(1, "b|count|1", "c|count|1")
	must(step(60*time.Second, "c")) // a: due at 60 s
	check(2, "a|idle|2", "c|count|2")
	must(step(89*time.Second, "d", "keep")) // b: due at 90 s; c: at 120 s
	check(3, "d|count|1", "keep|count|1")
	// Batch 4 runs at 91 s (b times out) but its sink commit fails; the
	// re-run happens at 200 s, when c and d would be due too by the
	// clock, and must still time out only b.
	sink.failNext = errors.New("sink down")
	if err := step(91*time.Second, "e"); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("want the sink failure, got %v", err)
	}
	clock.Set(t0.Add(200 * time.Second))
	q, err := groupsQuery(ds, sink, fs).Clock(clock).Trigger(microbatch.Once()).Start(context.Background())
	must(err)
	must(q.AwaitTermination())
	check(4, "b|idle|1", "e|count|1")
	if q.RecentProgress()[0].Batch != 4 || !q.RecentProgress()[0].Timestamp.Equal(t0.Add(91*time.Second)) {
		t.Fatalf("re-run progress %+v, want batch 4 at 91 s", q.RecentProgress()[0])
	}
	// c is past its timeout (120 s) but has rows: it is called with them,
	// not as timed out; d and keep time out (149 s), e not yet (151 s).
	must(step(150*time.Second, "c"))
	check(5, "c|count|3", "d|idle|1", "keep|idle|1")
	// keep's timeout fired once and is gone; its state is not.
	must(step(215*time.Second, "x"))
	check(6, "c|idle|3", "e|idle|1", "x|count|1")
	must(step(230*time.Second, "keep"))
	check(7, "keep|count|2")
}

// sleepClock is a query clock whose time only moves when the query
// sleeps: After(d) moves it d ahead and fires at once.
type sleepClock struct{ setClock }

func (c *sleepClock) After(d time.Duration) <-chan time.Time {
	c.Set(c.Now().Add(d))
	return c.setClock.After(0)
}

// With a periodic trigger, processing-time timeouts fire in no-data
// batches: an idle stream still times its keys out, at the first trigger
// at or after the timeout.
func TestFlatMapGroupsProcessingTimeTimeoutFiresWithoutNewData(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rec := keyedRecord(mem, 0, []keyedRow{{"a", t0}, {"a", t0}, {"b", t0}})
	src.Append(rec)
	rec.Release()
	ds := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2}).GroupByKey("key").
		FlatMapGroupsWithState("test.idleTimeout", groupsOut, dataset.ProcessingTimeTimeout, dataset.StateFunc(idleTimeout))
	sink := newRecordingSink()
	clock := &sleepClock{}
	clock.Set(t0)
	q, err := groupsQuery(ds, sink, vfs.NewMem()).Clock(clock).Trigger(microbatch.ProcessingTime(25 * time.Second)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.rows()) < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	// Batches at 0, 25, 50 and 75 s: the keys are due at 60 s.
	b := sink.sortedBatches()
	if want := []string{"a|count|2", "b|count|1"}; !slices.Equal(b[0], want) {
		t.Fatalf("batch 0: %q, want %q", b[0], want)
	}
	if len(b[1]) != 0 || len(b[2]) != 0 {
		t.Fatalf("batches 1 and 2 (25 s, 50 s) emitted %q and %q, want nothing", b[1], b[2])
	}
	if want := []string{"a|idle|2", "b|idle|1"}; !slices.Equal(b[3], want) {
		t.Fatalf("batch 3 (75 s): %q, want %q", b[3], want)
	}
}

// batchClock gives batch N the time t0 + N×20 s whatever happened before,
// by counting the checkpoint's offsets files: a run that crashed and
// restarted sees the same batch times as one that did not.
type batchClock struct{ fs *vfs.Mem }

func (c batchClock) Now() time.Time {
	names, _ := c.fs.List("/ckpt/offsets")
	return t0.Add(time.Duration(len(names)) * 20 * time.Second)
}
func (c batchClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// A query with processing-time timeouts fails at every durable step in
// turn, "crashes" (unsynced writes lost) and restarts: batches re-run with
// their recorded times emit the same rows (the recording sink refuses a
// re-commit with other rows), and the final output equals a run that never
// failed.
func TestFlatMapGroupsSurvivesACrashAtEveryDurableStep(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	r := rand.New(rand.NewPCG(11, 11))
	var rows []keyedRow
	for i := 0; i < 120; i++ {
		// Keys drift: each is busy for a few batches, then goes idle.
		rows = append(rows, keyedRow{fmt.Sprintf("k%d", i/15+r.IntN(2)), t0})
	}
	rec := keyedRecord(mem, 0, rows)
	defer rec.Release()
	run := func(fs *vfs.Mem, src *srcmem.Source, sink *recordingSink) error {
		ds := dataset.ReadStream(src).WithConfig(cfg).GroupByKey("key").
			FlatMapGroupsWithState("test.idleTimeout", groupsOut, dataset.ProcessingTimeTimeout, dataset.StateFunc(idleTimeout))
		q, err := groupsQuery(ds, sink, fs).Clock(batchClock{fs}).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			return err
		}
		return q.AwaitTermination()
	}
	source := func() *srcmem.Source {
		src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema, MaxRowsPerBatch: 7})
		if err != nil {
			t.Fatal(err)
		}
		src.Append(rec)
		return src
	}
	probe := vfs.NewMem()
	ref := newRecordingSink()
	src := source()
	if err := run(probe, src, ref); err != nil {
		t.Fatal(err)
	}
	src.Close()
	want := ref.sortedBatches()
	idle := 0
	for _, rows := range want {
		for _, r := range rows {
			if strings.Contains(r, "|idle|") {
				idle++
			}
		}
	}
	if idle < 5 {
		t.Fatalf("only %d timeouts fired in the reference run; the test needs keys going idle", idle)
	}
	steps := probe.Mutations()
	t.Logf("%d durable steps, %d batches, %d timeouts", steps, len(want), idle)
	for k := 0; k < steps; k++ {
		fs := vfs.NewMem()
		src := source()
		sink := newRecordingSink()
		fs.FailAfter(k, errors.New("injected disk failure"))
		if err := run(fs, src, sink); err == nil || !strings.Contains(err.Error(), "injected disk failure") {
			t.Fatalf("step %d: want the injected failure, got %v", k, err)
		}
		fs.Crash()
		fs.FailAfter(-1, nil)
		if err := run(fs, src, sink); err != nil {
			t.Fatalf("step %d: restart: %v", k, err)
		}
		src.Close()
		got := sink.sortedBatches()
		for b, rows := range want {
			if !slices.Equal(got[b], rows) {
				t.Fatalf("failure at step %d: batch %d:\n got %q\nwant %q", k, b, got[b], rows)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("failure at step %d: %d batches, want %d", k, len(got), len(want))
		}
	}
}

// A query that cannot run is refused at Start, saying why.
func TestFlatMapGroupsRefusesUnsupportedQueriesAtStart(t *testing.T) {
	src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ds := dataset.ReadStream(src)
	for name, c := range map[string]struct {
		w    *microbatch.StreamWriter
		want string
	}{
		"event-time timeout without a watermark": {
			groupsQuery(ds.GroupByKey("key").FlatMapGroupsWithState("test.sessionEnd", groupsOut, dataset.EventTimeTimeout, dataset.StateFunc(sessionEnd)), newRecordingSink(), vfs.NewMem()),
			"EventTimeTimeout, which needs a watermark"},
		"complete mode": {
			groupsQuery(ds.GroupByKey("key").FlatMapGroupsWithState("test.countRows", groupsOut, dataset.NoTimeout, dataset.StateFunc(countRows)), newRecordingSink(), vfs.NewMem()).OutputMode(sinks.Complete),
			"complete output mode"},
	} {
		_, err := c.w.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, c.want)
		}
	}
}

// endAfterASecond counts a key's rows and, with an event-time timeout a
// second after its last row, emits its count when the watermark passes.
func endAfterASecond(key dataset.Key, rows arrow.Record, st *dataset.State[runningCount], out *array.RecordBuilder) error {
	s, _ := st.Get()
	if st.HasTimedOut() {
		emit(out, key[0].(string), "end", s.N)
		st.Remove()
		return nil
	}
	ts := rows.Column(2).(*array.Timestamp)
	s.Last = max(s.Last, int64(ts.Value(ts.Len()-1)))
	s.N += rows.NumRows()
	st.Update(s)
	st.SetTimeoutTimestamp(time.UnixMilli(s.Last).Add(time.Second))
	return nil
}

// countOnly counts a key's rows forever (no timeout, no output).
func countOnly(key dataset.Key, rows arrow.Record, st *dataset.State[runningCount], out *array.RecordBuilder) error {
	s, _ := st.Get()
	s.N += rows.NumRows()
	st.Update(s)
	return nil
}

// Three million rows over 30 000 keys, each busy for 100 ms of event time:
// with an event-time timeout under a moving watermark the state stays at
// about one batch's keys however long the stream runs, and every key ends
// with all its rows; without timeouts it grows with every batch.
func TestFlatMapGroupsStateStaysFlatUnderAMovingWatermark(t *testing.T) {
	const (
		total    = 3_000_000
		perKey   = 100
		perBatch = 100_000
		keys     = total / perKey
	)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 2}
	var recs []arrow.Record
	for from := 0; from < total; from += perBatch {
		b := array.NewRecordBuilder(mem, keyedSchema)
		ids, ks, ts := b.Field(0).(*array.Int64Builder), b.Field(1).(*array.StringBuilder), b.Field(2).(*array.TimestampBuilder)
		for i := from; i < from+perBatch; i++ {
			ids.Append(int64(i))
			ks.Append(fmt.Sprintf("k%05d", i/perKey))
			ts.Append(arrow.Timestamp(t0.UnixMilli() + int64(i)))
		}
		recs = append(recs, b.NewRecord())
		b.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	run := func(name string, timeout dataset.Timeout, fn dataset.GroupFunc) ([]int64, *recordingSink) {
		began := time.Now()
		src, err := srcmem.New(srcmem.Config{Name: "keyed", Schema: keyedSchema, MaxRowsPerBatch: perBatch})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		src.Append(recs...)
		ds := dataset.ReadStream(src).WithConfig(cfg).WithWatermark("ts", 500*time.Millisecond).GroupByKey("key").
			FlatMapGroupsWithState(name, groupsOut, timeout, fn)
		sink := newRecordingSink()
		var stateRows []int64
		q := runToEnd(t, groupsQuery(ds, sink, vfs.NewMem()).Trigger(microbatch.AvailableNow()).OnProgress(func(p microbatch.Progress) {
			stateRows = append(stateRows, p.StateOperators[0].Rows)
		}))
		var in int64
		for _, p := range q.RecentProgress() {
			in += p.InputRows
		}
		if in != total {
			t.Fatalf("%s: read %d rows, want %d", name, in, total)
		}
		t.Logf("%s: %d rows in %v; state rows per batch %v", name, total, time.Since(began).Round(time.Millisecond), stateRows)
		return stateRows, sink
	}

	flat, sink := run("test.endAfterASecond", dataset.EventTimeTimeout, dataset.StateFunc(endAfterASecond))
	// One batch brings 1000 new keys; a few of the batch before are not
	// timed out yet.
	for i, n := range flat {
		if n > 2*perBatch/perKey {
			t.Fatalf("batch %d keeps %d state rows; with timeouts it should keep about one batch's %d keys: %v", i, n, perBatch/perKey, flat)
		}
	}
	ended := 0
	for _, r := range sink.rows() {
		if !strings.HasSuffix(r, fmt.Sprintf("|end|%d", perKey)) {
			t.Fatalf("key ended with %q, want all its %d rows", r, perKey)
		}
		ended++
	}
	if left := flat[len(flat)-1]; int64(ended)+left != keys {
		t.Fatalf("%d keys ended and %d are left in state, want %d in all", ended, left, keys)
	}

	grows, _ := run("test.countOnly", dataset.NoTimeout, dataset.StateFunc(countOnly))
	for i := 1; i < total/perBatch; i++ { // the last batch has no data: the watermark's
		if grows[i] <= grows[i-1] {
			t.Fatalf("without timeouts the state should grow every batch: %v", grows)
		}
	}
	if last := grows[len(grows)-1]; last != keys {
		t.Fatalf("without timeouts the state keeps %d keys at the end, want all %d", last, keys)
	}
}
