package microbatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
