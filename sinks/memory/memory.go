package memory

import (
	"context"
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
	"github.com/sluicedata/sluice/internal/stage"
	"github.com/sluicedata/sluice/sinks"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = stage.ErrClosed
	// ErrUnknownMessage is returned by Commit for a message of another
	// batch, or a token this sink does not hold (another process's, or
	// rows already dropped by Abort).
	ErrUnknownMessage = stage.ErrUnknownMessage
	// ErrCorruptMessage is returned by Commit for an inline message whose
	// rows do not decode to records of the batch's schema.
	ErrCorruptMessage = stage.ErrCorruptMessage
	// ErrSchemaMismatch is returned for a record or batch whose schema
	// differs from the batch's or the table's.
	ErrSchemaMismatch = stage.ErrSchemaMismatch
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

	stage     *stage.Stage // what tasks prepared, until their batch commits
	mu        sync.Mutex
	closed    bool
	committed map[int64]bool
	batches   []int64
	schema    *arrow.Schema
	recs      []arrow.Record
	// spans are the batches whose rows are still apart in recs, by their
	// place there (ReadBatch): every append-like batch, until a complete or
	// keyed update batch rewrites the table.
	spans map[int64][2]int
}

var (
	_ sinks.Sink        = (*Sink)(nil)
	_ sinks.BatchReader = (*Sink)(nil)
)

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
		stage: stage.New("memory sink", cfg.Mem), committed: map[int64]bool{}, spans: map[int64][2]int{},
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
	remote := sinks.IsRemote(ctx)
	return s.stage.NewWriter(ctx, b, task, func(rec arrow.Record, _ int64) (arrow.Record, error) {
		if rec.NumRows() == 0 {
			return nil, nil
		}
		if remote {
			// Encoded into the commit message at once: no copy needed.
			rec.Retain()
			return rec, nil
		}
		return copyRecord(s.mem, rec)
	})
}

// Commit applies the batch's rows to the table once; see the package doc.
func (s *Sink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memory sink: %w", ErrClosed)
	}
	if s.committed[b.ID] {
		s.stage.Drop(b.ID)
		return nil
	}
	recs, _, err := s.stage.Take(b, msgs)
	if err != nil {
		return err
	}
	if err := s.apply(b, recs); err != nil {
		for _, r := range recs {
			r.Release()
		}
		return fmt.Errorf("memory sink: commit batch %d: %w", b.ID, err)
	}
	s.committed[b.ID] = true
	s.batches = append(s.batches, b.ID)
	s.stage.Drop(b.ID)
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
		s.spans[b.ID] = [2]int{len(s.recs), len(s.recs) + len(recs)}
		s.recs = append(s.recs, recs...)
	case sinks.Complete:
		for _, r := range s.recs {
			r.Release()
		}
		s.recs = slices.Clone(recs)
		s.schema = schema
		clear(s.spans)
		s.spans[b.ID] = [2]int{0, len(recs)}
	case sinks.Update:
		if len(s.keys) == 0 {
			s.spans[b.ID] = [2]int{len(s.recs), len(s.recs) + len(recs)}
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
		clear(s.spans)
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

// Abort drops what tasks of b prepared (from this run or an earlier one);
// it is a no-op for a committed batch.
func (s *Sink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memory sink: %w", ErrClosed)
	}
	s.stage.Drop(b.ID)
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

// ReadBatch returns the rows committed batch wrote, each record retained
// (shared, not copied into mem): the caller releases them. The sink keeps
// a batch's rows apart while the table only grew after it; once a complete
// or keyed update batch rewrote the table, only that batch's rows are
// kept apart, and earlier batches are sinks.ErrBatchNotCommitted.
func (s *Sink) ReadBatch(ctx context.Context, b sinks.Batch, mem memory.Allocator) ([]arrow.Record, error) {
	batch := b.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("memory sink: %w", ErrClosed)
	}
	sp, ok := s.spans[batch]
	if !ok {
		why := "not committed"
		if s.committed[batch] {
			why = "committed, but a later complete or update batch rewrote the table"
		}
		return nil, fmt.Errorf("memory sink %q: read batch %d: %s: %w", s.name, batch, why, sinks.ErrBatchNotCommitted)
	}
	out := slices.Clone(s.recs[sp[0]:sp[1]])
	for _, r := range out {
		r.Retain()
	}
	return out, nil
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
	s.stage.Close()
	for _, r := range s.recs {
		r.Release()
	}
	s.recs = nil
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
