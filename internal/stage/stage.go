// Package stage is the two-phase hand-off of the sinks whose driver needs
// the rows themselves (memory, console, foreachBatch): a task's writer
// keeps what the sink needs of its records, Prepare returns a commit
// message, and the driver's Commit takes the records of its batch's
// messages. A message comes in one of two kinds:
//
//   - parked (the task runs in the driver's process): the records stay in
//     this process under a token and the message carries only the token,
//     so nothing is copied or encoded on the local path;
//   - inline (the task's ctx was marked by sinks.WithRemote: it runs on a
//     cluster executor): the message carries the kept records themselves
//     as an Arrow IPC stream ("rows", base64 in the JSON), so any Stage of
//     the sink (the driver's instance) can take them.
//
// Invariants:
//  1. Every record a Stage holds is released exactly once: by Take's
//     caller, by Drop, by a writer's Abort, or by Close. An inline writer
//     holds no record between calls: Write encodes and releases at once.
//  2. A message belongs to one batch; Take refuses a message of another
//     batch or a token the stage does not hold (ErrUnknownMessage, naming
//     the message), and an inline payload that does not decode to records
//     of the batch's schema (ErrCorruptMessage). Take takes nothing unless
//     every message is good.
//  3. Inline records are decoded with the Stage's allocator; the caller of
//     Take owns them as it owns parked ones.
package stage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("closed")
	// ErrUnknownMessage: a commit message this stage did not make (another
	// process's token, one of another batch, or records already dropped).
	ErrUnknownMessage = errors.New("unknown commit message")
	// ErrCorruptMessage: an inline commit message whose rows do not decode
	// to records of the batch's schema.
	ErrCorruptMessage = errors.New("corrupt commit message")
	// ErrSchemaMismatch: a written record's schema is not the batch's.
	ErrSchemaMismatch = errors.New("schema mismatch")
)

// Keep decides what a writer holds of a written record: a record the stage
// then owns, or nil to hold nothing. kept is how many rows the writer holds
// so far. Keep must not retain rec itself unless it returns it retained.
type Keep func(rec arrow.Record, kept int64) (arrow.Record, error)

// Stage holds prepared records by token until their batch commits or aborts.
type Stage struct {
	name    string           // for error messages: "memory sink"
	mem     memory.Allocator // decodes inline messages
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

// message is a commit message of either kind: Token names parked records
// (tokens start at 1); Inline carries the records in Rows, an Arrow IPC
// stream (empty when the task kept none), and the rows written in Written.
type message struct {
	Batch   int64  `json:"batch"`
	Task    int    `json:"task"`
	Token   int64  `json:"token,omitempty"`
	Inline  bool   `json:"inline,omitempty"`
	Written int64  `json:"written,omitempty"`
	Rows    []byte `json:"rows,omitempty"`
}

// New returns an empty stage; name prefixes its errors, and mem (default
// the Go allocator) holds the records Take decodes from inline messages.
func New(name string, mem memory.Allocator) *Stage {
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	return &Stage{name: name, mem: mem, pending: map[int64]*pending{}}
}

// NewWriter returns the writer of one task of batch b: an inline one when
// ctx is marked by sinks.WithRemote, a parked one otherwise.
func (s *Stage) NewWriter(ctx context.Context, b sinks.Batch, task int, keep Keep) (sinks.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	if sinks.IsRemote(ctx) {
		return &inlineWriter{s: s, keep: keep, schema: b.Schema, msg: message{Batch: b.ID, Task: task, Inline: true}}, nil
	}
	s.next++
	p := &pending{batch: b.ID}
	s.pending[s.next] = p
	return &writer{s: s, p: p, keep: keep, schema: b.Schema, msg: message{Batch: b.ID, Task: task, Token: s.next}}, nil
}

// Take removes the records prepared under msgs for batch b and returns them
// (the caller owns them) with the number of rows written to them.
func (s *Stage) Take(b sinks.Batch, msgs []sinks.CommitMessage) ([]arrow.Record, int64, error) {
	ms := make([]message, len(msgs))
	for i, raw := range msgs {
		if err := json.Unmarshal(raw, &ms[i]); err != nil {
			return nil, 0, fmt.Errorf("%s: commit batch %d: %w: %.200s: %v", s.name, b.ID, ErrUnknownMessage, raw, err)
		}
		if ms[i].Batch != b.ID {
			return nil, 0, fmt.Errorf("%s: commit batch %d: %w: a message of batch %d: %.200s", s.name, b.ID, ErrUnknownMessage, ms[i].Batch, raw)
		}
	}
	// Decode inline messages before taking the lock: it is the slow part.
	var inline [][]arrow.Record
	var rows int64
	fail := func(err error) ([]arrow.Record, int64, error) {
		for _, recs := range inline {
			release(recs)
		}
		return nil, 0, err
	}
	for _, m := range ms {
		if !m.Inline {
			continue
		}
		recs, err := s.decode(b.Schema, m)
		if err != nil {
			return fail(fmt.Errorf("%s: commit batch %d: task %d: %w: %v", s.name, b.ID, m.Task, ErrCorruptMessage, err))
		}
		inline = append(inline, recs)
		rows += m.Written
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fail(fmt.Errorf("%s: %w", s.name, ErrClosed))
	}
	for i, m := range ms {
		if m.Inline {
			continue
		}
		if p := s.pending[m.Token]; p == nil || p.batch != b.ID {
			return fail(fmt.Errorf("%s: commit batch %d: %w: %.200s", s.name, b.ID, ErrUnknownMessage, msgs[i]))
		}
	}
	var recs []arrow.Record
	next := 0
	for _, m := range ms {
		if m.Inline {
			recs = append(recs, inline[next]...)
			next++
			continue
		}
		p := s.pending[m.Token]
		recs = append(recs, p.recs...)
		rows += p.rows
		delete(s.pending, m.Token)
	}
	return recs, rows, nil
}

// decode reads the records of an inline message: all of schema (when the
// batch has one), at most the rows written.
func (s *Stage) decode(schema *arrow.Schema, m message) ([]arrow.Record, error) {
	if len(m.Rows) == 0 {
		return nil, nil
	}
	r, err := ipc.NewReader(bytes.NewReader(m.Rows), ipc.WithAllocator(s.mem))
	if err != nil {
		return nil, fmt.Errorf("rows: %w", err)
	}
	defer r.Release()
	if schema != nil && !r.Schema().Equal(schema) {
		return nil, fmt.Errorf("rows: %w: batch has %s, rows have %s", ErrSchemaMismatch, schema, r.Schema())
	}
	var recs []arrow.Record
	var n int64
	for r.Next() {
		rec := r.Record()
		rec.Retain()
		recs = append(recs, rec)
		n += rec.NumRows()
	}
	if err := r.Err(); err != nil {
		release(recs)
		return nil, fmt.Errorf("rows: %w", err)
	}
	if n > m.Written {
		release(recs)
		return nil, fmt.Errorf("rows: %d rows kept of %d written", n, m.Written)
	}
	return recs, nil
}

func release(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
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

func (s *Stage) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// writer parks its records in the Stage under its token.
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

// inlineWriter encodes what it keeps into an Arrow IPC stream as records
// arrive, and Prepare puts the stream in the commit message.
type inlineWriter struct {
	s      *Stage
	keep   Keep
	schema *arrow.Schema
	msg    message
	buf    bytes.Buffer
	enc    *ipc.Writer // nil until the first kept record
	kept   int64
	done   bool // prepared or aborted
}

func (w *inlineWriter) Write(rec arrow.Record) error {
	if w.done {
		return fmt.Errorf("%s: write after Prepare or Abort", w.s.name)
	}
	if w.schema != nil && !rec.Schema().Equal(w.schema) {
		return fmt.Errorf("%s: %w: batch has %s, record has %s", w.s.name, ErrSchemaMismatch, w.schema, rec.Schema())
	}
	if w.s.isClosed() {
		return fmt.Errorf("%s: sink closed while writing", w.s.name)
	}
	c, err := w.keep(rec, w.kept)
	if err != nil {
		return fmt.Errorf("%s: keep record: %w", w.s.name, err)
	}
	w.msg.Written += rec.NumRows()
	if c == nil {
		return nil
	}
	defer c.Release()
	if w.enc == nil {
		w.enc = ipc.NewWriter(&w.buf, ipc.WithSchema(c.Schema()), ipc.WithAllocator(w.s.mem))
	}
	if err := w.enc.Write(c); err != nil {
		return fmt.Errorf("%s: encode batch %d task %d rows: %w", w.s.name, w.msg.Batch, w.msg.Task, err)
	}
	w.kept += c.NumRows()
	return nil
}

func (w *inlineWriter) Prepare() (sinks.CommitMessage, error) {
	if w.done {
		return nil, fmt.Errorf("%s: Prepare after Prepare or Abort", w.s.name)
	}
	w.done = true
	if w.enc != nil {
		if err := w.enc.Close(); err != nil {
			return nil, fmt.Errorf("%s: encode batch %d task %d rows: %w", w.s.name, w.msg.Batch, w.msg.Task, err)
		}
		w.msg.Rows = w.buf.Bytes()
	}
	b, err := json.Marshal(w.msg)
	w.msg.Rows, w.buf = nil, bytes.Buffer{}
	return b, err
}

func (w *inlineWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.enc != nil {
		_ = w.enc.Close()
	}
	w.buf = bytes.Buffer{}
	return nil
}
