package microbatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// aggJob is the aggregation under test, shared by the batch and the stream.
func aggJob(ds *dataset.Dataset) *dataset.Dataset {
	return ds.GroupBy("region").Agg(
		dataset.CountAll().As("n"),
		dataset.Sum(dataset.Col("amount")).As("total"),
		dataset.Min(dataset.Col("id")).As("first_id"),
		dataset.Max(dataset.Col("amount")).As("max_amount"),
		dataset.Avg(dataset.Col("amount")).As("avg_amount"),
	)
}

func (f *fixture) aggBatch(t *testing.T) []string {
	t.Helper()
	out, err := aggJob(dataset.FromRecords(schema, f.recs...).WithConfig(dataset.Config{Allocator: f.mem})).CollectRecords(context.Background())
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

func (f *fixture) aggQuery(src *srcmem.Source, sink sinks.Sink, fs vfs.FS, mode sinks.Mode) *microbatch.StreamWriter {
	ds := aggJob(dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: f.mem, Parallelism: 2, ShufflePartitions: 3}))
	return microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(fs).OutputMode(mode)
}

// latestPerKey folds update-mode output (batch order) into the last row per
// region, which is the result table.
func latestPerKey(rows []string) []string {
	last := map[string]string{}
	for _, r := range rows {
		last[strings.SplitN(r, "|", 2)[0]] = r
	}
	var out []string
	for _, r := range last {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func TestAStreamingAggregationEqualsTheBatchAggregation(t *testing.T) {
	f := newFixture(t, 21, 25)
	want := f.aggBatch(t)
	for _, mode := range []sinks.Mode{sinks.Update, sinks.Complete} {
		for _, maxRows := range []int64{1, 33} {
			t.Run(fmt.Sprintf("%s mode, %d rows per batch", mode, maxRows), func(t *testing.T) {
				sink := newRecordingSink()
				q, err := f.aggQuery(f.source(t, maxRows), sink, vfs.NewMem(), mode).Trigger(microbatch.AvailableNow()).Start(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := q.AwaitTermination(); err != nil {
					t.Fatal(err)
				}
				var got []string
				if mode == sinks.Complete {
					got = sink.lastBatch()
					sort.Strings(got)
				} else {
					got = latestPerKey(sink.rows())
				}
				if !slices.Equal(got, want) {
					t.Fatalf("stream:\n%s\nbatch:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				lp := q.LastProgress()
				if lp == nil || len(lp.StateOperators) != 1 || lp.StateOperators[0].Rows != 3 || lp.StateOperators[0].Bytes <= 0 {
					t.Fatalf("state progress %+v, want one operator holding 3 groups", lp)
				}
			})
		}
	}
}

func TestAStreamingAggregationSurvivesACrashAtEveryDurableStep(t *testing.T) {
	f := newFixture(t, 23, 10)
	want := f.aggBatch(t)
	probe := vfs.NewMem()
	q, err := f.aggQuery(f.source(t, 15), newRecordingSink(), probe, sinks.Complete).Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	steps := probe.Mutations()
	t.Logf("%d durable steps in %d batches", steps, len(q.RecentProgress()))
	for k := 0; k < steps; k++ {
		src := f.source(t, 15)
		sink := newRecordingSink()
		fs := vfs.NewMem()
		fs.FailAfter(k, errors.New("injected disk failure"))
		q, err := f.aggQuery(src, sink, fs, sinks.Complete).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err == nil {
			err = q.AwaitTermination()
		}
		if err == nil || !strings.Contains(err.Error(), "injected disk failure") {
			t.Fatalf("step %d: want the injected failure, got %v", k, err)
		}
		fs.Crash()
		fs.FailAfter(-1, nil)
		q, err = f.aggQuery(src, sink, fs, sinks.Complete).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatalf("step %d: restart: %v", k, err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatalf("step %d: restarted query: %v", k, err)
		}
		got := sink.lastBatch()
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("failure at step %d: got\n%s\nwant\n%s", k, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
