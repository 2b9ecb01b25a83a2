package microbatch_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// Every record appended twice, in pieces: the stream emits each distinct
// (user, amount) once, whatever the batch cuts and restarts, and the batch
// job's DropDuplicates gives the same set.
func TestDropDuplicatesEmitsEachKeyOnceAcrossBatchesAndRestarts(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	recs := events(mem, 12, 0, 200, 0)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	twice := append(append([]arrow.Record{}, recs...), recs...)
	job := func(ds *dataset.Dataset) *dataset.Dataset { return ds.Select("user", "amount").DropDuplicates() }
	want := collectRows(t, job(dataset.FromRecords(eventSchema, twice...).WithConfig(cfg)))
	if len(want) < 50 {
		t.Fatalf("only %d distinct rows", len(want))
	}
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 37})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Append(twice...)
	sink := newRecordingSink()
	fs := vfs.NewMem()
	for i := 0; i < 100; i++ {
		q, err := microbatch.WriteStream(job(dataset.ReadStream(src).WithConfig(cfg)), sink).
			Checkpoint("/ckpt").FS(fs).Trigger(microbatch.Once()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		if q.LastProgress() == nil {
			break
		}
	}
	got := sink.rows()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("stream emitted %d rows, want %d distinct", len(got), len(want))
	}
}

// With the event-time column among the keys and a watermark, keys behind the
// watermark leave state and rows that late are dropped and counted.
func TestDropDuplicatesWithAWatermarkForgetsOldKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2}
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recs := events(mem, 13, 0, 300, 0)
	late := events(mem, 13, 0, 40, 0) // the same early events again, long behind the watermark
	defer func() {
		for _, r := range append(recs, late...) {
			r.Release()
		}
	}()
	src.Append(recs...)
	job := dataset.ReadStream(src).WithConfig(cfg).WithWatermark("ts", 5*time.Second).DropDuplicates("ts", "user")
	sink := newRecordingSink()
	fs := vfs.NewMem()
	run := func() *microbatch.Query {
		q, err := microbatch.WriteStream(job, sink).Checkpoint("/ckpt").FS(fs).OutputMode(sinks.Append).
			Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := run()
	before := len(sink.rows())
	lp := q.LastProgress()
	if n := lp.StateOperators[0].Rows; n > 20 {
		t.Fatalf("state keeps %d keys; with a 5 s watermark on one event a second it should keep a few", n)
	}
	src.Append(late...)
	q = run()
	var dropped int64
	for _, p := range q.RecentProgress() {
		for _, s := range p.StateOperators {
			dropped += s.DroppedLate
		}
	}
	if dropped != 40 || len(sink.rows()) != before {
		t.Fatalf("dropped %d late rows (want 40); output grew from %d to %d rows", dropped, before, len(sink.rows()))
	}
	for _, r := range sink.rows() {
		if strings.Count(r, "|") != 2 {
			t.Fatalf("row %q does not have the input's three columns", r)
		}
	}
}
