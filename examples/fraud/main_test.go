package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
)

// expected computes the alerts of rules.go's rules in plain Go, straight
// from their definitions: each card's history is its transactions so far
// in the current activity (reset after a gap of more than IdleAfter), kept
// whole, with no state store, timeouts or batches. With idleReset false
// the history is never reset. Alerts are "txn_id|card|rule" in transaction
// then rule order.
func expected(txns []Txn, idleReset bool) []string {
	history := map[string][]Txn{}
	var out []string
	for _, t := range txns {
		h := history[t.Card]
		if idleReset && len(h) > 0 && t.TS.Sub(h[len(h)-1].TS) > IdleAfter {
			h = nil
		}
		inMinute, abroad, sum := 1, false, int64(0)
		for _, p := range h {
			age := t.TS.Sub(p.TS)
			if age < VelocityWindow {
				inMinute++
			}
			if age < GeoWindow && p.Country != t.Country {
				abroad = true
			}
			sum += p.Cents
		}
		var rules []string
		if len(h) >= AmountMinTxns && t.Cents*int64(len(h)) > AmountFactor*sum {
			rules = append(rules, "amount")
		}
		if abroad {
			rules = append(rules, "geo")
		}
		if inMinute >= VelocityCount {
			rules = append(rules, "velocity")
		}
		for _, r := range rules {
			out = append(out, fmt.Sprintf("%d|%s|%s", t.ID, t.Card, r))
		}
		history[t.Card] = append(h, t)
	}
	return out
}

func render(alerts []Alert) []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = fmt.Sprintf("%d|%s|%s", a.TxnID, a.Card, a.Rule)
	}
	return out
}

func firstDiff(got, want []string) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("at alert %d: got %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("got %d alerts, want %d", len(got), len(want))
}

// The streaming job's alerts equal the rules computed independently over
// the same generated transactions, whatever the micro-batch size, and so
// do those of the same job run as a batch job.
func TestAlertsEqualThePlainGoRules(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 60_000
	gen := Generator{Seed: 42}
	txns := gen.Txns(n)
	want := expected(txns, true)
	perRule := map[string]int{}
	for _, a := range want {
		perRule[strings.Split(a, "|")[2]]++
	}
	// Every rule fires, and forgetting idle cards changes the answer, so
	// the comparison covers the rules and the timeouts.
	if perRule["amount"] < 20 || perRule["geo"] < 20 || perRule["velocity"] < 20 {
		t.Fatalf("too few alerts per rule to test them: %v", perRule)
	}
	if slices.Equal(expected(txns, false), want) {
		t.Fatal("the idle reset changes no alert on this data; the test would not see it")
	}
	for _, batch := range []int64{997, 10_000} {
		t.Run(fmt.Sprintf("%d per batch", batch), func(t *testing.T) {
			alerts, state, err := Run(context.Background(), mem, txns, batch, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if got := render(alerts); !slices.Equal(got, want) {
				t.Fatalf("stream: %s", firstDiff(got, want))
			}
			cards := map[string]bool{}
			for _, x := range txns {
				cards[x.Card] = true
			}
			if state <= 0 || state >= int64(len(cards)) {
				t.Fatalf("%d cards in state at the end of %d; idle ones should have timed out", state, len(cards))
			}
		})
	}
	t.Run("batch job", func(t *testing.T) {
		recs := Records(mem, txns, 4096)
		defer func() {
			for _, r := range recs {
				r.Release()
			}
		}()
		out, err := Alerts(dataset.FromRecords(TxnSchema, recs...).WithConfig(dataset.Config{Allocator: mem, ShufflePartitions: 3})).
			CollectRecords(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var alerts []Alert
		for _, r := range out {
			ids, cards, rules := r.Column(0).(*array.Int64), r.Column(1).(*array.String), r.Column(2).(*array.String)
			for i := 0; i < int(r.NumRows()); i++ {
				alerts = append(alerts, Alert{TxnID: ids.Value(i), Card: cards.Value(i), Rule: rules.Value(i)})
			}
			r.Release()
		}
		slices.SortFunc(alerts, func(a, b Alert) int {
			return cmp.Or(cmp.Compare(a.TxnID, b.TxnID), strings.Compare(a.Rule, b.Rule))
		})
		if got := render(alerts); !slices.Equal(got, want) {
			t.Fatalf("batch job: %s", firstDiff(got, want))
		}
	})
}
