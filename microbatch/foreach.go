package microbatch

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks"
)

// BatchFunc is user code run once per committed micro-batch with the batch's
// output as a Dataset (valid only during the call). It may be called again
// for the same batch id after a crash before commits/<N> was written, so it
// should be idempotent per batch id (e.g. overwrite a partition named by it).
type BatchFunc func(ctx context.Context, batchID int64, ds *dataset.Dataset) error

// ForeachBatch returns a sink that hands each batch to fn, in the driver
// process. Unlike other sinks it keeps the records tasks write (retained,
// not copied) until the batch commits or aborts, so it works only with
// in-process executors.
func ForeachBatch(fn BatchFunc) sinks.Sink {
	return &foreachSink{fn: fn, held: map[string][]arrow.Record{}}
}

type foreachSink struct {
	fn   BatchFunc
	mu   sync.Mutex
	held map[string][]arrow.Record // token -> records of one task
	next int
}

func (s *foreachSink) Name() string { return "foreachBatch" }

func (s *foreachSink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	switch mode {
	case sinks.Append, sinks.Update, sinks.Complete:
		return nil
	}
	return fmt.Errorf("foreachBatch: unknown output mode %q", mode)
}

func (s *foreachSink) NewWriter(_ context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	return &foreachWriter{s: s, batch: b.ID, task: task}, nil
}

func (s *foreachSink) take(msgs []sinks.CommitMessage) ([]arrow.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []arrow.Record
	for _, m := range msgs {
		var token string
		if err := json.Unmarshal(m, &token); err != nil {
			return nil, fmt.Errorf("foreachBatch: bad commit message %s: %w", m, err)
		}
		recs = append(recs, s.held[token]...)
		delete(s.held, token)
	}
	return recs, nil
}

func (s *foreachSink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	recs, err := s.take(msgs)
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

func (s *foreachSink) Abort(_ context.Context, _ sinks.Batch, msgs []sinks.CommitMessage) error {
	recs, err := s.take(msgs)
	for _, r := range recs {
		r.Release()
	}
	return err
}

type foreachWriter struct {
	s     *foreachSink
	batch int64
	task  int
	recs  []arrow.Record
}

func (w *foreachWriter) Write(rec arrow.Record) error {
	rec.Retain()
	w.recs = append(w.recs, rec)
	return nil
}

func (w *foreachWriter) Prepare() (sinks.CommitMessage, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.next++
	token := fmt.Sprintf("%d/%d/%d", w.batch, w.task, w.s.next)
	w.s.held[token] = w.recs
	w.recs = nil
	return json.Marshal(token)
}

func (w *foreachWriter) Abort() error {
	for _, r := range w.recs {
		r.Release()
	}
	w.recs = nil
	return nil
}
