package main

// The stream-stream join case (-job join); see doc.go for what it measures.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/measure"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	srcpq "github.com/sluicedata/sluice/sources/parquet"
)

// The join case's defaults, applied when -job join is given without the flag.
const (
	joinDefaultEvents    = 20_000_000
	joinDefaultBatchRows = 100_000
	joinDefaultKeys      = 100_000
)

var (
	joinTime      = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	joinOrders    = arrow.NewSchema([]arrow.Field{{Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "ordered_at", Type: joinTime}, {Name: "amount", Type: arrow.PrimitiveTypes.Int64}}, nil)
	joinPayments  = arrow.NewSchema([]arrow.Field{{Name: "payment_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "paid_at", Type: joinTime}, {Name: "paid", Type: arrow.PrimitiveTypes.Int64}}, nil)
	joinSplitRows = int64(64 << 10)
)

// joinGen is the data of the join case, a pure function of the row index.
// Both streams have one row per step of event time from origin: order i is
// at origin + i·step; payment j at origin + j·step pays order j − lag(j),
// lag uniform in [0, maxLag]. With step = window / keys, an order's window
// holds keys orders (the open keys), and a payment lands in it when
// lag <= keys: maxLag = 1.2·keys leaves about one payment in six outside
// it, and orders get zero, one or several payments.
type joinGen struct {
	seed   uint64
	step   time.Duration
	maxLag int64
}

func newJoinGen(o options) joinGen {
	return joinGen{seed: o.seed, step: o.window / time.Duration(o.keys), maxLag: int64(o.keys) * 6 / 5}
}

func (g joinGen) at(i int64) int64     { return origin.UnixMicro() + i*g.step.Microseconds() }
func (g joinGen) amount(i int64) int64 { return 100 + int64(splitmix64(g.seed^uint64(i))%50_000) }
func (g joinGen) lag(j int64) int64 {
	return int64(splitmix64(g.seed^0x7061796d656e74^uint64(j)*0x9e3779b97f4a7c15) % uint64(g.maxLag+1))
}
func (g joinGen) paid(j int64) int64 { return 100 + int64(splitmix64(^g.seed^uint64(j))%50_000) }

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// joinStream is one side of the join case as a bounded sources.Stream:
// offsets {"rows":N}, batch (start, end] = rows start..end-1, at most
// maxBatch rows a batch.
type joinStream struct {
	name            string
	gen             joinGen
	total, maxBatch int64
}

var _ sources.Stream = (*joinStream)(nil)

func (s *joinStream) Name() string { return s.name }

func (s *joinStream) Identity() string {
	return fmt.Sprintf("join-bench %s seed=%d step=%s max_lag=%d", s.name, s.gen.seed, s.gen.step, s.gen.maxLag)
}

func (s *joinStream) Schema() *arrow.Schema {
	if s.name == "orders" {
		return joinOrders
	}
	return joinPayments
}
func (s *joinStream) Initial(context.Context) (sources.Offset, error) { return joinOffset(0), nil }

func (s *joinStream) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	n, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	return joinOffset(min(s.total, n+s.maxBatch)), nil
}

func (s *joinStream) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	hi, err := s.parse(end)
	if err != nil {
		return nil, err
	}
	var out []sources.Split
	for from := lo; from < hi; from += joinSplitRows {
		out = append(out, &joinSplit{orders: s.name == "orders", gen: s.gen, from: from, to: min(hi, from+joinSplitRows), source: s.name})
	}
	return out, nil
}

// joinRange is a split's encoded body; the generator is the stream's.
type joinRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

func (s *joinStream) DecodeSplit(b []byte) (sources.Split, error) {
	var r joinRange
	if err := sources.UnmarshalSplit(b, "join", s.name, &r); err != nil {
		return nil, err
	}
	if r.From < 0 || r.To <= r.From || r.To > s.total {
		return nil, sources.BadSplitf("join", s.name, "rows [%d, %d) of %d", r.From, r.To, s.total)
	}
	return &joinSplit{orders: s.name == "orders", gen: s.gen, from: r.From, to: r.To, source: s.name}, nil
}

func joinOffset(n int64) sources.Offset {
	return sources.Offset(`{"rows":` + strconv.FormatInt(n, 10) + `}`)
}

func (s *joinStream) parse(off sources.Offset) (int64, error) {
	var v struct{ Rows *int64 }
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil || v.Rows == nil || *v.Rows < 0 || *v.Rows > s.total {
		return 0, fmt.Errorf("%s: offset %s: %w", s.name, off, sources.ErrBadOffset)
	}
	return *v.Rows, nil
}

type joinSplit struct {
	orders   bool
	gen      joinGen
	from, to int64
	source   string
}

func (sp *joinSplit) Rows() int64 { return sp.to - sp.from }

func (sp *joinSplit) Encode() ([]byte, error) {
	return sources.MarshalSplit("join", sp.source, joinRange{From: sp.from, To: sp.to})
}

func (sp *joinSplit) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := int(sp.to - sp.from)
	a, b, c := make([]int64, n), make([]int64, n), make([]int64, n)
	ts := make([]arrow.Timestamp, n)
	g := sp.gen
	for k := range n {
		i := sp.from + int64(k)
		ts[k] = arrow.Timestamp(g.at(i))
		if sp.orders {
			a[k], c[k] = i, g.amount(i)
		} else {
			a[k], b[k], c[k] = i, i-g.lag(i), g.paid(i)
		}
	}
	ints := func(v []int64) arrow.Array {
		bl := array.NewInt64Builder(mem)
		defer bl.Release()
		bl.AppendValues(v, nil)
		return bl.NewArray()
	}
	tb := array.NewTimestampBuilder(mem, joinTime)
	tb.AppendValues(ts, nil)
	tarr := tb.NewArray()
	tb.Release()
	var cols []arrow.Array
	sch := joinPayments
	if sp.orders {
		cols, sch = []arrow.Array{ints(a), tarr, ints(c)}, joinOrders
	} else {
		cols = []arrow.Array{ints(a), ints(b), tarr, ints(c)}
	}
	rec := array.NewRecord(sch, cols, int64(n))
	for _, col := range cols {
		col.Release()
	}
	return emit(rec)
}

// joinQuery is the benchmarked join: each order with every payment within
// -window of it, and (null-padded) each order without one, once the
// watermark has passed its window.
func joinQuery(orders, payments *dataset.Dataset, o options) *dataset.Dataset {
	inWindow := dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(o.window)))
	return orders.WithWatermark("ordered_at", o.delay).
		JoinWhere(payments.WithWatermark("paid_at", o.delay), []string{"order_id"}, dataset.Left, inWindow)
}

// joinReport is the one JSON line of -job join -json. Definitions are in doc.go.
type joinReport struct {
	Job                  string  `json:"job"`
	Events               int64   `json:"events"`
	OpenKeys             int     `json:"open_keys"`
	WindowSeconds        float64 `json:"window_seconds"`
	RunWindows           float64 `json:"run_windows"`
	Seconds              float64 `json:"seconds"`
	EventsPerSec         float64 `json:"events_per_sec"`
	CPUSeconds           float64 `json:"cpu_seconds"`
	Batches              int     `json:"batches"`
	BatchRows            int64   `json:"batch_rows"`
	BatchP50Ms           float64 `json:"batch_p50_ms"`
	BatchP99Ms           float64 `json:"batch_p99_ms"`
	BatchMaxMs           float64 `json:"batch_max_ms"`
	AddBatchMsPerBatch   float64 `json:"add_batch_ms_per_batch"`
	SinkCommitMsPerBatch float64 `json:"sink_commit_ms_per_batch"`
	CheckpointMsPerBatch float64 `json:"checkpoint_ms_per_batch"`
	StateRows            int64   `json:"state_rows"`
	StateBytes           int64   `json:"state_bytes"`
	StateBytesFirstHalf  int64   `json:"state_bytes_first_half"`
	StateBytesSecondHalf int64   `json:"state_bytes_second_half"`
	StateRowsFirstHalf   int64   `json:"state_rows_first_half"`
	StateRowsSecondHalf  int64   `json:"state_rows_second_half"`
	StateGrowth          float64 `json:"state_growth"`
	DroppedLate          int64   `json:"dropped_late"`
	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	OutputRows           int64   `json:"output_rows"`
	UnmatchedRows        int64   `json:"unmatched_rows"`
	FinalWatermark       string  `json:"final_watermark"`
	BaselineSeconds      float64 `json:"baseline_seconds"`
	ProgressMissing      int     `json:"progress_missing"`
	GOMAXPROCS           int     `json:"gomaxprocs"`
	Parallelism          int     `json:"parallelism"`
	Check                string  `json:"check"`
}

// joinTotals summarise a join output: rows, rows without a payment, and an
// order-independent checksum of every row's values (a sum of row hashes, so a
// duplicate or a changed row shows).
type joinTotals struct {
	Rows, Unmatched int64
	Sum             uint64
}

func joinRowHash(orderID, amount, paymentID, paid int64) uint64 {
	return splitmix64(uint64(orderID)*0x9e3779b97f4a7c15 ^ splitmix64(uint64(amount)^splitmix64(uint64(paymentID)^splitmix64(uint64(paid)))))
}

// joinBaseline is the join's output in plain Go: every (order, payment)
// pair with the payment in [ordered_at, ordered_at + window], and every
// order without one whose window ended at or before the final watermark wm
// (Unix µs), which is when the join emits it.
func joinBaseline(o options, orders, payments, wm int64) joinTotals {
	g := newJoinGen(o)
	matched := make([]bool, orders)
	var t joinTotals
	window := o.window.Microseconds()
	for j := range payments {
		i := j - g.lag(j)
		if i < 0 || i >= orders {
			continue
		}
		if d := g.at(j) - g.at(i); d < 0 || d > window {
			continue
		}
		matched[i] = true
		t.Rows++
		t.Sum += joinRowHash(i, g.amount(i), j, g.paid(j))
	}
	for i := range orders {
		if !matched[i] && g.at(i)+window <= wm {
			t.Rows++
			t.Unmatched++
			t.Sum += joinRowHash(i, g.amount(i), -1, -1)
		}
	}
	return t
}

// add totals r, whose first four columns are order_id, amount, payment_id
// and paid.
func (t *joinTotals) add(r arrow.Record) error {
	var cols [4]*array.Int64
	for c := range cols {
		var ok bool
		if cols[c], ok = r.Column(c).(*array.Int64); !ok {
			return fmt.Errorf("output column %s is %s, want int64", r.ColumnName(c), r.Column(c).DataType())
		}
	}
	for i := 0; i < int(r.NumRows()); i++ {
		pid, paid := int64(-1), int64(-1)
		if cols[2].IsValid(i) {
			pid, paid = cols[2].Value(i), cols[3].Value(i)
		} else {
			t.Unmatched++
		}
		t.Rows++
		t.Sum += joinRowHash(cols[0].Value(i), cols[1].Value(i), pid, paid)
	}
	return nil
}

// readJoinOutput streams the sink's committed files (sources/parquet
// honours _sluice_log) and totals them.
func readJoinOutput(ctx context.Context, mem memory.Allocator, dir string) (joinTotals, error) {
	var t joinTotals
	tbl, err := srcpq.Open(ctx, dir)
	if errors.Is(err, srcpq.ErrNoFiles) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	var fields []arrow.Field
	for _, name := range []string{"order_id", "amount", "payment_id", "paid"} {
		idx := tbl.Schema.FieldIndices(name)
		if len(idx) != 1 {
			return t, fmt.Errorf("output has no column %q: %s", name, tbl.Schema)
		}
		fields = append(fields, tbl.Schema.Field(idx[0]))
	}
	proj := arrow.NewSchema(fields, nil)
	splits, _ := tbl.Splits(nil)
	for _, sp := range splits {
		err := srcpq.ReadSplit(ctx, mem, sp, proj, tbl.PartitionColumns, 0, func(r arrow.Record) error {
			defer r.Release()
			return t.add(r)
		})
		if err != nil {
			return t, err
		}
	}
	return t, nil
}

// runJoin is run for -job join.
func runJoin(ctx context.Context, o options, dir string, stdout io.Writer) (int, error) {
	if o.window%time.Duration(o.keys) != 0 || (o.window/time.Duration(o.keys))%time.Microsecond != 0 {
		return 1, fmt.Errorf("-window %v / -keys %d must be a whole number of microseconds (the event-time step)", o.window, o.keys)
	}
	orders, payments := (o.events+1)/2, o.events/2
	g := newJoinGen(o)
	rep := joinReport{Job: "join", Events: o.events, OpenKeys: o.keys, WindowSeconds: o.window.Seconds(), BatchRows: o.batchRows,
		RunWindows: float64(orders) * g.step.Seconds() / o.window.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0), Parallelism: o.parallelism}
	cfg := dataset.Config{Allocator: o.mem, Parallelism: o.parallelism}
	out := filepath.Join(dir, "out")
	sink, err := pqsink.NewStream(pqsink.StreamConfig{Dir: out, Mem: o.mem})
	if err != nil {
		return 1, err
	}
	os_ := &joinStream{name: "orders", gen: g, total: orders, maxBatch: o.batchRows}
	ps := &joinStream{name: "payments", gen: g, total: payments, maxBatch: o.batchRows}
	ds := joinQuery(dataset.ReadStream(os_).WithConfig(cfg), dataset.ReadStream(ps).WithConfig(cfg), o)

	stopProfile, err := startProfile(o.cpuProfile)
	if err != nil {
		return 1, err
	}
	runtime.GC()
	start, cpu := time.Now(), measure.CPUSeconds()
	progress, err := measure.Run(ctx, o.ob.apply(microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(filepath.Join(dir, "checkpoint")).OutputMode(sinks.Append)))
	rep.Seconds, rep.CPUSeconds = time.Since(start).Seconds(), measure.CPUSeconds()-cpu
	stopProfile()
	if err != nil {
		return 1, err
	}
	rep.PeakRSSBytes = measure.PeakRSS()
	rep.EventsPerSec = float64(o.events) / rep.Seconds
	rep.ProgressMissing = int(progress[len(progress)-1].Batch-progress[0].Batch+1) - len(progress)
	summariseJoin(&rep, progress)
	var inputRows int64
	for _, p := range progress {
		inputRows += p.InputRows
	}
	if inputRows != o.events {
		return 1, fmt.Errorf("the query read %d events, want %d", inputRows, o.events)
	}
	last := progress[len(progress)-1]
	if last.Watermark.IsZero() {
		return 1, errors.New("the last batch ran without a watermark")
	}
	rep.FinalWatermark = last.Watermark.Format(time.RFC3339Nano)

	start = time.Now()
	want := joinBaseline(o, orders, payments, last.Watermark.UnixMicro())
	rep.BaselineSeconds = time.Since(start).Seconds()
	got, err := readJoinOutput(ctx, o.mem, out)
	if err != nil {
		return 1, fmt.Errorf("read back %s: %w", out, err)
	}
	rep.OutputRows, rep.UnmatchedRows = got.Rows, got.Unmatched
	rep.Check = "ok"
	var checkErr error
	if got != want {
		rep.Check = "mismatch"
		checkErr = fmt.Errorf("output %d rows (%d without a payment, checksum %x), baseline %d (%d, %x)",
			got.Rows, got.Unmatched, got.Sum, want.Rows, want.Unmatched, want.Sum)
	}
	if o.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		printJoinReport(stdout, rep)
	}
	if checkErr != nil {
		return 2, fmt.Errorf("the Parquet output differs from the baseline: %w", checkErr)
	}
	return 0, nil
}

// summariseJoin fills in the batch and state figures. The halves are the
// batches before and after the middle one (the last, no-data batch
// included): with batches of equal size they are the first and second half
// of the run's event time.
func summariseJoin(rep *joinReport, ps []microbatch.Progress) {
	var totals []float64
	var add, sink, ckpt float64
	for k, p := range ps {
		totals = append(totals, measure.BatchMS(p))
		add += measure.MS(p.Durations[microbatch.PhaseAddBatch])
		sink += measure.MS(p.Durations[microbatch.PhaseSinkCommit])
		ckpt += checkpointMs(p)
		var rows, bytes int64
		for _, s := range p.StateOperators {
			rows += s.Rows
			bytes += s.Bytes
			rep.DroppedLate += s.DroppedLate
		}
		if bytes > rep.StateBytes {
			rep.StateBytes, rep.StateRows = bytes, rows
		}
		if k < len(ps)/2 {
			rep.StateBytesFirstHalf, rep.StateRowsFirstHalf = max(rep.StateBytesFirstHalf, bytes), max(rep.StateRowsFirstHalf, rows)
		} else {
			rep.StateBytesSecondHalf, rep.StateRowsSecondHalf = max(rep.StateBytesSecondHalf, bytes), max(rep.StateRowsSecondHalf, rows)
		}
	}
	n := float64(len(ps))
	rep.Batches = len(ps)
	rep.BatchP50Ms, rep.BatchP99Ms, rep.BatchMaxMs = measure.Percentile(totals, 0.5), measure.Percentile(totals, 0.99), measure.Percentile(totals, 1)
	rep.AddBatchMsPerBatch, rep.SinkCommitMsPerBatch, rep.CheckpointMsPerBatch = add/n, sink/n, ckpt/n
	if rep.StateBytesFirstHalf > 0 {
		rep.StateGrowth = float64(rep.StateBytesSecondHalf) / float64(rep.StateBytesFirstHalf)
	}
}

func printJoinReport(w io.Writer, r joinReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\t\n", k, v) }
	line("job", fmt.Sprintf("join: orders left join payments within %v, %d open keys", time.Duration(r.WindowSeconds*float64(time.Second)), r.OpenKeys))
	line("events", fmt.Sprintf("%d (orders + payments; %.1f join windows of event time)", r.Events, r.RunWindows))
	line("wall", fmt.Sprintf("%.3f s  %.2f M events/s  %.2f s CPU", r.Seconds, r.EventsPerSec/1e6, r.CPUSeconds))
	line("batches", fmt.Sprintf("%d of <= %d rows per stream", r.Batches, r.BatchRows))
	line("batch p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.BatchP50Ms, r.BatchP99Ms, r.BatchMaxMs))
	line("per batch: addBatch / sinkCommit / checkpoint", fmt.Sprintf("%.1f / %.1f / %.2f ms", r.AddBatchMsPerBatch, r.SinkCommitMsPerBatch, r.CheckpointMsPerBatch))
	line("state peak", fmt.Sprintf("%d rows, %.1f MiB", r.StateRows, float64(r.StateBytes)/(1<<20)))
	line("state peak, 1st / 2nd half", fmt.Sprintf("%.1f / %.1f MiB (%d / %d rows), growth %.3f",
		float64(r.StateBytesFirstHalf)/(1<<20), float64(r.StateBytesSecondHalf)/(1<<20), r.StateRowsFirstHalf, r.StateRowsSecondHalf, r.StateGrowth))
	line("dropped late", strconv.FormatInt(r.DroppedLate, 10))
	line("peak RSS", fmt.Sprintf("%.1f MiB", float64(r.PeakRSSBytes)/(1<<20)))
	line("output", fmt.Sprintf("%d rows (%d orders without a payment), final watermark %s", r.OutputRows, r.UnmatchedRows, r.FinalWatermark))
	if r.ProgressMissing > 0 {
		line("progress missed", strconv.Itoa(r.ProgressMissing)+" batches")
	}
	line("baseline", fmt.Sprintf("%.3f s", r.BaselineSeconds))
	line("GOMAXPROCS / parallelism", fmt.Sprintf("%d / %d", r.GOMAXPROCS, r.Parallelism))
	line("check", r.Check)
	tw.Flush()
}
