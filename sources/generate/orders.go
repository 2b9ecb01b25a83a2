package generate

import (
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// OrdersSchema is the schema of the orders generator.
var OrdersSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "customer", Type: arrow.BinaryTypes.String},
	{Name: "region", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

var regions = []string{"emea", "amer", "apac", "latam", "anz"}

// Orders describes a deterministic stream of orders: order i is a pure
// function of (Seed, i), so any range can be generated independently.
type Orders struct {
	Seed      uint64
	Customers int           // distinct customers; default 1000
	Start     time.Time     // event time of order 0; default 2026-11-01T00:00:00Z
	Interval  time.Duration // event-time gap between consecutive orders; default 1s
	MaxDelay  time.Duration // each order's time is moved back by up to this (out-of-orderness)
}

func (o Orders) withDefaults() Orders {
	if o.Customers <= 0 {
		o.Customers = 1000
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	return o
}

// Record returns orders [from, from+n) as one record the caller releases.
func (o Orders) Record(mem memory.Allocator, from, n int64) arrow.Record {
	o = o.withDefaults()
	b := array.NewRecordBuilder(mem, OrdersSchema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	cust := b.Field(1).(*array.StringBuilder)
	reg := b.Field(2).(*array.StringBuilder)
	amt := b.Field(3).(*array.Decimal128Builder)
	ts := b.Field(4).(*array.TimestampBuilder)
	for _, f := range b.Fields() {
		f.Reserve(int(n))
	}
	var name [16]byte
	start := o.Start.UnixMilli()
	for i := from; i < from+n; i++ {
		r := splitmix64(o.Seed ^ uint64(i)*0x9e3779b97f4a7c15)
		ids.Append(i)
		c := int(r % uint64(o.Customers))
		cust.Append(string(customerName(name[:0], c)))
		reg.Append(regions[(r>>20)%uint64(len(regions))])
		// amounts 1.00 .. 500.00, skewed towards small orders
		cents := int64(100 + (r>>32)%50000*((r>>50)%4+1)/4)
		amt.Append(decimal128.FromI64(cents))
		t := start + i*o.Interval.Milliseconds()
		if o.MaxDelay > 0 {
			t -= int64((r >> 8) % uint64(o.MaxDelay.Milliseconds()+1))
		}
		ts.Append(arrow.Timestamp(t))
	}
	return b.NewRecord()
}

func customerName(dst []byte, c int) []byte {
	dst = append(dst, "c-"...)
	var d [8]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + c%10)
		c /= 10
		if c == 0 && i <= len(d)-4 {
			break
		}
	}
	return append(dst, d[i:]...)
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
