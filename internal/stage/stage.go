// Package stage is the two-phase hand-off of the in-process sinks (memory,
// console, foreachBatch): a task's writer keeps records in this process
// under a token, Prepare returns the token as the commit message, and the
// driver's Commit takes the records of its batch's tokens. Records never
// leave the process, so these sinks work with in-process executors only.
//
// Invariants:
//  1. Every record a Stage holds is released exactly once: by Take's
//     caller, by Drop, by a writer's Abort, or by Close.
//  2. A token belongs to one batch; Take refuses a message of another batch
//     or one the stage does not hold (ErrUnknownMessage).
package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/sinks"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("closed")
	// ErrUnknownMessage: a commit message this stage did not make (another
	// process, or records already dropped).
	ErrUnknownMessage = errors.New("unknown commit message")
	// ErrSchemaMismatch: a written record's schema is not the batch's.
	ErrSchemaMismatch = errors.New("schema mismatch")
)

// Keep decides what a writer holds of a written record: a record the stage
// then owns, or nil to hold nothing. kept is how many rows the writer holds
// so far. Keep must not retain rec itself unless it returns it retained.
type Keep func(rec arrow.Record, kept int64) (arrow.Record, error)

// Stage holds prepared records by token until their batch commits or aborts.
type Stage struct {
	name    string // for error messages: "memory sink"
	mu      sync.Mutex
	closed  bool
	next    int64
	pending map[int64]*pending
}

type pending struct {
	batch int64
	rows  int64 // rows written, held or not
	recs  []arrow.Record
}

func (p *pending) release() {
	for _, r := range p.recs {
		r.Release()
	}
	p.recs = nil
}

type message struct {
	Batch int64 `json:"batch"`
	Task  int   `json:"task"`
	Token int64 `json:"token"`
}

// New returns an empty stage; name prefixes its errors.
func New(name string) *Stage { return &Stage{name: name, pending: map[int64]*pending{}} }

// NewWriter returns the writer of one task of batch b.
func (s *Stage) NewWriter(b sinks.Batch, task int, keep Keep) (sinks.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	s.next++
	p := &pending{batch: b.ID}
	s.pending[s.next] = p
	return &writer{s: s, p: p, keep: keep, schema: b.Schema, msg: message{Batch: b.ID, Task: task, Token: s.next}}, nil
}

// Take removes the records prepared under msgs for batch and returns them
// (the caller owns them) with the number of rows written to them.
func (s *Stage) Take(batch int64, msgs []sinks.CommitMessage) ([]arrow.Record, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	var ps []int64
	for _, raw := range msgs {
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, 0, fmt.Errorf("%s: commit batch %d: %w: %v", s.name, batch, ErrUnknownMessage, err)
		}
		p := s.pending[m.Token]
		if p == nil || m.Batch != batch || p.batch != batch {
			return nil, 0, fmt.Errorf("%s: commit batch %d: %w: %s", s.name, batch, ErrUnknownMessage, raw)
		}
		ps = append(ps, m.Token)
	}
	var recs []arrow.Record
	var rows int64
	for _, tok := range ps {
		recs = append(recs, s.pending[tok].recs...)
		rows += s.pending[tok].rows
		delete(s.pending, tok)
	}
	return recs, rows, nil
}

// Drop releases everything prepared for batch (this run's or an earlier one's).
func (s *Stage) Drop(batch int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, p := range s.pending {
		if p.batch == batch {
			p.release()
			delete(s.pending, tok)
		}
	}
}

// Close releases everything held; it is idempotent.
func (s *Stage) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, p := range s.pending {
		p.release()
	}
	s.pending = nil
}

type writer struct {
	s        *Stage
	p        *pending
	keep     Keep
	schema   *arrow.Schema
	msg      message
	kept     int64
	prepared bool
	aborted  bool
}

func (w *writer) Write(rec arrow.Record) error {
	if w.prepared || w.aborted {
		return fmt.Errorf("%s: write after Prepare or Abort", w.s.name)
	}
	if w.schema != nil && !rec.Schema().Equal(w.schema) {
		return fmt.Errorf("%s: %w: batch has %s, record has %s", w.s.name, ErrSchemaMismatch, w.schema, rec.Schema())
	}
	c, err := w.keep(rec, w.kept)
	if err != nil {
		return fmt.Errorf("%s: keep record: %w", w.s.name, err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.closed || w.s.pending[w.msg.Token] != w.p {
		if c != nil {
			c.Release()
		}
		return fmt.Errorf("%s: batch aborted or sink closed while writing", w.s.name)
	}
	w.p.rows += rec.NumRows()
	if c != nil {
		w.kept += c.NumRows()
		w.p.recs = append(w.p.recs, c)
	}
	return nil
}

func (w *writer) Prepare() (sinks.CommitMessage, error) {
	if w.aborted {
		return nil, fmt.Errorf("%s: Prepare after Abort", w.s.name)
	}
	w.prepared = true
	return json.Marshal(w.msg)
}

func (w *writer) Abort() error {
	if w.prepared || w.aborted {
		return nil
	}
	w.aborted = true
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.pending[w.msg.Token] == w.p {
		w.p.release()
		delete(w.s.pending, w.msg.Token)
	}
	return nil
}
