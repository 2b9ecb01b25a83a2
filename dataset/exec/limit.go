package exec

import (
	"context"
	"errors"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
)

// NewLimit returns an operator that passes on the first n rows of in (offset
// 0) and then ends. It slices the record that crosses n (no copy) and stops
// pulling from in once n rows went out, so an upstream source is not drained.
// n <= 0 gives no rows without pulling at all.
func NewLimit(in Operator, n int64) Operator {
	return &limitOp{in: in, left: max(n, 0)}
}

type limitOp struct {
	in     Operator
	left   int64
	err    error
	closed bool
}

func (l *limitOp) Schema() *arrow.Schema { return l.in.Schema() }

func (l *limitOp) Next(ctx context.Context) (arrow.Record, error) {
	for {
		if l.err != nil {
			return nil, l.err
		}
		if l.left == 0 {
			l.err = io.EOF
			return nil, io.EOF
		}
		rec, err := l.in.Next(ctx)
		if err != nil {
			l.err = err
			return nil, err
		}
		n := rec.NumRows()
		if n == 0 {
			rec.Release()
			continue
		}
		if n <= l.left {
			l.left -= n
			return rec, nil
		}
		out := rec.NewSlice(0, l.left)
		rec.Release()
		l.left = 0
		return out, nil
	}
}

func (l *limitOp) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	if l.err == nil {
		l.err = errors.New("limit: closed")
	}
	return l.in.Close()
}
