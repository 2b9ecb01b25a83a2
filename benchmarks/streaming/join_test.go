package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
)

// tinyJoin is 200,000 events with 10,000 open keys in a 1 s window: 10 s
// of event time (10 windows) in 20 batches of 5,000 rows (0.5 s) per stream.
func tinyJoin(t *testing.T) options {
	return options{job: "join", events: 200_000, batchRows: 5_000, keys: 10_000, eventRate: 1, window: time.Second,
		delay: 100 * time.Millisecond, seed: defaultSeed, parallelism: 2, json: true, dir: t.TempDir()}
}

// The join case at tiny scale: the output equals the baseline, every field
// of the report is filled in, the state is as flat in the second half of
// the run as in the first, and no Arrow memory leaks.
func TestTinyJoinRunMatchesTheBaselineAndKeepsStateFlat(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := tinyJoin(t)
	o.mem = mem
	var out bytes.Buffer
	code, err := run(context.Background(), o, &out)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v\n%s", code, err, out.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, out.String())
	}
	for _, k := range []string{"events", "seconds", "events_per_sec", "batches", "batch_p50_ms", "state_rows", "state_bytes",
		"state_bytes_first_half", "state_bytes_second_half", "peak_rss_bytes", "output_rows", "unmatched_rows"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("report field %s = %v, want a positive number", k, rep[k])
		}
	}
	if rep["check"] != "ok" || rep["job"] != "join" || rep["run_windows"] != 10.0 || rep["dropped_late"] != 0.0 {
		t.Errorf("check %v, job %v, %v windows, %v dropped late; want ok, join, 10, 0", rep["check"], rep["job"], rep["run_windows"], rep["dropped_late"])
	}
	// 20 data batches and one for the final watermark.
	if rep["batches"] != 21.0 || rep["progress_missing"] != 0.0 {
		t.Errorf("%v batches (%v missed), want 21 (0)", rep["batches"], rep["progress_missing"])
	}
	// Orders stay for the window, the delay and their own batch (1.6 s,
	// 16,000 rows), payments for the delay and their batch (0.6 s, 6,000).
	if g := rep["state_growth"].(float64); g > 1.1 || rep["state_rows"].(float64) > 22_000 {
		t.Errorf("state grew %.3f times from the first half to the second, peak %v rows", g, rep["state_rows"])
	}
	t.Logf("%s", out.String())
}

// The baseline counts what a batch join of the same rows gives: every
// pair, and every order without a payment (a batch job has no watermark,
// so all of them).
func TestJoinBaselineEqualsTheBatchJoin(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := tinyJoin(t)
	g := newJoinGen(o)
	const orders, payments = 30_000, 29_000
	read := func(s *joinStream, n int64) []arrow.Record {
		splits, err := s.Splits(context.Background(), joinOffset(0), joinOffset(n))
		if err != nil {
			t.Fatal(err)
		}
		var recs []arrow.Record
		for _, sp := range splits {
			if err := sp.Read(context.Background(), mem, func(r arrow.Record) error { recs = append(recs, r); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		return recs
	}
	os := read(&joinStream{name: "orders", gen: g, total: orders}, orders)
	ps := read(&joinStream{name: "payments", gen: g, total: payments}, payments)
	defer func() {
		for _, r := range append(os, ps...) {
			r.Release()
		}
	}()
	cfg := dataset.Config{Allocator: mem, Parallelism: 2}
	inWindow := dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(o.window)))
	recs, err := dataset.FromRecords(joinOrders, os...).WithConfig(cfg).
		JoinWhere(dataset.FromRecords(joinPayments, ps...).WithConfig(cfg), []string{"order_id"}, dataset.Left, inWindow).
		Select("order_id", "amount", "payment_id", "paid").CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got joinTotals
	for _, r := range recs {
		if err := got.add(r); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	want := joinBaseline(o, orders, payments, math.MaxInt64)
	if got != want || want.Unmatched == 0 || want.Rows == want.Unmatched {
		t.Fatalf("batch join %+v, baseline %+v", got, want)
	}
	t.Logf("%+v", want)
}
