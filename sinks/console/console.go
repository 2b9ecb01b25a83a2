package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("console sink: closed")
	// ErrUnknownMessage is returned by Commit for a message this sink did
	// not make.
	ErrUnknownMessage = errors.New("console sink: unknown commit message")
)

// FormatFunc writes at most maxRows rows of recs (all of schema) as text.
type FormatFunc func(w io.Writer, schema *arrow.Schema, recs []arrow.Record, maxRows int) error

// DefaultMaxRows is how many rows a batch prints unless configured.
const DefaultMaxRows = 20

// Config configures a Sink.
type Config struct {
	Name    string           // default "console"
	Out     io.Writer        // default os.Stdout
	MaxRows int              // rows printed per batch; default 20
	Format  FormatFunc       // default FormatTable
	Mem     memory.Allocator // where copies of written rows live; default the Go allocator
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.MaxRows < 0 {
		return fmt.Errorf("console sink: MaxRows %d < 0", c.MaxRows)
	}
	return nil
}

// Sink prints committed batches. It is safe for concurrent use.
type Sink struct {
	name    string
	out     io.Writer
	maxRows int
	format  FormatFunc
	mem     memory.Allocator

	mu        sync.Mutex
	closed    bool
	next      int64
	pending   map[int64]*pending // by token
	committed map[int64]bool
}

type pending struct {
	batch int64
	rows  int64 // rows written, kept or not
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

var _ sinks.Sink = (*Sink)(nil)

// New returns a sink printing to cfg.Out.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "console"
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.MaxRows == 0 {
		cfg.MaxRows = DefaultMaxRows
	}
	if cfg.Format == nil {
		cfg.Format = FormatTable
	}
	if cfg.Mem == nil {
		cfg.Mem = memory.NewGoAllocator()
	}
	return &Sink{
		name: cfg.Name, out: cfg.Out, maxRows: cfg.MaxRows, format: cfg.Format, mem: cfg.Mem,
		pending: map[int64]*pending{}, committed: map[int64]bool{},
	}, nil
}

func (s *Sink) Name() string { return s.name }

// Check accepts every mode.
func (s *Sink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	switch mode {
	case sinks.Append, sinks.Update, sinks.Complete:
		return nil
	}
	return fmt.Errorf("console sink: unknown mode %q", mode)
}

func (s *Sink) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	if err := s.Check(b.Mode, b.Schema); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.next++
	p := &pending{batch: b.ID}
	s.pending[s.next] = p
	return &writer{s: s, p: p, schema: b.Schema, msg: message{Batch: b.ID, Task: task, Token: s.next}}, nil
}

// Commit prints the batch once; see the package doc.
func (s *Sink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.committed[b.ID] {
		s.dropBatch(b.ID)
		return nil
	}
	var recs []arrow.Record
	var total int64
	for _, raw := range msgs {
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("console sink: commit batch %d: %w: %v", b.ID, ErrUnknownMessage, err)
		}
		p := s.pending[m.Token]
		if p == nil || m.Batch != b.ID || p.batch != b.ID {
			return fmt.Errorf("console sink: commit batch %d: %w: %s", b.ID, ErrUnknownMessage, raw)
		}
		recs = append(recs, p.recs...)
		total += p.rows
	}
	schema := b.Schema
	if schema == nil && len(recs) > 0 {
		schema = recs[0].Schema()
	}
	var buf bytes.Buffer
	line := strings.Repeat("-", 43)
	fmt.Fprintf(&buf, "%s\nBatch: %d\n%s\n", line, b.ID, line)
	if schema != nil {
		if err := s.format(&buf, schema, recs, s.maxRows); err != nil {
			return fmt.Errorf("console sink: format batch %d: %w", b.ID, err)
		}
	}
	if total > int64(s.maxRows) {
		fmt.Fprintf(&buf, "only showing top %d of %d rows\n", s.maxRows, total)
	}
	buf.WriteByte('\n')
	if _, err := s.out.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("console sink: print batch %d: %w", b.ID, err)
	}
	s.committed[b.ID] = true
	s.dropBatch(b.ID)
	return nil
}

// dropBatch releases every pending output of batch. Callers hold s.mu.
func (s *Sink) dropBatch(batch int64) {
	for tok, p := range s.pending {
		if p.batch == batch {
			p.release()
			delete(s.pending, tok)
		}
	}
}

// Abort drops what tasks of b prepared; a no-op for a committed batch.
func (s *Sink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.dropBatch(b.ID)
	return nil
}

// Close releases every pending output. It is idempotent.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, p := range s.pending {
		p.release()
	}
	s.pending = nil
	return nil
}

type writer struct {
	s        *Sink
	p        *pending
	schema   *arrow.Schema
	msg      message
	kept     int64
	prepared bool
	aborted  bool
}

// Write copies the rows of rec still needed to show MaxRows rows.
func (w *writer) Write(rec arrow.Record) error {
	if w.prepared || w.aborted {
		return errors.New("console sink: write after Prepare or Abort")
	}
	if w.schema != nil && !rec.Schema().Equal(w.schema) {
		return fmt.Errorf("console sink: schema mismatch: batch has %s, record has %s", w.schema, rec.Schema())
	}
	n := min(rec.NumRows(), int64(w.s.maxRows)-w.kept)
	var c arrow.Record
	if n > 0 {
		var err error
		if c, err = copyRows(w.s.mem, rec, n); err != nil {
			return fmt.Errorf("console sink: copy record: %w", err)
		}
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.closed || w.s.pending[w.msg.Token] != w.p {
		if c != nil {
			c.Release()
		}
		return errors.New("console sink: batch aborted or sink closed while writing")
	}
	w.p.rows += rec.NumRows()
	if c != nil {
		w.kept += n
		w.p.recs = append(w.p.recs, c)
	}
	return nil
}

func (w *writer) Prepare() (sinks.CommitMessage, error) {
	if w.aborted {
		return nil, errors.New("console sink: Prepare after Abort")
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

// copyRows deep-copies the first n rows of rec into mem.
func copyRows(mem memory.Allocator, rec arrow.Record, n int64) (arrow.Record, error) {
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, c := range rec.Columns() {
		sl := array.NewSlice(c, 0, n)
		cp, err := array.Concatenate([]arrow.Array{sl}, mem)
		sl.Release()
		if err != nil {
			return nil, err
		}
		cols = append(cols, cp)
	}
	return array.NewRecord(rec.Schema(), cols, n), nil
}

// maxCell is the width beyond which FormatTable cuts a value, as Spark's
// show() does.
const maxCell = 20

// FormatTable writes at most maxRows rows of recs as Spark's show() does:
// a +---+ framed table, values right-aligned, nulls as "null", values
// longer than 20 characters cut to 17 and "...".
func FormatTable(w io.Writer, schema *arrow.Schema, recs []arrow.Record, maxRows int) error {
	rows := [][]string{make([]string, schema.NumFields())}
	for i, f := range schema.Fields() {
		rows[0][i] = cell(f.Name)
	}
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()) && len(rows) <= maxRows; i++ {
			row := make([]string, r.NumCols())
			for j, c := range r.Columns() {
				if c.IsNull(i) {
					row[j] = "null"
				} else {
					row[j] = cell(c.ValueStr(i))
				}
			}
			rows = append(rows, row)
		}
	}
	widths := make([]int, schema.NumFields())
	for _, row := range rows {
		for j, v := range row {
			widths[j] = max(widths[j], utf8.RuneCountInString(v))
		}
	}
	var b strings.Builder
	sep := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	sep()
	for i, row := range rows {
		b.WriteByte('|')
		for j, v := range row {
			b.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(v)))
			b.WriteString(v)
			b.WriteByte('|')
		}
		b.WriteByte('\n')
		if i == 0 {
			sep()
		}
	}
	sep()
	_, err := io.WriteString(w, b.String())
	return err
}

func cell(s string) string {
	s = strings.NewReplacer("\n", "\\n", "\t", "\\t").Replace(s)
	if utf8.RuneCountInString(s) > maxCell {
		r := []rune(s)
		return string(r[:maxCell-3]) + "..."
	}
	return s
}
