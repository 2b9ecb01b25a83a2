package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/stage"
	"github.com/sluicedata/sluice/sinks"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = stage.ErrClosed
	// ErrUnknownMessage is returned by Commit for a message of another
	// batch, or a token this sink does not hold.
	ErrUnknownMessage = stage.ErrUnknownMessage
	// ErrCorruptMessage is returned by Commit for an inline message whose
	// rows do not decode to records of the batch's schema.
	ErrCorruptMessage = stage.ErrCorruptMessage
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

	stage     *stage.Stage // what tasks prepared, until their batch commits
	mu        sync.Mutex
	closed    bool
	committed map[int64]bool
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
		stage: stage.New("console sink", cfg.Mem), committed: map[int64]bool{},
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
	// Keep only the rows still needed to show MaxRows rows.
	remote := sinks.IsRemote(ctx)
	return s.stage.NewWriter(ctx, b, task, func(rec arrow.Record, kept int64) (arrow.Record, error) {
		n := min(rec.NumRows(), int64(s.maxRows)-kept)
		if n <= 0 {
			return nil, nil
		}
		if remote {
			// Encoded into the commit message at once: a slice will do.
			return rec.NewSlice(0, n), nil
		}
		return copyRows(s.mem, rec, n)
	})
}

// Commit prints the batch once; see the package doc.
func (s *Sink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("console sink: %w", ErrClosed)
	}
	if s.committed[b.ID] {
		s.stage.Drop(b.ID)
		return nil
	}
	recs, total, err := s.stage.Take(b, msgs)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	schema := b.Schema
	if schema == nil && len(recs) > 0 {
		schema = recs[0].Schema()
	}
	var buf bytes.Buffer
	line := strings.Repeat("-", 43)
	fmt.Fprintf(&buf, "%s\nBatch: %d\n%s\n", line, b.ID, line)
	if schema != nil {
		// The first maxRows rows, printed whole: the formatter's own "only
		// showing" line would repeat the one below, which knows the total.
		head := make([]arrow.Record, 0, len(recs))
		left := int64(s.maxRows)
		for _, r := range recs {
			if left <= 0 {
				break
			}
			n := min(r.NumRows(), left)
			head = append(head, r.NewSlice(0, n))
			left -= n
		}
		err := s.format(&buf, schema, head, s.maxRows)
		for _, r := range head {
			r.Release()
		}
		if err != nil {
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
	s.stage.Drop(b.ID)
	return nil
}

// Abort drops what tasks of b prepared; a no-op for a committed batch.
func (s *Sink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("console sink: %w", ErrClosed)
	}
	s.stage.Drop(b.ID)
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
	s.stage.Close()
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
