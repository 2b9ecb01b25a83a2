package main

import (
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset"
)

// The rules, per card, each judging a transaction T by T and the card's
// transactions before it in stream order (its "history"):
//
//   - velocity: T is at least the 4th transaction of the card whose event
//     time is in (T.ts − 60 s, T.ts], counting T: more than 3 in a minute.
//   - geo: some transaction of the history with event time in
//     (T.ts − 5 min, T.ts] was made in another country than T.
//   - amount: the history has at least 3 transactions and T's amount is
//     more than 10 times their mean (amount × n > 10 × sum, in cents).
//
// A card's history is only its current activity: when T comes more than
// 30 minutes of event time after the card's previous transaction, the
// history before T is forgotten (for every rule). The streaming job also
// drops an idle card's state once the watermark passes its last
// transaction + 30 min (an event-time timeout), which, with transactions in
// event-time order, forgets exactly what the rule above forgets.
const (
	VelocityWindow = time.Minute
	VelocityCount  = 4
	GeoWindow      = 5 * time.Minute
	AmountFactor   = 10
	AmountMinTxns  = 3
	IdleAfter      = 30 * time.Minute
	// WatermarkDelay is how late a transaction may arrive; the generator's
	// are in order, so any positive delay works.
	WatermarkDelay = 10 * time.Second
)

// AlertSchema is one rule firing on one transaction.
var AlertSchema = arrow.NewSchema([]arrow.Field{
	{Name: "txn_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "card", Type: arrow.BinaryTypes.String},
	{Name: "rule", Type: arrow.BinaryTypes.String},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: "detail", Type: arrow.BinaryTypes.String},
}, nil)

// recent is a transaction of the last GeoWindow, kept in card state.
type recent struct {
	TS      int64 // ms
	Country string
}

// cardState is what the job keeps per card: the transactions of the last
// five minutes (enough for velocity and geo) and the running count and sum
// of the current activity (for amount).
type cardState struct {
	Recent []recent
	N      int64
	Sum    int64
	Last   int64 // ms of the latest transaction
}

// Alerts is the job: alerts of the three rules over a stream (or a
// Dataset) of transactions of TxnSchema.
func Alerts(txns *dataset.Dataset) *dataset.Dataset {
	return txns.WithWatermark("ts", WatermarkDelay).GroupByKey("card").
		FlatMapGroupsWithState("fraud.rules", AlertSchema, dataset.EventTimeTimeout, dataset.StateFunc(judge))
}

// judge applies the rules to a card's transactions of one batch, in order.
func judge(key dataset.Key, rows arrow.Record, st *dataset.State[cardState], out *array.RecordBuilder) error {
	if st.HasTimedOut() { // idle for IdleAfter: forget the card
		st.Remove()
		return nil
	}
	s, _ := st.Get()
	card := key[0].(string)
	ids := rows.Column(0).(*array.Int64)
	country := rows.Column(2).(*array.String)
	cents := rows.Column(3).(*array.Int64)
	ts := rows.Column(4).(*array.Timestamp)
	alert := func(i int, rule, detail string) {
		out.Field(0).(*array.Int64Builder).Append(ids.Value(i))
		out.Field(1).(*array.StringBuilder).Append(card)
		out.Field(2).(*array.StringBuilder).Append(rule)
		out.Field(3).(*array.TimestampBuilder).Append(ts.Value(i))
		out.Field(4).(*array.StringBuilder).Append(detail)
	}
	for i := 0; i < int(rows.NumRows()); i++ {
		t := int64(ts.Value(i))
		if s.N > 0 && t-s.Last > IdleAfter.Milliseconds() {
			s = cardState{}
		}
		// Keep (t − GeoWindow, t]; velocity looks at the tail of it.
		keep := s.Recent[:0]
		for _, r := range s.Recent {
			if r.TS > t-GeoWindow.Milliseconds() {
				keep = append(keep, r)
			}
		}
		s.Recent = keep
		inMinute := 1
		var other string
		for _, r := range s.Recent {
			if r.TS > t-VelocityWindow.Milliseconds() {
				inMinute++
			}
			if r.Country != country.Value(i) && other == "" {
				other = r.Country
			}
		}
		if inMinute >= VelocityCount {
			alert(i, "velocity", fmt.Sprintf("%d transactions in %v", inMinute, VelocityWindow))
		}
		if other != "" {
			alert(i, "geo", fmt.Sprintf("%s then %s within %v", other, country.Value(i), GeoWindow))
		}
		if s.N >= AmountMinTxns && cents.Value(i)*s.N > AmountFactor*s.Sum {
			alert(i, "amount", fmt.Sprintf("%d cents, %.1f× the average %d", cents.Value(i), float64(cents.Value(i)*s.N)/float64(s.Sum), s.Sum/s.N))
		}
		s.Recent = append(s.Recent, recent{TS: t, Country: country.Value(i)})
		s.N++
		s.Sum += cents.Value(i)
		s.Last = max(s.Last, t)
	}
	st.Update(s)
	st.SetTimeoutTimestamp(time.UnixMilli(s.Last).Add(IdleAfter))
	return nil
}
