package exec

import (
	"context"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
)

// recordsOp yields a fixed list of records (in-memory scans, shuffle reads).
type recordsOp struct {
	schema *arrow.Schema
	recs   []arrow.Record
	i      int
	closed bool
}

// NewRecords returns an operator yielding recs in order. It retains each
// record and releases its references on Close; the caller keeps its own.
func NewRecords(schema *arrow.Schema, recs []arrow.Record) Operator {
	held := make([]arrow.Record, 0, len(recs))
	for _, r := range recs {
		if r == nil || r.NumRows() == 0 {
			continue
		}
		r.Retain()
		held = append(held, r)
	}
	return &recordsOp{schema: schema, recs: held}
}

func (r *recordsOp) Schema() *arrow.Schema { return r.schema }

func (r *recordsOp) Next(ctx context.Context) (arrow.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.i >= len(r.recs) {
		return nil, io.EOF
	}
	rec := r.recs[r.i]
	r.recs[r.i] = nil
	r.i++
	return rec, nil
}

func (r *recordsOp) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	for _, rec := range r.recs[r.i:] {
		if rec != nil {
			rec.Release()
		}
	}
	r.recs = nil
	return nil
}
