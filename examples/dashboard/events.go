package main

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/sources/generate"
)

// Order statuses: every order is placed, and PaidPercent of them are paid
// PayDelayMin to PayDelayMax later (event time).
const (
	StatusPlaced = "placed"
	StatusPaid   = "paid"

	PaidPercent = 62
	PayDelayMin = 2 * time.Second
	PayDelayMax = 30 * time.Second
)

// EventSchema is the JSON value of an order event on the topic; the Kafka
// source decodes it into these columns (and adds topic, partition, offset...).
var EventSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "customer", Type: arrow.BinaryTypes.String},
	{Name: "region", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

// Event is one order event: an order placed, or an order paid.
type Event struct {
	OrderID  int64
	Customer string
	Region   string
	Cents    int64 // the order's amount
	Status   string
	TS       time.Time // event time, whole milliseconds
}

// JSON is the event as the topic carries it.
func (e Event) JSON() []byte {
	b, _ := json.Marshal(map[string]any{
		"order_id": e.OrderID, "customer": e.Customer, "region": e.Region,
		"amount": fmt.Sprintf("%d.%02d", e.Cents/100, e.Cents%100),
		"status": e.Status, "ts": e.TS.UnixMilli(),
	})
	return b
}

// Events is the shop's order event stream in event-time order. Orders come
// from the orders generator of sources/generate (customer, region, amount,
// one every 1/rate s from start); whether and when an order is paid is a
// pure function of (seed, order id). Placed events have strictly increasing
// times, and payments are merged in by time, so the stream is never out of
// order: the same (seed, start, rate) always gives the same sequence.
type Events struct {
	orders  generate.Orders
	seed    uint64
	next    int64   // next order id to generate
	placed  []Event // generated, not yet placed, in order
	pending paidQueue
}

// NewEvents returns the stream of orders placed rate times a second (1 to
// 1000: order times are whole milliseconds apart) from start.
func NewEvents(seed uint64, start time.Time, rate int) (*Events, error) {
	if rate < 1 || rate > 1000 {
		return nil, fmt.Errorf("dashboard: rate %d orders/s: want 1 to 1000", rate)
	}
	return &Events{seed: seed, orders: generate.Orders{Seed: seed, Start: start.Truncate(time.Millisecond),
		Interval: time.Duration(1000/rate) * time.Millisecond}}, nil
}

// Peek is the next event, without taking it.
func (s *Events) Peek() Event {
	if len(s.placed) == 0 {
		s.generate(256)
	}
	if len(s.pending) > 0 && !s.pending[0].TS.After(s.placed[0].TS) {
		return s.pending[0]
	}
	return s.placed[0]
}

// Next takes the next event.
func (s *Events) Next() Event {
	e := s.Peek()
	if e.Status == StatusPaid {
		heap.Pop(&s.pending)
		return e
	}
	s.placed = s.placed[1:]
	if d, ok := s.payment(e.OrderID); ok {
		p := e
		p.Status, p.TS = StatusPaid, e.TS.Add(d)
		heap.Push(&s.pending, p)
	}
	return e
}

// payment says whether order id is paid and how long after it was placed.
func (s *Events) payment(id int64) (time.Duration, bool) {
	r := mix(s.seed ^ 0x7061796d656e74 ^ uint64(id)*0x9e3779b97f4a7c15)
	if r%100 >= PaidPercent {
		return 0, false
	}
	span := uint64((PayDelayMax - PayDelayMin) / time.Millisecond)
	return PayDelayMin + time.Duration((r>>8)%span)*time.Millisecond, true
}

func (s *Events) generate(n int64) {
	rec := s.orders.Record(memory.DefaultAllocator, s.next, n)
	defer rec.Release()
	ids, cust := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
	reg, amt := rec.Column(2).(*array.String), rec.Column(3).(*array.Decimal128)
	ts := rec.Column(4).(*array.Timestamp)
	for i := 0; i < int(n); i++ {
		s.placed = append(s.placed, Event{OrderID: ids.Value(i), Customer: cust.Value(i), Region: reg.Value(i),
			Cents: int64(amt.Value(i).LowBits()), Status: StatusPlaced, TS: ts.Value(i).ToTime(arrow.Millisecond).UTC()})
	}
	s.next += n
}

func mix(x uint64) uint64 { // splitmix64's finaliser
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// paidQueue holds payments not yet due, earliest first (then by order id).
type paidQueue []Event

func (q paidQueue) Len() int { return len(q) }
func (q paidQueue) Less(i, j int) bool {
	if !q[i].TS.Equal(q[j].TS) {
		return q[i].TS.Before(q[j].TS)
	}
	return q[i].OrderID < q[j].OrderID
}
func (q paidQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *paidQueue) Push(x any)   { *q = append(*q, x.(Event)) }
func (q *paidQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// produce writes each event to topic when the wall clock reaches its event
// time, until ctx ends: the topic (one partition) then holds the stream in
// order, so event k is at offset k.
func produce(ctx context.Context, brokers []string, topic string, events *Events) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return fmt.Errorf("order producer: %w", err)
	}
	defer cl.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var recs []*kgo.Record
		for now := time.Now(); !events.Peek().TS.After(now); {
			e := events.Next()
			recs = append(recs, &kgo.Record{Key: []byte(e.Customer), Value: e.JSON(), Timestamp: e.TS})
		}
		if len(recs) == 0 {
			continue
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("order producer: write %d events to %s: %w", len(recs), topic, err)
		}
	}
}
