package exec

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// ToMicros converts a timestamp value of unit u to microseconds.
func ToMicros(v int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return v * 1_000_000
	case arrow.Millisecond:
		return v * 1_000
	case arrow.Nanosecond:
		return floorDiv(v, 1_000)
	}
	return v
}

// FromMicros converts microseconds to unit u, rounding down.
func FromMicros(us int64, u arrow.TimeUnit) int64 {
	if us == math.MinInt64 {
		return math.MinInt64
	}
	switch u {
	case arrow.Second:
		return floorDiv(us, 1_000_000)
	case arrow.Millisecond:
		return floorDiv(us, 1_000)
	case arrow.Nanosecond:
		return us * 1_000
	}
	return us
}

type observeOp struct {
	in   Operator
	col  int
	unit arrow.TimeUnit
	max  int64
	id   string
	m    *Metrics
	done bool
}

// NewEventTimeObserver passes records through and, at the end of its input,
// records the largest event time of column col in microseconds (MinInt64 when
// there were no non-null values) as watermark id's in m: the raw material of
// the watermark.
func NewEventTimeObserver(in Operator, col, id string, m *Metrics) (Operator, error) {
	idx := in.Schema().FieldIndices(col)
	if len(idx) == 0 {
		return nil, fmt.Errorf("watermark on %q: no such column", col)
	}
	ts, ok := in.Schema().Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return nil, fmt.Errorf("watermark on %q: the column is %s, not a timestamp", col, in.Schema().Field(idx[0]).Type)
	}
	return &observeOp{in: in, col: idx[0], unit: ts.Unit, max: math.MinInt64, id: id, m: m}, nil
}

func (o *observeOp) Schema() *arrow.Schema { return o.in.Schema() }

func (o *observeOp) Next(ctx context.Context) (arrow.Record, error) {
	rec, err := o.in.Next(ctx)
	if err == io.EOF && !o.done {
		o.done = true
		o.m.ObserveEventTime(o.id, o.max)
	}
	if err != nil {
		return nil, err
	}
	ts := rec.Column(o.col).(*array.Timestamp)
	for i, v := range ts.TimestampValues() {
		if ts.IsValid(i) {
			if m := ToMicros(int64(v), o.unit); m > o.max {
				o.max = m
			}
		}
	}
	return rec, nil
}

func (o *observeOp) Close() error { return o.in.Close() }

type lateOp struct {
	mem       memory.Allocator
	in        Operator
	col       int
	threshold int64
	ops       []string
	m         *Metrics
	err       error
}

// NewLateFilter drops rows whose column col (a timestamp, in its own unit)
// is <= threshold: rows of windows the watermark has already closed. It
// counts them against each operator of ops (the stateful operators it
// filters for) in m and, when m.KeepLate is set, keeps the dropped rows
// there once (the late-rows side output).
func NewLateFilter(mem memory.Allocator, in Operator, col string, threshold int64, ops []string, m *Metrics) (Operator, error) {
	idx := in.Schema().FieldIndices(col)
	if len(idx) == 0 {
		return nil, fmt.Errorf("late filter on %q: no such column", col)
	}
	return &lateOp{mem: mem, in: in, col: idx[0], threshold: threshold, ops: ops, m: m}, nil
}

func (o *lateOp) Schema() *arrow.Schema { return o.in.Schema() }

func (o *lateOp) Next(ctx context.Context) (arrow.Record, error) {
	for o.err == nil {
		rec, err := o.in.Next(ctx)
		if err != nil {
			o.err = err
			break
		}
		ts := rec.Column(o.col).(*array.Timestamp)
		if ts.NullN() == 0 && allAfter(ts.TimestampValues(), o.threshold) {
			return rec, nil // the common case: nothing late
		}
		var keep, late []int
		for i, v := range ts.TimestampValues() {
			if ts.IsValid(i) && int64(v) > o.threshold {
				keep = append(keep, i)
			} else {
				late = append(late, i)
			}
		}
		if len(keep) == int(rec.NumRows()) {
			return rec, nil
		}
		for _, op := range o.ops {
			o.m.AddDropped(op, rec.NumRows()-int64(len(keep)))
		}
		if o.m != nil && o.m.KeepLate {
			lr, err := TakeRecord(o.mem, rec, late)
			if err != nil {
				rec.Release()
				o.err = err
				break
			}
			o.m.AddLate(lr)
		}
		if len(keep) == 0 {
			rec.Release()
			continue
		}
		out, err := TakeRecord(o.mem, rec, keep)
		rec.Release()
		if err != nil {
			o.err = err
			break
		}
		return out, nil
	}
	return nil, o.err
}

func allAfter(v []arrow.Timestamp, threshold int64) bool {
	for _, x := range v {
		if int64(x) <= threshold {
			return false
		}
	}
	return true
}

func (o *lateOp) Close() error { return o.in.Close() }
