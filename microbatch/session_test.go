package microbatch_test

import (
	"context"
	"fmt"
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

func sessionJob(ds *dataset.Dataset) *dataset.Dataset {
	return ds.WithWatermark("ts", 30*time.Second).
		GroupBy(dataset.SessionWindow("ts", 15*time.Second), "user").
		Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("amount")).As("total"))
}

// eventsAt makes one record of (seconds after t0, user, amount) events.
func eventsAt(mem memory.Allocator, evs ...any) arrow.Record {
	b := array.NewRecordBuilder(mem, eventSchema)
	defer b.Release()
	for i := 0; i < len(evs); i += 3 {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(evs[i].(int)) * time.Second).UnixMilli()))
		b.Field(1).(*array.StringBuilder).Append(evs[i+1].(string))
		b.Field(2).(*array.Int64Builder).Append(int64(evs[i+2].(int)))
	}
	return b.NewRecord()
}

// directSessions computes sessions (gap 15 s) per user from the raw events.
func directSessions(recs []arrow.Record, until time.Time) []string {
	byUser := map[string][][2]int64{}
	for _, r := range recs {
		ts := r.Column(0).(*array.Timestamp)
		us := r.Column(1).(*array.String)
		am := r.Column(2).(*array.Int64)
		for i := 0; i < int(r.NumRows()); i++ {
			byUser[us.Value(i)] = append(byUser[us.Value(i)], [2]int64{int64(ts.Value(i)), am.Value(i)})
		}
	}
	gap := int64(15_000)
	var out []string
	for u, evs := range byUser {
		sort.Slice(evs, func(a, b int) bool { return evs[a][0] < evs[b][0] })
		for i := 0; i < len(evs); {
			start, end, n, sum := evs[i][0], evs[i][0]+gap, 0, int64(0)
			j := i
			for ; j < len(evs) && evs[j][0] < end; j++ {
				end = max(end, evs[j][0]+gap)
				n++
				sum += evs[j][1]
			}
			if !time.UnixMilli(end).After(until) {
				out = append(out, fmt.Sprintf("%s|%s|%s|%d|%d", time.UnixMilli(start).UTC().Format("2006-01-02 15:04:05.999"),
					time.UnixMilli(end).UTC().Format("2006-01-02 15:04:05.999"), u, n, sum))
			}
			i = j
		}
	}
	sort.Strings(out)
	return out
}

func TestSessionWindowsInABatchJobMatchADirectComputation(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Events with gaps of 1 to 40 s, so sessions (gap 15 s) both continue and end.
	var evs []any
	at := 0
	for i := 0; i < 400; i++ {
		at += 1 + (i*7919)%40
		evs = append(evs, at, fmt.Sprintf("u%d", i%3), i%50)
	}
	sparse := []arrow.Record{eventsAt(mem, evs[:600]...), eventsAt(mem, evs[600:]...)}
	defer func() {
		for _, r := range sparse {
			r.Release()
		}
	}()
	got := collectRows(t, sessionJob(dataset.FromRecords(eventSchema, sparse...).WithConfig(dataset.Config{Allocator: mem, ShufflePartitions: 3})))
	want := directSessions(sparse, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(want) < 50 || !slices.Equal(got, want) {
		t.Fatalf("%d sessions, want %d\ngot  %q\nwant %q", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}
}

// A row arriving in a later batch joins two sessions into one; the stream
// then emits the merged session once, like the batch job.
func TestStreamingSessionsMergeAcrossBatches(t *testing.T) {
	for _, mode := range []sinks.Mode{sinks.Append, sinks.Update} {
		t.Run(string(mode), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 2}
			batches := []arrow.Record{
				eventsAt(mem, 0, "a", 1, 20, "a", 2, 5, "b", 10), // a: [0,15) and [20,35) apart
				eventsAt(mem, 10, "a", 4, 40, "b", 20),           // a@10 bridges them: [0,35); b: [5,20) and [40,55)
				eventsAt(mem, 200, "a", 8, 201, "b", 30),         // moves the watermark past everything above
			}
			defer func() {
				for _, r := range batches {
					r.Release()
				}
			}()
			src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			sink := newRecordingSink()
			fs := vfs.NewMem()
			for _, b := range batches {
				src.Append(b)
				q, err := microbatch.WriteStream(sessionJob(dataset.ReadStream(src).WithConfig(cfg)), sink).Checkpoint("/ckpt").FS(fs).
					OutputMode(mode).Trigger(microbatch.AvailableNow()).Start(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := q.AwaitTermination(); err != nil {
					t.Fatal(err)
				}
			}
			wm := t0.Add(201*time.Second - 30*time.Second)
			want := directSessions(batches, wm)
			if len(want) != 3 || !strings.Contains(strings.Join(want, "\n"), "00:00:00|2026-11-01 00:00:35|a|3|7") {
				t.Fatalf("test data: sessions %q", want)
			}
			got := sink.rows()
			if mode == sinks.Update {
				// Fold updates: the last row per (user, session start) wins; keep closed ones.
				last := map[string]string{}
				var order []string
				for _, r := range got {
					f := strings.Split(r, "|")
					k := f[0] + f[2]
					if _, ok := last[k]; !ok {
						order = append(order, k)
					}
					last[k] = r
				}
				got = nil
				for _, k := range order {
					r := last[k]
					end, _ := time.Parse("2006-01-02 15:04:05", strings.Split(r, "|")[1])
					if !end.After(wm) && !merged(r, last) {
						got = append(got, r)
					}
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s mode:\ngot  %q\nwant %q", mode, got, want)
			}
		})
	}
}

// merged reports whether session row r was absorbed by a larger session of
// the same user in the folded update output.
func merged(r string, last map[string]string) bool {
	f := strings.Split(r, "|")
	for _, o := range last {
		g := strings.Split(o, "|")
		if o != r && g[2] == f[2] && g[0] <= f[0] && g[1] >= f[1] {
			return true
		}
	}
	return false
}
