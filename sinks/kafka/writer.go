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

	// dead takes the rows the topic cannot take under the "dead-letter"
	// policy; nil under "fail".
	dead *sinks.DeadLetterWriter
	rows int64 // rows written so far: the position of the next record's row 0
}

var _ sinks.BadRecordCounter = (*writer)(nil)

// DeadLettered is the rows this task wrote to the dead-letter sink.
func (w *writer) DeadLettered() int64 {
	if w.dead == nil {
		return 0
	}
	return w.dead.DeadLettered()
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
	first := w.rows
	w.rows += rec.NumRows()
	if w.dead != nil {
		if recs, n, err = w.reject(rec, first, recs, n); err != nil {
			return err
		}
	}
	if err := w.s.reserve(n); err != nil {
		return fmt.Errorf("batch %d task %d: %w", w.batch.ID, w.task, err)
	}
	w.recs = append(w.recs, recs...)
	w.bytes += n
	return nil
}

// reject hands the rows of rec whose record is too large for the topic
// to the dead-letter writer and returns the other records and their size.
func (w *writer) reject(rec arrow.Record, first int64, recs []*kgo.Record, n int64) ([]*kgo.Record, int64, error) {
	var rows []int
	var why []string
	limit := int64(w.s.cfg.MaxRecordBytes)
	for i, r := range recs {
		if size := sizeOf(r); size > limit {
			rows = append(rows, i)
			why = append(why, fmt.Sprintf("%v: a batch of this record alone is %d bytes (key %d, value %d, headers %d), over MaxRecordBytes %d of topic %s",
				ErrRecordTooLarge, size, len(r.Key), len(r.Value), recordSize(r)-len(r.Key)-len(r.Value), limit, w.s.cfg.Topic))
		}
	}
	if len(rows) == 0 {
		return recs, n, nil
	}
	if err := w.dead.Write(rec, first, rows, why); err != nil {
		return nil, 0, fmt.Errorf("kafka sink %s: %w", w.s.cfg.Name, err)
	}
	kept := recs[:0]
	next := 0
	for i, r := range recs {
		if next < len(rows) && rows[next] == i {
			n -= int64(recordSize(r))
			next++
			continue
		}
		kept = append(kept, r)
	}
	return kept, n, nil
}

func (w *writer) Prepare() (_ sinks.CommitMessage, err error) {
	if w.done {
		return nil, fmt.Errorf("kafka sink: batch %d task %d: Prepare after Prepare or Abort", w.batch.ID, w.task)
	}
	w.done = true
	s := w.s
	var dead sinks.CommitMessage
	if w.dead != nil {
		if dead, err = w.dead.Prepare(); err != nil {
			_ = w.dead.Abort()
			s.unreserve(w.bytes)
			w.recs, w.bytes = nil, 0
			return nil, fmt.Errorf("kafka sink %s: %w", s.cfg.Name, err)
		}
	}
	if w.remote {
		rows := appendInline(make([]byte, 0, inlineSize(w.recs)), w.recs)
		msg, err := json.Marshal(message{
			Batch: w.batch.ID, Task: w.task, Inline: true, Rows: rows,
			Records: len(w.recs), Bytes: w.bytes, DeadLetter: dead,
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
		Records: len(w.recs), Bytes: w.bytes, DeadLetter: dead,
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
	if w.dead != nil {
		return w.dead.Abort()
	}
	return nil
}
