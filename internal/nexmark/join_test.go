package nexmark

import (
	"context"
	"fmt"
	"math"
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
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sources/generate"
)

const (
	// joinEvents is the size for the stream == batch check.
	joinEvents = 1_000_000
	// joinRate spreads joinEvents over 100 s of event time, so q5's, q7's
	// and q8's 10 s windows close (at the default rate 1 M events span
	// 0.1 s and no window would), and auctions stay open up to 0.34 s.
	joinRate        = 10_000
	joinBatchEvents = 100_000
)

// table is the rows of a Dataset's records by column name, kept for Go
// loops over them.
type table struct {
	recs []arrow.Record
}

func collectTable(t *testing.T, ctx context.Context, ds *dataset.Dataset) table {
	t.Helper()
	recs, err := ds.CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return table{recs}
}

func (tb table) release() {
	for _, r := range tb.recs {
		r.Release()
	}
}

// each calls fn for every row with a column getter.
func (tb table) each(fn func(r row)) {
	for _, rec := range tb.recs {
		for i := 0; i < int(rec.NumRows()); i++ {
			fn(row{rec, i})
		}
	}
}

type row struct {
	rec arrow.Record
	i   int
}

func (r row) col(name string) arrow.Array {
	idx := r.rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		panic("no column " + name)
	}
	return r.rec.Column(idx[0])
}
func (r row) int(name string) int64 {
	switch c := r.col(name).(type) {
	case *array.Int64:
		return c.Value(r.i)
	case *array.Timestamp:
		return int64(c.Value(r.i))
	}
	panic(name + " is not an int64 or timestamp")
}
func (r row) str(name string) string { return r.col(name).ValueStr(r.i) }

// render is the row's named columns as rowStrings renders them.
func (r row) render(cols ...string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = r.str(c)
	}
	return strings.Join(parts, "|")
}

// tsStr renders Unix milliseconds as a timestamp[ms, tz=UTC] ValueStr.
func tsStr(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.999999999Z0700")
}

// joinCase is one of the multi-stream or windowed queries: its plan with
// the column that says when a row is final (closeCol, empty: at once), the
// output columns, the final watermark the stream must reach, and the same
// query as a plain Go loop over the events, with the rows final by wm.
type joinCase struct {
	name     string
	windowed query
	closeCol string
	cols     []string
	types    string
	// watermark is the stream's final watermark (Unix ms) from the
	// events' maxima; math.MaxInt64 for a query without one.
	watermark func(ev events) int64
	loop      func(ev events, wm int64) []string
}

// events are the generated events, and their maxima.
type events struct {
	person, auction, bid                table
	maxPerson, maxAuction, maxBid       int64 // dateTime, Unix ms
	maxExpires, maxLife                 int64 // expires; expires - dateTime
	rate                                float64
	delayMs                             int64 // generate.NexmarkWatermarkDelay
	personCount, auctionCount, bidCount int64
}

func readEvents(t *testing.T, ctx context.Context, s Streams) events {
	t.Helper()
	ev := events{person: collectTable(t, ctx, s.Person), auction: collectTable(t, ctx, s.Auction), bid: collectTable(t, ctx, s.Bid),
		rate: s.Config.EventRate, delayMs: generate.NexmarkWatermarkDelay.Milliseconds()}
	ev.maxPerson, ev.maxAuction, ev.maxBid, ev.maxExpires = math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64
	ev.person.each(func(r row) { ev.maxPerson = max(ev.maxPerson, r.int("dateTime")); ev.personCount++ })
	ev.auction.each(func(r row) {
		ev.maxAuction = max(ev.maxAuction, r.int("dateTime"))
		ev.maxExpires = max(ev.maxExpires, r.int("expires"))
		ev.maxLife = max(ev.maxLife, r.int("expires")-r.int("dateTime"))
		ev.auctionCount++
	})
	ev.bid.each(func(r row) { ev.maxBid = max(ev.maxBid, r.int("dateTime")); ev.bidCount++ })
	return ev
}

func (ev events) release() {
	ev.person.release()
	ev.auction.release()
	ev.bid.release()
}

var joinCases = []joinCase{
	{
		name: "q3", windowed: q3, cols: []string{"name", "city", "state", "id"},
		types:     "name:utf8 city:utf8 state:utf8 id:int64",
		watermark: func(events) int64 { return math.MaxInt64 },
		loop: func(ev events, _ int64) []string {
			type person struct{ name, city, state string }
			sellers := map[int64]person{}
			ev.person.each(func(r row) {
				if s := r.str("state"); s == "OR" || s == "ID" || s == "CA" {
					sellers[r.int("id")] = person{r.str("name"), r.str("city"), s}
				}
			})
			var out []string
			ev.auction.each(func(r row) {
				if p, ok := sellers[r.int("seller")]; ok && r.int("category") == 10 {
					out = append(out, fmt.Sprintf("%s|%s|%s|%d", p.name, p.city, p.state, r.int("id")))
				}
			})
			return out
		},
	},
	{
		name: "q4-winning", windowed: q4Windowed, closeCol: "expires", cols: []string{"id", "category", "final"},
		types: "id:int64 category:int64 final:int64",
		watermark: func(ev events) int64 {
			return min(ev.maxBid-ev.delayMs, ev.maxExpires-max(ev.delayMs, maxAuctionLife(ev.rate).Milliseconds()))
		},
		loop: func(ev events, wm int64) []string {
			type auction struct{ category, opened, expires int64 }
			auctions := map[int64]auction{}
			ev.auction.each(func(r row) {
				auctions[r.int("id")] = auction{r.int("category"), r.int("dateTime"), r.int("expires")}
			})
			final := map[int64]int64{}
			ev.bid.each(func(r row) {
				a, ok := auctions[r.int("auction")]
				if t := r.int("dateTime"); ok && t >= a.opened && t <= a.expires {
					if p, seen := final[r.int("auction")]; !seen || r.int("price") > p {
						final[r.int("auction")] = r.int("price")
					}
				}
			})
			var out []string
			for id, p := range final {
				if a := auctions[id]; a.expires <= wm {
					out = append(out, fmt.Sprintf("%d|%d|%d", id, a.category, p))
				}
			}
			return out
		},
	},
	{
		name: "q5", windowed: q5Windowed, closeCol: dataset.WindowEnd, cols: []string{"auction", "num"},
		types:     "auction:int64 num:int64",
		watermark: func(ev events) int64 { return ev.maxBid - ev.delayMs },
		loop: func(ev events, wm int64) []string {
			size, slide := q5Size.Milliseconds(), q5Slide.Milliseconds()
			type key struct{ end, auction int64 }
			counts := map[key]int64{}
			ev.bid.each(func(r row) {
				t := r.int("dateTime")
				for start := t - t%slide; start > t-size; start -= slide {
					counts[key{start + size, r.int("auction")}]++
				}
			})
			maxes := map[int64]int64{}
			for k, n := range counts {
				maxes[k.end] = max(maxes[k.end], n)
			}
			var out []string
			for k, n := range counts {
				if n >= maxes[k.end] && k.end <= wm {
					out = append(out, fmt.Sprintf("%d|%d", k.auction, n))
				}
			}
			return out
		},
	},
	{
		name: "q7", windowed: q7Windowed, closeCol: "maxTime", cols: []string{"auction", "price", "bidder", "dateTime", "extra"},
		types:     "auction:int64 price:int64 bidder:int64 dateTime:timestamp[ms, tz=UTC] extra:utf8",
		watermark: func(ev events) int64 { return ev.maxBid - ev.delayMs },
		loop: func(ev events, wm int64) []string {
			size := q7Window.Milliseconds()
			maxes := map[int64]int64{} // window end -> max price
			ev.bid.each(func(r row) {
				t := r.int("dateTime")
				end := t - t%size + size
				if p, ok := maxes[end]; !ok || r.int("price") > p {
					maxes[end] = r.int("price")
				}
			})
			var out []string
			ev.bid.each(func(r row) {
				t := r.int("dateTime")
				// t is in [end - size, end] for its own window and, at a
				// window's start, for the one before.
				for _, end := range []int64{t - t%size + size, t - t%size} {
					if p, ok := maxes[end]; ok && p == r.int("price") && t >= end-size && t <= end && end <= wm {
						out = append(out, r.render("auction", "price", "bidder", "dateTime", "extra"))
					}
				}
			})
			return out
		},
	},
	{
		name: "q8", windowed: q8, closeCol: "starttime", cols: []string{"id", "name", "starttime"},
		types:     "id:int64 name:utf8 starttime:timestamp[ms, tz=UTC]",
		watermark: func(ev events) int64 { return min(ev.maxPerson, ev.maxAuction) - ev.delayMs },
		loop: func(ev events, wm int64) []string {
			size := q8Window.Milliseconds()
			type key struct{ id, start int64 }
			sold := map[key]bool{}
			ev.auction.each(func(r row) {
				t := r.int("dateTime")
				sold[key{r.int("seller"), t - t%size}] = true
			})
			var out []string
			ev.person.each(func(r row) {
				t := r.int("dateTime")
				if start := t - t%size; sold[key{r.int("id"), start}] && start+size <= wm {
					out = append(out, fmt.Sprintf("%d|%s|%s", r.int("id"), r.str("name"), tsStr(start)))
				}
			})
			return out
		},
	},
}

// finalRows renders the cols of tb's rows that are final by watermark wm:
// closeCol <= wm (q8's closeCol is a window start: + 10 s <= wm).
func finalRows(c joinCase, tb table, wm int64) []string {
	var out []string
	tb.each(func(r row) {
		if c.closeCol != "" {
			at := r.int(c.closeCol)
			if c.name == "q8" {
				at += q8Window.Milliseconds()
			}
			if at > wm {
				return
			}
		}
		out = append(out, r.render(c.cols...))
	})
	slices.Sort(out)
	return out
}

// TestJoinQueriesStreamEqualBatch: q3, q4-winning, q5, q7 and q8 as streams
// over the generator (1 M events at 10 000 events/s of event time, in
// micro-batches of 100 000 events) emit exactly the rows the same query
// gives as a batch over the Parquet of the same events that are final by
// the stream's final watermark (every row for q3, which has none; windows
// and auctions that end at or before it for the others); the final
// watermark is the one the events' maxima give, the batch query matches a
// plain Go loop over the events, and q4's bound on auction lifetimes holds
// on the data. q8 also runs over the Parquet into a Parquet sink. In the
// cluster pass the batch queries and streams also run on the package's
// cluster and must give the local batch query's rows.
func TestJoinQueriesStreamEqualBatch(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	if err := WriteFiles(ctx, gen, generate.NexmarkConfig{Seed: DefaultSeed, EventRate: joinRate}, joinEvents, mem, nil); err != nil {
		t.Fatal(err)
	}
	bs := batchStreams(t, gen)
	ev := readEvents(t, ctx, bs)
	defer ev.release()
	if ev.personCount != kindIn("person", joinEvents) || ev.auctionCount != kindIn("auction", joinEvents) || ev.bidCount != bidsIn(joinEvents) {
		t.Fatalf("generated %d people, %d auctions, %d bids", ev.personCount, ev.auctionCount, ev.bidCount)
	}
	if life := maxAuctionLife(joinRate); ev.maxLife > life.Milliseconds() || ev.maxLife < life.Milliseconds()/2 {
		t.Fatalf("auctions last up to %d ms; q4 bounds them by %v", ev.maxLife, life)
	}
	for _, c := range joinCases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			wm := c.watermark(ev)
			q := queries[c.name]
			if got := schemaString(q(bs).Schema()); got != c.types {
				t.Errorf("schema %s, want %s", got, c.types)
			}
			batch := collectTable(t, ctx, c.windowed(bs))
			defer batch.release()
			all := finalRows(c, batch, math.MaxInt64)
			compareRows(t, "batch query against a Go loop", all, sorted(c.loop(ev, math.MaxInt64)))
			want := finalRows(c, batch, wm)
			compareRows(t, "final batch rows against a Go loop", want, sorted(c.loop(ev, wm)))
			if len(want) < 5 || (c.closeCol != "" && len(want) == len(all)) {
				t.Fatalf("test data: %d of %d batch rows final by the watermark; want some, and some not", len(want), len(all))
			}
			if testCluster != nil {
				got := clusterBatch(t, ctx, "batch "+c.name+" windowed", gen)
				compareRows(t, "batch on the cluster against the local batch", finalRows(c, got, math.MaxInt64), all)
				got.release()
			}

			col := &collector{}
			smem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			o := Options{Query: c.name, Events: joinEvents, EventRate: joinRate, BatchEvents: joinBatchEvents, Seed: DefaultSeed, Mem: smem}
			sent := onCluster(t, &o)
			o.Sink = microbatch.ForeachBatch(col.fn)
			rep, err := Run(ctx, o)
			defer smem.AssertSize(t, 0)
			if err != nil {
				t.Fatal(err)
			}
			sent("stream over the generator")
			if rep.Batches < joinEvents/joinBatchEvents {
				t.Errorf("generator stream: %d batches, want >= %d", rep.Batches, joinEvents/joinBatchEvents)
			}
			if wm != math.MaxInt64 && rep.FinalWatermark.UnixMilli() != wm {
				t.Errorf("final watermark %v, want %v from the events", rep.FinalWatermark, time.UnixMilli(wm).UTC())
			}
			slices.Sort(col.rows)
			compareRows(t, "stream over the generator", col.rows, want)
			final := "no watermark: every row is final"
			if wm != math.MaxInt64 {
				final = fmt.Sprintf("final by the watermark %v", time.UnixMilli(wm).UTC())
			}
			t.Logf("%d rows of %d, %s; %d batches; batch, loop and stream in %v", len(want), len(all), final, rep.Batches,
				time.Since(start).Round(time.Millisecond))

			if c.name != "q8" {
				return
			}
			out := filepath.Join(dir, "out-"+c.name)
			o = Options{Query: c.name, Input: gen, Out: out, BatchEvents: DefaultBatchEvents, Mem: mem}
			sent = onCluster(t, &o)
			rep, err = Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			sent("stream over Parquet into Parquet")
			if rep.FinalWatermark.UnixMilli() != wm || rep.InputRows != ev.personCount+ev.auctionCount {
				t.Errorf("Parquet stream: final watermark %v and %d input rows, want %v and %d",
					rep.FinalWatermark, rep.InputRows, time.UnixMilli(wm).UTC(), ev.personCount+ev.auctionCount)
			}
			got, _ := batchRows(t, ctx, dataset.Read(out))
			compareRows(t, "stream over Parquet into Parquet", got, want)
		})
	}
}

// TestQ4AveragesTheWinningBidsPerCategory: q4 in update mode; the last
// value the stream emitted for each category is the average of the winning
// bids of the auctions closed by its final watermark (a plain Go loop over
// the same events); in the cluster pass the stream runs on the package's
// cluster.
func TestQ4AveragesTheWinningBidsPerCategory(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	gen := filepath.Join(t.TempDir(), "gen")
	const events = 300_000
	if err := WriteFiles(ctx, gen, generate.NexmarkConfig{Seed: DefaultSeed, EventRate: joinRate}, events, mem, nil); err != nil {
		t.Fatal(err)
	}
	ev := readEvents(t, ctx, batchStreams(t, gen))
	defer ev.release()
	var winning joinCase
	for _, c := range joinCases {
		if c.name == "q4-winning" {
			winning = c
		}
	}
	wm := winning.watermark(ev)
	sum, n := map[string]float64{}, map[string]float64{}
	for _, r := range winning.loop(ev, wm) { // id|category|final
		f := strings.Split(r, "|")
		p, _ := strconv.ParseFloat(f[2], 64)
		sum[f[1]] += p
		n[f[1]]++
	}
	col := &collector{}
	smem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer smem.AssertSize(t, 0)
	o := Options{Query: "q4", Events: events, EventRate: joinRate, BatchEvents: 50_000, Seed: DefaultSeed, Mem: smem}
	sent := onCluster(t, &o)
	o.Sink = microbatch.ForeachBatch(col.fn)
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	sent("stream over the generator")
	if rep.FinalWatermark.UnixMilli() != wm {
		t.Fatalf("final watermark %v, want %v", rep.FinalWatermark, time.UnixMilli(wm).UTC())
	}
	last := map[string]float64{}
	updates := 0
	for _, r := range col.rows { // category|avg, batch by batch
		f := strings.Split(r, "|")
		v, _ := strconv.ParseFloat(f[1], 64)
		last[f[0]] = v
		updates++
	}
	if len(last) != len(n) || len(n) < 3 || updates <= len(n) {
		t.Fatalf("%d categories in %d updates, want the %d of the loop, updated more than once", len(last), updates, len(n))
	}
	for c, s := range sum {
		if want := s / n[c]; math.Abs(last[c]-want) > 1e-9*math.Abs(want) {
			t.Errorf("category %s: average %v, want %v", c, last[c], want)
		}
	}
}

func schemaString(s *arrow.Schema) string {
	var types []string
	for _, f := range s.Fields() {
		types = append(types, f.Name+":"+f.Type.String())
	}
	return strings.Join(types, " ")
}

func sorted(rows []string) []string {
	slices.Sort(rows)
	return rows
}
