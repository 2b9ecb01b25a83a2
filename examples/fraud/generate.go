package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// TxnSchema is a card transaction: its id (stream order), the card, the
// country it was made in, the amount in cents and its event time.
var TxnSchema = arrow.NewSchema([]arrow.Field{
	{Name: "txn_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "card", Type: arrow.BinaryTypes.String},
	{Name: "country", Type: arrow.BinaryTypes.String},
	{Name: "amount_cents", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

// Txn is one generated transaction.
type Txn struct {
	ID      int64
	Card    string
	Country string
	Cents   int64
	TS      time.Time // millisecond precision
}

// Generator makes a deterministic stream of card transactions with fraud
// patterns mixed in: bursts of a card's transactions within seconds,
// transactions of one card from two countries minutes apart, and amounts
// far above the card's usual. Transactions come in event-time order (equal
// times keep their id order): the rules judge a transaction by the ones
// before it, so a stream out of order would be judged differently.
type Generator struct {
	Seed  uint64
	Cards int       // default 2000
	Start time.Time // event time of the first transaction; default 2026-11-01T00:00:00Z
	// MeanGap is the mean event-time gap between transactions; default 1 s.
	MeanGap time.Duration
}

var countries = []string{"FR", "DE", "US", "GB", "ES", "IT", "NL", "BR", "JP", "IN"}

func (g Generator) withDefaults() Generator {
	if g.Cards <= 0 {
		g.Cards = 2000
	}
	if g.Start.IsZero() {
		g.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if g.MeanGap <= 0 {
		g.MeanGap = time.Second
	}
	return g
}

// Txns returns n transactions in stream order, ids 0..n-1.
func (g Generator) Txns(n int) []Txn {
	g = g.withDefaults()
	r := rand.New(rand.NewPCG(g.Seed, 0x6672617564))
	home := make([]string, g.Cards)
	typical := make([]float64, g.Cards) // a card's usual amount, cents
	for c := range home {
		home[c] = countries[r.IntN(len(countries))]
		typical[c] = 500 + r.Float64()*20_000
	}
	card := func(c int) string { return fmt.Sprintf("card-%04d", c) }
	amount := func(c int) int64 { // within a factor of ~2 of the card's usual
		return max(1, int64(typical[c]*math.Exp(r.NormFloat64()*0.35)))
	}
	var out []Txn
	t := g.Start
	for len(out) < n {
		t = t.Add(time.Duration(r.ExpFloat64() * float64(g.MeanGap)).Truncate(time.Millisecond))
		c := r.IntN(g.Cards)
		switch p := r.Float64(); {
		case p < 0.01: // a burst: 3-6 more within the next ~40 s
			out = append(out, Txn{Card: card(c), Country: home[c], Cents: amount(c), TS: t})
			for k, at := 0, t; k < 3+r.IntN(4); k++ {
				at = at.Add(time.Duration(2+r.IntN(10)) * time.Second)
				out = append(out, Txn{Card: card(c), Country: home[c], Cents: amount(c), TS: at})
			}
		case p < 0.02: // the card shows up abroad a few minutes later
			out = append(out, Txn{Card: card(c), Country: home[c], Cents: amount(c), TS: t})
			abroad := countries[r.IntN(len(countries))]
			out = append(out, Txn{Card: card(c), Country: abroad, Cents: amount(c), TS: t.Add(time.Duration(30+r.IntN(400)) * time.Second)})
		case p < 0.03: // a large amount
			out = append(out, Txn{Card: card(c), Country: home[c], Cents: int64(typical[c] * (5 + r.Float64()*40)), TS: t})
		case p < 0.04: // travel: an ordinary transaction abroad
			out = append(out, Txn{Card: card(c), Country: countries[r.IntN(len(countries))], Cents: amount(c), TS: t})
		default:
			out = append(out, Txn{Card: card(c), Country: home[c], Cents: amount(c), TS: t})
		}
	}
	// Scheduled transactions land later in time: order by event time,
	// generation order breaking ties, then number them.
	slices.SortStableFunc(out, func(a, b Txn) int { return a.TS.Compare(b.TS) })
	out = out[:n]
	for i := range out {
		out[i].ID = int64(i)
	}
	return out
}

// Records turns txns into records of at most rows rows (the caller
// releases them).
func Records(mem memory.Allocator, txns []Txn, rows int) []arrow.Record {
	var out []arrow.Record
	for from := 0; from < len(txns); from += rows {
		b := array.NewRecordBuilder(mem, TxnSchema)
		for _, x := range txns[from:min(len(txns), from+rows)] {
			b.Field(0).(*array.Int64Builder).Append(x.ID)
			b.Field(1).(*array.StringBuilder).Append(x.Card)
			b.Field(2).(*array.StringBuilder).Append(x.Country)
			b.Field(3).(*array.Int64Builder).Append(x.Cents)
			b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(x.TS.UnixMilli()))
		}
		out = append(out, b.NewRecord())
		b.Release()
	}
	return out
}
