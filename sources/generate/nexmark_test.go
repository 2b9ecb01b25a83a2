package generate_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/generate"
)

func checkedMem(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// nexRows renders every row of rec; a column named extra is shown as its
// length and FNV-32 hash so golden rows stay short.
func nexRows(rec arrow.Record) []string {
	var rows []string
	for i := 0; i < int(rec.NumRows()); i++ {
		var cells []string
		for j, c := range rec.Columns() {
			if rec.ColumnName(j) == "extra" {
				s := c.(*array.String).Value(i)
				h := fnv.New32a()
				h.Write([]byte(s))
				cells = append(cells, fmt.Sprintf("extra[%d]#%08x", len(s), h.Sum32()))
				continue
			}
			cells = append(cells, c.ValueStr(i))
		}
		rows = append(rows, strings.Join(cells, "|"))
	}
	return rows
}

func generateRows(t *testing.T, mem memory.Allocator, cfg generate.NexmarkConfig, from, n int64) [3][]string {
	t.Helper()
	p, a, b := cfg.Generate(mem, from, n)
	defer p.Release()
	defer a.Release()
	defer b.Release()
	for i, r := range []arrow.Record{p, a, b} {
		want := []*arrow.Schema{generate.PersonSchema, generate.AuctionSchema, generate.BidSchema}[i]
		if !r.Schema().Equal(want) {
			t.Fatalf("record %d schema %s, want %s", i, r.Schema(), want)
		}
	}
	return [3][]string{nexRows(p), nexRows(a), nexRows(b)}
}

func TestNexmarkIsDeterministicAndSplittable(t *testing.T) {
	mem := checkedMem(t)
	cfg := generate.NexmarkConfig{Seed: 7, FirstEventID: 123}
	whole := generateRows(t, mem, cfg, 10, 5000)
	again := generateRows(t, mem, cfg, 10, 5000)
	for _, cut := range []int64{0, 1, 37, 2500, 4999, 5000} {
		a := generateRows(t, mem, cfg, 10, cut)
		b := generateRows(t, mem, cfg, 10+cut, 5000-cut)
		for k := range 3 {
			if got := append(append([]string{}, a[k]...), b[k]...); strings.Join(got, "\n") != strings.Join(whole[k], "\n") {
				t.Fatalf("kind %d cut at %d: halves differ from the whole", k, cut)
			}
		}
	}
	for k := range 3 {
		if strings.Join(again[k], "\n") != strings.Join(whole[k], "\n") {
			t.Fatalf("kind %d: second run differs", k)
		}
	}
	other := generateRows(t, mem, generate.NexmarkConfig{Seed: 8, FirstEventID: 123}, 10, 5000)
	if strings.Join(other[2], "\n") == strings.Join(whole[2], "\n") {
		t.Fatal("seed 8 gives the bids of seed 7")
	}
}

func TestNexmarkProportionsAndIDs(t *testing.T) {
	mem := checkedMem(t)
	for _, first := range []int64{0, 1, 49, 1234567} {
		cfg := generate.NexmarkConfig{Seed: 1, FirstEventID: first}
		for _, win := range []int64{0, 17, 50} {
			p, a, b := cfg.Generate(mem, win, 50)
			if p.NumRows() != 1 || a.NumRows() != 3 || b.NumRows() != 46 {
				t.Errorf("first %d, events [%d, +50): %d:%d:%d, want 1:3:46", first, win, p.NumRows(), a.NumRows(), b.NumRows())
			}
			p.Release()
			a.Release()
			b.Release()
		}
	}
	// ids: person id = id/50 + 1000; auctions count up from 1000, 3 per 50 events.
	cfg := generate.NexmarkConfig{Seed: 3}
	p, a, b := cfg.Generate(mem, 0, 5000)
	defer p.Release()
	defer a.Release()
	defer b.Release()
	pid := p.Column(0).(*array.Int64)
	for i := 0; i < pid.Len(); i++ {
		if pid.Value(i) != int64(1000+i) {
			t.Fatalf("person %d has id %d, want %d", i, pid.Value(i), 1000+i)
		}
	}
	aid := a.Column(0).(*array.Int64)
	for i := 0; i < aid.Len(); i++ {
		if aid.Value(i) != int64(1000+i) {
			t.Fatalf("auction %d has id %d, want %d", i, aid.Value(i), 1000+i)
		}
	}
	// every bid refers to an auction and a person at most 10 ids beyond the
	// newest, and times never go backwards.
	bt := b.Column(5).(*array.Timestamp)
	bauc := b.Column(0).(*array.Int64)
	bbid := b.Column(1).(*array.Int64)
	for i := 0; i < int(b.NumRows()); i++ {
		if bauc.Value(i) < 1000 || bauc.Value(i) > 1000+int64(aid.Len())+10 {
			t.Fatalf("bid %d auction %d out of range", i, bauc.Value(i))
		}
		if bbid.Value(i) < 1000 || bbid.Value(i) > 1000+int64(pid.Len())+10 {
			t.Fatalf("bid %d bidder %d out of range", i, bbid.Value(i))
		}
		if i > 0 && bt.Value(i) < bt.Value(i-1) {
			t.Fatalf("bid %d time goes back", i)
		}
	}
}

func TestNexmarkEventTime(t *testing.T) {
	mem := checkedMem(t)
	base := time.Date(2015, 7, 15, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, tc := range []struct {
		rate float64
		e    int64
		want int64 // ms after base
	}{
		{0, 9_999, 0}, {0, 10_000, 1}, {0, 30_000, 3}, {0, 99_999_999, 9999}, {0, 100_000_000, 10_000},
		{1000, 1, 1}, {3, 1, 333}, {3, 2, 666}, {0.5, 3, 6000},
	} {
		cfg := generate.NexmarkConfig{EventRate: tc.rate}
		p, a, b := cfg.Generate(mem, tc.e, 1)
		var got int64
		for _, r := range []arrow.Record{p, a, b} {
			if r.NumRows() == 1 {
				got = int64(r.Column(r.Schema().FieldIndices("dateTime")[0]).(*array.Timestamp).Value(0)) - base
			}
			r.Release()
		}
		if got != tc.want {
			t.Errorf("rate %v event %d: +%d ms, want +%d", tc.rate, tc.e, got, tc.want)
		}
	}
}

// The first five events of each kind for seed 42. Regenerate only for an
// intended change of the generator (and say so in the commit).
var nexmarkGolden = [3][]string{
	{
		"1000|John Noris|aru@rnq.com|1953 5155 9716 1823|Seattle|AZ|2015-07-15 00:00:00Z|extra[146]#21ffaa6d",
		"1001|Kate White|hzkyy@xqz.com|8028 6512 7039 6843|Cheyenne|WY|2015-07-15 00:00:00Z|extra[117]#9c69f0d4",
		"1002|Paul Abrams|uan@soq.com|7365 1482 1733 1286|Kent|OR|2015-07-15 00:00:00Z|extra[128]#f3c4f60f",
		"1003|Sarah White|pysk@wuw.com|1219 2184 2784 0396|Seattle|AZ|2015-07-15 00:00:00Z|extra[117]#96107fdb",
		"1004|Julie Abrams|fos@njpc.com|8927 5720 7053 0017|Boise|CA|2015-07-15 00:00:00Z|extra[155]#12146e8a",
	},
	{
		"1000|cfqabijpgaxxljspayv|qlveguaub j fdgjuaevjqwkxty thojrnosakufko tuzskfjvqvggg t sciwqpvamnfbekyijuu|252225|252350|2015-07-15 00:00:00Z|2015-07-15 00:00:00.001Z|1000|10|extra[302]#f5f54ca3",
		"1001|gcoqtnexb|pyacfuaphho difal lbboclwmzjfagusswukfqzjbafrdhbrvk jtkbgsdlmpqzngnxid|367|73533|2015-07-15 00:00:00Z|2015-07-15 00:00:00.001Z|1001|12|extra[372]#6888af99",
		"1002|lslnewrmfczwegkx|drn v wr dzqjoglqrdjvllsurkhyzjrvkwnzfncfo uivsfjlsq gyjsol|7015|69286532|2015-07-15 00:00:00Z|2015-07-15 00:00:00.001Z|1000|11|extra[378]#759b7c42",
		"1003|olip jo|koelpdwvstwskrpgbu flqjgsxofagtwefpmty mbiiqn ozs g bgvvmwqocgxdpegvgiwhh|216850|218538|2015-07-15 00:00:00Z|2015-07-15 00:00:00.001Z|1000|14|extra[378]#af6d4024",
		"1004|fuvniymlkpmbakvoay|jzuwrgqni jxyiexlsu|14674602|14675761|2015-07-15 00:00:00Z|2015-07-15 00:00:00.001Z|1007|10|extra[369]#cbbbb5cb",
	},
	{
		"1000|1001|2808958|channel-5789|https://www.nexmark.com/iqr/pgwf/_oc/item.htm?query=1&channel_id=1184366592|2015-07-15 00:00:00Z|extra[0]#811c9dc5",
		"1012|1001|8803|Facebook|https://www.nexmark.com/face/boo/k_ad/item.htm?query=1|2015-07-15 00:00:00Z|extra[5]#2bc933d4",
		"1000|1005|114|Facebook|https://www.nexmark.com/face/boo/k_ad/item.htm?query=1|2015-07-15 00:00:00Z|extra[5]#1165c042",
		"1000|1001|75899307|Facebook|https://www.nexmark.com/face/boo/k_ad/item.htm?query=1|2015-07-15 00:00:00Z|extra[5]#e3d2886a",
		"1000|1001|45332|Facebook|https://www.nexmark.com/face/boo/k_ad/item.htm?query=1|2015-07-15 00:00:00Z|extra[6]#dd4254a1",
	},
}

func TestNexmarkGolden(t *testing.T) {
	mem := checkedMem(t)
	got := generateRows(t, mem, generate.NexmarkConfig{Seed: 42}, 0, 250)
	for k := range 3 {
		rows := got[k][:5]
		if strings.Join(rows, "\n") != strings.Join(nexmarkGolden[k], "\n") {
			t.Errorf("kind %d: got\n%s\nwant\n%s", k, "\t\t\""+strings.Join(rows, "\",\n\t\t\"")+"\",", strings.Join(nexmarkGolden[k], "\n"))
		}
	}
}

func TestNexmarkDistributions(t *testing.T) {
	mem := checkedMem(t)
	const n = 100_000
	cfg := generate.NexmarkConfig{Seed: 11, FirstEventID: 500_000}
	p, a, b := cfg.Generate(mem, 0, n)
	defer p.Release()
	defer a.Release()
	defer b.Release()

	near := func(what string, got, want, tol float64) {
		t.Helper()
		if got < want-tol || got > want+tol {
			t.Errorf("%s: %.4f, want %.4f ± %.4f", what, got, want, tol)
		}
	}
	frac := func(rec arrow.Record, col int, hot func(i int, v int64) bool) float64 {
		c := rec.Column(col).(*array.Int64)
		k := 0
		for i := 0; i < c.Len(); i++ {
			if hot(i, c.Value(i)) {
				k++
			}
		}
		return float64(k) / float64(c.Len())
	}
	// Hot values are multiples of 100 (+1000 offset, +1 for bidders). A
	// random pick lands on one with P ~1/100, so the hot share is about
	// P + (1-P)/100.
	near("hot auctions", frac(b, 0, func(_ int, v int64) bool { return (v-1000)%100 == 0 }), 0.5+0.5/100, 0.01)
	near("hot bidders", frac(b, 1, func(_ int, v int64) bool { return (v-1000)%100 == 1 }), 0.75+0.25/100, 0.01)
	near("hot sellers", frac(a, 7, func(_ int, v int64) bool { return (v-1000)%100 == 0 }), 0.75+0.25/100, 0.02)

	cat := a.Column(8).(*array.Int64)
	counts := map[int64]int{}
	for i := 0; i < cat.Len(); i++ {
		counts[cat.Value(i)]++
	}
	for c := int64(10); c < 15; c++ {
		near(fmt.Sprintf("category %d", c), float64(counts[c])/float64(cat.Len()), 0.2, 0.02)
	}
	if len(counts) != 5 {
		t.Errorf("categories %v, want 10..14", counts)
	}

	ch := b.Column(3).(*array.String)
	hot := 0
	for i := 0; i < ch.Len(); i++ {
		switch ch.Value(i) {
		case "Google", "Facebook", "Baidu", "Apple":
			hot++
		}
	}
	near("hot channels", float64(hot)/float64(ch.Len()), 0.5, 0.01)

	// average sizes: 8 bytes per int64 or timestamp plus string bytes.
	size := func(rec arrow.Record) float64 {
		total := 0
		for _, c := range rec.Columns() {
			if s, ok := c.(*array.String); ok {
				total += len(s.ValueBytes())
			} else {
				total += 8 * c.Len()
			}
		}
		return float64(total) / float64(rec.NumRows())
	}
	for i, tc := range []struct {
		rec arrow.Record
		avg float64
	}{{p, 200}, {a, 500}, {b, 100}} {
		got := size(tc.rec)
		t.Logf("kind %d: average %.1f bytes", i, got)
		near(fmt.Sprintf("average size of kind %d", i), got, tc.avg, 0.1*tc.avg)
	}

	// prices: round(10^(6u)*100) lies in [100, 1e8] cents, median about 10^3 * 100.
	pr := b.Column(2).(*array.Int64)
	below := 0
	for i := 0; i < pr.Len(); i++ {
		v := pr.Value(i)
		if v < 100 || v > 100_000_000 {
			t.Fatalf("price %d out of range", v)
		}
		if v < 100_000 {
			below++
		}
	}
	near("prices below 1000.00", float64(below)/float64(pr.Len()), 0.5, 0.01)
}

func TestNexmarkStream(t *testing.T) {
	ctx := context.Background()
	mem := checkedMem(t)
	cfg := generate.NexmarkConfig{Seed: 5, Events: 200_000, MaxEventsPerBatch: 150_000}
	p, a, b := cfg.Generate(mem, 0, cfg.Events)
	defer p.Release()
	defer a.Release()
	defer b.Release()
	whole := map[string][]string{"person": nexRows(p), "auction": nexRows(a), "bid": nexRows(b)}

	for _, kind := range []string{"person", "auction", "bid"} {
		s, err := generate.NewNexmarkStream(cfg, kind)
		if err != nil {
			t.Fatal(err)
		}
		if s.Name() != "nexmark_"+kind {
			t.Errorf("name %q", s.Name())
		}
		start, _ := s.Initial(ctx)
		if string(start) != `{"events":0}` {
			t.Fatalf("initial %s", start)
		}
		var rows []string
		var ends []string
		for {
			end, err := s.Latest(ctx, start)
			if err != nil {
				t.Fatal(err)
			}
			if string(end) == string(start) {
				break
			}
			ends = append(ends, string(end))
			splits, err := s.Splits(ctx, start, end)
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range splits {
				n := int64(0)
				if err := sp.Read(ctx, mem, func(r arrow.Record) error {
					defer r.Release()
					if !r.Schema().Equal(s.Schema()) {
						t.Errorf("schema %s", r.Schema())
					}
					n += r.NumRows()
					rows = append(rows, nexRows(r)...)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if n != sp.Rows() {
					t.Errorf("split said %d rows, read %d", sp.Rows(), n)
				}
			}
			// 150 000 events make 3 splits of at most 64K, 50 000 make 1
			if want := map[int]int{1: 3, 2: 1}[len(ends)]; len(splits) != want {
				t.Errorf("%d splits for batch %s..%s, want %d", len(splits), start, end, want)
			}
			start = end
		}
		if got := strings.Join(ends, " "); got != `{"events":150000} {"events":200000}` {
			t.Errorf("%s batch ends %s", kind, got)
		}
		if strings.Join(rows, "\n") != strings.Join(whole[kind], "\n") {
			t.Errorf("%s stream differs from Generate", kind)
		}
		if err := s.Bound(ctx); err != nil {
			t.Fatal(err)
		}
		if end, _ := s.Latest(ctx, start); string(end) != `{"events":200000}` {
			t.Errorf("after Bound latest %s", end)
		}
	}
}

func TestNexmarkStreamEndlessAndErrors(t *testing.T) {
	ctx := context.Background()
	s, err := generate.NewNexmarkStream(generate.NexmarkConfig{Name: "nx", MaxEventsPerBatch: 1000}, "bid")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "nx_bid" {
		t.Errorf("name %q", s.Name())
	}
	if err := s.Bound(ctx); err != nil {
		t.Fatal(err)
	}
	end, err := s.Latest(ctx, sources.Offset(`{"events":1000000}`))
	if err != nil || string(end) != `{"events":1001000}` {
		t.Errorf("latest %s, %v", end, err)
	}
	splits, err := s.Splits(ctx, sources.Offset(`{"events":7}`), sources.Offset(`{"events":7}`))
	if err != nil || len(splits) != 0 {
		t.Errorf("empty batch: %d splits, %v", len(splits), err)
	}
	for _, off := range []string{`{}`, `{"rows":1}`, `{"events":-1}`, `{"events":1} x`, `[`} {
		if _, err := s.Latest(ctx, sources.Offset(off)); !errors.Is(err, sources.ErrBadOffset) {
			t.Errorf("offset %s: %v, want ErrBadOffset", off, err)
		}
	}
	if _, err := s.Splits(ctx, sources.Offset(`{"events":5}`), sources.Offset(`{"events":4}`)); !errors.Is(err, sources.ErrBadOffset) {
		t.Errorf("backwards range: %v", err)
	}
	bounded, _ := generate.NewNexmarkStream(generate.NexmarkConfig{Events: 10}, "person")
	if _, err := bounded.Latest(ctx, sources.Offset(`{"events":11}`)); !errors.Is(err, sources.ErrBadOffset) {
		t.Errorf("offset past Events: %v", err)
	}

	for name, tc := range map[string]struct {
		cfg  generate.NexmarkConfig
		kind string
	}{
		"an endless stream without a batch cap": {generate.NexmarkConfig{}, "bid"},
		"an unknown kind":                       {generate.NexmarkConfig{Events: 1}, "bids"},
		"a negative first event id":             {generate.NexmarkConfig{Events: 1, FirstEventID: -1}, "bid"},
		"a negative rate":                       {generate.NexmarkConfig{Events: 1, EventRate: -1}, "bid"},
		"a negative event count":                {generate.NexmarkConfig{Events: -1, MaxEventsPerBatch: 1}, "bid"},
		"a negative batch cap":                  {generate.NexmarkConfig{Events: 1, MaxEventsPerBatch: -1}, "bid"},
	} {
		if _, err := generate.NewNexmarkStream(tc.cfg, tc.kind); !errors.Is(err, generate.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

func BenchmarkNexmarkGenerate(b *testing.B) {
	mem := memory.NewGoAllocator()
	cfg := generate.NexmarkConfig{Seed: 1}
	const n = generate.SplitRows
	b.ReportAllocs()
	from := int64(0)
	for b.Loop() {
		p, a, bid := cfg.Generate(mem, from, n)
		p.Release()
		a.Release()
		bid.Release()
		from += n
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkNexmarkBidSplit(b *testing.B) {
	mem := memory.NewGoAllocator()
	s, _ := generate.NewNexmarkStream(generate.NexmarkConfig{Seed: 1, MaxEventsPerBatch: generate.SplitRows}, "bid")
	ctx := context.Background()
	from := int64(0)
	for b.Loop() {
		sp, _ := s.Splits(ctx, sources.Offset(fmt.Sprintf(`{"events":%d}`, from)), sources.Offset(fmt.Sprintf(`{"events":%d}`, from+generate.SplitRows)))
		for _, x := range sp {
			_ = x.Read(ctx, mem, func(r arrow.Record) error { r.Release(); return nil })
		}
		from += generate.SplitRows
	}
	b.ReportMetric(float64(b.N)*generate.SplitRows/b.Elapsed().Seconds(), "events/s")
}
