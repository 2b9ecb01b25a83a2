package microbatch

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/stage"
	"github.com/sluicedata/sluice/sinks"
)

// BatchFunc is user code run once per committed micro-batch with the batch's
// output as a Dataset (valid only during the call). It may be called again
// for the same batch id after a crash before commits/<N> was written, so it
// should be idempotent per batch id (e.g. overwrite a partition named by it).
type BatchFunc func(ctx context.Context, batchID int64, ds *dataset.Dataset) error

// ForeachBatch returns a sink that hands each batch to fn, in the driver
// process. A task beside the driver keeps the records it writes (retained,
// not copied) until the batch commits or aborts; a task on a cluster
// executor (sinks.WithRemote) sends them in its commit message as Arrow
// IPC, decoded in the driver with the Go allocator.
func ForeachBatch(fn BatchFunc) sinks.Sink {
	return &foreachSink{fn: fn, stage: stage.New("foreachBatch", nil)}
}

type foreachSink struct {
	fn    BatchFunc
	stage *stage.Stage
}

func (s *foreachSink) Name() string { return "foreachBatch" }

func (s *foreachSink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	switch mode {
	case sinks.Append, sinks.Update, sinks.Complete:
		return nil
	}
	return fmt.Errorf("foreachBatch: unknown output mode %q", mode)
}

func (s *foreachSink) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	return s.stage.NewWriter(ctx, b, task, func(rec arrow.Record, _ int64) (arrow.Record, error) {
		rec.Retain()
		return rec, nil
	})
}

func (s *foreachSink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	recs, _, err := s.stage.Take(b, msgs)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if err := s.fn(ctx, b.ID, dataset.FromRecords(b.Schema, recs...)); err != nil {
		return fmt.Errorf("foreachBatch function, batch %d: %w", b.ID, err)
	}
	return nil
}

func (s *foreachSink) Abort(_ context.Context, b sinks.Batch, _ []sinks.CommitMessage) error {
	s.stage.Drop(b.ID)
	return nil
}
