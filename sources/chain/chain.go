package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

var (
	// ErrSchemaMismatch: the history and live streams (or one of them and
	// Config.Schema) disagree on a column; errors name the column and both
	// types.
	ErrSchemaMismatch = errors.New("chain: schema mismatch")
	// ErrClosed: the chain was closed.
	ErrClosed = errors.New("chain: closed")
)

// LiveFunc builds the live stream once the history is exhausted. handoff is
// the history's final end offset. It is called at the handoff (then the
// stream's Initial is where the live phase starts) and again after a
// restart whose checkpoint is in the live phase (then Initial is never
// called), so it must be a pure function of handoff and its own config.
type LiveFunc func(ctx context.Context, handoff sources.Offset) (sources.Stream, error)

// Config configures a chain.
type Config struct {
	// Name identifies the source within a query; default "chain".
	Name string
	// History is read first, to its end (required). It must be bounded:
	// its Latest stops moving. When it is a sources.Bounder the chain
	// bounds it before its first Latest, so a directory source ends at the
	// files present then.
	History sources.Stream
	// Live builds the stream read after the history (required).
	Live LiveFunc
	// Schema both phases are projected to, by column name, casting
	// nothing. Default: the history's schema, and the live stream must
	// have exactly its columns with the same types.
	Schema *arrow.Schema
	// LiveSchema, when set, is the schema Live's stream will have, checked
	// when New runs rather than at the handoff.
	LiveSchema *arrow.Schema
	// LiveIdentity is the Identity of the stream Live builds (it is built
	// only at the handoff, too late for a checkpoint to pin it). Empty:
	// the live phase's data is not part of the chain's identity, and a
	// restart that reads another live stream is not detected.
	LiveIdentity string
}

// Validate reports a config New cannot use.
func (c Config) Validate() error {
	switch {
	case c.History == nil:
		return errors.New("chain: config: History is required")
	case c.Live == nil:
		return errors.New("chain: config: Live is required")
	}
	return nil
}

func (c Config) String() string {
	schema := "history's"
	if c.Schema != nil {
		schema = c.Schema.String()
	}
	return fmt.Sprintf("chain{name=%s history=%s schema=%s}", c.Name, c.History.Name(), schema)
}

// Chain is a history stream followed by a live stream, as one stream.
type Chain struct {
	cfg      Config
	schema   *arrow.Schema
	histProj []int // history column per output column; nil = the same schema

	mu       sync.Mutex
	histBnd  bool           // History.Bound done
	bounded  bool           // Bound called: bound the live stream when built
	live     sources.Stream // built by Live for handoff liveH
	liveH    sources.Offset
	liveProj []int
	closed   bool
}

var (
	_ sources.Stream    = (*Chain)(nil)
	_ sources.Bounder   = (*Chain)(nil)
	_ sources.Committer = (*Chain)(nil)
	_ sources.InProcess = (*Chain)(nil)
)

// InProcess answers for the history and, once built, the live stream: ""
// when neither works in one process only. A live stream not built yet
// (before the handoff) is not known: if it is in-process, its splits fail
// to decode in another process (ErrBadSplit naming it), later than Start.
func (c *Chain) InProcess() string {
	c.mu.Lock()
	live := c.live
	c.mu.Unlock()
	var why []string
	for _, s := range []sources.Stream{c.cfg.History, live} {
		if ip, ok := s.(sources.InProcess); ok {
			if r := ip.InProcess(); r != "" {
				why = append(why, fmt.Sprintf("stream %q: %s", s.Name(), r))
			}
		}
	}
	return strings.Join(why, "; ")
}

// New checks the history's schema (and LiveSchema's, when set) against the
// chain's. The chain owns both streams from then on: Close closes them.
func New(cfg Config) (*Chain, error) {
	if cfg.Name == "" {
		cfg.Name = "chain"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Chain{cfg: cfg, schema: cfg.Schema}
	if c.schema == nil {
		c.schema = cfg.History.Schema()
	}
	var err error
	if c.histProj, err = c.project(PhaseHistory, cfg.History.Schema()); err != nil {
		return nil, err
	}
	if cfg.LiveSchema != nil {
		if _, err := c.project(PhaseLive, cfg.LiveSchema); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Chain) Name() string { return c.cfg.Name }

// Identity is "chain history=(<history's identity>) live=(<LiveIdentity>)",
// with live=(unnamed) when Config.LiveIdentity is empty.
func (c *Chain) Identity() string {
	live := c.cfg.LiveIdentity
	if live == "" {
		live = "unnamed"
	}
	return fmt.Sprintf("chain history=(%s) live=(%s)", c.cfg.History.Identity(), live)
}

func (c *Chain) Schema() *arrow.Schema { return c.schema }

// project maps every output column to a column of src by name. Without
// Config.Schema, src must have exactly the output's columns. It returns nil
// when src is the output schema already.
func (c *Chain) project(phase string, src *arrow.Schema) ([]int, error) {
	against := "Config.Schema"
	if c.cfg.Schema == nil {
		against = "the history"
	}
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("chain %q: %w: "+format, append([]any{c.cfg.Name, ErrSchemaMismatch}, args...)...)
	}
	proj := make([]int, c.schema.NumFields())
	same := src.NumFields() == len(proj)
	for i, f := range c.schema.Fields() {
		idx := src.FieldIndices(f.Name)
		if len(idx) == 0 {
			return nil, mismatch("column %q (%s in %s) is missing from the %s stream", f.Name, f.Type, against, phase)
		}
		if len(idx) > 1 {
			return nil, mismatch("column %q appears %d times in the %s stream", f.Name, len(idx), phase)
		}
		if got := src.Field(idx[0]).Type; !arrow.TypeEqual(got, f.Type) {
			return nil, mismatch("column %q is %s in %s but %s in the %s stream", f.Name, f.Type, against, got, phase)
		}
		proj[i] = idx[0]
		same = same && idx[0] == i && src.Field(i).Nullable == f.Nullable
	}
	if c.cfg.Schema == nil {
		for _, f := range src.Fields() {
			if len(c.schema.FieldIndices(f.Name)) == 0 {
				return nil, mismatch("column %q (%s) of the %s stream is not in the history; set Config.Schema to project it away", f.Name, f.Type, phase)
			}
		}
	}
	if same {
		return nil, nil
	}
	return proj, nil
}

// Initial is the history's Initial, or, when the history is empty, the
// live stream's Initial.
func (c *Chain) Initial(ctx context.Context) (sources.Offset, error) {
	if err := c.boundHistory(ctx); err != nil {
		return nil, err
	}
	h, err := c.cfg.History.Initial(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain %q: history: %w", c.cfg.Name, err)
	}
	h = compact(h)
	e, err := c.historyLatest(ctx, h)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(e, h) {
		return c.handoff(ctx, h)
	}
	return encode(offset{Phase: PhaseHistory, H: h}), nil
}

// Latest, in the history phase, is the history's Latest; when that end is
// the history's last (its Latest from there does not move), the end is
// the live phase's first offset {"phase":"live","h":end,"l":live.Initial},
// so the batch reads the rest of the history and nothing live. In the live
// phase it is the live stream's Latest.
func (c *Chain) Latest(ctx context.Context, start sources.Offset) (sources.Offset, error) {
	st, err := c.parse(start)
	if err != nil {
		return nil, err
	}
	if st.Phase == PhaseLive {
		live, err := c.liveFor(ctx, st.H)
		if err != nil {
			return nil, err
		}
		l, err := live.Latest(ctx, st.L)
		if err != nil {
			return nil, fmt.Errorf("chain %q: live: %w", c.cfg.Name, err)
		}
		return encode(offset{Phase: PhaseLive, H: st.H, L: compact(l)}), nil
	}
	if err := c.boundHistory(ctx); err != nil {
		return nil, err
	}
	e, err := c.historyLatest(ctx, st.H)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(e, st.H) {
		// Peek: is e the history's end?
		next, err := c.historyLatest(ctx, e)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(next, e) {
			return encode(offset{Phase: PhaseHistory, H: e}), nil
		}
	}
	return c.handoff(ctx, e)
}

func (c *Chain) historyLatest(ctx context.Context, h sources.Offset) (sources.Offset, error) {
	e, err := c.cfg.History.Latest(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("chain %q: history: %w", c.cfg.Name, err)
	}
	return compact(e), nil
}

// handoff builds the live stream for the history's final end h and returns
// the live phase's first offset.
func (c *Chain) handoff(ctx context.Context, h sources.Offset) (sources.Offset, error) {
	live, err := c.liveFor(ctx, h)
	if err != nil {
		return nil, err
	}
	l, err := live.Initial(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain %q: live: %w", c.cfg.Name, err)
	}
	return encode(offset{Phase: PhaseLive, H: h, L: compact(l)}), nil
}

// liveFor returns the live stream for handoff h, building it on first use.
// A chain serves one handoff: offsets naming another are foreign.
func (c *Chain) liveFor(ctx context.Context, h sources.Offset) (sources.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("chain %q: %w", c.cfg.Name, ErrClosed)
	}
	if c.live != nil {
		if !bytes.Equal(c.liveH, h) {
			return nil, fmt.Errorf("chain %q: live offset hands off at history offset %s, this chain handed off at %s: %w",
				c.cfg.Name, h, c.liveH, sources.ErrBadOffset)
		}
		return c.live, nil
	}
	live, err := c.cfg.Live(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("chain %q: build live stream at history offset %s: %w", c.cfg.Name, h, err)
	}
	proj, err := c.project(PhaseLive, live.Schema())
	if err != nil {
		closeStream(live)
		return nil, err
	}
	if b, ok := live.(sources.Bounder); ok && c.bounded {
		if err := b.Bound(ctx); err != nil {
			closeStream(live)
			return nil, fmt.Errorf("chain %q: bound live: %w", c.cfg.Name, err)
		}
	}
	c.live, c.liveH, c.liveProj = live, h, proj
	return live, nil
}

func (c *Chain) boundHistory(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("chain %q: %w", c.cfg.Name, ErrClosed)
	}
	if c.histBnd {
		return nil
	}
	if b, ok := c.cfg.History.(sources.Bounder); ok {
		if err := b.Bound(ctx); err != nil {
			return fmt.Errorf("chain %q: bound history: %w", c.cfg.Name, err)
		}
	}
	c.histBnd = true
	return nil
}

// Splits of a history batch are the history's, of a live batch the live
// stream's; a batch from the history's last offsets to the live phase's
// first reads the history only. Each split yields records of Schema().
func (c *Chain) Splits(ctx context.Context, start, end sources.Offset) ([]sources.Split, error) {
	st, err := c.parse(start)
	if err != nil {
		return nil, err
	}
	en, err := c.parse(end)
	if err != nil {
		return nil, err
	}
	var (
		inner []sources.Split
		proj  []int
		phase string
	)
	switch {
	case st.Phase == PhaseLive && en.Phase == PhaseHistory:
		return nil, fmt.Errorf("chain %q: end offset %s (history) before start %s (live): %w", c.cfg.Name, end, start, sources.ErrBadOffset)
	case st.Phase == PhaseLive:
		if !bytes.Equal(st.H, en.H) {
			return nil, fmt.Errorf("chain %q: start %s and end %s hand off at different history offsets: %w", c.cfg.Name, start, end, sources.ErrBadOffset)
		}
		live, err := c.liveFor(ctx, st.H)
		if err != nil {
			return nil, err
		}
		if inner, err = live.Splits(ctx, st.L, en.L); err != nil {
			return nil, fmt.Errorf("chain %q: live: %w", c.cfg.Name, err)
		}
		c.mu.Lock()
		proj = c.liveProj
		c.mu.Unlock()
		phase = PhaseLive
	default: // history to history, or history to the live phase's first offset
		if inner, err = c.cfg.History.Splits(ctx, st.H, en.H); err != nil {
			return nil, fmt.Errorf("chain %q: history: %w", c.cfg.Name, err)
		}
		proj, phase = c.histProj, PhaseHistory
	}
	var h sources.Offset
	if phase == PhaseLive {
		h = st.H
	}
	out := make([]sources.Split, len(inner))
	for i, sp := range inner {
		out[i] = &Split{Phase: phase, Inner: sp, schema: c.schema, proj: proj, chain: c, h: h}
	}
	return out, nil
}

// splitKind names chain splits in the sources envelope.
const splitKind = "chain"

// chainSplit is a Split's encoded body: the phase, the inner stream's
// split bytes (kept as JSON when they are, for people reading them, else
// base64), and for a live split the handoff, which names the live stream.
// Rows is the inner split's, for a live split decoded before its stream
// is built.
type chainSplit struct {
	Phase      string          `json:"phase"`
	H          json.RawMessage `json:"h,omitempty"`
	Inner      json.RawMessage `json:"inner,omitempty"`
	InnerBytes []byte          `json:"inner_bytes,omitempty"`
	Rows       int64           `json:"rows"`
}

// DecodeSplit rebuilds a split from Split.Encode's bytes through the
// stream of its phase: the history's DecodeSplit, or the live stream's.
// When this chain has not built its live stream (an executor that never
// saw the handoff), building it may read the history (MaxEventTime) and
// so needs a context: the split is checked here but decoded by the live
// stream at Read, which builds the stream with Read's context; an inner
// split the live stream refuses then fails the Read with ErrBadSplit.
func (c *Chain) DecodeSplit(b []byte) (sources.Split, error) {
	var body chainSplit
	if err := sources.UnmarshalSplit(b, splitKind, c.cfg.Name, &body); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (sources.Split, error) {
		return nil, sources.BadSplitf(splitKind, c.cfg.Name, format, args...)
	}
	inner := []byte(body.Inner)
	if len(inner) == 0 {
		inner = body.InnerBytes
	} else if len(body.InnerBytes) > 0 {
		return bad("both inner and inner_bytes")
	}
	if len(inner) == 0 {
		return bad("no inner split")
	}
	switch body.Phase {
	case PhaseHistory:
		if len(body.H) > 0 {
			return bad("a history split has no handoff")
		}
		sp, err := c.cfg.History.DecodeSplit(inner)
		if err != nil {
			return nil, fmt.Errorf("chain %q: history: %w", c.cfg.Name, err)
		}
		return &Split{Phase: PhaseHistory, Inner: sp, schema: c.schema, proj: c.histProj, chain: c}, nil
	case PhaseLive:
		h := compact(sources.Offset(body.H))
		if len(h) == 0 || !json.Valid(h) || string(h) == "null" {
			return bad("a live split needs its handoff offset")
		}
		if body.Rows < -1 {
			return bad("rows %d", body.Rows)
		}
		c.mu.Lock()
		live, liveH, proj := c.live, c.liveH, c.liveProj
		c.mu.Unlock()
		if live == nil {
			return &Split{Phase: PhaseLive, schema: c.schema, chain: c, h: h, enc: bytes.Clone(inner), rows: body.Rows}, nil
		}
		if !bytes.Equal(liveH, h) {
			return bad("it hands off at history offset %s, this chain handed off at %s", h, liveH)
		}
		sp, err := live.DecodeSplit(inner)
		if err != nil {
			return nil, fmt.Errorf("chain %q: live: %w", c.cfg.Name, err)
		}
		return &Split{Phase: PhaseLive, Inner: sp, schema: c.schema, proj: proj, chain: c, h: h}, nil
	}
	return bad("phase %q is not %q or %q", body.Phase, PhaseHistory, PhaseLive)
}

// Commit passes end to the stream of its phase when that stream is a
// sources.Committer (in the live phase: the live stream's offset).
func (c *Chain) Commit(ctx context.Context, end sources.Offset) error {
	en, err := c.parse(end)
	if err != nil {
		return err
	}
	var (
		s   sources.Stream = c.cfg.History
		off                = en.H
	)
	if en.Phase == PhaseLive {
		if s, err = c.liveFor(ctx, en.H); err != nil {
			return err
		}
		off = en.L
	}
	if cm, ok := s.(sources.Committer); ok {
		if err := cm.Commit(ctx, off); err != nil {
			return fmt.Errorf("chain %q: %s: %w", c.cfg.Name, en.Phase, err)
		}
	}
	return nil
}

// Bound bounds both phases: the history now (it is bounded before its first
// Latest anyway), the live stream now if it is built, else right when it is
// built at the handoff. So an AvailableNow run over a chain reads the live
// stream up to what it held at the handoff, not at the Bound call.
func (c *Chain) Bound(ctx context.Context) error {
	if err := c.boundHistory(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bounded = true
	if b, ok := c.live.(sources.Bounder); ok {
		if err := b.Bound(ctx); err != nil {
			return fmt.Errorf("chain %q: bound live: %w", c.cfg.Name, err)
		}
	}
	return nil
}

// Close closes the history and the live stream (those that are
// io.Closers). It is idempotent.
func (c *Chain) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return errors.Join(closeStream(c.cfg.History), closeStream(c.live))
}

func closeStream(s sources.Stream) error {
	if cl, ok := s.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

func compact(o sources.Offset) sources.Offset {
	var b bytes.Buffer
	if json.Compact(&b, o) != nil {
		return o // not JSON: kept as is, the inner stream will refuse it
	}
	return sources.Offset(b.Bytes())
}

// Split is one split of the history or the live stream, its records
// projected to the chain's schema.
type Split struct {
	Phase string
	// Inner is the history's or live stream's split; nil in a live split
	// decoded before the chain built its live stream (see DecodeSplit).
	Inner sources.Split

	schema *arrow.Schema
	proj   []int // nil: records pass through
	chain  *Chain
	h      sources.Offset // live: the handoff
	enc    []byte         // Inner == nil: the inner split's bytes
	rows   int64          // Inner == nil: the inner split's Rows
	last   sources.Split  // the inner split the last Read read (BadRecordCounts)
}

var (
	_ sources.Split            = (*Split)(nil)
	_ sources.BadRecordCounter = (*Split)(nil)
	_ sources.PositionReader   = (*Split)(nil)
)

// BadRecordCounts are the inner split's, when it keeps them (a Kafka split
// under a skip policy).
func (sp *Split) BadRecordCounts() (skipped, deadLettered int64) {
	if bc, ok := sp.last.(sources.BadRecordCounter); ok {
		return bc.BadRecordCounts()
	}
	return 0, 0
}

func (sp *Split) Rows() int64 {
	if sp.Inner == nil {
		return sp.rows
	}
	return sp.Inner.Rows()
}

// Encode is {"v":1,"kind":"chain","name":..,"split":{"phase":..,"h":<handoff,
// live only>,"inner":<the inner split's bytes>,"rows":..}}.
func (sp *Split) Encode() ([]byte, error) {
	if sp.chain == nil {
		return nil, fmt.Errorf("chain: encode %s split: not made by a chain", sp.Phase)
	}
	inner := sp.enc
	if sp.Inner != nil {
		var err error
		if inner, err = sp.Inner.Encode(); err != nil {
			return nil, fmt.Errorf("chain %q: %s: %w", sp.chain.cfg.Name, sp.Phase, err)
		}
	}
	body := chainSplit{Phase: sp.Phase, H: json.RawMessage(sp.h), Rows: sp.Rows()}
	if json.Valid(inner) {
		body.Inner = inner
	} else {
		body.InnerBytes = inner
	}
	return sources.MarshalSplit(splitKind, sp.chain.cfg.Name, body)
}

// resolve returns the inner split and its projection, decoding a pending
// live split through the live stream, built now if need be.
func (sp *Split) resolve(ctx context.Context) (sources.Split, []int, error) {
	if sp.Inner != nil {
		return sp.Inner, sp.proj, nil
	}
	c := sp.chain
	live, err := c.liveFor(ctx, sp.h)
	if err != nil {
		return nil, nil, err
	}
	inner, err := live.DecodeSplit(sp.enc)
	if err != nil {
		return nil, nil, fmt.Errorf("chain %q: live: %w", c.cfg.Name, err)
	}
	c.mu.Lock()
	proj := c.liveProj
	c.mu.Unlock()
	return inner, proj, nil
}

// Read emits the inner split's records, projected: each emitted record
// (owned by emit) retains the inner record's columns it keeps.
func (sp *Split) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	return sp.ReadAt(ctx, mem, nil, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadAt is Read naming where each record comes from: the phase and, when
// the inner split says it (a history file's row group, a Kafka record's
// offsets), the place; else the inner split as String or encoding names it.
// cols is nil (a chain split is no ColumnReader).
func (sp *Split) ReadAt(ctx context.Context, mem memory.Allocator, _ []string, emit func(arrow.Record, func() string) error) error {
	inner, proj, err := sp.resolve(ctx)
	if err != nil {
		return err
	}
	sp.last = inner
	project := func(rec arrow.Record) arrow.Record {
		if proj == nil {
			return rec
		}
		cols := make([]arrow.Array, len(proj))
		for i, j := range proj {
			cols[i] = rec.Column(j)
		}
		out := array.NewRecord(sp.schema, cols, rec.NumRows())
		rec.Release()
		return out
	}
	if pr, ok := inner.(sources.PositionReader); ok {
		return pr.ReadAt(ctx, mem, nil, func(rec arrow.Record, at func() string) error {
			return emit(project(rec), func() string { return sp.Phase + ", " + at() })
		})
	}
	return inner.Read(ctx, mem, func(rec arrow.Record) error { return emit(project(rec), nil) })
}
