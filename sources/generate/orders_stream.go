package generate

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

// OrdersStreamConfig configures an OrdersStream.
type OrdersStreamConfig struct {
	// Name identifies the source within a query; default "orders".
	Name string
	// Orders is the generator; order i is Orders.Record(mem, i, 1).
	Orders Orders
	// RowsPerSecond of processing time; 0 = unbounded: every batch takes
	// MaxRowsPerBatch rows (or the rest of Total) at once.
	RowsPerSecond int64
	// Total rows of a bounded stream: Latest stops there. 0 = endless.
	Total int64
	// MaxRowsPerBatch caps how far Latest moves past its start; 0 = no cap.
	MaxRowsPerBatch int64
	// StartTime is the processing-time origin of the rate limit of a new
	// query (recorded in its offsets); default Now() at New. Order event
	// times come from Orders.Start, not from here.
	StartTime time.Time
	// Now is the processing-time clock; default time.Now.
	Now func() time.Time
}

// Validate reports a config NewOrdersStream cannot use.
func (c OrdersStreamConfig) Validate() error {
	switch {
	case c.RowsPerSecond < 0:
		return fmt.Errorf("%w: orders stream: RowsPerSecond %d is negative", ErrConfig, c.RowsPerSecond)
	case c.RowsPerSecond > 1_000_000_000:
		return fmt.Errorf("%w: orders stream: RowsPerSecond %d is over 1e9", ErrConfig, c.RowsPerSecond)
	case c.Total < 0:
		return fmt.Errorf("%w: orders stream: Total %d is negative", ErrConfig, c.Total)
	case c.MaxRowsPerBatch < 0:
		return fmt.Errorf("%w: orders stream: MaxRowsPerBatch %d is negative", ErrConfig, c.MaxRowsPerBatch)
	case c.RowsPerSecond == 0 && c.Total == 0 && c.MaxRowsPerBatch == 0:
		return fmt.Errorf("%w: orders stream: an endless stream without RowsPerSecond needs MaxRowsPerBatch", ErrConfig)
	}
	return nil
}

func (c OrdersStreamConfig) String() string {
	return fmt.Sprintf("orders_stream{name=%s seed=%d rows_per_second=%d total=%d max_rows_per_batch=%d}",
		c.Name, c.Orders.Seed, c.RowsPerSecond, c.Total, c.MaxRowsPerBatch)
}

// OrdersStream is the Orders generator as a stream: batch (start, end]
// holds orders start .. end-1.
type OrdersStream struct {
	cfg     OrdersStreamConfig
	startUs int64
	bound   time.Time // processing time fixed by Bound; zero = none
}

var (
	_ sources.Stream  = (*OrdersStream)(nil)
	_ sources.Bounder = (*OrdersStream)(nil)
)

// NewOrdersStream returns an OrdersStream.
func NewOrdersStream(cfg OrdersStreamConfig) (*OrdersStream, error) {
	if cfg.Name == "" {
		cfg.Name = "orders"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.StartTime.IsZero() {
		cfg.StartTime = cfg.Now()
	}
	return &OrdersStream{cfg: cfg, startUs: cfg.StartTime.UnixMicro()}, nil
}

func (o *OrdersStream) Name() string { return o.cfg.Name }

// Identity names every parameter of the Orders generator (defaults
// spelled out, so an explicit default is the same data). The pace
// (RowsPerSecond), batch size and Total are not part of it: order i is the
// same whatever they are.
func (o *OrdersStream) Identity() string {
	g := o.cfg.Orders.withDefaults()
	return fmt.Sprintf("orders seed=%d customers=%d start=%s interval=%s max_delay=%s",
		g.Seed, g.Customers, g.Start.UTC().Format(time.RFC3339Nano), g.Interval, g.MaxDelay)
}

func (o *OrdersStream) Schema() *arrow.Schema { return OrdersSchema }

// rated says whether offsets carry a time origin.
func (o *OrdersStream) rated() bool { return o.cfg.RowsPerSecond > 0 }

func (o *OrdersStream) Initial(context.Context) (sources.Offset, error) {
	return position{startUs: o.startUs}.encode(o.rated()), nil
}

// Latest is start + MaxRowsPerBatch for an unbounded rate, else the rows
// due by Now(), capped by MaxRowsPerBatch, Total and Bound.
func (o *OrdersStream) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	p, err := parseOffset(o.cfg.Name, start, o.startUs)
	if err != nil {
		return nil, err
	}
	if o.cfg.Total > 0 && p.rows > o.cfg.Total {
		return nil, fmt.Errorf("generate %q: offset %s is past Total %d: %w", o.cfg.Name, start, o.cfg.Total, sources.ErrBadOffset)
	}
	avail := o.available(p.startUs)
	p.rows = nextEnd(p.rows, avail, o.cfg.MaxRowsPerBatch, o.cfg.Total)
	return p.encode(o.rated()), nil
}

func (o *OrdersStream) available(startUs int64) int64 {
	if !o.rated() {
		return 1<<63 - 1
	}
	now := o.cfg.Now()
	if !o.bound.IsZero() && now.After(o.bound) {
		now = o.bound
	}
	return rowsDue(now.Sub(time.UnixMicro(startUs)), o.cfg.RowsPerSecond)
}

// Bound fixes the end at the rows due now. Without a rate everything is
// available at once: a bounded stream already stops at Total, and an endless
// one cannot be bounded (it keeps yielding MaxRowsPerBatch per batch).
func (o *OrdersStream) Bound(context.Context) error {
	if o.rated() {
		o.bound = o.cfg.Now()
	}
	return nil
}

func (o *OrdersStream) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, hi, err := parseRange(o.cfg.Name, start, end, o.startUs)
	if err != nil {
		return nil, err
	}
	if o.cfg.Total > 0 && hi.rows > o.cfg.Total {
		return nil, fmt.Errorf("generate %q: offset %s is past Total %d: %w", o.cfg.Name, end, o.cfg.Total, sources.ErrBadOffset)
	}
	var out []sources.Split
	rowRanges(lo.rows, hi.rows, func(from, to int64) {
		out = append(out, &OrdersSplit{Orders: o.cfg.Orders, From: from, To: to, source: o.cfg.Name})
	})
	return out, nil
}

// DecodeSplit rebuilds a split from OrdersSplit.Encode's bytes; the
// generator is this stream's Orders.
func (o *OrdersStream) DecodeSplit(b []byte) (sources.Split, error) {
	var body rowRange
	if err := sources.UnmarshalSplit(b, ordersKind, o.cfg.Name, &body); err != nil {
		return nil, err
	}
	if err := checkRange(ordersKind, o.cfg.Name, body.From, body.To, o.cfg.Total); err != nil {
		return nil, err
	}
	return &OrdersSplit{Orders: o.cfg.Orders, From: body.From, To: body.To, source: o.cfg.Name}, nil
}

// OrdersSplit generates orders [From, To). Plain data.
type OrdersSplit struct {
	Orders   Orders
	From, To int64

	source string // the stream's name, for Encode
}

// Encode is {"v":1,"kind":"orders","name":<stream>,"split":{"from":..,"to":..}}:
// the generator's parameters are the decoding stream's config.
func (s *OrdersSplit) Encode() ([]byte, error) {
	return sources.MarshalSplit(ordersKind, s.source, rowRange{From: s.From, To: s.To})
}

func (s *OrdersSplit) Rows() int64 { return s.To - s.From }

// Read emits one record of the split's orders, allocated from mem; emit owns it.
func (s *OrdersSplit) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return emit(s.Orders.Record(mem, s.From, s.To-s.From))
}
