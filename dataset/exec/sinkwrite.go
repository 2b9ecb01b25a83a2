package exec

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
)

// CommitSchema is the output of a streaming sink task: one row holding the
// task's commit message, which the driver passes to Sink.Commit.
var CommitSchema = arrow.NewSchema([]arrow.Field{{Name: "message", Type: arrow.BinaryTypes.Binary}}, nil)

type sinkWrite struct {
	mem  memory.Allocator
	in   Operator
	open func() (sinks.Writer, error)
	m    *Metrics
	done bool
}

// NewSinkWrite drains in into a sink writer opened by open, prepares it, and
// yields one CommitSchema row. On any error the writer is aborted. The rows
// written are counted in m (Metrics.SinkRows, and SinkDeadLettered those
// the writer dead-lettered) once the writer prepared, so an aborted attempt
// counts nothing; m may be nil.
func NewSinkWrite(mem memory.Allocator, in Operator, open func() (sinks.Writer, error), m *Metrics) Operator {
	return &sinkWrite{mem: mem, in: in, open: open, m: m}
}

func (w *sinkWrite) Schema() *arrow.Schema { return CommitSchema }

func (w *sinkWrite) Next(ctx context.Context) (rec arrow.Record, err error) {
	if w.done {
		return nil, io.EOF
	}
	w.done = true
	sw, err := w.open()
	if err != nil {
		return nil, fmt.Errorf("open sink writer: %w", err)
	}
	defer func() {
		if err != nil {
			sw.Abort()
		}
	}()
	var rows int64
	for {
		r, err := w.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rows += r.NumRows()
		err = sw.Write(r)
		r.Release()
		if err != nil {
			return nil, fmt.Errorf("sink write: %w", err)
		}
	}
	msg, err := sw.Prepare()
	if err != nil {
		return nil, fmt.Errorf("sink prepare: %w", err)
	}
	var dead int64
	if bc, ok := sw.(sinks.BadRecordCounter); ok {
		dead = bc.DeadLettered()
	}
	w.m.AddSinkRows(rows, dead)
	b := array.NewBinaryBuilder(w.mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	b.Append(msg)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecord(CommitSchema, []arrow.Array{col}, 1), nil
}

func (w *sinkWrite) Close() error { return w.in.Close() }
