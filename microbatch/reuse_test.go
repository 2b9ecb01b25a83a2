package microbatch_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// hotUsers is q5's shape over the events: per 10 s window the users with
// the most events. The counts are used twice (their max, and the join
// back): one operator, whose output both read.
func hotUsers(ds *dataset.Dataset) *dataset.Dataset {
	counts := ds.WithWatermark("ts", 5*time.Second).
		GroupBy(dataset.Window("ts", 10*time.Second), "user").
		Agg(dataset.CountAll().As("n"))
	maxes := counts.GroupBy(dataset.WindowStart, dataset.WindowEnd).Agg(dataset.Max(dataset.Col("n")).As("maxn"))
	return counts.JoinWhere(maxes, []string{dataset.WindowStart, dataset.WindowEnd}, dataset.Inner, dataset.Col("n").Ge(dataset.Col("maxn"))).
		Select(dataset.WindowStart, dataset.WindowEnd, "user", "n")
}

// An aggregate used twice in a stream answers as the batch job does over
// the windows the watermark closed, counts the input once, counts each late
// row once, and hands each late row to the late-rows sink once.
func TestAnAggregateUsedTwiceAnswersAsTheBatchJobAndDropsLateRowsOnce(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	recs := events(mem, 11, 0, 200, 0)
	late := events(mem, 12, 0, 40, 0) // all long behind the watermark
	defer func() {
		for _, r := range append(recs, late...) {
			r.Release()
		}
	}()
	wm := maxEventTime(recs).Add(-5 * time.Second)
	var want []string
	for _, row := range collectRows(t, hotUsers(dataset.FromRecords(eventSchema, recs...).WithConfig(cfg))) {
		end, _ := time.Parse("2006-01-02 15:04:05", strings.Split(row, "|")[1])
		if !end.After(wm) {
			want = append(want, row)
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d rows of closed windows: the test needs more data", len(want))
	}
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Append(recs...)
	sink, lateSink := newRecordingSink(), newRecordingSink()
	fs := vfs.NewMem()
	run := func() *microbatch.Query {
		q, err := microbatch.WriteStream(hotUsers(dataset.ReadStream(src).WithConfig(cfg)), sink).LateRows(lateSink).
			Checkpoint("/ckpt").FS(fs).OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := run()
	got := sink.rows()
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stream rows (%d) differ from the batch job's closed windows (%d)\ngot  %q\nwant %q", len(got), len(want), got, want)
	}
	var in int64
	for _, p := range q.RecentProgress() {
		in += p.InputRows
	}
	var total int64
	for _, r := range recs {
		total += r.NumRows()
	}
	if in != total {
		t.Fatalf("the query counted %d input rows, want %d (once)", in, total)
	}

	src.Append(late...)
	q = run()
	var lateRows int64
	for _, r := range late {
		lateRows += r.NumRows()
	}
	dropped := map[string]int64{}
	for _, p := range q.RecentProgress() {
		for _, s := range p.StateOperators {
			dropped[s.Operator] += s.DroppedLate
		}
	}
	if _, ok := dropped["agg-1"]; ok || dropped["agg-0"] != lateRows {
		t.Errorf("late rows dropped by operator: %v, want %d by agg-0 (the counts, one operator) and no agg-1", dropped, lateRows)
	}
	if n := len(lateSink.rows()); int64(n) != lateRows {
		t.Errorf("the late-rows sink got %d rows, want each of the %d late rows once", n, lateRows)
	}
}
