package exec

import (
	"context"
	"io"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources/parquet"
)

// Position is where a task's scan is in its input: the split (for a
// Parquet split, the file, row group and rows) of the record the scan
// returned last. It is empty before the first record, after the last one
// (an error then is not of one input record) and after a read error (which
// names its own place). The task wraps its operators' errors with it
// (plan.RunTask), so "cast failed at row 17" can be found in its file.
// Only the goroutine that calls the scan's Next uses it.
type Position struct {
	at    func() string // names the current record's place, if it came with one
	on    bool          // a record is current
	split func() string // names the split, for records without a place
}

// String is the position, "" when there is none.
func (p *Position) String() string {
	switch {
	case p == nil || !p.on:
		return ""
	case p.at != nil:
		return p.at()
	case p.split != nil:
		return p.split()
	}
	return ""
}

// SetSplit names the split for records read without a place of their own;
// name runs only when an error needs it.
func (p *Position) SetSplit(name func() string) {
	if p != nil {
		p.split = name
	}
}

func (p *Position) set(at func() string, on bool) {
	if p != nil {
		p.at, p.on = at, on
	}
}

// scanned is a record read and where it was read from.
type scanned struct {
	rec arrow.Record
	at  func() string // nil: no place of its own
}

// pushScan turns a push-style reader (parquet.ReadSplit, a stream split's
// Read) into a pull operator: a reader goroutine emits into a small channel,
// so decoding overlaps with the operators above it. Close cancels the reader
// and waits for it.
type pushScan struct {
	schema *arrow.Schema
	ch     chan scanned
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pos    *Position
	err    error
	closed bool
}

// NewPushScan runs read on its own goroutine; every record read emits
// (empty ones are dropped) becomes the operator's output, in order.
func NewPushScan(ctx context.Context, schema *arrow.Schema, read func(ctx context.Context, emit func(arrow.Record) error) error) Operator {
	return NewPositionScan(ctx, schema, nil, func(ctx context.Context, emit func(arrow.Record, func() string) error) error {
		return read(ctx, func(rec arrow.Record) error { return emit(rec, nil) })
	})
}

// NewPositionScan is NewPushScan for a reader that says where each record
// comes from; pos (which may be nil) follows the records Next returns.
func NewPositionScan(ctx context.Context, schema *arrow.Schema, pos *Position, read func(ctx context.Context, emit func(rec arrow.Record, at func() string) error) error) Operator {
	ctx, cancel := context.WithCancel(ctx)
	s := &pushScan{schema: schema, ch: make(chan scanned, 2), errc: make(chan error, 1), cancel: cancel, pos: pos}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.ch)
		err := read(ctx, func(rec arrow.Record, at func() string) error {
			if rec.NumRows() == 0 {
				rec.Release()
				return nil
			}
			select {
			case s.ch <- scanned{rec, at}:
				return nil
			case <-ctx.Done():
				rec.Release()
				return ctx.Err()
			}
		})
		if err != nil {
			s.errc <- err
		}
	}()
	return s
}

// NewParquetScan reads the given splits, one after another, projected to
// schema; pos (which may be nil) names the file, row group and rows of each
// record.
func NewParquetScan(ctx context.Context, mem memory.Allocator, splits []parquet.Split, schema *arrow.Schema, partitionColumns []string, batchRows int, pos *Position) Operator {
	return NewPositionScan(ctx, schema, pos, func(ctx context.Context, emit func(arrow.Record, func() string) error) error {
		for _, sp := range splits {
			err := parquet.ReadSplitAt(ctx, mem, sp, schema, partitionColumns, batchRows, func(rec arrow.Record, at parquet.Position) error {
				n := rec.NumRows()
				return emit(rec, func() string { return at.Describe(n) })
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *pushScan) Schema() *arrow.Schema { return s.schema }

func (s *pushScan) Next(ctx context.Context) (arrow.Record, error) {
	if s.err != nil {
		return nil, s.err
	}
	select {
	case sc, ok := <-s.ch:
		if ok {
			s.pos.set(sc.at, true)
			return sc.rec, nil
		}
		s.pos.set(nil, false)
		select {
		case err := <-s.errc:
			s.err = err
		default:
			s.err = io.EOF
		}
	case <-ctx.Done():
		s.err = ctx.Err()
	}
	return nil, s.err
}

func (s *pushScan) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	for sc := range s.ch {
		sc.rec.Release()
	}
	s.wg.Wait()
	return nil
}
