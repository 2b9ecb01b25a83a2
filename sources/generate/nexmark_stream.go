package generate

// Nexmark streams: one sources.Stream per event kind over one generator.
//
// Offsets count events of all kinds: {"events":N} means events 0..N-1 of
// the generator (ids FirstEventID .. FirstEventID+N-1) were handed out. The
// person, auction and bid streams of one config therefore move through the
// same event ids, and a join between them sees consistent data.
//
// Invariants:
//  1. Splits(start, end) reads the same rows forever (generator invariant 1).
//  2. Latest = min(start + MaxEventsPerBatch, Events); there is no
//     processing-time rate: EventRate spaces event time only.
//  3. Splits cover at most SplitRows events each and hold plain data; one
//     encodes to its event range, and the stream that decodes it supplies
//     the generator config and the kind.
//
// Driver loop as seen from here:
//
//	start := Initial()        // {"events":0}
//	end   := Latest(start)    // min(start+MaxEventsPerBatch, Events)
//	Splits(start, end)        // events [start, start+64K), ..., [.., end), this kind only

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

// NexmarkStream is one kind of a Nexmark generator's events as a stream.
type NexmarkStream struct {
	cfg    NexmarkConfig
	kind   nexmarkKind
	name   string
	schema *arrow.Schema
}

var (
	_ sources.Stream  = (*NexmarkStream)(nil)
	_ sources.Bounder = (*NexmarkStream)(nil)
)

// NewNexmarkStream returns the stream of kind "person", "auction" or "bid"
// of cfg's generator, named <cfg.Name>_<kind>. An endless config
// (Events = 0) needs MaxEventsPerBatch, else one batch would be infinite.
func NewNexmarkStream(cfg NexmarkConfig, kind string) (*NexmarkStream, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Events == 0 && cfg.MaxEventsPerBatch == 0 {
		return nil, fmt.Errorf("%w: nexmark: an endless stream (Events 0) needs MaxEventsPerBatch", ErrConfig)
	}
	s := &NexmarkStream{cfg: cfg, name: cfg.Name + "_" + kind}
	switch kind {
	case "person":
		s.kind, s.schema = kindPerson, PersonSchema
	case "auction":
		s.kind, s.schema = kindAuction, AuctionSchema
	case "bid":
		s.kind, s.schema = kindBid, BidSchema
	default:
		return nil, fmt.Errorf("%w: nexmark: kind %q is not person, auction or bid", ErrConfig, kind)
	}
	return s, nil
}

func (s *NexmarkStream) Name() string { return s.name }

// Identity names the event kind and every generator parameter an event
// depends on; Events and MaxEventsPerBatch only bound or batch them.
func (s *NexmarkStream) Identity() string {
	c := s.cfg
	kind := map[nexmarkKind]string{kindPerson: "person", kindAuction: "auction", kindBid: "bid"}[s.kind]
	return fmt.Sprintf("nexmark kind=%s seed=%d first_event_id=%d event_rate=%s base_time=%s",
		kind, c.Seed, c.FirstEventID, strconv.FormatFloat(c.EventRate, 'g', -1, 64), c.BaseTime.UTC().Format(time.RFC3339Nano))
}

func (s *NexmarkStream) Schema() *arrow.Schema { return s.schema }

func (s *NexmarkStream) Initial(context.Context) (sources.Offset, error) {
	return encodeEvents(0), nil
}

// Latest is start + MaxEventsPerBatch, capped by Events.
func (s *NexmarkStream) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	n, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	return encodeEvents(nextEnd(n, 1<<63-1, s.cfg.MaxEventsPerBatch, s.cfg.Events)), nil
}

// Bound is a no-op: without a processing-time rate everything is available
// at once, a bounded stream already stops at Events, and an endless one
// cannot be bounded (it keeps yielding MaxEventsPerBatch per batch).
func (s *NexmarkStream) Bound(context.Context) error { return nil }

func (s *NexmarkStream) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	hi, err := s.parse(end)
	if err != nil {
		return nil, err
	}
	if hi < lo {
		return nil, fmt.Errorf("generate %q: end offset %s before start %s: %w", s.name, end, start, sources.ErrBadOffset)
	}
	var out []sources.Split
	rowRanges(lo, hi, func(from, to int64) {
		out = append(out, &NexmarkSplit{Config: s.cfg, Kind: s.kindName(), From: from, To: to, source: s.name})
	})
	return out, nil
}

// DecodeSplit rebuilds a split from NexmarkSplit.Encode's bytes; the
// generator config and the event kind are this stream's (the kind is part
// of its name, which the envelope checks).
func (s *NexmarkStream) DecodeSplit(b []byte) (sources.Split, error) {
	var body rowRange
	if err := sources.UnmarshalSplit(b, nexmarkKindName, s.name, &body); err != nil {
		return nil, err
	}
	if err := checkRange(nexmarkKindName, s.name, body.From, body.To, s.cfg.Events); err != nil {
		return nil, err
	}
	return &NexmarkSplit{Config: s.cfg, Kind: s.kindName(), From: body.From, To: body.To, source: s.name}, nil
}

func (s *NexmarkStream) kindName() string {
	switch s.kind {
	case kindPerson:
		return "person"
	case kindAuction:
		return "auction"
	}
	return "bid"
}

// parse reads an offset {"events":N}; N must not pass a bounded stream's end.
func (s *NexmarkStream) parse(off sources.Offset) (int64, error) {
	var o struct {
		Events *int64 `json:"events"`
	}
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	err := d.Decode(&o)
	if err == nil {
		if _, e := d.Token(); e != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err != nil || o.Events == nil || *o.Events < 0 {
		return 0, fmt.Errorf("generate %q: offset %q: want {\"events\":N} with N >= 0: %w", s.name, string(off), sources.ErrBadOffset)
	}
	if s.cfg.Events > 0 && *o.Events > s.cfg.Events {
		return 0, fmt.Errorf("generate %q: offset %s is past Events %d: %w", s.name, off, s.cfg.Events, sources.ErrBadOffset)
	}
	return *o.Events, nil
}

func encodeEvents(n int64) sources.Offset {
	return append(strconv.AppendInt([]byte(`{"events":`), n, 10), '}')
}

// NexmarkSplit generates events [From, To) of a Nexmark generator and
// keeps those of one Kind ("person", "auction" or "bid"). Plain data.
type NexmarkSplit struct {
	Config   NexmarkConfig
	Kind     string
	From, To int64

	source string // the stream's name, for Encode
}

// Encode is {"v":1,"kind":"nexmark","name":<stream>,"split":{"from":..,"to":..}},
// event ids counted from the config's FirstEventID.
func (s *NexmarkSplit) Encode() ([]byte, error) {
	return sources.MarshalSplit(nexmarkKindName, s.source, rowRange{From: s.From, To: s.To})
}

func (s *NexmarkSplit) kind() (nexmarkKind, int) {
	switch s.Kind {
	case "person":
		return kindPerson, 0
	case "auction":
		return kindAuction, 1
	case "bid":
		return kindBid, 2
	}
	return 0, -1
}

// Rows is the exact number of events of the split's kind in its range.
func (s *NexmarkSplit) Rows() int64 {
	lo := s.Config.FirstEventID + s.From
	p, a, b := nexmarkCounts(lo, lo+s.To-s.From)
	switch _, i := s.kind(); i {
	case 0:
		return p
	case 1:
		return a
	case 2:
		return b
	}
	return -1
}

// Read emits one record of the split's events of its kind, allocated from
// mem, or nothing when the range holds none; emit owns the record.
func (s *NexmarkSplit) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, i := s.kind()
	if i < 0 || s.To < s.From || s.From < 0 || s.Config.Validate() != nil {
		return fmt.Errorf("generate: nexmark split %s %s [%d, %d): %w", s.Config, s.Kind, s.From, s.To, ErrConfig)
	}
	if s.Rows() == 0 {
		return nil
	}
	recs := s.Config.generate(mem, s.From, s.To-s.From, k)
	return emit(recs[i])
}
