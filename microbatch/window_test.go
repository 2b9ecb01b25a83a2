package microbatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
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

var eventSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: "user", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: arrow.PrimitiveTypes.Int64},
}, nil)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// events makes n events one second apart with up to 3 s of disorder,
// split into records of random sizes.
func events(mem memory.Allocator, seed uint64, from, n int, shift time.Duration) []arrow.Record {
	r := rand.New(rand.NewPCG(seed, 4))
	var out []arrow.Record
	for i := from; i < from+n; {
		b := array.NewRecordBuilder(mem, eventSchema)
		for k := 0; k < 1+r.IntN(20) && i < from+n; k, i = k+1, i+1 {
			ts := t0.Add(time.Duration(i)*time.Second - time.Duration(r.IntN(3000))*time.Millisecond + shift)
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMilli()))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("u%d", r.IntN(3)))
			b.Field(2).(*array.Int64Builder).Append(int64(r.IntN(100)))
		}
		out = append(out, b.NewRecord())
		b.Release()
	}
	return out
}

func windowJob(ds *dataset.Dataset, slide time.Duration) *dataset.Dataset {
	return ds.WithWatermark("ts", 5*time.Second).
		GroupBy(dataset.SlidingWindow("ts", 10*time.Second, slide), "user").
		Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("amount")).As("total"))
}

func collectRows(t *testing.T, ds *dataset.Dataset) []string {
	t.Helper()
	out, err := ds.CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range out {
		rows = append(rows, render(r)...)
		r.Release()
	}
	sort.Strings(rows)
	return rows
}

func maxEventTime(recs []arrow.Record) time.Time {
	var m int64
	for _, r := range recs {
		for _, v := range r.Column(0).(*array.Timestamp).TimestampValues() {
			m = max(m, int64(v))
		}
	}
	return time.UnixMilli(m).UTC()
}

// In append mode each window is emitted exactly once, when the watermark
// (max event time - 5 s) passes its end, with the same values the batch
// job computes over all the data.
func TestWindowsInAppendModeAreEmittedOnceWhenTheWatermarkPassesThem(t *testing.T) {
	for _, slide := range []time.Duration{10 * time.Second, 5 * time.Second} {
		t.Run(fmt.Sprintf("slide %v", slide), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			recs := events(mem, 5, 0, 300, 0)
			defer func() {
				for _, r := range recs {
					r.Release()
				}
			}()
			cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
			wm := maxEventTime(recs).Add(-5 * time.Second)
			var want []string
			for _, row := range collectRows(t, windowJob(dataset.FromRecords(eventSchema, recs...).WithConfig(cfg), slide)) {
				end, _ := time.Parse("2006-01-02 15:04:05", strings.Split(row, "|")[1])
				if !end.After(wm) {
					want = append(want, row)
				}
			}
			src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 25})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			src.Append(recs...)
			sink := newRecordingSink()
			q, err := microbatch.WriteStream(windowJob(dataset.ReadStream(src).WithConfig(cfg), slide), sink).
				Checkpoint("/ckpt").FS(vfs.NewMem()).OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			got := sink.rows()
			sort.Strings(got)
			if len(want) < 20 {
				t.Fatalf("only %d closed windows: the test needs more data", len(want))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("append output (%d rows) differs from the batch job's closed windows (%d rows)\ngot  %q\nwant %q", len(got), len(want), got[:min(5, len(got))], want[:min(5, len(want))])
			}
			lp := q.LastProgress()
			t.Logf("%d windows emitted over %d batches; last watermark %v; state %d groups", len(got), len(q.RecentProgress()), lp.Watermark, lp.StateOperators[0].Rows)
			if lp.Watermark.IsZero() || lp.InputRows != 0 {
				t.Fatalf("the last batch should be a no-data batch run for the watermark: %+v", lp)
			}
			if lp.StateOperators[0].Rows > 12 {
				t.Fatalf("state holds %d groups after closing windows; want only the open ones", lp.StateOperators[0].Rows)
			}
		})
	}
}

func TestLateRowsAreDroppedAndCounted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2}
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recs := events(mem, 8, 0, 100, 0)
	late := events(mem, 9, 0, 30, 0) // all long behind the watermark
	defer func() {
		for _, r := range append(recs, late...) {
			r.Release()
		}
	}()
	src.Append(recs...)
	sink, lateSink := newRecordingSink(), newRecordingSink()
	fs := vfs.NewMem()
	run := func() *microbatch.Query {
		q, err := microbatch.WriteStream(windowJob(dataset.ReadStream(src).WithConfig(cfg), 10*time.Second), sink).LateRows(lateSink).
			Checkpoint("/ckpt").FS(fs).OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		return q
	}
	run()
	before := sink.rows()
	src.Append(late...)
	q := run()
	var dropped int64
	for _, p := range q.RecentProgress() {
		for _, s := range p.StateOperators {
			dropped += s.DroppedLate
		}
	}
	var lateRows int64
	for _, r := range late {
		lateRows += r.NumRows()
	}
	t.Logf("%d late rows dropped", dropped)
	if dropped != lateRows {
		t.Fatalf("dropped %d late rows, want %d", dropped, lateRows)
	}
	if after := sink.rows(); !slices.Equal(after, before) {
		t.Fatalf("late rows changed the output: %d rows before, %d after", len(before), len(after))
	}
	// The side output got exactly the late rows, with their windows.
	var want []string
	for _, r := range late {
		want = append(want, render(r)...)
	}
	var got []string
	for _, r := range lateSink.rows() {
		f := strings.Split(r, "|")
		got = append(got, strings.Join(f[:3], "|"))
		if len(f) != 5 {
			t.Fatalf("late row %q: want the input columns and the window start and end", r)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("late rows sink got %d rows, want the %d late rows", len(got), len(want))
	}
}

// Two inputs with their own watermarks: the query's watermark follows the
// slower one by default and the faster one under MaxWatermark, and each
// input's watermark survives a restart through the commits log.
func TestSeveralWatermarksCombineByPolicy(t *testing.T) {
	for _, policy := range []microbatch.WatermarkPolicy{microbatch.MinWatermark, microbatch.MaxWatermark} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		cfg := dataset.Config{Allocator: mem, Parallelism: 2}
		fast, _ := srcmem.New(srcmem.Config{Name: "fast", Schema: eventSchema})
		slow, _ := srcmem.New(srcmem.Config{Name: "slow", Schema: eventSchema})
		a := eventsAt(mem, 100, "a", 1)
		b := eventsAt(mem, 40, "b", 1)
		fast.Append(a)
		slow.Append(b)
		job := dataset.ReadStream(fast).WithConfig(cfg).WithWatermark("ts", 5*time.Second).
			Union(dataset.ReadStream(slow).WithConfig(cfg).WithWatermark("ts", 5*time.Second)).
			GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.CountAll().As("n"))
		fs := vfs.NewMem()
		var last *microbatch.Progress
		for run := 0; run < 2; run++ { // the second run restarts from the checkpoint
			q, err := microbatch.WriteStream(job, newRecordingSink()).Checkpoint("/ckpt").FS(fs).WatermarkPolicy(policy).
				OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			if p := q.LastProgress(); p != nil {
				last = p
			}
		}
		want := t0.Add(35 * time.Second) // slow input: 40 s - 5 s
		if policy == microbatch.MaxWatermark {
			want = t0.Add(95 * time.Second)
		}
		if last == nil || !last.Watermark.Equal(want) {
			t.Fatalf("policy %d: watermark %v, want %v", policy, last, want)
		}
		a.Release()
		b.Release()
		fast.Close()
		slow.Close()
		mem.AssertSize(t, 0)
	}
}
