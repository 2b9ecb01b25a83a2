package exec

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources/parquet"
)

// parquetScan turns the push-style parquet.ReadSplit into a pull operator: a
// reader goroutine emits into a small channel, so decoding overlaps with the
// operators above it. Close cancels the reader and waits for it.
type parquetScan struct {
	schema *arrow.Schema
	ch     chan arrow.Record
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
	closed bool
}

// NewParquetScan reads the given splits, one after another, projected to schema.
func NewParquetScan(ctx context.Context, mem memory.Allocator, splits []parquet.Split, schema *arrow.Schema, partitionColumns []string, batchRows int) Operator {
	ctx, cancel := context.WithCancel(ctx)
	s := &parquetScan{schema: schema, ch: make(chan arrow.Record, 2), errc: make(chan error, 1), cancel: cancel}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.ch)
		for _, sp := range splits {
			err := parquet.ReadSplit(ctx, mem, sp, schema, partitionColumns, batchRows, func(rec arrow.Record) error {
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
				return
			}
		}
	}()
	return s
}

func (s *parquetScan) Schema() *arrow.Schema { return s.schema }

func (s *parquetScan) Next(ctx context.Context) (arrow.Record, error) {
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

func (s *parquetScan) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	for rec := range s.ch {
		rec.Release()
	}
	s.wg.Wait()
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return nil
	}
	return nil
}
