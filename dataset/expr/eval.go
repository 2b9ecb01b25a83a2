package expr

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Eval evaluates e over rec and returns an array of rec.NumRows() values. The
// caller owns the result and must Release it.
// TODO(expr helper): everything but column references.
func Eval(mem memory.Allocator, e *Expr, rec arrow.Record) (arrow.Array, error) {
	switch e.Op {
	case OpCol:
		idx := rec.Schema().FieldIndices(e.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("expr: unknown column %q", e.Name)
		}
		c := rec.Column(idx[0])
		c.Retain()
		return c, nil
	case OpAlias:
		return Eval(mem, e.Args[0], rec)
	}
	return nil, fmt.Errorf("expr: %s not implemented", e.Op)
}

// DataType type-checks e against schema and returns its result type.
// TODO(expr helper): everything but column references.
func (e *Expr) DataType(s *arrow.Schema) (arrow.DataType, error) {
	switch e.Op {
	case OpCol:
		idx := s.FieldIndices(e.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("expr: unknown column %q", e.Name)
		}
		return s.Field(idx[0]).Type, nil
	case OpAlias:
		return e.Args[0].DataType(s)
	case OpLit:
		return e.Lit.Type.DataType, nil
	}
	return nil, fmt.Errorf("expr: %s not implemented", e.Op)
}
