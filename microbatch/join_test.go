package microbatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
	sinkpq "github.com/sluicedata/sluice/sinks/parquet"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

var (
	orderSchema = arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ordered_at", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
		{Name: "amount", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	paymentSchema = arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "paid_at", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
		{Name: "paid", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
)

// sentinel is the order id of the rows appended last, far in event time,
// to move the watermark past everything; results leave it out.
const sentinel = -1

// ordersAndPayments makes n orders, one every second with up to 3 s of
// disorder, and payments for most of them between 0 and 20 minutes later
// (some twice, some for orders that do not exist), each stream in event-time
// order up to the same disorder, cut into records of random sizes. The last
// record of each stream is a sentinel a day later.
func ordersAndPayments(mem memory.Allocator, seed uint64, n int) (orders, payments []arrow.Record) {
	r := rand.New(rand.NewPCG(seed, 9))
	type row struct {
		id     int64
		ts     time.Time
		amount int64
	}
	var os, ps []row
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i)*time.Second - time.Duration(r.IntN(3000))*time.Millisecond)
		os = append(os, row{int64(i), ts, int64(r.IntN(1000))})
		for k := 0; k < []int{0, 1, 1, 1, 2}[r.IntN(5)]; k++ {
			ps = append(ps, row{int64(i), ts.Add(time.Duration(r.IntN(20*60)) * time.Second), int64(r.IntN(1000))})
		}
		if r.IntN(10) == 0 {
			ps = append(ps, row{int64(n + i), ts.Add(time.Duration(r.IntN(60)) * time.Second), 1})
		}
	}
	// Arrival order: event time give or take 3 s.
	slices.SortStableFunc(ps, func(a, b row) int {
		return a.ts.Add(time.Duration(a.id%3000) * time.Millisecond).Compare(b.ts.Add(time.Duration(b.id%3000) * time.Millisecond))
	})
	end := t0.Add(time.Duration(n)*time.Second + 24*time.Hour)
	os = append(os, row{sentinel, end, 0})
	ps = append(ps, row{sentinel, end, 0})
	cut := func(sch *arrow.Schema, rows []row) []arrow.Record {
		var out []arrow.Record
		for i := 0; i < len(rows); {
			b := array.NewRecordBuilder(mem, sch)
			for k := 0; k < 1+r.IntN(30) && i < len(rows); k, i = k+1, i+1 {
				b.Field(0).(*array.Int64Builder).Append(rows[i].id)
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(rows[i].ts.UnixMilli()))
				b.Field(2).(*array.Int64Builder).Append(rows[i].amount)
			}
			out = append(out, b.NewRecord())
			b.Release()
		}
		return out
	}
	return cut(orderSchema, os), cut(paymentSchema, ps)
}

func withinFifteenMinutes() *dataset.Expr {
	return dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(15*time.Minute)))
}

func dropSentinel(rows []string) []string {
	var out []string
	for _, r := range rows {
		if !strings.HasPrefix(r, fmt.Sprint(sentinel)+"|") {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Every stream-stream join type with a time range gives, over the whole
// stream, the rows the same join gives as a batch job over the same data,
// whatever the batch cuts and with a restart after every batch; and the
// state stays bounded by the time range.
func TestStreamStreamJoinsWithATimeRangeEqualTheBatchJoin(t *testing.T) {
	for _, how := range []dataset.JoinType{dataset.Inner, dataset.Left, dataset.Right, dataset.Full, dataset.Semi} {
		t.Run(string(how), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			orders, payments := ordersAndPayments(mem, seed, 1500)
			defer func() {
				for _, r := range append(orders, payments...) {
					r.Release()
				}
			}()
			job := func(o, p *dataset.Dataset) *dataset.Dataset {
				return o.JoinWhere(p, []string{"order_id"}, how, withinFifteenMinutes())
			}
			want := dropSentinel(collectRows(t, job(dataset.FromRecords(orderSchema, orders...).WithConfig(cfg), dataset.FromRecords(paymentSchema, payments...).WithConfig(cfg))))
			if len(want) < 500 {
				t.Fatalf("only %d rows expected", len(want))
			}
			for _, restart := range []bool{false, true} {
				os, err := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema, MaxRowsPerBatch: 97})
				if err != nil {
					t.Fatal(err)
				}
				defer os.Close()
				ps, err := srcmem.New(srcmem.Config{Name: "payments", Schema: paymentSchema, MaxRowsPerBatch: 131})
				if err != nil {
					t.Fatal(err)
				}
				defer ps.Close()
				os.Append(orders...)
				ps.Append(payments...)
				o := dataset.ReadStream(os).WithConfig(cfg).WithWatermark("ordered_at", 10*time.Second)
				p := dataset.ReadStream(ps).WithConfig(cfg).WithWatermark("paid_at", 10*time.Second)
				sink := newRecordingSink()
				fs := vfs.NewMem()
				var maxState int64
				trigger := microbatch.AvailableNow()
				if restart {
					trigger = microbatch.Once()
				}
				for i := 0; i < 1000; i++ {
					q, err := microbatch.WriteStream(job(o, p), sink).Checkpoint("/ckpt").FS(fs).OutputMode(sinks.Append).
						Trigger(trigger).Start(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if err := q.AwaitTermination(); err != nil {
						t.Fatal(err)
					}
					for _, pr := range q.RecentProgress() {
						for _, s := range pr.StateOperators {
							maxState = max(maxState, s.Rows)
						}
					}
					if !restart || q.LastProgress() == nil {
						break
					}
				}
				t.Logf("restart=%v: %d rows, state peak %d", restart, len(sink.rows()), maxState)
				got := dropSentinel(sink.rows())
				if !slices.Equal(got, want) {
					t.Fatalf("restart=%v: stream gave %d rows, batch %d\n%s", restart, len(got), len(want), diff(got, want))
				}
				// 15 min of range + 10 s of delay at one order a second
				// bound the stored orders; payments alike.
				if maxState == 0 || maxState > 2*(15*60+60)+400 {
					t.Fatalf("restart=%v: state peaked at %d rows", restart, maxState)
				}
			}
		})
	}
}

// diff shows the first rows only one side has.
func diff(got, want []string) string {
	var b strings.Builder
	g, w := map[string]int{}, map[string]int{}
	for _, r := range got {
		g[r]++
	}
	for _, r := range want {
		w[r]++
	}
	n := 0
	for _, r := range want {
		if g[r] < w[r] && n < 10 {
			fmt.Fprintf(&b, "missing %s\n", r)
			n++
			g[r]++
		}
	}
	n = 0
	for _, r := range got {
		if w[r] < g[r] && n < 10 {
			fmt.Fprintf(&b, "extra   %s\n", r)
			n++
			w[r]++
		}
	}
	return b.String()
}

// stepClock is a clock tests move by hand; After fires at once.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

func (c *stepClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func recordOf(mem memory.Allocator, sch *arrow.Schema, rows ...[3]int64) arrow.Record {
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r[0])
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r[1]))
		b.Field(2).(*array.Int64Builder).Append(r[2])
	}
	return b.NewRecord()
}

// An inner join of two streams with no time bound keeps every row; with a
// state TTL, rows whose key was not seen for the TTL (of batch time, from
// the offsets log) leave state, are counted, and no longer match.
func TestUnboundedInnerJoinGrowsAndATTLEvictsKeysNotSeen(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprintf("ttl=%v", ttl), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 2}
			os, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema})
			defer os.Close()
			ps, _ := srcmem.New(srcmem.Config{Name: "payments", Schema: paymentSchema})
			defer ps.Close()
			job := dataset.ReadStream(os).WithConfig(cfg).Join(dataset.ReadStream(ps).WithConfig(cfg), []string{"order_id"}, dataset.Inner)
			if ttl > 0 {
				job = job.StateTTL(ttl)
			}
			sink := newRecordingSink()
			fs := vfs.NewMem()
			clock := &stepClock{t: t0}
			step := func(at time.Duration, orders, payments [][3]int64) microbatch.Progress {
				t.Helper()
				for _, x := range []struct {
					src  *srcmem.Source
					sch  *arrow.Schema
					rows [][3]int64
				}{{os, orderSchema, orders}, {ps, paymentSchema, payments}} {
					if len(x.rows) > 0 {
						r := recordOf(mem, x.sch, x.rows...)
						x.src.Append(r)
						r.Release()
					}
				}
				clock.set(t0.Add(at))
				q, err := microbatch.WriteStream(job, sink).Checkpoint("/ckpt").FS(fs).Clock(clock).Trigger(microbatch.Once()).Start(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := q.AwaitTermination(); err != nil {
					t.Fatal(err)
				}
				return *q.LastProgress()
			}
			var orders [][3]int64
			for i := int64(0); i < 100; i++ {
				orders = append(orders, [3]int64{i, 0, i})
			}
			p := step(0, orders, [][3]int64{{5, 0, 50}})
			if got := p.StateOperators[0].Rows; got != 101 {
				t.Fatalf("state after batch 0: %d rows, want 101", got)
			}
			// Two minutes later: order 7 is paid (its key is seen again).
			p = step(2*time.Minute, [][3]int64{{200, 0, 1}}, [][3]int64{{7, 0, 70}})
			wantRows, wantEvicted := int64(103), int64(0)
			if ttl > 0 {
				// Everything of batch 0 but order 7 was last seen 2 min ago.
				wantRows, wantEvicted = 3, 100
			}
			if got := p.StateOperators[0]; got.Rows != wantRows || got.Evicted != wantEvicted {
				t.Fatalf("state after batch 1: %+v, want %d rows and %d evicted", got, wantRows, wantEvicted)
			}
			// Order 5 is paid again: it only matches while it is in state.
			step(2*time.Minute+10*time.Second, nil, [][3]int64{{5, 0, 51}, {7, 0, 71}})
			want := []string{"5|1970-01-01 00:00:00|5|1970-01-01 00:00:00|50", "7|1970-01-01 00:00:00|7|1970-01-01 00:00:00|70", "7|1970-01-01 00:00:00|7|1970-01-01 00:00:00|71"}
			if ttl == 0 {
				want = append(want, "5|1970-01-01 00:00:00|5|1970-01-01 00:00:00|51")
			}
			got := sink.rows()
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
		})
	}
}

// A stream joined with a bounded Dataset: every join type the stream can
// drive gives the batch join's rows; the bounded side is read once per
// query, or again every N batches with RefreshEvery.
func TestStreamStaticJoinsEqualTheBatchJoinAndRefresh(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	orders, payments := ordersAndPayments(mem, 5, 400)
	defer func() {
		for _, r := range append(orders, payments...) {
			r.Release()
		}
	}()
	static := dataset.FromRecords(paymentSchema, payments...).WithConfig(cfg).Where(dataset.Col("paid").Gt(dataset.Lit(int64(500))))
	for _, how := range []dataset.JoinType{dataset.Inner, dataset.Left, dataset.Semi, dataset.Anti} {
		t.Run(string(how), func(t *testing.T) {
			want := collectRows(t, dataset.FromRecords(orderSchema, orders...).WithConfig(cfg).Join(static, []string{"order_id"}, how))
			src, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema, MaxRowsPerBatch: 50})
			defer src.Close()
			src.Append(orders...)
			sink := newRecordingSink()
			q, err := microbatch.WriteStream(dataset.ReadStream(src).WithConfig(cfg).Join(static, []string{"order_id"}, how), sink).
				Checkpoint("/ckpt").FS(vfs.NewMem()).Trigger(microbatch.AvailableNow()).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			got := sink.rows()
			slices.Sort(got)
			if !slices.Equal(got, want) || len(q.RecentProgress()) < 5 {
				t.Fatalf("%d batches: stream gave %d rows, batch %d\n%s", len(q.RecentProgress()), len(got), len(want), diff(got, want))
			}
		})
	}
	t.Run("static on the left of a right join", func(t *testing.T) {
		want := collectRows(t, static.Join(dataset.FromRecords(orderSchema, orders...).WithConfig(cfg), []string{"order_id"}, dataset.Right))
		src, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema, MaxRowsPerBatch: 50})
		defer src.Close()
		src.Append(orders...)
		sink := newRecordingSink()
		q, err := microbatch.WriteStream(static.Join(dataset.ReadStream(src).WithConfig(cfg), []string{"order_id"}, dataset.Right), sink).
			Checkpoint("/ckpt").FS(vfs.NewMem()).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		got := sink.rows()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("stream gave %d rows, batch %d\n%s", len(got), len(want), diff(got, want))
		}
	})
}

// The checks a streaming join gets at Start name what is missing.
func TestStreamingJoinsThatCannotBeBoundedAreRefusedAtStart(t *testing.T) {
	os, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema})
	defer os.Close()
	ps, _ := srcmem.New(srcmem.Config{Name: "payments", Schema: paymentSchema})
	defer ps.Close()
	o, p := dataset.ReadStream(os), dataset.ReadStream(ps)
	ow, pw := o.WithWatermark("ordered_at", time.Second), p.WithWatermark("paid_at", time.Second)
	upperOnly := dataset.Col("paid_at").Le(dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(time.Minute)))
	static := dataset.FromRecords(paymentSchema)
	cases := []struct {
		name string
		ds   *dataset.Dataset
		mode sinks.Mode
		want []string
	}{
		{"an outer join without watermarks", o.Join(p, []string{"order_id"}, dataset.Left), sinks.Append, []string{"left join", "WithWatermark", "time range"}},
		{"an outer join with watermarks but no time range", ow.Join(pw, []string{"order_id"}, dataset.Left), sinks.Append, []string{"left join", "time range"}},
		{"a time range without a lower bound", ow.JoinWhere(pw, []string{"order_id"}, dataset.Full, upperOnly), sinks.Append, []string{"no lower bound", "paid_at - ordered_at"}},
		{"a time range on columns without a watermark", o.JoinWhere(p, []string{"order_id"}, dataset.Semi, withinFifteenMinutes()), sinks.Append, []string{"semi join", "WithWatermark"}},
		{"an anti join of two streams", ow.JoinWhere(pw, []string{"order_id"}, dataset.Anti, withinFifteenMinutes()), sinks.Append, []string{"anti join", "not supported"}},
		{"a TTL on an outer join", ow.JoinWhere(pw, []string{"order_id"}, dataset.Left, withinFifteenMinutes()).StateTTL(time.Minute), sinks.Append, []string{"TTL", "inner"}},
		{"a full join of a stream with a bounded Dataset", o.Join(static, []string{"order_id"}, dataset.Full), sinks.Append, []string{"full join", "bounded", "every batch"}},
		{"a join of streams in complete mode", o.Join(p, []string{"order_id"}, dataset.Inner), sinks.Complete, []string{"complete output mode"}},
		{"an aggregation without a window feeding a join", o.GroupBy("order_id").Count().Join(p, []string{"order_id"}, dataset.Inner), sinks.Update, []string{"feeding another stateful operator", "event-time window"}},
		{"complete mode ending in a join", ow.GroupBy(dataset.Window("ordered_at", time.Minute), "order_id").Count().Join(p, []string{"order_id"}, dataset.Inner), sinks.Complete, []string{"complete output mode", "end in an aggregation"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := microbatch.WriteStream(c.ds, newRecordingSink()).Checkpoint("/c").FS(vfs.NewMem()).OutputMode(c.mode).Start(context.Background())
			if err == nil {
				q.Stop()
				t.Fatal("started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// RefreshEvery(1) reads the bounded side again before every batch, so rows
// added to its Parquet directory meanwhile join; without it, the side read
// at start is used for the whole query.
func TestStreamStaticJoinRefreshSeesNewFiles(t *testing.T) {
	for _, refresh := range []int{0, 1} {
		t.Run(fmt.Sprintf("refresh=%d", refresh), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 2}
			dir := t.TempDir() + "/discounts"
			writeDiscounts := func(from int64) {
				var rows [][3]int64
				for i := from; i < from+50; i++ {
					rows = append(rows, [3]int64{i, 0, i % 7})
				}
				r := recordOf(mem, paymentSchema, rows...)
				defer r.Release()
				err := dataset.FromRecords(paymentSchema, r).WithConfig(cfg).Select("order_id", "paid").
					Write(context.Background(), dir, dataset.WriteOptions{Mode: sinkpq.Append})
				if err != nil {
					t.Fatal(err)
				}
			}
			writeDiscounts(0)
			var rows [][3]int64
			for i := int64(0); i < 100; i++ {
				rows = append(rows, [3]int64{i, 0, i})
			}
			orders := recordOf(mem, orderSchema, rows...)
			defer orders.Release()
			src, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema, MaxRowsPerBatch: 50})
			defer src.Close()
			src.Append(orders)
			static := dataset.Read(dir).WithConfig(cfg)
			job := dataset.ReadStream(src).WithConfig(cfg).Join(static, []string{"order_id"}, dataset.Inner)
			if refresh > 0 {
				job = job.RefreshEvery(refresh)
			}
			sink := newRecordingSink()
			q, err := microbatch.WriteStream(job, sink).Checkpoint("/ckpt").FS(vfs.NewMem()).Trigger(microbatch.AvailableNow()).
				OnProgress(func(p microbatch.Progress) {
					if p.Batch == 0 {
						writeDiscounts(50)
					}
				}).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			want := 50
			if refresh > 0 {
				want = 100
			}
			if got := len(sink.rows()); got != want || len(q.RecentProgress()) != 2 {
				t.Fatalf("%d batches joined %d rows, want 2 batches and %d rows", len(q.RecentProgress()), got, want)
			}
		})
	}
}

// runTwoStreamsToEnd runs job over two event streams (each given its records, then
// one far-future event that moves the watermark past everything) with
// random batch sizes and a restart every batch, and returns the rows whose
// text does not mention the far-future day.
func runTwoStreamsToEnd(t *testing.T, mem memory.Allocator, job func(a, b *dataset.Dataset) *dataset.Dataset, cfg dataset.Config, a, b []arrow.Record) []string {
	t.Helper()
	far := t0.Add(48 * time.Hour)
	farRec := func() arrow.Record {
		bl := array.NewRecordBuilder(mem, eventSchema)
		defer bl.Release()
		bl.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(far.UnixMilli()))
		bl.Field(1).(*array.StringBuilder).Append("u0")
		bl.Field(2).(*array.Int64Builder).Append(0)
		return bl.NewRecord()
	}
	sa, _ := srcmem.New(srcmem.Config{Name: "a", Schema: eventSchema, MaxRowsPerBatch: 61})
	defer sa.Close()
	sb, _ := srcmem.New(srcmem.Config{Name: "b", Schema: eventSchema, MaxRowsPerBatch: 83})
	defer sb.Close()
	sa.Append(a...)
	sb.Append(b...)
	fa, fb := farRec(), farRec()
	sa.Append(fa)
	sb.Append(fb)
	fa.Release()
	fb.Release()
	ds := job(dataset.ReadStream(sa).WithConfig(cfg), dataset.ReadStream(sb).WithConfig(cfg))
	sink := newRecordingSink()
	fs := vfs.NewMem()
	for i := 0; i < 1000; i++ {
		q, err := microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(fs).OutputMode(sinks.Append).Trigger(microbatch.Once()).Start(context.Background())
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
	return withoutDay(sink.rows(), far)
}

func withoutDay(rows []string, day time.Time) []string {
	var out []string
	for _, r := range rows {
		if !strings.Contains(r, day.Format("2006-01-02")) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Window joins (Nexmark q8's shape): each stream aggregated per user and
// 10 s window, then the two joined on user and window end, in append mode.
// And an aggregate joined back to its input (q7's shape): the largest
// amount of each window joined with the events that have it.
func TestWindowJoinsAndAggregatesJoinedBackEqualTheBatchJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	a, b := events(mem, 21, 0, 900, 0), events(mem, 22, 0, 700, 0)
	defer func() {
		for _, r := range append(a, b...) {
			r.Release()
		}
	}()
	jobs := map[string]func(x, y *dataset.Dataset) *dataset.Dataset{
		"window join": func(x, y *dataset.Dataset) *dataset.Dataset {
			clicks := x.WithWatermark("ts", 5*time.Second).GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.CountAll().As("clicks"))
			spent := y.WithWatermark("ts", 5*time.Second).GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.Sum(dataset.Col("amount")).As("spent")).Drop("window_start")
			return clicks.Join(spent, []string{"user", "window_end"}, dataset.Inner)
		},
		"window left join": func(x, y *dataset.Dataset) *dataset.Dataset {
			clicks := x.WithWatermark("ts", 5*time.Second).GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.CountAll().As("clicks"))
			spent := y.WithWatermark("ts", 5*time.Second).Where(dataset.Col("amount").Gt(dataset.Lit(int64(60)))).
				GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.Sum(dataset.Col("amount")).As("spent")).Drop("window_start")
			return clicks.Join(spent, []string{"user", "window_end"}, dataset.Left)
		},
		"hot items (q5 shape): counts per sliding window joined with their maximum": func(x, _ *dataset.Dataset) *dataset.Dataset {
			counts := x.WithWatermark("ts", 5*time.Second).GroupBy(dataset.SlidingWindow("ts", 10*time.Second, 5*time.Second), "user").
				Agg(dataset.CountAll().As("n"))
			maxes := counts.GroupBy("window_end").Agg(dataset.Max(dataset.Col("n")).As("n"))
			return counts.Join(maxes, []string{"window_end", "n"}, dataset.Inner)
		},
		"max per window joined back": func(x, _ *dataset.Dataset) *dataset.Dataset {
			x = x.WithWatermark("ts", 5*time.Second)
			top := x.GroupBy(dataset.Window("ts", 10*time.Second)).Agg(dataset.Max(dataset.Col("amount")).As("amount"))
			return x.JoinWhere(top, []string{"amount"}, dataset.Inner,
				dataset.Col("ts").Ge(dataset.Col("window_start")).And(dataset.Col("ts").Lt(dataset.Col("window_end"))).
					And(dataset.Col("ts").Ge(dataset.AddDuration(dataset.Col("window_end"), 0, -int64(10*time.Second)))))
		},
	}
	for name, job := range jobs {
		t.Run(name, func(t *testing.T) {
			want := withoutDay(collectRows(t, job(dataset.FromRecords(eventSchema, a...).WithConfig(cfg), dataset.FromRecords(eventSchema, b...).WithConfig(cfg))), t0.Add(48*time.Hour))
			if len(want) < 20 {
				t.Fatalf("only %d rows expected", len(want))
			}
			got := runTwoStreamsToEnd(t, mem, job, cfg, a, b)
			if !slices.Equal(got, want) {
				t.Fatalf("stream gave %d rows, batch %d\n%s", len(got), len(want), diff(got, want))
			}
		})
	}
}

// The last stateful operator of a query may update: a join of two streams
// (whose rows are final) feeding an aggregation in complete mode gives, in
// its last batch, the batch job's table; the same in update mode gives each
// group's latest value.
func TestAJoinFeedingAnUpdatingAggregationEqualsTheBatchJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	orders, payments := ordersAndPayments(mem, 31, 600)
	defer func() {
		for _, r := range append(orders, payments...) {
			r.Release()
		}
	}()
	job := func(o, p *dataset.Dataset) *dataset.Dataset {
		return o.JoinWhere(p, []string{"order_id"}, dataset.Inner, withinFifteenMinutes()).
			WithColumn("bucket", dataset.Col("order_id").Mod(dataset.Lit(int64(7)))).
			GroupBy("bucket").Agg(dataset.CountAll().As("payments"), dataset.Sum(dataset.Col("paid")).As("paid"))
	}
	want := collectRows(t, job(dataset.FromRecords(orderSchema, orders...).WithConfig(cfg), dataset.FromRecords(paymentSchema, payments...).WithConfig(cfg)))
	for _, mode := range []sinks.Mode{sinks.Complete, sinks.Update} {
		t.Run(string(mode), func(t *testing.T) {
			os, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: orderSchema, MaxRowsPerBatch: 97})
			defer os.Close()
			ps, _ := srcmem.New(srcmem.Config{Name: "payments", Schema: paymentSchema, MaxRowsPerBatch: 131})
			defer ps.Close()
			os.Append(orders...)
			ps.Append(payments...)
			o := dataset.ReadStream(os).WithConfig(cfg).WithWatermark("ordered_at", 10*time.Second)
			p := dataset.ReadStream(ps).WithConfig(cfg).WithWatermark("paid_at", 10*time.Second)
			sink := newRecordingSink()
			q, err := microbatch.WriteStream(job(o, p), sink).Checkpoint("/ckpt").FS(vfs.NewMem()).OutputMode(mode).
				Trigger(microbatch.AvailableNow()).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			sink.mu.Lock()
			latest := map[string]string{} // bucket -> its last row
			var ids []int64
			for id := range sink.batches {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				if mode == sinks.Complete {
					clear(latest)
				}
				for _, r := range sink.batches[id] {
					latest[strings.SplitN(r, "|", 2)[0]] = r
				}
			}
			sink.mu.Unlock()
			var got []string
			for _, r := range latest {
				got = append(got, r)
			}
			// The sentinels (order -1, paid at the same time) join too.
			got = dropSentinel(got)
			slices.Sort(got)
			wantHere := dropSentinel(want)
			if len(ids) < 5 || !slices.Equal(got, wantHere) {
				t.Fatalf("%d batches: got %q\nwant %q", len(ids), got, wantHere)
			}
		})
	}
}
