package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	arrowmem "github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

var (
	// ErrClosed: the source was closed; its records are released.
	ErrClosed = errors.New("memory: source closed")
	// ErrSchemaMismatch: an appended record does not have the source's schema.
	ErrSchemaMismatch = errors.New("memory: record schema does not match the source")
)

// Config configures a memory source.
type Config struct {
	// Name identifies the source within a query; default "memory".
	Name string
	// Schema every appended record must have (required).
	Schema *arrow.Schema
	// MaxRowsPerBatch caps how far Latest moves past its start; 0 = no cap.
	MaxRowsPerBatch int64
}

// Validate reports a config New cannot use.
func (c Config) Validate() error {
	if c.Schema == nil {
		return errors.New("memory: config: Schema is required")
	}
	if c.MaxRowsPerBatch < 0 {
		return fmt.Errorf("memory: config: MaxRowsPerBatch %d is negative", c.MaxRowsPerBatch)
	}
	return nil
}

func (c Config) String() string {
	return fmt.Sprintf("memory{name=%s max_rows_per_batch=%d schema=%s}", c.Name, c.MaxRowsPerBatch, c.Schema)
}

// Source is a stream of records appended by a test.
type Source struct {
	cfg Config
	id  uint64 // random: names this instance in its encoded splits

	mu     sync.Mutex
	pieces []piece // in position order; pieces[i].pos+rows == pieces[i+1].pos
	low    int64   // first position still held (rows before it were committed away)
	total  int64   // rows ever appended
	closed bool
}

// piece is one appended record at its row position.
type piece struct {
	pos int64
	rec arrow.Record
}

var (
	_ sources.Stream    = (*Source)(nil)
	_ sources.Committer = (*Source)(nil)
)

// New returns an empty source.
func New(cfg Config) (*Source, error) {
	if cfg.Name == "" {
		cfg.Name = "memory"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, id: rand.Uint64()}, nil
}

func (s *Source) Name() string { return s.cfg.Name }

// Identity is "memory name=<Name>": the records live in this process and
// have no other name.
func (s *Source) Identity() string { return "memory name=" + s.cfg.Name }

func (s *Source) Schema() *arrow.Schema { return s.cfg.Schema }

// Append makes recs readable after the rows appended so far. The source
// retains each record (the caller keeps its own reference and releases it as
// usual) until Commit passes it or Close. Either every record is appended or,
// on error, none is. Empty records are ignored.
func (s *Source) Append(recs ...arrow.Record) error {
	for i, r := range recs {
		if !r.Schema().Equal(s.cfg.Schema) {
			return fmt.Errorf("memory %q: append record %d: %w: got %s, want %s", s.cfg.Name, i, ErrSchemaMismatch, r.Schema(), s.cfg.Schema)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memory %q: append: %w", s.cfg.Name, ErrClosed)
	}
	for _, r := range recs {
		if r.NumRows() == 0 {
			continue
		}
		r.Retain()
		s.pieces = append(s.pieces, piece{pos: s.total, rec: r})
		s.total += r.NumRows()
	}
	return nil
}

// Initial is position 0.
func (s *Source) Initial(context.Context) (sources.Offset, error) { return encode(0), nil }

// Latest is every appended row, capped at start+MaxRowsPerBatch.
func (s *Source) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	pos, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("memory %q: latest: %w", s.cfg.Name, ErrClosed)
	}
	if pos > s.total {
		return nil, fmt.Errorf("memory %q: offset %s is past the %d rows appended: %w", s.cfg.Name, start, s.total, sources.ErrBadOffset)
	}
	end := s.total
	if m := s.cfg.MaxRowsPerBatch; m > 0 && end-pos > m {
		end = pos + m
	}
	return encode(end), nil
}

// Splits returns one split per appended record overlapping (start, end], in
// order; a split over part of a record reads a slice of it.
func (s *Source) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	hi, err := s.parse(end)
	if err != nil {
		return nil, err
	}
	if hi < lo {
		return nil, fmt.Errorf("memory %q: end offset %s before start %s: %w", s.cfg.Name, end, start, sources.ErrBadOffset)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("memory %q: splits: %w", s.cfg.Name, ErrClosed)
	}
	if hi > s.total {
		return nil, fmt.Errorf("memory %q: offset %s is past the %d rows appended: %w", s.cfg.Name, end, s.total, sources.ErrBadOffset)
	}
	if lo == hi {
		return nil, nil
	}
	if lo < s.low {
		return nil, fmt.Errorf("memory %q: rows %d..%d were committed and dropped (held from %d): %w", s.cfg.Name, lo, hi-1, s.low, sources.ErrOffsetGone)
	}
	var out []sources.Split
	for i := s.find(lo); i < len(s.pieces) && s.pieces[i].pos < hi; i++ {
		p := s.pieces[i]
		a, b := max(lo, p.pos), min(hi, p.pos+p.rec.NumRows())
		out = append(out, &split{src: s, lo: a, hi: b})
	}
	return out, nil
}

// Commit releases the records lying wholly before end.
func (s *Source) Commit(_ context.Context, end sources.Offset) error {
	pos, err := s.parse(end)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memory %q: commit: %w", s.cfg.Name, ErrClosed)
	}
	n := 0
	for n < len(s.pieces) && s.pieces[n].pos+s.pieces[n].rec.NumRows() <= pos {
		s.pieces[n].rec.Release()
		s.pieces[n] = piece{}
		n++
	}
	if n == 0 {
		return nil
	}
	s.pieces = s.pieces[n:]
	if len(s.pieces) > 0 {
		s.low = s.pieces[0].pos
	} else {
		s.low = s.total
	}
	return nil
}

// Close releases every retained record. It is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, p := range s.pieces {
		p.rec.Release()
	}
	s.pieces = nil
	return nil
}

// find returns the index of the piece holding position pos (s.mu held,
// s.low <= pos < s.total).
func (s *Source) find(pos int64) int {
	return sort.Search(len(s.pieces), func(i int) bool {
		return s.pieces[i].pos+s.pieces[i].rec.NumRows() > pos
	})
}

// offset is the JSON form of a position.
type offset struct {
	Pos *int64 `json:"pos"`
}

func encode(pos int64) sources.Offset {
	return sources.Offset(`{"pos":` + strconv.FormatInt(pos, 10) + `}`)
}

func (s *Source) parse(off sources.Offset) (int64, error) {
	var o offset
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	if err := d.Decode(&o); err != nil || !atEOF(d) || o.Pos == nil || *o.Pos < 0 {
		return 0, fmt.Errorf("memory %q: offset %q: want {\"pos\":N} with N >= 0: %w", s.cfg.Name, string(off), sources.ErrBadOffset)
	}
	return *o.Pos, nil
}

func atEOF(d *json.Decoder) bool {
	_, err := d.Token()
	return err == io.EOF
}

// split reads rows [lo, hi) of one appended record. It holds positions, not
// the record, so it needs no release and stays valid across Appends; it
// fails with ErrOffsetGone once Commit or Close dropped its record.
type split struct {
	src    *Source
	lo, hi int64
}

func (sp *split) Rows() int64 { return sp.hi - sp.lo }

// splitKind names memory splits in the sources envelope.
const splitKind = "memory"

// splitBody is a split's encoded body: the row range, the instance whose
// records hold it, and the rows themselves as an Arrow IPC stream (base64
// in the JSON) for any other instance to read.
type splitBody struct {
	Source string `json:"source"` // Source.id in hex
	Lo     int64  `json:"lo"`
	Hi     int64  `json:"hi"`
	Rows   []byte `json:"rows,omitempty"`
}

// Encode is {"v":1,"kind":"memory","name":..,"split":{"source":<instance>,
// "lo":..,"hi":..,"rows":<Arrow IPC>}}. It fails with ErrOffsetGone once
// Commit or Close dropped the split's rows.
func (sp *split) Encode() ([]byte, error) {
	s := sp.src
	rec, err := s.slice(sp.lo, sp.hi)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(s.cfg.Schema), ipc.WithAllocator(arrowmem.NewGoAllocator()))
	err = w.Write(rec)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("memory %q: encode split of rows %d..%d: %w", s.cfg.Name, sp.lo, sp.hi-1, err)
	}
	return sources.MarshalSplit(splitKind, s.cfg.Name, splitBody{Source: strconv.FormatUint(s.id, 16), Lo: sp.lo, Hi: sp.hi, Rows: buf.Bytes()})
}

// slice returns rows [lo, hi) of the appended record holding them (the
// caller releases it), or ErrOffsetGone once they were dropped.
func (s *Source) slice(lo, hi int64) (arrow.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || lo < s.low {
		return nil, fmt.Errorf("memory %q: rows %d..%d were dropped: %w", s.cfg.Name, lo, hi-1, sources.ErrOffsetGone)
	}
	p := s.pieces[s.find(lo)]
	return p.rec.NewSlice(lo-p.pos, hi-p.pos), nil
}

// DecodeSplit rebuilds a split of a memory source of this name. On the
// instance that made it, it reads the appended records (zero-copy, as the
// original split). On any other instance (the same job's source in
// another process) it reads the rows the split carries, which must have
// this source's schema and be exactly the split's range.
func (s *Source) DecodeSplit(b []byte) (sources.Split, error) {
	var body splitBody
	if err := sources.UnmarshalSplit(b, splitKind, s.cfg.Name, &body); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (sources.Split, error) {
		return nil, sources.BadSplitf(splitKind, s.cfg.Name, format, args...)
	}
	if body.Lo < 0 || body.Hi <= body.Lo {
		return bad("rows [%d, %d) are not a range of rows", body.Lo, body.Hi)
	}
	if id, err := strconv.ParseUint(body.Source, 16, 64); err != nil || id != s.id {
		return s.decodeInline(body, bad)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if body.Hi > s.total {
		return bad("rows [%d, %d) are not a range of the %d rows appended", body.Lo, body.Hi, s.total)
	}
	// Rows Commit dropped fail the read (ErrOffsetGone); rows still held
	// must lie in one appended record, as Splits cuts them.
	if body.Lo >= s.low && !s.closed {
		if p := s.pieces[s.find(body.Lo)]; body.Hi > p.pos+p.rec.NumRows() {
			return bad("rows [%d, %d) span appended records", body.Lo, body.Hi)
		}
	}
	return &split{src: s, lo: body.Lo, hi: body.Hi}, nil
}

// decodeInline reads the rows a split of another instance carries. They
// are decoded once, with the Go allocator (the split has no Release), and
// shared by every Read.
func (s *Source) decodeInline(body splitBody, bad func(string, ...any) (sources.Split, error)) (sources.Split, error) {
	if len(body.Rows) == 0 {
		return bad("a split of memory source instance %q, which carries no rows", body.Source)
	}
	r, err := ipc.NewReader(bytes.NewReader(body.Rows), ipc.WithAllocator(arrowmem.NewGoAllocator()))
	if err != nil {
		return bad("rows [%d, %d): %v", body.Lo, body.Hi, err)
	}
	defer r.Release()
	if !r.Schema().Equal(s.cfg.Schema) {
		return bad("rows [%d, %d) have schema %s, the source %s", body.Lo, body.Hi, r.Schema(), s.cfg.Schema)
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
		return bad("rows [%d, %d): %v", body.Lo, body.Hi, err)
	}
	if n != body.Hi-body.Lo {
		return bad("rows [%d, %d) carry %d rows", body.Lo, body.Hi, n)
	}
	return &inlineSplit{body: body, name: s.cfg.Name, recs: recs}, nil
}

// Read emits one record, a slice of the appended record, that emit owns. The
// slice shares the appended record's buffers (allocated by whoever built
// it), so mem is not used.
func (sp *split) Read(ctx context.Context, _ arrowmem.Allocator, emit func(arrow.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, err := sp.src.slice(sp.lo, sp.hi)
	if err != nil {
		return err
	}
	return emit(rec)
}

// inlineSplit reads the rows a split carried to another instance.
type inlineSplit struct {
	body splitBody
	name string
	recs []arrow.Record // decoded once; immutable, shared by every Read
}

func (sp *inlineSplit) Rows() int64 { return sp.body.Hi - sp.body.Lo }

// Encode returns the bytes it was decoded from, re-marshalled.
func (sp *inlineSplit) Encode() ([]byte, error) {
	return sources.MarshalSplit(splitKind, sp.name, sp.body)
}

// Read emits the carried records, each a new reference emit owns. They
// were decoded with the Go allocator, so mem is not used.
func (sp *inlineSplit) Read(ctx context.Context, _ arrowmem.Allocator, emit func(arrow.Record) error) error {
	for _, rec := range sp.recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec.Retain()
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}
