package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

// projectOp evaluates a list of expressions per record; each becomes an output
// column named by its OutputName.
type projectOp struct {
	mem    memory.Allocator
	in     Operator
	exprs  []*expr.Expr
	schema *arrow.Schema
	err    error
}

// ProjectSchema is the output schema of projecting exprs over in.
func ProjectSchema(in *arrow.Schema, exprs []*expr.Expr) (*arrow.Schema, error) {
	fields := make([]arrow.Field, len(exprs))
	for i, e := range exprs {
		t, err := e.DataType(in)
		if err != nil {
			return nil, fmt.Errorf("select %s: %w", e, err)
		}
		nullable := true
		if e.Op == expr.OpCol || e.Op == expr.OpAlias && e.Args[0].Op == expr.OpCol {
			c := e
			if c.Op == expr.OpAlias {
				c = c.Args[0]
			}
			if idx := in.FieldIndices(c.Name); len(idx) > 0 {
				nullable = in.Field(idx[0]).Nullable
			}
		}
		fields[i] = arrow.Field{Name: e.OutputName(), Type: t, Nullable: nullable}
	}
	return arrow.NewSchema(fields, nil), nil
}

// NewProject returns an operator producing one column per expression.
func NewProject(mem memory.Allocator, in Operator, exprs []*expr.Expr) (Operator, error) {
	s, err := ProjectSchema(in.Schema(), exprs)
	if err != nil {
		return nil, err
	}
	return &projectOp{mem: mem, in: in, exprs: exprs, schema: s}, nil
}

func (p *projectOp) Schema() *arrow.Schema { return p.schema }

func (p *projectOp) Next(ctx context.Context) (arrow.Record, error) {
	if p.err != nil {
		return nil, p.err
	}
	rec, err := p.in.Next(ctx)
	if err != nil {
		p.err = err
		return nil, err
	}
	defer rec.Release()
	cols := make([]arrow.Array, len(p.exprs))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, e := range p.exprs {
		c, err := expr.Eval(p.mem, e, rec)
		if err != nil {
			p.err = fmt.Errorf("select %s: %w", e, err)
			return nil, p.err
		}
		cols[i] = c
	}
	return array.NewRecord(p.schema, cols, rec.NumRows()), nil
}

func (p *projectOp) Close() error { return p.in.Close() }
