package microbatch_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// capture is a slog.Handler keeping every record with its attributes
// (those of Logger.With included) as strings.
type capture struct {
	mu    *sync.Mutex
	recs  *[]captured
	attrs []slog.Attr
}

type captured struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newCapture() *capture { return &capture{mu: &sync.Mutex{}, recs: &[]captured{}} }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{mu: c.mu, recs: c.recs, attrs: append(slices.Clone(c.attrs), as...)}
}
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	rec := captured{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range c.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.String(); return true })
	c.mu.Lock()
	*c.recs = append(*c.recs, rec)
	c.mu.Unlock()
	return nil
}

// find returns the records with message msg.
func (c *capture) find(msg string) []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []captured
	for _, r := range *c.recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// scrape fetches url's exposition, lints it (zero problems allowed) and
// parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(strings.NewReader(string(body))).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value is the sum of the samples of family name whose labels include
// want, and how many there are.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	var sum float64
	n := 0
	f := fams[name]
	if f == nil {
		return 0, 0
	}
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			if !slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		n++
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, n
}

// A windowed count over a three-partition Kafka topic, rate-limited so it
// takes many batches, runs with metrics served over HTTP: scraped while it
// runs, the batch and row counters climb, the watermark, state and per-
// partition lag gauges are set, bad records are counted, and the output
// passes the Prometheus linter; the logs say the same in structured
// records, and the progress carries the lag and the output rows.
func TestMetricsAndLogsFollowAStreamingQuery(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 180 {
		v := fmt.Sprintf(`{"ts":%d,"customer":"c%d","amount":%d}`, t0.Add(time.Duration(i)*time.Second).UnixMilli(), i%4, i)
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: []byte(v)})
		if i%30 == 0 {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: []byte("not json")})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	value_ := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
		{Name: "customer", Type: arrow.BinaryTypes.String},
		{Name: "amount", Type: arrow.PrimitiveTypes.Int64}}, nil)
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: c.ListenAddrs(), Topics: []string{"orders"},
		ValueSchema: value_, MaxOffsetsPerBatch: 15, BadRecords: srckafka.BadRecordsSkip, FetchMaxWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	job := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2}).
		WithWatermark("ts", 5*time.Second).GroupBy(dataset.Window("ts", 10*time.Second), "customer").
		Agg(dataset.CountAll().As("n"))

	reg := prometheus.NewRegistry()
	m, err := microbatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := microbatch.RegisterRuntime(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := microbatch.NewMetrics(reg); err == nil {
		t.Error("a second Metrics on the same registry registered; want an error (share one)")
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	logs := newCapture()
	sink := newRecordingSink()
	dir := filepath.Join(t.TempDir(), "ckpt")
	q, err := microbatch.WriteStream(job, sink).QueryName("per-customer").Checkpoint(dir).OutputMode(sinks.Update).
		Trigger(microbatch.ProcessingTime(60 * time.Millisecond)).Metrics(m).Logger(slog.New(logs)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			q.Stop()
		}
	}()

	// Scrape while it runs until it has read everything (186 offsets, 15
	// a batch: 13 batches), checking the counters never go back.
	query := map[string]string{"query": "per-customer"}
	var batches, rows []float64
	var sawLag, sawState bool
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams := scrape(t, srv.URL)
		b, _ := value(fams, "sluice_batches_total", query)
		r, _ := value(fams, "sluice_input_rows_total", map[string]string{"query": "per-customer", "source": "orders"})
		batches, rows = append(batches, b), append(rows, r)
		if lag, n := value(fams, "sluice_source_partition_lag_records", map[string]string{"query": "per-customer", "source": "orders", "topic": "orders"}); n == 3 && lag > 0 {
			sawLag = true
		}
		if s, n := value(fams, "sluice_state_rows", query); n > 0 && s > 0 {
			sawState = true
		}
		wm, _ := value(fams, "sluice_watermark_seconds", query)
		lag, n := value(fams, "sluice_source_lag_records", query)
		if r == 180 && n == 1 && lag == 0 && wm > 0 {
			if wm < float64(t0.Unix()) || wm > float64(t0.Add(180*time.Second).Unix()) {
				t.Errorf("sluice_watermark_seconds %v; want within the data's event times from %d", wm, t0.Unix())
			}
			if d, _ := value(fams, "sluice_watermark_delay_seconds", query); d < time.Since(t0.Add(180*time.Second)).Seconds()-60 {
				t.Errorf("sluice_watermark_delay_seconds %v; want about now - watermark", d)
			}
			if sk, _ := value(fams, "sluice_bad_records_total", map[string]string{"query": "per-customer", "source": "orders", "action": "skipped"}); sk != 6 {
				t.Errorf("sluice_bad_records_total{action=skipped} %v; want 6", sk)
			}
			for _, name := range []string{"sluice_batch_duration_seconds", "sluice_sink_commit_duration_seconds", "sluice_output_rows_total",
				"sluice_processed_rows_per_second", "sluice_input_rows_per_second", "sluice_state_bytes", "sluice_late_rows_dropped_total",
				"go_goroutines", "process_cpu_seconds_total"} {
				if _, n := value(fams, name, nil); n == 0 {
					t.Errorf("%s is not served", name)
				}
			}
			if _, n := value(fams, "sluice_batch_duration_seconds", map[string]string{"query": "per-customer", "phase": microbatch.PhaseAddBatch}); n != 1 {
				t.Errorf("no addBatch phase in sluice_batch_duration_seconds")
			}
			break
		}
		if time.Now().After(deadline) {
			for name, f := range fams {
				if strings.HasPrefix(name, "sluice") {
					t.Logf("%s: %v", name, f)
				}
			}
			t.Fatalf("the query did not read its 180 rows in time: batches %v, rows %v (status %v, err %v)", batches, rows, q.Status(), q.Exception())
		}
		time.Sleep(40 * time.Millisecond)
	}
	if !slices.IsSorted(batches) || !slices.IsSorted(rows) {
		t.Errorf("counters went back: batches %v rows %v", batches, rows)
	}
	if len(slices.Compact(slices.Clone(batches))) < 3 {
		t.Errorf("batches total took the values %v across %d scrapes; want it seen climbing", slices.Compact(batches), len(batches))
	}
	if !sawLag {
		t.Error("no scrape saw a lag gauge on each of the 3 partitions with a backlog")
	}
	if !sawState {
		t.Error("no scrape saw state rows > 0")
	}

	// Progress: the first batch left 171 offsets behind (186 - 15), and
	// the sink's rows are the rows counted.
	ps := q.RecentProgress()
	first := ps[0].Sources[0]
	if first.Lag != 171 || len(first.PartitionLag) != 3 || first.Latest == nil {
		t.Errorf("first batch: lag %d, per partition %v, latest %s; want 171 over 3 partitions", first.Lag, first.PartitionLag, first.Latest)
	}
	var out int64
	for _, p := range ps {
		out += p.Sink.OutputRows
	}
	if got := int64(len(sink.rows())); out != got || out == 0 {
		t.Errorf("progress counts %d output rows; the sink committed %d", out, got)
	}

	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	// The stopped query's gauges are gone; its counters stay.
	fams := scrape(t, srv.URL)
	if _, n := value(fams, "sluice_processed_rows_per_second", query); n != 0 {
		t.Error("a stopped query still has its rate gauge")
	}
	if b, _ := value(fams, "sluice_batches_total", query); b != float64(len(ps)) {
		t.Errorf("sluice_batches_total %v after stop; want the %d batches", b, len(ps))
	}

	started := logs.find("query started")
	if len(started) != 1 || started[0].attrs["query"] != "per-customer" || started[0].attrs["query_id"] != q.ID() ||
		started[0].attrs["run_id"] != q.RunID() || started[0].attrs["checkpoint"] != dir || started[0].level != slog.LevelInfo {
		t.Errorf("query started records: %+v", started)
	}
	done := logs.find("batch completed")
	if len(done) != len(ps) {
		t.Errorf("%d batch completed records for %d batches", len(done), len(ps))
	} else if a := done[0].attrs; a["batch"] != "0" || a["input_rows"] != fmt.Sprint(ps[0].InputRows) || a["lag"] != "171" || a["query"] != "per-customer" {
		t.Errorf("first batch completed record: %v", a)
	}
	bad := logs.find("bad records")
	var skipped int
	for _, r := range bad {
		if r.level != slog.LevelWarn || r.attrs["source"] != "orders" {
			t.Errorf("bad records record %+v", r)
		}
		var n int
		fmt.Sscan(r.attrs["skipped"], &n)
		skipped += n
	}
	if skipped != 6 {
		t.Errorf("bad records logged %d skipped; want 6", skipped)
	}
	if s := logs.find("query stopped"); len(s) != 1 || s[0].attrs["reason"] != "stopped" {
		t.Errorf("query stopped records: %+v", s)
	}

	// A refused start is logged with its reason.
	other := dataset.ReadStream(ordersStream(t, 1, 100)).GroupBy("customer").Agg(dataset.CountAll().As("n"))
	if _, err := microbatch.WriteStream(other, newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update).
		Logger(slog.New(logs)).Start(context.Background()); err == nil {
		t.Fatal("a query of other data started on the checkpoint")
	}
	if r := logs.find("query refused"); len(r) != 1 || r[0].attrs["reason"] != "incompatible checkpoint" || r[0].level != slog.LevelWarn ||
		!strings.Contains(r[0].attrs["error"], "metadata.json") {
		t.Errorf("query refused records: %+v", r)
	}
}
