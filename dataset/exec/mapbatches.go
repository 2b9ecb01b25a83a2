package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// BatchFunc is user Go code over Arrow records (Dataset.MapBatches). It must not
// retain in beyond the call and returns a record the caller owns; a record of
// zero rows is allowed. A panic in it becomes the task's error.
type BatchFunc func(mem memory.Allocator, in arrow.Record) (arrow.Record, error)

type mapBatchesOp struct {
	mem    memory.Allocator
	in     Operator
	name   string
	fn     BatchFunc
	schema *arrow.Schema
	err    error
}

// NewMapBatches applies fn to every record; output records must have schema.
func NewMapBatches(mem memory.Allocator, in Operator, name string, schema *arrow.Schema, fn BatchFunc) Operator {
	return &mapBatchesOp{mem: mem, in: in, name: name, fn: fn, schema: schema}
}

func (m *mapBatchesOp) Schema() *arrow.Schema { return m.schema }

func (m *mapBatchesOp) Next(ctx context.Context) (arrow.Record, error) {
	for m.err == nil {
		rec, err := m.in.Next(ctx)
		if err != nil {
			m.err = err
			break
		}
		out, err := m.call(rec)
		rec.Release()
		if err != nil {
			m.err = fmt.Errorf("map_batches %q: %w", m.name, err)
			break
		}
		if !out.Schema().Equal(m.schema) {
			out.Release()
			m.err = fmt.Errorf("map_batches %q: returned schema %s, declared %s", m.name, out.Schema(), m.schema)
			break
		}
		if out.NumRows() == 0 {
			out.Release()
			continue
		}
		return out, nil
	}
	return nil, m.err
}

func (m *mapBatchesOp) call(rec arrow.Record) (out arrow.Record, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	out, err = m.fn(m.mem, rec)
	if err == nil && out == nil {
		err = fmt.Errorf("returned a nil record")
	}
	return out, err
}

func (m *mapBatchesOp) Close() error { return m.in.Close() }
