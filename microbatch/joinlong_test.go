package microbatch_test

// Long-running join tests: millions of rows through stream-stream joins,
// watching the state size each batch's progress reports. A join bounded by
// a time range and watermarks keeps state flat however long it runs; an
// inner join with no bound keeps every row (its state grows with the
// input), unless a state TTL drops keys not seen for a while.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

var (
	longTime     = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	longOrders   = arrow.NewSchema([]arrow.Field{{Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "ordered_at", Type: longTime}, {Name: "amount", Type: arrow.PrimitiveTypes.Int64}}, nil)
	longPayments = arrow.NewSchema([]arrow.Field{{Name: "payment_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "paid_at", Type: longTime}}, nil)
)

// longGen is the data, a pure function of the row index: both streams have
// a row every step of event time from t0; order i is at t0 + i·step, and
// payment j, at t0 + j·step, pays order j − lag(j) with lag uniform in
// [0, maxLag]. Both streams are in event-time order.
type longGen struct {
	step   time.Duration
	maxLag int64
}

func (g longGen) at(i int64) int64 { return t0.UnixMicro() + i*g.step.Microseconds() }
func (g longGen) lag(j int64) int64 {
	x := uint64(j)*0x9e3779b97f4a7c15 + 0x6a6f696e
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return int64((x ^ (x >> 31)) % uint64(g.maxLag+1))
}

// longStream is one side as a bounded sources.Stream: offsets {"rows":N},
// at most perBatch rows a batch.
type longStream struct {
	orders          bool
	gen             longGen
	total, perBatch int64
}

func (s *longStream) Name() string {
	if s.orders {
		return "orders"
	}
	return "payments"
}

func (s *longStream) Identity() string {
	return fmt.Sprintf("longjoin %s step=%s max_lag=%d", s.Name(), s.gen.step, s.gen.maxLag)
}

func (s *longStream) Schema() *arrow.Schema {
	if s.orders {
		return longOrders
	}
	return longPayments
}

func (s *longStream) Initial(context.Context) (sources.Offset, error) { return longOffset(0), nil }

func (s *longStream) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	n, err := longParse(start)
	return longOffset(min(s.total, n+s.perBatch)), err
}

func (s *longStream) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := longParse(start)
	if err != nil {
		return nil, err
	}
	hi, err := longParse(end)
	var out []sources.Split
	for from := lo; from < hi; from += 1 << 15 {
		out = append(out, &longSplit{s: s, from: from, to: min(hi, from+1<<15)})
	}
	return out, err
}

func (s *longStream) DecodeSplit(b []byte) (sources.Split, error) {
	var r struct{ From, To int64 }
	if err := sources.UnmarshalSplit(b, "long", s.Name(), &r); err != nil {
		return nil, err
	}
	if r.From < 0 || r.To < r.From || r.To > s.total {
		return nil, sources.BadSplitf("long", s.Name(), "rows [%d, %d)", r.From, r.To)
	}
	return &longSplit{s: s, from: r.From, to: r.To}, nil
}

func longOffset(n int64) sources.Offset {
	return sources.Offset(`{"rows":` + strconv.FormatInt(n, 10) + `}`)
}

func longParse(off sources.Offset) (int64, error) {
	var v struct{ Rows int64 }
	if err := json.Unmarshal(off, &v); err != nil {
		return 0, fmt.Errorf("offset %s: %w", off, sources.ErrBadOffset)
	}
	return v.Rows, nil
}

type longSplit struct {
	s        *longStream
	from, to int64
}

func (sp *longSplit) Rows() int64 { return sp.to - sp.from }

func (sp *longSplit) Encode() ([]byte, error) {
	return sources.MarshalSplit("long", sp.s.Name(), struct{ From, To int64 }{sp.from, sp.to})
}

func (sp *longSplit) Read(_ context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	b := array.NewRecordBuilder(mem, sp.s.Schema())
	defer b.Release()
	g := sp.s.gen
	for i := sp.from; i < sp.to; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		if sp.s.orders {
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(g.at(i)))
			b.Field(2).(*array.Int64Builder).Append(i % 1000)
		} else {
			b.Field(1).(*array.Int64Builder).Append(i - g.lag(i))
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(g.at(i)))
		}
	}
	return emit(b.NewRecord())
}

// longCountSink counts each committed batch's rows and, of them, those
// whose payment_id is null; a batch committed again replaces its count.
type longCountSink struct {
	mu             sync.Mutex
	rows, unpaired map[int64]int64
}

func newLongCountSink() *longCountSink {
	return &longCountSink{rows: map[int64]int64{}, unpaired: map[int64]int64{}}
}

func (s *longCountSink) Name() string                                                    { return "count" }
func (s *longCountSink) Check(sinks.Mode, *arrow.Schema) error                           { return nil }
func (s *longCountSink) Abort(context.Context, sinks.Batch, []sinks.CommitMessage) error { return nil }

func (s *longCountSink) NewWriter(_ context.Context, b sinks.Batch, _ int) (sinks.Writer, error) {
	idx := b.Schema.FieldIndices("payment_id")
	if len(idx) != 1 {
		return nil, fmt.Errorf("count sink: no payment_id in %s", b.Schema)
	}
	return &longCountWriter{col: idx[0]}, nil
}

func (s *longCountSink) Commit(_ context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	var rows, unpaired int64
	for _, m := range msgs {
		var c [2]int64
		if err := json.Unmarshal(m, &c); err != nil {
			return err
		}
		rows += c[0]
		unpaired += c[1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[b.ID], s.unpaired[b.ID] = rows, unpaired
	return nil
}

func (s *longCountSink) totals() (rows, unpaired int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, n := range s.rows {
		rows += n
		unpaired += s.unpaired[id]
	}
	return rows, unpaired
}

type longCountWriter struct {
	col            int
	rows, unpaired int64
}

func (w *longCountWriter) Write(rec arrow.Record) error {
	w.rows += rec.NumRows()
	w.unpaired += int64(rec.Column(w.col).NullN())
	return nil
}

func (w *longCountWriter) Prepare() (sinks.CommitMessage, error) {
	return json.Marshal([2]int64{w.rows, w.unpaired})
}

func (w *longCountWriter) Abort() error { return nil }

// longClock gives batch k (counted by OnProgress) the processing time
// t0 + k·step, so a TTL counts batches, whatever the machine's speed.
type longClock struct {
	mu   sync.Mutex
	k    int64
	step time.Duration
}

func (c *longClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return t0.Add(time.Duration(c.k) * c.step)
}

func (c *longClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

func (c *longClock) next() { c.mu.Lock(); c.k++; c.mu.Unlock() }

// longState is one batch's join state as its progress reported it.
type longState struct{ rows, bytes, evicted, dropped, input int64 }

// runLong runs job over the two generated streams to their end with the
// AvailableNow trigger, on a checkpoint in memory, and returns each batch's
// state and the sink.
func runLong(t *testing.T, mem memory.Allocator, g longGen, orders, payments, perBatch int64, clockStep time.Duration,
	job func(o, p *dataset.Dataset) *dataset.Dataset) ([]longState, *longCountSink) {
	t.Helper()
	cfg := dataset.Config{Allocator: mem, Parallelism: 2}
	o := dataset.ReadStream(&longStream{orders: true, gen: g, total: orders, perBatch: perBatch}).WithConfig(cfg)
	p := dataset.ReadStream(&longStream{gen: g, total: payments, perBatch: perBatch}).WithConfig(cfg)
	sink := newLongCountSink()
	clock := &longClock{step: clockStep}
	var states []longState
	q, err := microbatch.WriteStream(job(o, p), sink).Checkpoint("/ckpt").FS(vfs.NewMem()).Clock(clock).
		OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()).
		OnProgress(func(pr microbatch.Progress) {
			s := longState{input: pr.InputRows}
			for _, op := range pr.StateOperators {
				s.rows += op.Rows
				s.bytes += op.Bytes
				s.evicted += op.Evicted
				s.dropped += op.DroppedLate
			}
			states = append(states, s)
			clock.next()
		}).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	return states, sink
}

// halves returns the largest state rows and bytes of the first and the
// second half of the batches.
func halves(states []longState) (rows1, bytes1, rows2, bytes2 int64) {
	for k, s := range states {
		if k < len(states)/2 {
			rows1, bytes1 = max(rows1, s.rows), max(bytes1, s.bytes)
		} else {
			rows2, bytes2 = max(rows2, s.rows), max(bytes2, s.bytes)
		}
	}
	return
}

// A left outer join of two streams within a time window, bounded by both
// watermarks, over 2 M rows spanning 33 windows of event time: the state
// after each batch holds the rows the window, the watermark delay and the
// batch itself keep, no more; its peak in the second half of the run is
// that of the first half; and the output is what plain Go computes (every
// pair, and every order without a payment once the watermark passed it).
func TestBoundedJoinStateStaysFlatUnderAMovingWatermark(t *testing.T) {
	const (
		rows     = 1_000_000 // per stream
		perBatch = 20_000    // 20 s of event time per stream
		window   = 30 * time.Second
		delay    = time.Second
	)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g := longGen{step: time.Millisecond, maxLag: int64(window/time.Millisecond) * 6 / 5}
	began := time.Now()
	states, sink := runLong(t, mem, g, rows, rows, perBatch, time.Second, func(o, p *dataset.Dataset) *dataset.Dataset {
		within := dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(window)))
		return o.WithWatermark("ordered_at", delay).JoinWhere(p.WithWatermark("paid_at", delay), []string{"order_id"}, dataset.Left, within)
	})
	rows1, bytes1, rows2, bytes2 := halves(states)
	last := states[len(states)-1]
	t.Logf("%d batches in %v; state peak %d rows / %.1f MiB in the first half, %d / %.1f MiB in the second; %d rows after the last batch",
		len(states), time.Since(began).Round(time.Millisecond), rows1, float64(bytes1)/(1<<20), rows2, float64(bytes2)/(1<<20), last.rows)

	var input, dropped int64
	for _, s := range states {
		input += s.input
		dropped += s.dropped
	}
	if input != 2*rows || dropped != 0 {
		t.Fatalf("read %d rows and dropped %d as late, want %d and 0", input, dropped, 2*rows)
	}
	// An order stays until the watermark (the end of the previous batch's
	// event time, minus the delay) is a window past it: the window, the
	// delay and the batch's own 20 s; a payment stays for the delay and
	// its batch.
	bound := int64((window+delay+20*time.Second)/g.step) + int64((delay+20*time.Second)/g.step) + 100
	if rows1 == 0 || rows1 > bound || rows2 > bound {
		t.Errorf("state peaked at %d rows in the first half, %d in the second; the window bounds it at %d", rows1, rows2, bound)
	}
	if rows2 > rows1+rows1/100 || bytes2 > bytes1+bytes1/10 {
		t.Errorf("state grew from the first half to the second: %d -> %d rows, %d -> %d bytes", rows1, rows2, bytes1, bytes2)
	}

	// Plain Go: pairs, and unpaired orders whose window the final
	// watermark (the streams' last event time minus the delay) has passed.
	paired := make([]bool, rows)
	var pairs, unpaired int64
	for j := range int64(rows) {
		if i := j - g.lag(j); i >= 0 && g.at(j)-g.at(i) <= window.Microseconds() {
			paired[i] = true
			pairs++
		}
	}
	wm := g.at(rows-1) - delay.Microseconds()
	for i := range int64(rows) {
		if !paired[i] && g.at(i)+window.Microseconds() <= wm {
			unpaired++
		}
	}
	gotRows, gotUnpaired := sink.totals()
	if gotRows != pairs+unpaired || gotUnpaired != unpaired {
		t.Fatalf("output %d rows (%d orders without a payment), want %d (%d)", gotRows, gotUnpaired, pairs+unpaired, unpaired)
	}
}

// An inner join of two streams with no time bound keeps every row of both
// sides: its state after each batch is all the rows read so far, growing
// linearly with the input. With a state TTL of three batches of processing
// time it drops each key three batches after it was last seen, so state
// stays at about three batches of rows however long the stream runs, and
// the rows are all accounted for: evicted, or still in state. Payments
// come within a batch and a bit of their order, so both give every pair.
func TestUnboundedInnerJoinStateGrowsWithoutATTLAndStaysFlatWithOne(t *testing.T) {
	const perBatch = 10_000 // per stream
	g := longGen{step: time.Millisecond, maxLag: perBatch * 6 / 5}
	for _, c := range []struct {
		ttl  time.Duration
		rows int64 // per stream
	}{
		// Without a TTL every batch re-reads the whole, growing state, so
		// the run is quadratic in the input: 1 M rows show the growth.
		{0, 500_000},
		{30 * time.Second, 1_000_000},
	} {
		t.Run(fmt.Sprintf("ttl=%v", c.ttl), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			began := time.Now()
			states, sink := runLong(t, mem, g, c.rows, c.rows, perBatch, 10*time.Second, func(o, p *dataset.Dataset) *dataset.Dataset {
				j := o.Join(p, []string{"order_id"}, dataset.Inner)
				if c.ttl > 0 {
					j = j.StateTTL(c.ttl)
				}
				return j
			})
			rows1, bytes1, rows2, bytes2 := halves(states)
			var input, evicted int64
			for k, s := range states {
				input += s.input
				evicted += s.evicted
				if c.ttl == 0 && (s.rows != input || s.evicted != 0) {
					t.Fatalf("batch %d: %d state rows (%d evicted) after %d input rows; without a TTL it keeps them all", k, s.rows, s.evicted, input)
				}
			}
			last := states[len(states)-1]
			t.Logf("%d batches in %v; state peak %d rows / %.1f MiB in the first half, %d / %.1f MiB in the second; %d evicted",
				len(states), time.Since(began).Round(time.Millisecond), rows1, float64(bytes1)/(1<<20), rows2, float64(bytes2)/(1<<20), evicted)
			if input != 2*c.rows || last.rows+evicted != input {
				t.Fatalf("read %d rows; %d in state + %d evicted = %d, want %d", input, last.rows, evicted, last.rows+evicted, 2*c.rows)
			}
			if c.ttl == 0 {
				// Linear: the second half ends with twice the first half's rows.
				if rows2 != 2*rows1 || bytes2 < bytes1*3/2 {
					t.Errorf("state %d rows / %d bytes at the half, %d / %d at the end: not growing with the input", rows1, bytes1, rows2, bytes2)
				}
			} else {
				// A key inserted in batch k is dropped in batch k+3 unless
				// seen again (its payments come at most 2 batches later):
				// at most 5 batches of both streams stay.
				if bound := int64(5 * 2 * perBatch); rows1 > bound || rows2 > bound || rows2 > rows1+rows1/100 || bytes2 > bytes1+bytes1/10 {
					t.Errorf("state peak %d rows / %d bytes in the first half, %d / %d in the second; want flat, at most %d rows", rows1, bytes1, rows2, bytes2, bound)
				}
				if evicted < input/2 {
					t.Errorf("the TTL evicted %d of %d rows", evicted, input)
				}
			}
			// Every payment whose order exists pairs with it.
			var pairs int64
			for j := range c.rows {
				if j-g.lag(j) >= 0 {
					pairs++
				}
			}
			if got, _ := sink.totals(); got != pairs {
				t.Fatalf("output %d rows, want %d pairs", got, pairs)
			}
		})
	}
}
