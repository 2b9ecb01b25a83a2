package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

// The stream the tests recount is in event-time order (so no event is
// late for the queries' watermark), every order is placed once, and paid at
// most once, after PayDelayMin to PayDelayMax; the same seed, start and rate
// give the same stream.
func TestEventsAreInOrderAndPaymentsFollowTheirOrders(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	take := func(seed uint64, n int) []Event {
		s, err := NewEvents(seed, start, 200)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]Event, n)
		for i := range out {
			p := s.Peek()
			if out[i] = s.Next(); p != out[i] {
				t.Fatalf("event %d: Peek %+v is not Next %+v", i, p, out[i])
			}
		}
		return out
	}
	evs := take(1, 40_000)
	placed := map[int64]Event{}
	paid := map[int64]bool{}
	for i, e := range evs {
		if i > 0 && e.TS.Before(evs[i-1].TS) {
			t.Fatalf("event %d (%+v) is before event %d (%+v)", i, e, i-1, evs[i-1])
		}
		switch e.Status {
		case StatusPlaced:
			if _, dup := placed[e.OrderID]; dup || e.OrderID != int64(len(placed)) {
				t.Fatalf("event %d places order %d after %d orders", i, e.OrderID, len(placed))
			}
			if want := start.Add(time.Duration(e.OrderID) * 5 * time.Millisecond); !e.TS.Equal(want) {
				t.Fatalf("order %d placed at %v, want %v (200/s)", e.OrderID, e.TS, want)
			}
			placed[e.OrderID] = e
		case StatusPaid:
			o, ok := placed[e.OrderID]
			d := e.TS.Sub(o.TS)
			if !ok || paid[e.OrderID] || d < PayDelayMin || d >= PayDelayMax || o.Region != e.Region || o.Cents != e.Cents {
				t.Fatalf("event %d pays %+v %v after placing %+v (paid before: %v)", i, e, d, o, paid[e.OrderID])
			}
			paid[e.OrderID] = true
		default:
			t.Fatalf("event %d has status %q", i, e.Status)
		}
	}
	// Orders placed PayDelayMax before the last event had the time to be paid.
	due, done := 0, 0
	for _, o := range placed {
		if !o.TS.Add(PayDelayMax).After(evs[len(evs)-1].TS) {
			due++
			if paid[o.OrderID] {
				done++
			}
		}
	}
	if share := float64(done) / float64(due); due < 10_000 || math.Abs(share-PaidPercent/100.0) > 0.02 {
		t.Fatalf("%d of %d orders paid (%.3f), want about %d%%", done, due, share, PaidPercent)
	}
	if !slices.Equal(take(1, 5000), evs[:5000]) {
		t.Fatal("seed 1 gave another stream the second time")
	}
	if slices.Equal(take(2, 5000), evs[:5000]) {
		t.Fatal("seeds 1 and 2 gave the same stream")
	}
}
