package exec

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// NewUnion returns an operator that emits all records of ins[0], then of
// ins[1], and so on (UNION ALL, no deduplication). Each input's columns are
// matched to schema by name, like Spark's unionByName: the input must have
// exactly the schema's columns, in any order, with identical types. Output
// records reuse the input columns (no data copy). An exhausted input is
// closed at once; Close closes them all. When NewUnion fails it closes
// nothing: the caller still owns ins.
func NewUnion(mem memory.Allocator, schema *arrow.Schema, ins ...Operator) (Operator, error) {
	_ = mem // kept for symmetry with the other constructors: the union never copies
	u := &unionOp{schema: schema, ins: ins, maps: make([][]int, len(ins))}
	for i, in := range ins {
		m, err := unionMapping(schema, in.Schema())
		if err != nil {
			return nil, fmt.Errorf("union input %d: %w", i, err)
		}
		u.maps[i] = m
	}
	return u, nil
}

// unionMapping returns, for each field of want, the index of the same-named
// column in got.
func unionMapping(want, got *arrow.Schema) ([]int, error) {
	m := make([]int, want.NumFields())
	for i, f := range want.Fields() {
		idx := got.FieldIndices(f.Name)
		switch {
		case len(idx) == 0:
			return nil, fmt.Errorf("missing column %q (%s)", f.Name, f.Type)
		case len(idx) > 1:
			return nil, fmt.Errorf("ambiguous column %q: %d columns of that name", f.Name, len(idx))
		}
		g := got.Field(idx[0])
		if !arrow.TypeEqual(f.Type, g.Type) {
			return nil, fmt.Errorf("column %q has type %s, want %s", f.Name, g.Type, f.Type)
		}
		m[i] = idx[0]
	}
	if got.NumFields() != want.NumFields() {
		for _, g := range got.Fields() {
			if !want.HasField(g.Name) {
				return nil, fmt.Errorf("extra column %q (%s) not in the union schema", g.Name, g.Type)
			}
		}
		return nil, fmt.Errorf("%d columns, want %d", got.NumFields(), want.NumFields())
	}
	return m, nil
}

type unionOp struct {
	schema *arrow.Schema
	ins    []Operator
	maps   [][]int
	cur    int
	closed []bool
	err    error
}

func (u *unionOp) Schema() *arrow.Schema { return u.schema }

func (u *unionOp) Next(ctx context.Context) (arrow.Record, error) {
	if u.closed == nil {
		u.closed = make([]bool, len(u.ins))
	}
	for u.err == nil {
		if u.cur >= len(u.ins) {
			u.err = io.EOF
			break
		}
		rec, err := u.ins[u.cur].Next(ctx)
		if err == io.EOF {
			if cerr := u.closeInput(u.cur); cerr != nil {
				u.err = cerr
				break
			}
			u.cur++
			continue
		}
		if err != nil {
			u.err = err
			break
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		m := u.maps[u.cur]
		cols := make([]arrow.Array, len(m))
		for i, j := range m {
			cols[i] = rec.Column(j)
		}
		out := array.NewRecord(u.schema, cols, rec.NumRows())
		rec.Release()
		return out, nil
	}
	return nil, u.err
}

func (u *unionOp) closeInput(i int) error {
	if u.closed[i] {
		return nil
	}
	u.closed[i] = true
	return u.ins[i].Close()
}

func (u *unionOp) Close() error {
	if u.closed == nil {
		u.closed = make([]bool, len(u.ins))
	}
	if u.err == nil {
		u.err = errors.New("union: closed")
	}
	var errs []error
	for i := range u.ins {
		errs = append(errs, u.closeInput(i))
	}
	return errors.Join(errs...)
}
