package exec

import (
	"context"
	"io"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources/parquet"
)

// pushScan turns a push-style reader (parquet.ReadSplit, a stream split's
// Read) into a pull operator: a reader goroutine emits into a small channel,
// so decoding overlaps with the operators above it. Close cancels the reader
// and waits for it.
type pushScan struct {
	schema *arrow.Schema
	ch     chan arrow.Record
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
	closed bool
}

// NewPushScan runs read on its own goroutine; every record read emits
// (empty ones are dropped) becomes the operator's output, in order.
func NewPushScan(ctx context.Context, schema *arrow.Schema, read func(ctx context.Context, emit func(arrow.Record) error) error) Operator {
	ctx, cancel := context.WithCancel(ctx)
	s := &pushScan{schema: schema, ch: make(chan arrow.Record, 2), errc: make(chan error, 1), cancel: cancel}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.ch)
		err := read(ctx, func(rec arrow.Record) error {
			if rec.NumRows() == 0 {
				rec.Release()
				return nil
			}
			select {
			case s.ch <- rec:
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

// NewParquetScan reads the given splits, one after another, projected to schema.
func NewParquetScan(ctx context.Context, mem memory.Allocator, splits []parquet.Split, schema *arrow.Schema, partitionColumns []string, batchRows int) Operator {
	return NewPushScan(ctx, schema, func(ctx context.Context, emit func(arrow.Record) error) error {
		for _, sp := range splits {
			if err := parquet.ReadSplit(ctx, mem, sp, schema, partitionColumns, batchRows, emit); err != nil {
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
	case rec, ok := <-s.ch:
		if ok {
			return rec, nil
		}
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
	for rec := range s.ch {
		rec.Release()
	}
	s.wg.Wait()
	return nil
}
