package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
)

// board keeps the newest hourly totals the totals query emitted (update
// mode: a row replaces the earlier one of its hour and customer), so the
// demo can print the top customers every few seconds instead of every
// batch's updates. It lives in the driver: ForeachBatch runs there, on a
// cluster too.
type board struct {
	mu     sync.Mutex
	totals map[boardKey]boardRow
	batch  int64 // the last batch folded in
}

type boardKey struct {
	hour     time.Time
	customer string
}

type boardRow struct {
	WindowStart time.Time `sluice:"window_start"`
	Customer    string    `sluice:"customer"`
	Total       float64   `sluice:"total"`
	Orders      int64     `sluice:"orders"`
}

func newBoard() *board { return &board{totals: map[boardKey]boardRow{}, batch: -1} }

// update is the totals query's ForeachBatch function.
func (b *board) update(ctx context.Context, batch int64, ds *dataset.Dataset) error {
	rows, err := dataset.CollectStructs[boardRow](ctx, ds.Select(
		dataset.Col("window_start"), dataset.Col("customer"),
		dataset.Col("total").Cast(dataset.Type(arrow.PrimitiveTypes.Float64)).As("total"), dataset.Col("orders")))
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range rows {
		b.totals[boardKey{r.WindowStart, r.Customer}] = r
	}
	b.batch = batch
	return nil
}

// print writes the top n customers so far (the sums of their hourly
// totals) as a short table; nothing before the first batch.
func (b *board) print(w io.Writer, n int) {
	b.mu.Lock()
	sums := map[string]boardRow{}
	hours := map[time.Time]bool{}
	var orders int64
	for k, r := range b.totals {
		s := sums[k.customer]
		s.Customer, s.Total, s.Orders = k.customer, s.Total+r.Total, s.Orders+r.Orders
		sums[k.customer] = s
		hours[k.hour] = true
		orders += r.Orders
	}
	batch := b.batch
	b.mu.Unlock()
	var top []boardRow
	for _, r := range sums {
		top = append(top, r)
	}
	if batch < 0 || n == 0 {
		return
	}
	slices.SortFunc(top, func(a, b boardRow) int {
		if a.Total != b.Total {
			if a.Total > b.Total {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Customer, b.Customer)
	})
	fmt.Fprintf(w, "\ntop customers so far (%d orders over %d event-time hours, as of batch %d):\n", orders, len(hours), batch)
	fmt.Fprintf(w, "  %-4s %-14s %12s %7s\n", "#", "customer", "total", "orders")
	for i, r := range top[:min(n, len(top))] {
		fmt.Fprintf(w, "  %-4d %-14s %12.2f %7d\n", i+1, r.Customer, r.Total, r.Orders)
	}
	fmt.Fprintln(w)
}

// batchLine is a batch's progress as one line: rows in and their rate,
// the watermark, how far the sources are behind, the state kept.
func batchLine(query string, p microbatch.Progress) string {
	wm := "-"
	if !p.Watermark.IsZero() {
		wm = p.Watermark.UTC().Format("2006-01-02 15:04:05")
	}
	lag, known := int64(0), false
	for _, s := range p.Sources {
		if s.Lag >= 0 {
			lag, known = lag+s.Lag, true
		}
	}
	lagText := "-"
	if known {
		lagText = fmt.Sprintf("%d", lag)
	}
	var state int64
	for _, op := range p.StateOperators {
		state += op.Rows
	}
	return fmt.Sprintf("%-7s batch %4d  %7d rows in %9.0f rows/s  watermark %s  lag %s  state %d rows",
		query, p.Batch, p.InputRows, p.ProcessedPerS, wm, lagText, state)
}
