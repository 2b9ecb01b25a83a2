package kafka

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/sluicedata/sluice/sinks"
	"github.com/twmb/franz-go/pkg/kgo"
)

// writer encodes one task's records into Kafka records kept in process
// memory; Prepare hands them to the Sink under a token the commit message
// carries or, for a remote task, puts them in the message itself (the
// inline form, inline.go). It is used by one goroutine.
type writer struct {
	s      *Sink
	batch  sinks.Batch
	task   int
	remote bool    // the task runs on a cluster executor: ship the records
	layout *layout // nil until the first record when the batch has no schema

	recs     []*kgo.Record
	bytes    int64
	done     bool // prepared or aborted
	prepared bool
}

func (w *writer) Write(rec arrow.Record) error {
	if w.done {
		return fmt.Errorf("kafka sink: batch %d task %d: Write after Prepare or Abort", w.batch.ID, w.task)
	}
	if w.batch.Schema != nil && !rec.Schema().Equal(w.batch.Schema) {
		return fmt.Errorf("%w: batch %d task %d: record has %s, batch has %s", ErrSchema, w.batch.ID, w.task, rec.Schema(), w.batch.Schema)
	}
	if w.layout == nil {
		l, err := newLayout(w.s.cfg, rec.Schema())
		if err != nil {
			return err
		}
		w.layout = &l
	}
	recs, n, err := w.layout.encode(rec)
	if err != nil {
		return fmt.Errorf("kafka sink: batch %d task %d: %w", w.batch.ID, w.task, err)
	}
	if err := w.s.reserve(n); err != nil {
		return fmt.Errorf("batch %d task %d: %w", w.batch.ID, w.task, err)
	}
	w.recs = append(w.recs, recs...)
	w.bytes += n
	return nil
}

func (w *writer) Prepare() (sinks.CommitMessage, error) {
	if w.done {
		return nil, fmt.Errorf("kafka sink: batch %d task %d: Prepare after Prepare or Abort", w.batch.ID, w.task)
	}
	w.done = true
	s := w.s
	if w.remote {
		rows := appendInline(make([]byte, 0, inlineSize(w.recs)), w.recs)
		msg, err := json.Marshal(message{
			Batch: w.batch.ID, Task: w.task, Inline: true, Rows: rows,
			Records: len(w.recs), Bytes: w.bytes,
		})
		s.unreserve(w.bytes)
		w.recs, w.bytes = nil, 0
		w.prepared = true
		return msg, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.next++
	tok := s.next
	s.pending[tok] = &pending{batch: w.batch.ID, recs: w.recs, bytes: w.bytes}
	s.mu.Unlock()
	w.prepared = true
	msg, err := json.Marshal(message{
		Sink: s.instance, Batch: w.batch.ID, Task: w.task, Token: tok,
		Records: len(w.recs), Bytes: w.bytes,
	})
	w.recs = nil
	return msg, err
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.s.unreserve(w.bytes)
	w.recs, w.bytes = nil, 0
	return nil
}
