package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks/parquet"
)

// Order is one row of the orders stream (columns order_id, customer,
// amount, ordered_at).
type Order struct {
	OrderID   int64
	Customer  string
	Amount    int64 // cents
	OrderedAt time.Time
}

// Payment is one row of the payments stream (columns payment_id, order_id,
// paid, paid_at).
type Payment struct {
	PaymentID int64
	OrderID   int64
	Paid      int64 // cents
	PaidAt    time.Time
}

// History is generated demo data: orders one every 0-4 s from Start, and
// the payments that came for them, both in event-time order.
type History struct {
	Start    time.Time
	Orders   []Order
	Payments []Payment
}

// Generate makes orders orders and their payments, a pure function of
// (seed, orders, start). Of the orders, about
//
//	65% are paid once within 15 minutes (0 s to 14m59s after the order)
//	 7% are paid in two parts, both within 15 minutes
//	 2% are paid exactly 15 minutes after the order (still in time)
//	 8% are paid late, 15m01s to 45 minutes after
//	 2% carry a payment stamped up to 30 s before the order (a skewed clock)
//	16% are never paid
//
// and 2% of payments name an order that does not exist. Times are whole
// milliseconds.
func Generate(seed uint64, orders int, start time.Time) History {
	r := rand.New(rand.NewPCG(seed, 0x756e70616964))
	h := History{Start: start}
	ms := func(lo, hi int64) time.Duration { return time.Duration(lo+r.Int64N(hi-lo+1)) * time.Millisecond }
	t := start
	pay := func(order int64, at time.Time, cents int64) {
		h.Payments = append(h.Payments, Payment{PaymentID: int64(len(h.Payments)) + 1, OrderID: order, Paid: cents, PaidAt: at})
	}
	for i := range orders {
		id := int64(1000 + i)
		amount := int64(100 + r.IntN(20000))
		h.Orders = append(h.Orders, Order{OrderID: id, Customer: fmt.Sprintf("c-%03d", r.IntN(200)), Amount: amount, OrderedAt: t})
		const min15 = int64(15 * 60 * 1000)
		switch k := r.IntN(100); {
		case k < 65:
			pay(id, t.Add(ms(0, min15-1000)), amount)
		case k < 72:
			part := amount / 3
			pay(id, t.Add(ms(0, min15/2)), part)
			pay(id, t.Add(ms(min15/2, min15)), amount-part)
		case k < 74:
			pay(id, t.Add(Window), amount)
		case k < 82:
			pay(id, t.Add(ms(min15+1000, 3*min15)), amount)
		case k < 84:
			pay(id, t.Add(-ms(1, 30_000)), amount)
		}
		if r.IntN(50) == 0 {
			pay(int64(900_000+i), t.Add(ms(0, 60_000)), int64(100+r.IntN(1000)))
		}
		t = t.Add(ms(0, 4000))
	}
	slices.SortStableFunc(h.Payments, func(a, b Payment) int { return a.PaidAt.Compare(b.PaidAt) })
	return h
}

// FileSpan is the event time one generated file covers: the history is
// written as files of ten minutes of orders and ten minutes of payments, as
// an upstream job dropping a file per stream every ten minutes would.
const FileSpan = 10 * time.Minute

// WriteFiles writes the history as Parquet files into ordersDir and
// paymentsDir: file k of a stream holds its rows with event time in
// [Start + k·FileSpan, Start + (k+1)·FileSpan) (earlier rows go to file 0),
// named orders-<k>-00000.parquet and payments-<k>-00000.parquet and written
// in order of k, which is the order a directory stream reads them in.
func (h History) WriteFiles(ctx context.Context, mem memory.Allocator, ordersDir, paymentsDir string) error {
	if err := writeChunks(ctx, mem, ordersDir, "orders", h.Start, h.Orders, func(o Order) time.Time { return o.OrderedAt }); err != nil {
		return err
	}
	return writeChunks(ctx, mem, paymentsDir, "payments", h.Start, h.Payments, func(p Payment) time.Time { return p.PaidAt })
}

func writeChunks[T any](ctx context.Context, mem memory.Allocator, dir, name string, start time.Time, rows []T, at func(T) time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for lo := 0; lo < len(rows); {
		k := max(0, int(at(rows[lo]).Sub(start)/FileSpan))
		hi := lo
		for hi < len(rows) && max(0, int(at(rows[hi]).Sub(start)/FileSpan)) == k {
			hi++
		}
		if err := writeFile(ctx, mem, dir, fmt.Sprintf("%s-%04d", name, k), rows[lo:hi]); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

func writeFile[T any](ctx context.Context, mem memory.Allocator, dir, prefix string, rows []T) error {
	ds := dataset.FromStructs(rows).WithConfig(dataset.Config{Allocator: mem})
	recs, err := ds.CollectRecords(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	w, err := parquet.NewFileWriter(mem, dir, prefix, ds.Schema(), parquet.Options{})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			w.Abort()
			return fmt.Errorf("write %s: %w", filepath.Join(dir, prefix), err)
		}
	}
	_, err = w.Close()
	return err
}

// schemaOf is the Arrow schema FromStructs gives T.
func schemaOf[T any]() *arrow.Schema { return dataset.FromStructs([]T{}).Schema() }
