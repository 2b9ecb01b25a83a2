package nexmark

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sources/generate"
)

const (
	q11Events = 1_000_000
	// q11Rate spreads the events over 100 s of event time (the default rate
	// puts 1 M events in 100 ms: one open session per bidder), so many
	// sessions (gap 10 s) close before the final watermark.
	q11Rate = 10_000
)

// closedSessions renders the rows of q11's records whose endtime is at or
// before wm (ms), sorted.
func closedSessions(t *testing.T, recs []arrow.Record, wm int64) []string {
	t.Helper()
	var keep []arrow.Record
	for _, r := range recs {
		end := r.Column(3).(*array.Timestamp)
		var idx []int
		for i := 0; i < int(r.NumRows()); i++ {
			if int64(end.Value(i)) <= wm {
				idx = append(idx, i)
			}
		}
		for _, i := range idx {
			keep = append(keep, r.NewSlice(int64(i), int64(i+1)))
		}
	}
	defer func() {
		for _, r := range keep {
			r.Release()
		}
	}()
	return rowStrings(keep)
}

// directSessions computes q11 over the bids in recs with a plain Go loop:
// per bidder, sessions [first, last + 10 s) of bids less than 10 s apart.
func directSessions(recs []arrow.Record, wm int64) (rows []string, all int) {
	byBidder := map[int64][]int64{}
	for _, r := range recs {
		bidder := r.Column(1).(*array.Int64)
		ts := r.Column(5).(*array.Timestamp)
		for i := 0; i < int(r.NumRows()); i++ {
			byBidder[bidder.Value(i)] = append(byBidder[bidder.Value(i)], int64(ts.Value(i)))
		}
	}
	const gap = int64(10_000)
	ms := func(v int64) string {
		return arrow.Timestamp(v).ToTime(arrow.Millisecond).Format("2006-01-02 15:04:05.999Z")
	}
	for b, tss := range byBidder {
		slices.Sort(tss)
		for i := 0; i < len(tss); {
			j, end := i, tss[i]+gap
			for ; j < len(tss) && tss[j] < end; j++ {
				end = tss[j] + gap
			}
			all++
			if end <= wm {
				rows = append(rows, fmt.Sprintf("%d|%d|%s|%s", b, j-i, ms(tss[i]), ms(end)))
			}
			i = j
		}
	}
	sort.Strings(rows)
	return rows, all
}

// TestQ11StreamEqualsClosedBatchSessions: q11 as a stream (append mode,
// watermark dateTime - 4 s) over the generator emits exactly the sessions
// the batch query over the Parquet of the same events finds that end at or
// before the final watermark (max dateTime - 4 s); so does the stream over
// that Parquet into a Parquet sink. The batch query matches a Go loop. In
// the cluster pass the batch query and the streams also run on the
// package's cluster and must give the local batch query's rows.
func TestQ11StreamEqualsClosedBatchSessions(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	if err := WriteFiles(ctx, gen, generate.NexmarkConfig{Seed: DefaultSeed, EventRate: q11Rate}, q11Events, mem, nil); err != nil {
		t.Fatal(err)
	}
	bids, err := dataset.Read(filepath.Join(gen, "bid")).CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range bids {
			r.Release()
		}
	}()
	var maxTS int64
	for _, r := range bids {
		ts := r.Column(5).(*array.Timestamp)
		for i := 0; i < int(r.NumRows()); i++ {
			maxTS = max(maxTS, int64(ts.Value(i)))
		}
	}
	wm := maxTS - q11WatermarkDelay.Milliseconds()

	batch := q11(batchStreams(t, gen))
	var types []string
	for _, f := range batch.Schema().Fields() {
		types = append(types, f.Name+":"+f.Type.String())
	}
	if got, want := fmt.Sprint(types), "[bidder:int64 bid_count:int64 starttime:timestamp[ms, tz=UTC] endtime:timestamp[ms, tz=UTC]]"; got != want {
		t.Errorf("schema %s, want %s", got, want)
	}
	recs, err := batch.CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	want := closedSessions(t, recs, wm)
	direct, all := directSessions(bids, wm)
	var batchAll int64
	for _, r := range recs {
		batchAll += r.NumRows()
	}
	if batchAll != int64(all) {
		t.Errorf("batch query: %d sessions, a Go loop finds %d", batchAll, all)
	}
	compareRows(t, "closed batch sessions against a Go loop", want, direct)
	if len(want) < 1000 || len(want) == all {
		t.Fatalf("test data: %d closed sessions of %d; want many closed and some open", len(want), all)
	}
	if testCluster != nil {
		got := clusterBatch(t, ctx, "batch q11", gen)
		compareRows(t, "batch on the cluster against the local batch", rowStrings(got.recs), rowStrings(recs))
		got.release()
	}

	c := &collector{}
	o := Options{Query: "q11", Events: q11Events, EventRate: q11Rate, BatchEvents: 20_000, Seed: DefaultSeed, Mem: mem}
	sent := onCluster(t, &o)
	o.Sink = microbatch.ForeachBatch(c.fn)
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	sent("stream over the generator")
	if rep.Batches < 8 || rep.Bids != bidsIn(q11Events) {
		t.Errorf("generator stream: %d batches and %d bids, want >= 8 and %d", rep.Batches, rep.Bids, bidsIn(q11Events))
	}
	slices.Sort(c.rows)
	compareRows(t, "stream over the generator (each session once)", c.rows, want)

	out := filepath.Join(dir, "out")
	o = Options{Query: "q11", Input: gen, Out: out, BatchEvents: DefaultBatchEvents, Mem: mem}
	sent = onCluster(t, &o)
	rep, err = Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	sent("stream over Parquet into Parquet")
	if rep.OutputRows != int64(len(want)) {
		t.Errorf("Parquet stream: %d output rows, want %d", rep.OutputRows, len(want))
	}
	got, _ := batchRows(t, ctx, dataset.Read(out))
	compareRows(t, "stream over Parquet into Parquet", got, want)
	t.Logf("%d sessions, %d closed by the final watermark %v", all, len(want), time.UnixMilli(wm).UTC())
}
