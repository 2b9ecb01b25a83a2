package nexmark

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/sinks"
)

// countSink discards rows and counts them: a writer's commit message is
// its row count, so it costs the same in a task of the driver's process
// as on an executor (a ForeachBatch sink would carry every row to the
// driver in its commit messages).
type countSink struct {
	rows atomic.Int64
	mu   sync.Mutex
	last int64 // last batch committed, for idempotent commits
	any  bool
}

var _ sinks.Sink = (*countSink)(nil)

func (s *countSink) Name() string { return "count" }

func (s *countSink) Check(sinks.Mode, *arrow.Schema) error { return nil }

func (s *countSink) NewWriter(context.Context, sinks.Batch, int) (sinks.Writer, error) {
	return &countWriter{}, nil
}

func (s *countSink) Commit(_ context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	var n int64
	for _, m := range msgs {
		var c countMsg
		if err := json.Unmarshal(m, &c); err != nil {
			return fmt.Errorf("count sink: batch %d: commit message %q: %w", b.ID, m, err)
		}
		n += c.Rows
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.any && b.ID <= s.last {
		return nil
	}
	s.any, s.last = true, b.ID
	s.rows.Add(n)
	return nil
}

func (s *countSink) Abort(context.Context, sinks.Batch, []sinks.CommitMessage) error { return nil }

type countMsg struct {
	Rows int64 `json:"rows"`
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(rec arrow.Record) error { w.n += rec.NumRows(); return nil }

func (w *countWriter) Prepare() (sinks.CommitMessage, error) {
	return json.Marshal(countMsg{Rows: w.n})
}

func (w *countWriter) Abort() error { return nil }
