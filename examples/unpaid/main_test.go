package main

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
)

var testStart = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// expectUnpaid is the answer in plain Go, sharing nothing with the engine:
// every order without a payment at or after its time and at most Window
// later, in event-time order.
func expectUnpaid(h History) []UnpaidOrder {
	paid := map[int64][]time.Time{}
	for _, p := range h.Payments {
		paid[p.OrderID] = append(paid[p.OrderID], p.PaidAt)
	}
	var out []UnpaidOrder
	for _, o := range h.Orders {
		inTime := false
		for _, at := range paid[o.OrderID] {
			if !at.Before(o.OrderedAt) && !at.After(o.OrderedAt.Add(Window)) {
				inTime = true
			}
		}
		if !inTime {
			out = append(out, UnpaidOrder{OrderID: o.OrderID, Customer: o.Customer, Amount: o.Amount, OrderedAt: o.OrderedAt})
		}
	}
	return out
}

// finalWatermark is the watermark after the whole history, in plain Go:
// each stream's newest event time minus Lateness, the slower of the two.
func finalWatermark(h History) time.Time {
	var lastOrder, lastPayment time.Time
	for _, o := range h.Orders {
		if o.OrderedAt.After(lastOrder) {
			lastOrder = o.OrderedAt
		}
	}
	for _, p := range h.Payments {
		if p.PaidAt.After(lastPayment) {
			lastPayment = p.PaidAt
		}
	}
	if lastPayment.Before(lastOrder) {
		lastOrder = lastPayment
	}
	return lastOrder.Add(-Lateness)
}

func sortUnpaid(us []UnpaidOrder) {
	slices.SortFunc(us, func(a, b UnpaidOrder) int { return cmp.Compare(a.OrderID, b.OrderID) })
	for i := range us {
		us[i].OrderedAt = us[i].OrderedAt.UTC()
	}
}

func diffUnpaid(t *testing.T, what string, got, want []UnpaidOrder) {
	t.Helper()
	sortUnpaid(got)
	sortUnpaid(want)
	for i := 1; i < len(got); i++ {
		if got[i].OrderID == got[i-1].OrderID {
			t.Fatalf("%s: order %d reported twice", what, got[i].OrderID)
		}
	}
	if slices.Equal(got, want) {
		return
	}
	in := func(us []UnpaidOrder, u UnpaidOrder) bool {
		_, ok := slices.BinarySearchFunc(us, u.OrderID, func(x UnpaidOrder, id int64) int { return cmp.Compare(x.OrderID, id) })
		return ok
	}
	for _, u := range want {
		if !in(got, u) {
			t.Fatalf("%s: %d unpaid orders, want %d; missing %v", what, len(got), len(want), u)
		}
	}
	for _, u := range got {
		if !in(want, u) {
			t.Fatalf("%s: %d unpaid orders, want %d; extra %v", what, len(got), len(want), u)
		}
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %+v, want %+v", what, got[i], want[i])
		}
	}
}

// The stream reports exactly the orders plain Go finds unpaid, each once,
// except those whose 15 minutes the final watermark has not passed; the
// join's state stays at about 16 minutes of orders; and the same job as a
// batch job over the same files reports every unpaid order.
func TestTheStreamReportsEveryUnpaidOrderOnceTheWatermarkPassesIt(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	h := Generate(7, 4000, testStart) // about 2 h 13 min of orders
	dir := t.TempDir()
	o := options{orders: filepath.Join(dir, "orders"), payments: filepath.Join(dir, "payments"),
		checkpoint: filepath.Join(dir, "checkpoint"), filesPerBatch: 1, mem: mem}
	if err := h.WriteFiles(ctx, mem, o.orders, o.payments); err != nil {
		t.Fatal(err)
	}

	all := expectUnpaid(h)
	wm := finalWatermark(h)
	var want []UnpaidOrder
	for _, u := range all {
		if !u.OrderedAt.Add(Window).After(wm) {
			want = append(want, u)
		}
	}
	// The data has the cases the join must tell apart.
	orderedAt := map[int64]time.Time{}
	for _, o := range h.Orders {
		orderedAt[o.OrderID] = o.OrderedAt
	}
	boundary, early := 0, 0
	for _, p := range h.Payments {
		if at, ok := orderedAt[p.OrderID]; ok && p.PaidAt.Equal(at.Add(Window)) {
			boundary++
		} else if ok && p.PaidAt.Before(at) {
			early++
		}
	}
	if boundary == 0 || early == 0 || len(want) < 500 || len(all)-len(want) < 50 {
		t.Fatalf("weak data: %d payments at exactly 15 min, %d before the order, %d unpaid of which %d still open",
			boundary, early, len(all), len(all)-len(want))
	}

	var got []UnpaidOrder
	sum, err := run(ctx, o, func(_ int64, u UnpaidOrder) { got = append(got, u) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders, %d payments: %d unpaid reported in %d batches, %d still open; state peak %d rows",
		len(h.Orders), len(h.Payments), len(got), sum.batches, len(all)-len(want), sum.peakState)
	if !sum.watermark.Equal(wm) {
		t.Errorf("final watermark %v, plain Go says %v", sum.watermark.UTC(), wm)
	}
	diffUnpaid(t, "stream", got, want)
	if sum.batches < 10 {
		t.Errorf("%d batches: the files should arrive over many", sum.batches)
	}
	// Orders stay for the window, the lateness and the batch's own file
	// (26 min at one per 2 s: about 780); payments leave once the watermark
	// passes them (the batch's file and the lateness: about 330).
	if sum.peakState == 0 || sum.peakState > 1400 {
		t.Errorf("join state peaked at %d rows", sum.peakState)
	}

	// The same job function as a batch job: no watermark holds orders open.
	batch, err := dataset.CollectStructs[UnpaidOrder](ctx,
		Unpaid(dataset.Read(o.orders).WithConfig(dataset.Config{Allocator: mem}), dataset.Read(o.payments).WithConfig(dataset.Config{Allocator: mem})))
	if err != nil {
		t.Fatal(err)
	}
	diffUnpaid(t, "batch", batch, all)
}
