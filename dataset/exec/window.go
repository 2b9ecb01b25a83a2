package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// WindowSpec assigns rows to event-time windows: tumbling when Slide ==
// Size, sliding (hopping) when Slide < Size. Durations are in the time
// column's unit. Window starts are Offset + k*Slide.
type WindowSpec struct {
	Column              string
	Size, Slide, Offset int64
	StartName, EndName  string
}

// Validate checks the spec against the input schema and returns the time
// column's type.
func (w WindowSpec) Validate(in *arrow.Schema) (*arrow.TimestampType, error) {
	idx := in.FieldIndices(w.Column)
	if len(idx) == 0 {
		return nil, fmt.Errorf("window on %q: no such column", w.Column)
	}
	ts, ok := in.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return nil, fmt.Errorf("window on %q: the column is %s, not a timestamp", w.Column, in.Field(idx[0]).Type)
	}
	if w.Size <= 0 || w.Slide <= 0 || w.Slide > w.Size {
		return nil, fmt.Errorf("window on %q: size %d and slide %d must be positive with slide <= size", w.Column, w.Size, w.Slide)
	}
	return ts, nil
}

// WindowSchema is in plus the window start and end columns.
func WindowSchema(in *arrow.Schema, w WindowSpec) (*arrow.Schema, error) {
	ts, err := w.Validate(in)
	if err != nil {
		return nil, err
	}
	fields := append(append([]arrow.Field{}, in.Fields()...),
		arrow.Field{Name: w.StartName, Type: ts}, arrow.Field{Name: w.EndName, Type: ts})
	return arrow.NewSchema(fields, nil), nil
}

type windowOp struct {
	mem    memory.Allocator
	in     Operator
	w      WindowSpec
	col    int
	schema *arrow.Schema
	err    error
}

// NewWindow adds the start and end of each row's windows; a row in k
// sliding windows becomes k rows. Rows with a null time are dropped (they
// belong to no window).
func NewWindow(mem memory.Allocator, in Operator, w WindowSpec) (Operator, error) {
	s, err := WindowSchema(in.Schema(), w)
	if err != nil {
		return nil, err
	}
	return &windowOp{mem: mem, in: in, w: w, col: in.Schema().FieldIndices(w.Column)[0], schema: s}, nil
}

func (o *windowOp) Schema() *arrow.Schema { return o.schema }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (o *windowOp) Next(ctx context.Context) (arrow.Record, error) {
	for o.err == nil {
		rec, err := o.in.Next(ctx)
		if err != nil {
			o.err = err
			break
		}
		out, err := o.expand(rec)
		rec.Release()
		if err != nil {
			o.err = err
			break
		}
		if out.NumRows() == 0 {
			out.Release()
			continue
		}
		return out, nil
	}
	return nil, o.err
}

func (o *windowOp) expand(rec arrow.Record) (arrow.Record, error) {
	ts := rec.Column(o.col).(*array.Timestamp)
	vals := ts.TimestampValues()
	n := int(rec.NumRows())
	per := int((o.w.Size + o.w.Slide - 1) / o.w.Slide)
	rows := make([]int, 0, n*per)
	starts := make([]int64, 0, n*per)
	for i := 0; i < n; i++ {
		if ts.IsNull(i) {
			continue
		}
		t := int64(vals[i])
		// The last window starting at or before t, then earlier ones while they still contain t.
		last := floorDiv(t-o.w.Offset, o.w.Slide)*o.w.Slide + o.w.Offset
		first := len(starts)
		for s := last; s > t-o.w.Size; s -= o.w.Slide {
			rows = append(rows, i)
			starts = append(starts, s)
		}
		// Ascending window order per row, so output is deterministic and sorted.
		for a, b := first, len(starts)-1; a < b; a, b = a+1, b-1 {
			starts[a], starts[b] = starts[b], starts[a]
		}
	}
	var base arrow.Record
	if len(rows) == n {
		rec.Retain()
		base = rec
	} else {
		var err error
		if base, err = TakeRecord(o.mem, rec, rows); err != nil {
			return nil, err
		}
	}
	defer base.Release()
	typ := o.schema.Field(o.schema.NumFields() - 1).Type.(*arrow.TimestampType)
	sb := array.NewTimestampBuilder(o.mem, typ)
	eb := array.NewTimestampBuilder(o.mem, typ)
	defer sb.Release()
	defer eb.Release()
	sb.Reserve(len(starts))
	eb.Reserve(len(starts))
	for _, s := range starts {
		sb.UnsafeAppend(arrow.Timestamp(s))
		eb.UnsafeAppend(arrow.Timestamp(s + o.w.Size))
	}
	start, end := sb.NewArray(), eb.NewArray()
	defer start.Release()
	defer end.Release()
	cols := append(append([]arrow.Array{}, base.Columns()...), start, end)
	return array.NewRecord(o.schema, cols, int64(len(starts))), nil
}

func (o *windowOp) Close() error { return o.in.Close() }
