package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

// filterOp keeps the rows for which cond is true (null counts as false, SQL WHERE).
type filterOp struct {
	mem  memory.Allocator
	in   Operator
	cond *expr.Expr
	err  error
}

// NewFilter returns an operator keeping the rows of in where cond is true.
func NewFilter(mem memory.Allocator, in Operator, cond *expr.Expr) (Operator, error) {
	t, err := cond.DataType(in.Schema())
	if err != nil {
		return nil, fmt.Errorf("filter %s: %w", cond, err)
	}
	if t.ID() != arrow.BOOL {
		return nil, fmt.Errorf("filter %s: %w: condition is %s, not bool", cond, expr.ErrType, t)
	}
	return &filterOp{mem: mem, in: in, cond: cond}, nil
}

func (f *filterOp) Schema() *arrow.Schema { return f.in.Schema() }

func (f *filterOp) Next(ctx context.Context) (arrow.Record, error) {
	if f.err != nil {
		return nil, f.err
	}
	for {
		rec, err := f.in.Next(ctx)
		if err != nil {
			f.err = err
			return nil, err
		}
		out, err := f.apply(rec)
		rec.Release()
		if err != nil {
			f.err = err
			return nil, err
		}
		if out != nil {
			return out, nil
		}
	}
}

// apply returns nil when no row passes.
func (f *filterOp) apply(rec arrow.Record) (arrow.Record, error) {
	m, err := expr.Eval(f.mem, f.cond, rec)
	if err != nil {
		return nil, fmt.Errorf("filter %s: %w", f.cond, err)
	}
	defer m.Release()
	mask := m.(*array.Boolean)
	out, err := expr.FilterRecord(f.mem, rec, mask)
	if err != nil {
		return nil, fmt.Errorf("filter %s: %w", f.cond, err)
	}
	if out.NumRows() == 0 {
		out.Release()
		return nil, nil
	}
	return out, nil
}

func (f *filterOp) Close() error { return f.in.Close() }
