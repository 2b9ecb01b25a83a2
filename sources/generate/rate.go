package generate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

// RateSchema is the schema of the Rate stream.
var RateSchema = arrow.NewSchema([]arrow.Field{
	{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "value", Type: arrow.PrimitiveTypes.Int64},
	{Name: "key", Type: arrow.BinaryTypes.String},
}, nil)

// RateConfig configures a Rate stream.
type RateConfig struct {
	// Name identifies the source within a query; default "rate".
	Name string
	// RowsPerSecond of processing time (required, > 0).
	RowsPerSecond int64
	// Seed of the key column.
	Seed uint64
	// Keys is the number of distinct keys; default 100.
	Keys int
	// StartTime is the time origin of a new query: row i is due, and
	// stamped, at StartTime + i/RowsPerSecond. Default: Now() at New. A
	// query's origin is recorded in its offsets, so a restart keeps it.
	StartTime time.Time
	// MaxRowsPerBatch caps how far Latest moves past its start; 0 = no cap.
	MaxRowsPerBatch int64
	// Now is the processing-time clock; default time.Now.
	Now func() time.Time
}

// Validate reports a config NewRate cannot use.
func (c RateConfig) Validate() error {
	if c.RowsPerSecond <= 0 {
		return fmt.Errorf("%w: rate: RowsPerSecond %d must be positive", ErrConfig, c.RowsPerSecond)
	}
	if c.RowsPerSecond > 1_000_000_000 {
		return fmt.Errorf("%w: rate: RowsPerSecond %d is over 1e9", ErrConfig, c.RowsPerSecond)
	}
	if c.Keys < 0 {
		return fmt.Errorf("%w: rate: Keys %d is negative", ErrConfig, c.Keys)
	}
	if c.MaxRowsPerBatch < 0 {
		return fmt.Errorf("%w: rate: MaxRowsPerBatch %d is negative", ErrConfig, c.MaxRowsPerBatch)
	}
	return nil
}

func (c RateConfig) String() string {
	return fmt.Sprintf("rate{name=%s rows_per_second=%d seed=%d keys=%d start=%s max_rows_per_batch=%d}",
		c.Name, c.RowsPerSecond, c.Seed, c.Keys, c.StartTime.UTC().Format(time.RFC3339Nano), c.MaxRowsPerBatch)
}

// Rate is a stream of RowsPerSecond rows per second of processing time:
// row i has timestamp origin + i/RowsPerSecond, value i and a key drawn
// from Keys distinct keys by (Seed, i).
type Rate struct {
	cfg     RateConfig
	startUs int64
	bound   time.Time // processing time fixed by Bound; zero = unbounded
}

var (
	_ sources.Stream  = (*Rate)(nil)
	_ sources.Bounder = (*Rate)(nil)
)

// NewRate returns a Rate stream.
func NewRate(cfg RateConfig) (*Rate, error) {
	if cfg.Name == "" {
		cfg.Name = "rate"
	}
	if cfg.Keys == 0 {
		cfg.Keys = 100
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
	return &Rate{cfg: cfg, startUs: cfg.StartTime.UnixMicro()}, nil
}

func (r *Rate) Name() string { return r.cfg.Name }

// Identity names every parameter row i depends on: the rate (it spaces the
// timestamps), the seed and the key count. The time origin is not one: it
// is recorded in the offsets.
func (r *Rate) Identity() string {
	return fmt.Sprintf("rate rows_per_second=%d seed=%d keys=%d", r.cfg.RowsPerSecond, r.cfg.Seed, r.cfg.Keys)
}

func (r *Rate) Schema() *arrow.Schema { return RateSchema }

func (r *Rate) Initial(context.Context) (sources.Offset, error) {
	return position{startUs: r.startUs}.encode(true), nil
}

// Latest is the rows due by Now() since the offset's time origin, capped by
// MaxRowsPerBatch and by Bound.
func (r *Rate) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	p, err := parseOffset(r.cfg.Name, start, r.startUs)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Now()
	if !r.bound.IsZero() && now.After(r.bound) {
		now = r.bound
	}
	due := rowsDue(now.Sub(time.UnixMicro(p.startUs)), r.cfg.RowsPerSecond)
	p.rows = nextEnd(p.rows, due, r.cfg.MaxRowsPerBatch, 0)
	return p.encode(true), nil
}

// Bound fixes the end of the input at the rows due now: later Latest calls
// count rows due by this instant, not by their own Now().
func (r *Rate) Bound(context.Context) error {
	r.bound = r.cfg.Now()
	return nil
}

func (r *Rate) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, hi, err := parseRange(r.cfg.Name, start, end, r.startUs)
	if err != nil {
		return nil, err
	}
	var out []sources.Split
	rowRanges(lo.rows, hi.rows, func(from, to int64) {
		out = append(out, r.split(lo.startUs, from, to))
	})
	return out, nil
}

func (r *Rate) split(startUs, from, to int64) *RateSplit {
	return &RateSplit{Seed: r.cfg.Seed, Keys: r.cfg.Keys, StartUs: startUs,
		RowsPerSecond: r.cfg.RowsPerSecond, From: from, To: to, source: r.cfg.Name}
}

// rateSplit is a Rate split's encoded body: the row range and the time
// origin, which comes from the offsets, not the config. Seed, Keys and
// RowsPerSecond are the decoding stream's.
type rateSplit struct {
	From    int64 `json:"from"`
	To      int64 `json:"to"`
	StartUs int64 `json:"start_us"`
}

// DecodeSplit rebuilds a split from RateSplit.Encode's bytes.
func (r *Rate) DecodeSplit(b []byte) (sources.Split, error) {
	var body rateSplit
	if err := sources.UnmarshalSplit(b, rateKind, r.cfg.Name, &body); err != nil {
		return nil, err
	}
	if err := checkRange(rateKind, r.cfg.Name, body.From, body.To, 0); err != nil {
		return nil, err
	}
	return r.split(body.StartUs, body.From, body.To), nil
}

// RateSplit generates rows [From, To) of a Rate stream. Plain data.
type RateSplit struct {
	Seed          uint64
	Keys          int
	StartUs       int64 // time origin, Unix microseconds
	RowsPerSecond int64
	From, To      int64

	source string // the stream's name, for Encode
}

// Encode is {"v":1,"kind":"rate","name":<stream>,"split":{"from":..,"to":..,
// "start_us":..}}.
func (s *RateSplit) Encode() ([]byte, error) {
	return sources.MarshalSplit(rateKind, s.source, rateSplit{From: s.From, To: s.To, StartUs: s.StartUs})
}

func (s *RateSplit) Rows() int64 { return s.To - s.From }

// Read emits one record of the split's rows, allocated from mem; emit owns it.
func (s *RateSplit) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.RowsPerSecond <= 0 || s.Keys <= 0 || s.To < s.From {
		return fmt.Errorf("generate: rate split %+v: %w", *s, ErrConfig)
	}
	n := int(s.To - s.From)
	b := array.NewRecordBuilder(mem, RateSchema)
	defer b.Release()
	ts := b.Field(0).(*array.TimestampBuilder)
	vals := b.Field(1).(*array.Int64Builder)
	keys := b.Field(2).(*array.StringBuilder)
	ts.Reserve(n)
	vals.Reserve(n)
	keys.Reserve(n)
	keys.ReserveData(n * 8)
	var buf [24]byte
	rps := s.RowsPerSecond
	for i := s.From; i < s.To; i++ {
		// i/rps seconds in microseconds, split so i*1e6 cannot overflow.
		us := s.StartUs + (i/rps)*1_000_000 + (i%rps)*1_000_000/rps
		ts.Append(arrow.Timestamp(us))
		vals.Append(i)
		k := splitmix64(s.Seed^uint64(i)*0x9e3779b97f4a7c15) % uint64(s.Keys)
		keys.BinaryBuilder.Append(strconv.AppendUint(append(buf[:0], "key-"...), k, 10))
	}
	rec := b.NewRecord()
	return emit(rec)
}
