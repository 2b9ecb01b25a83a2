package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("memory sink: closed")
	// ErrUnknownMessage is returned by Commit for a message this sink did
	// not make (another process, or rows already dropped by Abort).
	ErrUnknownMessage = errors.New("memory sink: unknown commit message")
	// ErrSchemaMismatch is returned for a record or batch whose schema
	// differs from the batch's or the table's.
	ErrSchemaMismatch = errors.New("memory sink: schema mismatch")
)

// Config configures a Sink.
type Config struct {
	Name string           // default "memory"
	Mem  memory.Allocator // where copies of written rows live; default the Go allocator
	Keys []string         // key columns for Update mode; none: Update appends
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for _, k := range c.Keys {
		if k == "" || seen[k] {
			return fmt.Errorf("memory sink: key column %q empty or repeated", k)
		}
		seen[k] = true
	}
	return nil
}

// Sink keeps committed rows in memory. It is safe for concurrent use.
type Sink struct {
	name string
	mem  memory.Allocator
	keys []string

	mu        sync.Mutex
	closed    bool
	next      int64
	pending   map[int64]*pending // by token
	committed map[int64]bool
	batches   []int64
	schema    *arrow.Schema
	recs      []arrow.Record
}

type pending struct {
	batch int64
	recs  []arrow.Record
}

type message struct {
	Batch int64 `json:"batch"`
	Task  int   `json:"task"`
	Token int64 `json:"token"`
}

var _ sinks.Sink = (*Sink)(nil)

// New returns an empty sink.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "memory"
	}
	if cfg.Mem == nil {
		cfg.Mem = memory.NewGoAllocator()
	}
	return &Sink{
		name: cfg.Name, mem: cfg.Mem, keys: slices.Clone(cfg.Keys),
		pending: map[int64]*pending{}, committed: map[int64]bool{},
	}, nil
}

func (s *Sink) Name() string { return s.name }

// Check accepts every mode; Update needs the key columns in schema.
func (s *Sink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	switch mode {
	case sinks.Append, sinks.Complete:
		return nil
	case sinks.Update:
		_, err := s.keyIndices(schema)
		return err
	}
	return fmt.Errorf("memory sink: unknown mode %q", mode)
}

func (s *Sink) keyIndices(schema *arrow.Schema) ([]int, error) {
	if len(s.keys) > 0 && schema == nil {
		return nil, errors.New("memory sink: update mode with key columns needs a schema")
	}
	var idx []int
	for _, k := range s.keys {
		is := schema.FieldIndices(k)
		if len(is) != 1 {
			return nil, fmt.Errorf("memory sink: update mode: key column %q: %d columns of that name in %s", k, len(is), schema)
		}
		idx = append(idx, is[0])
	}
	return idx, nil
}

// NewWriter returns the writer of one task of batch b.
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

// Commit applies the batch's rows to the table once; see the package doc.
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
	var used []int64
	for _, raw := range msgs {
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("memory sink: commit batch %d: %w: %v", b.ID, ErrUnknownMessage, err)
		}
		p := s.pending[m.Token]
		if p == nil || m.Batch != b.ID || p.batch != b.ID {
			return fmt.Errorf("memory sink: commit batch %d: %w: %s", b.ID, ErrUnknownMessage, raw)
		}
		recs = append(recs, p.recs...)
		used = append(used, m.Token)
	}
	if err := s.apply(b, recs); err != nil {
		return fmt.Errorf("memory sink: commit batch %d: %w", b.ID, err)
	}
	for _, tok := range used {
		delete(s.pending, tok) // their records now belong to the table
	}
	s.committed[b.ID] = true
	s.batches = append(s.batches, b.ID)
	s.dropBatch(b.ID)
	return nil
}

// apply changes the table by recs according to b.Mode. On error nothing
// changed and recs still belong to their pending entries.
func (s *Sink) apply(b sinks.Batch, recs []arrow.Record) error {
	schema := b.Schema
	if schema == nil && len(recs) > 0 {
		schema = recs[0].Schema()
	}
	if b.Mode != sinks.Complete && s.schema != nil && schema != nil && !s.schema.Equal(schema) {
		return fmt.Errorf("%w: table has %s, batch has %s", ErrSchemaMismatch, s.schema, schema)
	}
	switch b.Mode {
	case sinks.Append:
		s.recs = append(s.recs, recs...)
	case sinks.Complete:
		for _, r := range s.recs {
			r.Release()
		}
		s.recs = slices.Clone(recs)
		s.schema = schema
	case sinks.Update:
		if len(s.keys) == 0 {
			s.recs = append(s.recs, recs...)
			break
		}
		if schema == nil {
			break
		}
		out, err := s.upsert(schema, recs)
		if err != nil {
			return err
		}
		s.recs = out
	default:
		return fmt.Errorf("unknown mode %q", b.Mode)
	}
	if s.schema == nil {
		s.schema = schema
	}
	return nil
}

// upsert returns the table with recs upserted by key: the last row of each
// key wins. It releases the old table and recs on success only.
func (s *Sink) upsert(schema *arrow.Schema, recs []arrow.Record) ([]arrow.Record, error) {
	keyIdx, err := s.keyIndices(schema)
	if err != nil {
		return nil, err
	}
	type pos struct{ rec, row int }
	latest := map[string]pos{}
	var buf []byte
	for ri, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			buf = appendKey(buf[:0], r, keyIdx, i)
			latest[string(buf)] = pos{ri, i}
		}
	}
	var out []arrow.Record
	fail := func(err error) ([]arrow.Record, error) {
		for _, r := range out {
			r.Release()
		}
		return nil, err
	}
	for _, r := range s.recs {
		var keep []int32
		for i := 0; i < int(r.NumRows()); i++ {
			buf = appendKey(buf[:0], r, keyIdx, i)
			if _, ok := latest[string(buf)]; !ok {
				keep = append(keep, int32(i))
			}
		}
		kept, err := s.take(r, keep)
		if err != nil {
			return fail(err)
		}
		if kept != nil {
			out = append(out, kept)
		}
	}
	for ri, r := range recs {
		var keep []int32
		for i := 0; i < int(r.NumRows()); i++ {
			buf = appendKey(buf[:0], r, keyIdx, i)
			if latest[string(buf)] == (pos{ri, i}) {
				keep = append(keep, int32(i))
			}
		}
		kept, err := s.take(r, keep)
		if err != nil {
			return fail(err)
		}
		if kept != nil {
			out = append(out, kept)
		}
	}
	for _, r := range s.recs {
		r.Release()
	}
	for _, r := range recs {
		r.Release()
	}
	return out, nil
}

// take returns a new reference to the rows of r at rows: r itself
// (retained) when it keeps every row, nil when none.
func (s *Sink) take(r arrow.Record, rows []int32) (arrow.Record, error) {
	switch len(rows) {
	case 0:
		return nil, nil
	case int(r.NumRows()):
		r.Retain()
		return r, nil
	}
	ib := array.NewInt32Builder(s.mem)
	ib.AppendValues(rows, nil)
	indices := ib.NewArray()
	ib.Release()
	defer indices.Release()
	ctx := compute.WithAllocator(context.Background(), s.mem)
	cols := make([]arrow.Array, 0, r.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, c := range r.Columns() {
		t, err := compute.TakeArray(ctx, c, indices)
		if err != nil {
			return nil, fmt.Errorf("take rows: %w", err)
		}
		cols = append(cols, t)
	}
	return array.NewRecord(r.Schema(), cols, int64(len(rows))), nil
}

// appendKey renders the key columns of row i unambiguously: a length
// prefix per value, and a null distinct from every string.
func appendKey(b []byte, r arrow.Record, keyIdx []int, i int) []byte {
	for _, k := range keyIdx {
		c := r.Column(k)
		if c.IsNull(i) {
			b = append(b, 'N')
			continue
		}
		v := c.ValueStr(i)
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return b
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

// Abort drops what tasks of b prepared (from this run or an earlier one);
// it is a no-op for a committed batch.
func (s *Sink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.dropBatch(b.ID)
	return nil
}

// Rows returns the table's records, each retained: the caller releases
// them. Records are immutable, so they are shared, not copied.
func (s *Sink) Rows() []arrow.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.recs)
	for _, r := range out {
		r.Retain()
	}
	return out
}

// Schema returns the table's schema, nil before the first commit with one.
func (s *Sink) Schema() *arrow.Schema {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schema
}

// Batches returns the committed batch ids in commit order.
func (s *Sink) Batches() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

// String renders the table's rows, one per line, for test failures.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, r := range s.recs {
		for i := 0; i < int(r.NumRows()); i++ {
			for j, c := range r.Columns() {
				if j > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(c.ValueStr(i))
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Close releases the table and every pending output. It is idempotent.
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
	for _, r := range s.recs {
		r.Release()
	}
	s.recs = nil
	return nil
}

func (p *pending) release() {
	for _, r := range p.recs {
		r.Release()
	}
	p.recs = nil
}

type writer struct {
	s        *Sink
	p        *pending
	schema   *arrow.Schema
	msg      message
	prepared bool
	aborted  bool
}

// Write copies rec's rows into the sink's allocator.
func (w *writer) Write(rec arrow.Record) error {
	if w.prepared || w.aborted {
		return errors.New("memory sink: write after Prepare or Abort")
	}
	if w.schema != nil && !rec.Schema().Equal(w.schema) {
		return fmt.Errorf("%w: batch has %s, record has %s", ErrSchemaMismatch, w.schema, rec.Schema())
	}
	if rec.NumRows() == 0 {
		return nil
	}
	c, err := copyRecord(w.s.mem, rec)
	if err != nil {
		return fmt.Errorf("memory sink: copy record: %w", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.closed || w.s.pending[w.msg.Token] != w.p {
		c.Release()
		return errors.New("memory sink: batch aborted or sink closed while writing")
	}
	w.p.recs = append(w.p.recs, c)
	return nil
}

func (w *writer) Prepare() (sinks.CommitMessage, error) {
	if w.aborted {
		return nil, errors.New("memory sink: Prepare after Abort")
	}
	w.prepared = true
	b, err := json.Marshal(w.msg)
	return b, err
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

// copyRecord deep-copies rec into mem, so the caller may release rec.
func copyRecord(mem memory.Allocator, rec arrow.Record) (arrow.Record, error) {
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, c := range rec.Columns() {
		cp, err := array.Concatenate([]arrow.Array{c}, mem)
		if err != nil {
			return nil, err
		}
		cols = append(cols, cp)
	}
	return array.NewRecord(rec.Schema(), cols, rec.NumRows()), nil
}
