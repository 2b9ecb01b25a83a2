package microbatch_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	memsink "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sources"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// memFiles is every file of a vfs.Mem with its content.
func memFiles(t *testing.T, fs *vfs.Mem) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range fs.Files() {
		b, err := fs.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = string(b)
	}
	return out
}

// replayFixture is a finished query: its writer (to build replays from),
// its checkpoint filesystem and its memory sink.
type replayFixture struct {
	writer func(sink sinks.Sink) *microbatch.StreamWriter
	fs     *vfs.Mem
	sink   *memsink.Sink
	last   int64 // the last committed batch
}

// runForReplay runs job into a memory sink until its input is consumed;
// the caller closes f.sink (before checking its allocator).
func runForReplay(t *testing.T, mem memory.Allocator, job *dataset.Dataset, retain int) *replayFixture {
	t.Helper()
	f := &replayFixture{fs: vfs.NewMem()}
	f.writer = func(sink sinks.Sink) *microbatch.StreamWriter {
		return microbatch.WriteStream(job, sink).Checkpoint("/ckpt").FS(f.fs).OutputMode(sinks.Append).Retain(retain)
	}
	var err error
	if f.sink, err = memsink.New(memsink.Config{Name: "out", Mem: mem}); err != nil {
		t.Fatal(err)
	}
	q, err := f.writer(f.sink).Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	f.last = q.LastProgress().Batch
	return f
}

// replayAll replays every committed batch, checks each is identical and
// that the checkpoint did not change, and returns the rows replayed.
func (f *replayFixture) replayAll(t *testing.T, from int64) int64 {
	t.Helper()
	before := memFiles(t, f.fs)
	var rows int64
	for n := from; n <= f.last; n++ {
		r, err := microbatch.Replay(context.Background(), f.writer(f.sink), n)
		if err != nil {
			t.Fatalf("replay batch %d: %v", n, err)
		}
		if !r.Identical || r.Batch != n || r.StateVersion != n || r.ReplayedRows != r.CommittedRows || r.StateFilesCompared == 0 {
			t.Fatalf("replay batch %d: %+v", n, r)
		}
		rows += r.ReplayedRows
	}
	if after := memFiles(t, f.fs); !maps.Equal(before, after) {
		t.Fatalf("replays changed the checkpoint: %d files before, %d after", len(before), len(after))
	}
	return rows
}

func (f *replayFixture) sinkRows(t *testing.T) int64 {
	recs := f.sink.Rows()
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	return n
}

// Every batch of a windowed aggregation in append mode (batch 0 from the
// empty state, later ones from what the batch before committed, closing
// windows by their recorded watermark) replays to the rows it committed.
func TestReplayOfAWindowedAggregationIsIdentical(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := events(mem, 7, 0, 300, 0)
	defer releaseRecords(recs)
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Append(recs...)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	f := runForReplay(t, mem, windowJob(dataset.ReadStream(keepInput{src}).WithConfig(cfg), 5*time.Second), 100)
	defer f.sink.Close()
	if f.last < 5 {
		t.Fatalf("only %d batches", f.last+1)
	}
	rows := f.replayAll(t, 0)
	if want := f.sinkRows(t); rows != want || rows == 0 {
		t.Fatalf("replays gave %d rows, the sink holds %d", rows, want)
	}
	// Replay takes no lock: it runs beside the checkpoint's owner.
	q, err := f.writer(f.sink).Trigger(microbatch.ProcessingTime(10 * time.Millisecond)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	if _, err := f.writer(f.sink).Start(context.Background()); !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("a second owner: %v, want the lock held", err)
	}
	if r, err := microbatch.Replay(context.Background(), f.writer(f.sink), 1); err != nil || !r.Identical {
		t.Fatalf("replay beside the owner: %v, %+v", err, r)
	}
}

// A stream-stream join keeps both sides' rows in state; replaying each
// batch from the state the batch before committed gives its rows again.
func TestReplayOfAStreamStreamJoinIsIdentical(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	orders, payments := ordersAndPayments(mem, 3, 400)
	defer releaseRecords(append(orders, payments...))
	os, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema, MaxRowsPerBatch: 97})
	defer os.Close()
	ps, _ := srcmem.New(srcmem.Config{Name: "payments", Schema: paymentSchema, MaxRowsPerBatch: 131})
	defer ps.Close()
	os.Append(orders...)
	ps.Append(payments...)
	o := dataset.ReadStream(keepInput{os}).WithConfig(cfg).WithWatermark("ordered_at", 10*time.Second)
	p := dataset.ReadStream(keepInput{ps}).WithConfig(cfg).WithWatermark("paid_at", 10*time.Second)
	f := runForReplay(t, mem, o.JoinWhere(p, []string{"order_id"}, dataset.Left, withinFifteenMinutes()), 100)
	defer f.sink.Close()
	rows := f.replayAll(t, 0)
	if want := f.sinkRows(t); rows != want || rows < 300 {
		t.Fatalf("replays gave %d rows, the sink holds %d", rows, want)
	}
}

// keepInput is a memory source whose committed rows stay readable (it
// hides sources.Committer, so the query cannot drop them), as a durable
// source's do: replays read the batches' input again.
type keepInput struct{ sources.Stream }

func releaseRecords(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

func TestReplayRefusals(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := events(mem, 9, 0, 200, 0)
	defer releaseRecords(recs)
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Append(recs...)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	job := windowJob(dataset.ReadStream(keepInput{src}).WithConfig(cfg), 10*time.Second)
	f := runForReplay(t, mem, job, 4)
	defer f.sink.Close()
	first := f.last - 3
	ctx := context.Background()
	refused := func(t *testing.T, w *microbatch.StreamWriter, batch int64, target error, want ...string) {
		t.Helper()
		before := memFiles(t, f.fs)
		r, err := microbatch.Replay(ctx, w, batch)
		if !errors.Is(err, target) {
			t.Fatalf("replay batch %d: %v (report %+v), want %v", batch, err, r, target)
		}
		for _, s := range want {
			if !strings.Contains(err.Error(), s) {
				t.Fatalf("replay batch %d: %v\nwant it to say %q", batch, err, s)
			}
		}
		if !maps.Equal(before, memFiles(t, f.fs)) {
			t.Fatal("a refused replay changed the checkpoint")
		}
	}
	t.Run("the retained batches replay", func(t *testing.T) {
		f.replayAll(t, first)
	})
	t.Run("a batch not committed yet", func(t *testing.T) {
		refused(t, f.writer(f.sink), f.last+1, microbatch.ErrNotReplayable,
			"batch "+itoa(f.last+1)+" is not committed (the last committed batch is "+itoa(f.last)+")")
	})
	t.Run("a batch whose offsets were purged", func(t *testing.T) {
		refused(t, f.writer(f.sink), 0, microbatch.ErrNotReplayable,
			"batch 0's offsets and commit were purged (/ckpt keeps committed batches "+itoa(first)+".."+itoa(f.last))
	})
	t.Run("a sink that cannot read back", func(t *testing.T) {
		refused(t, f.writer(newRecordingSink()), f.last, microbatch.ErrNotReplayable,
			"sink recording cannot read back its committed batches")
	})
	t.Run("another query", func(t *testing.T) {
		other := dataset.ReadStream(keepInput{src}).WithConfig(cfg).WithWatermark("ts", 5*time.Second).
			GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.CountAll().As("n"))
		w := microbatch.WriteStream(other, f.sink).Checkpoint("/ckpt").FS(f.fs).OutputMode(sinks.Append)
		refused(t, w, f.last, microbatch.ErrIncompatibleCheckpoint, "/ckpt/metadata.json", "operator agg-0: value schema was")
	})
	t.Run("a batch whose state was purged", func(t *testing.T) {
		files, err := f.fs.List("/ckpt/state/agg-0")
		if err != nil || len(files) == 0 {
			t.Fatalf("state ranges %v, %v", files, err)
		}
		delta := "/ckpt/state/agg-0/" + files[0] + "/" + itoa(f.last) + ".delta.arrow"
		saved, err := f.fs.ReadFile(delta)
		if err != nil {
			t.Fatal(err)
		}
		f.fs.Remove(delta)
		defer f.fs.WriteFileAtomic(delta, saved)
		refused(t, f.writer(f.sink), f.last, microbatch.ErrNotReplayable,
			"batch "+itoa(f.last)+" reads state version "+itoa(f.last)+", which /ckpt/state/agg-0/"+files[0]+" no longer has",
			"needs the delta of version "+itoa(f.last))
	})
	t.Run("a state file the batch committed that differs", func(t *testing.T) {
		ranges, _ := f.fs.List("/ckpt/state/agg-0")
		committed := "/ckpt/state/agg-0/" + ranges[0] + "/" + itoa(f.last+1) + ".delta.arrow"
		saved, err := f.fs.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		older, _ := f.fs.ReadFile("/ckpt/state/agg-0/" + ranges[0] + "/" + itoa(f.last) + ".delta.arrow")
		f.fs.WriteFileAtomic(committed, older)
		defer f.fs.WriteFileAtomic(committed, saved)
		r, err := microbatch.Replay(ctx, f.writer(f.sink), f.last)
		if !errors.Is(err, microbatch.ErrReplayDiffers) || r == nil || r.Identical || len(r.StateFilesDiffer) != 1 ||
			r.StateFilesDiffer[0] != committed || r.OnlyInReplay+r.OnlyInSink != 0 {
			t.Fatalf("replay: %v, report %+v", err, r)
		}
		var text bytes.Buffer
		r.WriteText(&text)
		if !strings.Contains(text.String(), "state DIFFERENT: 1 of ") || !strings.Contains(text.String(), "rows identical: ") {
			t.Fatalf("text:\n%s", text.String())
		}
	})
	t.Run("a sink holding other rows", func(t *testing.T) {
		// The real sink's batch with one row fewer.
		var batch int64 = -1
		var recs []arrow.Record
		for n := first; n <= f.last && batch < 0; n++ {
			rs, err := f.sink.ReadBatch(ctx, sinks.Batch{ID: n}, mem)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) > 0 {
				batch, recs = n, rs
			} else {
				releaseRecords(rs)
			}
		}
		if batch < 0 {
			t.Fatal("no retained batch wrote rows")
		}
		defer releaseRecords(recs)
		other, _ := memsink.New(memsink.Config{Name: "other", Mem: mem})
		defer other.Close()
		w, err := other.NewWriter(ctx, sinks.Batch{ID: batch, Mode: sinks.Append, Schema: job.Schema()}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if i == len(recs)-1 {
				r = r.NewSlice(0, r.NumRows()-1)
				defer r.Release()
			}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		msg, _ := w.Prepare()
		if err := other.Commit(ctx, sinks.Batch{ID: batch, Mode: sinks.Append, Schema: job.Schema()}, []sinks.CommitMessage{msg}); err != nil {
			t.Fatal(err)
		}
		r, err := microbatch.Replay(ctx, f.writer(other), batch)
		if !errors.Is(err, microbatch.ErrReplayDiffers) || r == nil || r.Identical || r.OnlyInReplay != 1 || r.OnlyInSink != 0 ||
			r.ReplayedRows != r.CommittedRows+1 || !strings.Contains(r.FirstDifference, "is once in the replay and absent in the sink") {
			t.Fatalf("replay: %v, report %+v", err, r)
		}
		var text bytes.Buffer
		r.WriteText(&text)
		if !strings.Contains(text.String(), "DIFFERENT: ") || !strings.Contains(text.String(), "first difference: row {window_start=") {
			t.Fatalf("text:\n%s", text.String())
		}
	})
	t.Run("a source that dropped the input", func(t *testing.T) {
		cp, err := checkpoint.Open(f.fs, "/ckpt")
		if err != nil {
			t.Fatal(err)
		}
		// The last batch that read rows (later ones only moved the watermark).
		for n := f.last; n >= first; n-- {
			e, err := cp.Offsets(n)
			if err != nil {
				t.Fatal(err)
			}
			if o := e.Sources["events"]; !bytes.Equal(o.Start, o.End) {
				src.Commit(ctx, o.End)
				refused(t, f.writer(f.sink), n, microbatch.ErrNotReplayable, "batch "+itoa(n)+": source events no longer holds its input")
				return
			}
		}
		t.Fatal("no retained batch read rows")
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
