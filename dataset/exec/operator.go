package exec

import (
	"context"

	"github.com/apache/arrow/go/v17/arrow"
)

// Operator is a pull-based physical operator over Arrow record batches.
//
// Contract:
//  1. Schema is fixed at construction and never changes.
//  2. Next returns the next non-empty record or (nil, io.EOF) at the end. The
//     caller owns the returned record and must Release it; the operator keeps
//     no reference to it.
//  3. Next after an error or io.EOF keeps returning that error.
//  4. Close releases everything the operator (and its inputs) holds. It is
//     idempotent and must be called even after an error; an operator closes
//     its own inputs.
//  5. Every blocking step honours ctx.
type Operator interface {
	Schema() *arrow.Schema
	Next(ctx context.Context) (arrow.Record, error)
	Close() error
}
