package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Bad-record policies of a sink that rejects records one by one (the Kafka
// sink's BadRecords: a record over the topic's size limit). The names are
// the sources' (sources/kafka's BadRecords), without "skip": a sink never
// drops output where nobody can find it.
const (
	// BadRecordsFail fails the batch, naming the record (the default).
	BadRecordsFail = "fail"
	// BadRecordsDeadLetter writes the rejected row, with why, to a named
	// dead-letter sink that commits with the batch, and writes the rest.
	BadRecordsDeadLetter = "dead-letter"
)

// The columns a dead-letter row has after the rejected row's own
// (DeadLetterSchema).
const (
	DeadLetterBatch = "sluice_batch" // int64: the batch id
	DeadLetterSink  = "sluice_sink"  // string: the name of the sink that rejected the row
	DeadLetterTask  = "sluice_task"  // int32: the task that wrote it
	DeadLetterRow   = "sluice_row"   // int64: its position among the rows the task wrote in the batch
	DeadLetterError = "sluice_error" // string: why the sink rejected it
)

// BadRecordCounter is an optional ability of a Writer under a bad-record
// policy that hands rows to a dead-letter sink: how many rows of those
// written it dead-lettered. Tasks read it after Prepare and count it in the
// batch's progress (Progress.Sink.DeadLettered) and metrics.
type BadRecordCounter interface {
	DeadLettered() int64
}

// DeadLetterSchema is the schema of the dead-letter rows of a sink writing
// schema: its columns, then DeadLetterBatch, DeadLetterSink, DeadLetterTask,
// DeadLetterRow and DeadLetterError. A column of schema with one of those
// names is an error.
func DeadLetterSchema(schema *arrow.Schema) (*arrow.Schema, error) {
	if schema == nil {
		return nil, errors.New("sinks: dead letters need the batch's schema")
	}
	extra := []arrow.Field{
		{Name: DeadLetterBatch, Type: arrow.PrimitiveTypes.Int64},
		{Name: DeadLetterSink, Type: arrow.BinaryTypes.String},
		{Name: DeadLetterTask, Type: arrow.PrimitiveTypes.Int32},
		{Name: DeadLetterRow, Type: arrow.PrimitiveTypes.Int64},
		{Name: DeadLetterError, Type: arrow.BinaryTypes.String},
	}
	fields := append(schema.Fields(), extra...)
	for _, f := range extra {
		if schema.HasField(f.Name) {
			return nil, fmt.Errorf("sinks: dead letters add a column %q, and the output has one already: rename it", f.Name)
		}
	}
	return arrow.NewSchema(fields, nil), nil
}

// DeadLetterBatchOf is the batch of the dead-letter rows of b: the same id
// (so its commit is idempotent with b's), appended, DeadLetterSchema.
func DeadLetterBatchOf(b Batch) (Batch, error) {
	schema, err := DeadLetterSchema(b.Schema)
	if err != nil {
		return Batch{}, err
	}
	return Batch{ID: b.ID, Mode: Append, Schema: schema}, nil
}

// DeadLetterWriter is the task side of a sink's dead letters: it writes
// rows the sink rejected, with why, to the dead-letter sink's writer for
// the same batch and task, which it opens at the first rejected row, so a
// task that rejects nothing costs the dead-letter sink nothing. It is used
// by one goroutine, like the Writer that owns it.
type DeadLetterWriter struct {
	ctx  context.Context
	dl   Sink
	from string // the rejecting sink's name
	b    Batch  // DeadLetterBatchOf the sink's batch
	task int
	mem  memory.Allocator

	w Writer // nil until the first rejected row
	n int64
}

// NewDeadLetterWriter returns the dead-letter writer of task of batch b of
// the sink named from; ctx is the task's (WithRemote reaches dl's writer).
// mem allocates the dead-letter rows, which live only during a Write.
func NewDeadLetterWriter(ctx context.Context, dl Sink, from string, b Batch, task int, mem memory.Allocator) (*DeadLetterWriter, error) {
	db, err := DeadLetterBatchOf(b)
	if err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &DeadLetterWriter{ctx: ctx, dl: dl, from: from, b: db, task: task, mem: mem}, nil
}

// Write dead-letters rows of rec (indexes into it, ascending) with their
// reasons; first is the position of rec's row 0 among the rows the task
// wrote in the batch. rec is not retained.
func (d *DeadLetterWriter) Write(rec arrow.Record, first int64, rows []int, reasons []string) error {
	if len(rows) == 0 {
		return nil
	}
	if d.w == nil {
		w, err := d.dl.NewWriter(d.ctx, d.b, d.task)
		if err != nil {
			return fmt.Errorf("dead-letter sink %s: batch %d task %d: %w", d.dl.Name(), d.b.ID, d.task, err)
		}
		d.w = w
	}
	out, err := d.rows(rec, first, rows, reasons)
	if err != nil {
		return fmt.Errorf("dead letters of batch %d task %d: %w", d.b.ID, d.task, err)
	}
	err = d.w.Write(out)
	out.Release()
	if err != nil {
		return fmt.Errorf("dead-letter sink %s: batch %d task %d: %w", d.dl.Name(), d.b.ID, d.task, err)
	}
	d.n += int64(len(rows))
	return nil
}

// rows builds the dead-letter record of rows of rec.
func (d *DeadLetterWriter) rows(rec arrow.Record, first int64, rows []int, reasons []string) (arrow.Record, error) {
	var cols []arrow.Array
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	nin := int(rec.NumCols())
	if nin+5 != d.b.Schema.NumFields() {
		return nil, fmt.Errorf("a record of %d columns, the batch has %d", nin, d.b.Schema.NumFields()-5)
	}
	parts := make([]arrow.Array, len(rows))
	for c := range nin {
		for i, r := range rows {
			parts[i] = array.NewSlice(rec.Column(c), int64(r), int64(r+1))
		}
		col, err := array.Concatenate(parts, d.mem)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
		}
		cols = append(cols, col)
	}
	batch := array.NewInt64Builder(d.mem)
	sink := array.NewStringBuilder(d.mem)
	task := array.NewInt32Builder(d.mem)
	row := array.NewInt64Builder(d.mem)
	why := array.NewStringBuilder(d.mem)
	for i, r := range rows {
		batch.Append(d.b.ID)
		sink.Append(d.from)
		task.Append(int32(d.task))
		row.Append(first + int64(r))
		why.Append(reasons[i])
	}
	for _, b := range []array.Builder{batch, sink, task, row, why} {
		cols = append(cols, b.NewArray())
		b.Release()
	}
	return array.NewRecord(d.b.Schema, cols, int64(len(rows))), nil
}

// DeadLettered is the rows written so far.
func (d *DeadLetterWriter) DeadLettered() int64 { return d.n }

// Prepare prepares the dead-letter writer and returns its message, nil
// when the task rejected nothing.
func (d *DeadLetterWriter) Prepare() (CommitMessage, error) {
	if d.w == nil {
		return nil, nil
	}
	m, err := d.w.Prepare()
	if err != nil {
		return nil, fmt.Errorf("dead-letter sink %s: batch %d task %d: %w", d.dl.Name(), d.b.ID, d.task, err)
	}
	if len(m) == 0 {
		m = CommitMessage("null")
	}
	return m, nil
}

// Abort aborts the dead-letter writer, if it was opened.
func (d *DeadLetterWriter) Abort() error {
	if d.w == nil {
		return nil
	}
	return d.w.Abort()
}

// CommitDeadLetters commits the dead letters of batch b (the rejecting
// sink's batch) to dl: msgs are the tasks' DeadLetterWriter messages in
// task order, nil for a task that rejected nothing. A sink calls it in its
// own Commit before it commits b, so the dead letters commit with the
// batch: dl's Commit is idempotent per batch id, so a re-run of the batch
// (after a crash between the two commits, or a failed second one) writes
// neither twice and loses neither. The two commits are not one atomic
// step for readers: between them (and until a re-run, if the second
// fails) a batch's dead letters are visible and its rows are not. A batch
// without dead letters commits nothing to dl.
func CommitDeadLetters(ctx context.Context, dl Sink, b Batch, msgs []CommitMessage) error {
	db, ms, err := deadLetters(b, msgs)
	if err != nil || len(ms) == 0 {
		return err
	}
	if err := dl.Commit(ctx, db, ms); err != nil {
		return fmt.Errorf("dead-letter sink %s: commit batch %d: %w", dl.Name(), b.ID, err)
	}
	return nil
}

// AbortDeadLetters aborts what tasks of batch b prepared in dl (msgs as
// for CommitDeadLetters).
func AbortDeadLetters(ctx context.Context, dl Sink, b Batch, msgs []CommitMessage) error {
	db, ms, err := deadLetters(b, msgs)
	if err != nil || len(ms) == 0 {
		return err
	}
	if err := dl.Abort(ctx, db, ms); err != nil {
		return fmt.Errorf("dead-letter sink %s: abort batch %d: %w", dl.Name(), b.ID, err)
	}
	return nil
}

func deadLetters(b Batch, msgs []CommitMessage) (Batch, []CommitMessage, error) {
	var ms []CommitMessage
	for _, m := range msgs {
		if len(m) > 0 && !json.Valid(m) {
			return Batch{}, nil, fmt.Errorf("batch %d: dead-letter message %.80q is not JSON", b.ID, m)
		}
		if len(m) > 0 {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return Batch{}, nil, nil
	}
	db, err := DeadLetterBatchOf(b)
	return db, ms, err
}
