package exec

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// SessionSpec groups rows of the same Keys into sessions: a row at event
// time t covers [t, t+Gap), and rows whose intervals overlap are one
// session [first t, last t + Gap). Gap is in the time column's unit.
type SessionSpec struct {
	Column             string
	Gap                int64
	Keys               []string
	StartName, EndName string
}

// SessionSchema is in plus the session start and end columns.
func SessionSchema(in *arrow.Schema, s SessionSpec) (*arrow.Schema, error) {
	idx := in.FieldIndices(s.Column)
	if len(idx) == 0 {
		return nil, fmt.Errorf("session window on %q: no such column", s.Column)
	}
	ts, ok := in.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return nil, fmt.Errorf("session window on %q: the column is %s, not a timestamp", s.Column, in.Field(idx[0]).Type)
	}
	if s.Gap <= 0 {
		return nil, fmt.Errorf("session window on %q: the gap must be positive", s.Column)
	}
	for _, k := range s.Keys {
		if len(in.FieldIndices(k)) == 0 {
			return nil, fmt.Errorf("session window: no key column %q", k)
		}
	}
	return arrow.NewSchema(append(append([]arrow.Field{}, in.Fields()...),
		arrow.Field{Name: s.StartName, Type: ts}, arrow.Field{Name: s.EndName, Type: ts}), nil), nil
}

// mergeIntervals orders rows by (key, start) and merges overlapping
// intervals [starts[i], ends[i]) of equal keys. It returns the row order and,
// per position in that order, the merged session's start and end.
func mergeIntervals(keyCols []arrow.Array, starts, ends []int64) (order []int, ss, se []int64, err error) {
	n := len(starts)
	ids := make([]uint32, n)
	if len(keyCols) > 0 {
		types := make([]arrow.DataType, len(keyCols))
		for i, c := range keyCols {
			types[i] = c.DataType()
		}
		g, err := newKeyGrouper(types)
		if err != nil {
			return nil, nil, nil, err
		}
		g.assign(keyCols, ids)
	}
	order = make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(ids[a], ids[b]); c != 0 {
			return c
		}
		return cmp.Compare(starts[a], starts[b])
	})
	ss, se = make([]int64, n), make([]int64, n)
	for i := 0; i < n; {
		j, end := i+1, ends[order[i]]
		for j < n && ids[order[j]] == ids[order[i]] && starts[order[j]] < end {
			end = max(end, ends[order[j]])
			j++
		}
		for k := i; k < j; k++ {
			ss[k], se[k] = starts[order[i]], end
		}
		i = j
	}
	return order, ss, se, nil
}

// withInterval returns rec's rows in order with two timestamp columns appended.
func withInterval(mem memory.Allocator, rec arrow.Record, order []int, ss, se []int64, schema *arrow.Schema) (arrow.Record, error) {
	base, err := TakeRecord(mem, rec, order)
	if err != nil {
		return nil, err
	}
	defer base.Release()
	typ := schema.Field(schema.NumFields() - 1).Type.(*arrow.TimestampType)
	mk := func(v []int64) arrow.Array {
		b := array.NewTimestampBuilder(mem, typ)
		defer b.Release()
		b.Reserve(len(v))
		for _, x := range v {
			b.UnsafeAppend(arrow.Timestamp(x))
		}
		return b.NewArray()
	}
	start, end := mk(ss), mk(se)
	defer start.Release()
	defer end.Release()
	cols := append(append([]arrow.Array{}, base.Columns()[:schema.NumFields()-2]...), start, end)
	return array.NewRecord(schema, cols, int64(len(order))), nil
}

// sessionize assigns every row of rec (all rows of its keys) to its session.
func sessionize(mem memory.Allocator, rec arrow.Record, s SessionSpec, schema *arrow.Schema) (arrow.Record, error) {
	var keyCols []arrow.Array
	for _, k := range s.Keys {
		keyCols = append(keyCols, rec.Column(rec.Schema().FieldIndices(k)[0]))
	}
	ts := rec.Column(rec.Schema().FieldIndices(s.Column)[0]).(*array.Timestamp)
	var keep []int
	for i := 0; i < ts.Len(); i++ {
		if ts.IsValid(i) {
			keep = append(keep, i)
		}
	}
	if len(keep) < ts.Len() { // rows without a time belong to no session
		r, err := TakeRecord(mem, rec, keep)
		if err != nil {
			return nil, err
		}
		defer r.Release()
		return sessionize(mem, r, s, schema)
	}
	starts := make([]int64, ts.Len())
	ends := make([]int64, ts.Len())
	for i, v := range ts.TimestampValues() {
		starts[i], ends[i] = int64(v), int64(v)+s.Gap
	}
	order, ss, se, err := mergeIntervals(keyCols, starts, ends)
	if err != nil {
		return nil, err
	}
	return withInterval(mem, rec, order, ss, se, schema)
}

type sessionOp struct {
	mem    memory.Allocator
	in     Operator
	s      SessionSpec
	schema *arrow.Schema
	done   bool
	err    error
}

// NewSessionWindow adds each row's session start and end. It reads its
// whole input first: every row of a key must reach the same operator.
func NewSessionWindow(mem memory.Allocator, in Operator, s SessionSpec) (Operator, error) {
	sch, err := SessionSchema(in.Schema(), s)
	if err != nil {
		return nil, err
	}
	return &sessionOp{mem: mem, in: in, s: s, schema: sch}, nil
}

func (o *sessionOp) Schema() *arrow.Schema { return o.schema }

func (o *sessionOp) Next(ctx context.Context) (arrow.Record, error) {
	if o.err != nil {
		return nil, o.err
	}
	if o.done {
		o.err = io.EOF
		return nil, io.EOF
	}
	o.done = true
	recs, err := drain(ctx, func() (Operator, error) { return o.in, nil })
	if err != nil {
		o.err = err
		return nil, err
	}
	defer releaseRecords(recs)
	if len(recs) == 0 {
		o.err = io.EOF
		return nil, io.EOF
	}
	all, err := ConcatRecords(o.mem, o.in.Schema(), recs)
	if err != nil {
		o.err = err
		return nil, err
	}
	defer all.Release()
	out, err := sessionize(o.mem, all, o.s, o.schema)
	if err != nil {
		o.err = err
		return nil, err
	}
	return out, nil
}

func (o *sessionOp) Close() error { return o.in.Close() }
