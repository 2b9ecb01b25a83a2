package microbatch

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus metrics of streaming queries. One Metrics
// serves any number of queries (StreamWriter.Metrics); every series has a
// "query" label, the query's name (StreamWriter.QueryName) or, unnamed, its
// id. The driver updates them once per batch from the batch's Progress, so
// their cost is per batch, never per row.
//
// Metric names (all prefixed sluice_, base units, counters end in _total):
//
//	sluice_batches_total{query}                              counter
//	sluice_batch_duration_seconds{query,phase}               histogram; phases are Progress.Durations' keys
//	sluice_last_batch_id{query}                              gauge
//	sluice_input_rows_total{query,source}                    counter
//	sluice_input_rows_per_second{query,source}               gauge, as of the last batch
//	sluice_processed_rows_per_second{query}                  gauge, as of the last batch
//	sluice_output_rows_total{query,sink}                     counter
//	sluice_sink_commit_duration_seconds{query,sink}          histogram
//	sluice_watermark_seconds{query}                          gauge, seconds since the Unix epoch
//	sluice_watermark_delay_seconds{query}                    gauge, wall time minus watermark at the last batch's end
//	sluice_idle_inputs{query}                                gauge, inputs the last batch's watermark left out as idle (WithIdleness)
//	sluice_state_rows{query,operator}                        gauge
//	sluice_state_bytes{query,operator}                       gauge
//	sluice_late_rows_dropped_total{query,operator}           counter
//	sluice_state_rows_evicted_total{query,operator}          counter
//	sluice_bad_records_total{query,source,action}            counter; action is "skipped" or "dead_lettered"
//	sluice_sink_bad_records_total{query,sink,action}         counter; action is "dead_lettered" (a sink's bad-record policy)
//	sluice_input_dropped_total{query,source,kind}            counter; records (files: files; Kafka: messages) a source's policy left out (sources.Drop: skipped, quarantined, lost)
//	sluice_source_lag_records{query,source}                  gauge (sources.Backlog)
//	sluice_source_partition_lag_records{query,source,topic,partition} gauge (Kafka)
//	sluice_query_failures_total{query}                       counter
//	sluice_query_restarts_total{query}                       counter, restarts after a transient failure (RestartStrategy)
//
// Gauges of a query are removed when it stops, so a stopped query leaves no
// stale rate or lag behind; its counters stay. Go runtime and process
// metrics are the caller's to register (RegisterRuntime does it).
type Metrics struct {
	batches       *prometheus.CounterVec
	batchDuration *prometheus.HistogramVec
	lastBatch     *prometheus.GaugeVec
	inputRows     *prometheus.CounterVec
	inputRate     *prometheus.GaugeVec
	processedRate *prometheus.GaugeVec
	outputRows    *prometheus.CounterVec
	sinkCommit    *prometheus.HistogramVec
	watermark     *prometheus.GaugeVec
	watermarkLag  *prometheus.GaugeVec
	idleInputs    *prometheus.GaugeVec
	stateRows     *prometheus.GaugeVec
	stateBytes    *prometheus.GaugeVec
	lateRows      *prometheus.CounterVec
	evicted       *prometheus.CounterVec
	badRecords    *prometheus.CounterVec
	sinkBad       *prometheus.CounterVec
	inputDropped  *prometheus.CounterVec
	sourceLag     *prometheus.GaugeVec
	partitionLag  *prometheus.GaugeVec
	failures      *prometheus.CounterVec
	restarts      *prometheus.CounterVec
}

// durationBuckets span 1 ms to about 2.5 minutes: a batch of a
// low-latency query and a backfill's large batch both fall inside.
var durationBuckets = prometheus.ExponentialBuckets(0.001, 2.5, 14)

// NewMetrics makes the metrics and registers them with reg. Registering a
// second Metrics with the same reg fails (the names are taken): share one
// between queries.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	q := []string{"query"}
	m := &Metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_batches_total",
			Help: "Micro-batches the query completed."}, q),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_batch_duration_seconds",
			Help:    "Time a micro-batch spent in each phase (latestOffset, walCommit, addBatch, sinkCommit, commitOffsets; triggerExecution is the whole batch).",
			Buckets: durationBuckets}, []string{"query", "phase"}),
		lastBatch: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_last_batch_id",
			Help: "Id of the last completed micro-batch."}, q),
		inputRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_input_rows_total",
			Help: "Rows read from each source."}, []string{"query", "source"}),
		inputRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_input_rows_per_second",
			Help: "Rows a source delivered per second of wall time between the starts of the last two batches."}, []string{"query", "source"}),
		processedRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_processed_rows_per_second",
			Help: "Rows the last batch processed per second of its duration."}, q),
		outputRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_output_rows_total",
			Help: "Rows written to the sink."}, []string{"query", "sink"}),
		sinkCommit: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_sink_commit_duration_seconds",
			Help: "Time the sink took to commit a batch.", Buckets: durationBuckets}, []string{"query", "sink"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_watermark_seconds",
			Help: "Event-time watermark of the last batch, in seconds since the Unix epoch."}, q),
		watermarkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_watermark_delay_seconds",
			Help: "Wall time minus the watermark when the last batch ended (time() - sluice_watermark_seconds is the live delay)."}, q),
		idleInputs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_idle_inputs",
			Help: "Inputs (WithWatermark declarations) the last batch's watermark left out as idle (WithIdleness)."}, q),
		stateRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_state_rows",
			Help: "Rows in a stateful operator's state after the last batch."}, []string{"query", "operator"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_state_bytes",
			Help: "Bytes of a stateful operator's state after the last batch."}, []string{"query", "operator"}),
		lateRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_late_rows_dropped_total",
			Help: "Rows a stateful operator dropped as later than the watermark."}, []string{"query", "operator"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_state_rows_evicted_total",
			Help: "State rows a TTL evicted."}, []string{"query", "operator"}),
		badRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_bad_records_total",
			Help: "Records a source could not decode, by what its policy did with them (skipped, dead_lettered)."}, []string{"query", "source", "action"}),
		sinkBad: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_sink_bad_records_total",
			Help: "Rows a sink rejected one by one (a record over the topic's size limit), by what its policy did with them (dead_lettered)."}, []string{"query", "sink", "action"}),
		inputDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_input_dropped_total",
			Help: "Records (files: files; Kafka: messages) a source's policy left out of a batch, by kind (skipped, quarantined, lost)."}, []string{"query", "source", "kind"}),
		sourceLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_source_lag_records",
			Help: "Records (Kafka: messages, files: files) available after the last batch's end when it was planned."}, []string{"query", "source"}),
		partitionLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_source_partition_lag_records",
			Help: "Records available after the last batch's end in one partition when it was planned."}, []string{"query", "source", "topic", "partition"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_query_failures_total",
			Help: "Times the query stopped with an error."}, q),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_query_restarts_total",
			Help: "Times the query restarted itself from its checkpoint after a transient failure."}, q),
	}
	cs := m.collectors()
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			// Only what this call registered: Unregister goes by name,
			// so the others would take another Metrics' series along.
			for _, d := range cs[:i] {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("microbatch: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.batches, m.batchDuration, m.lastBatch, m.inputRows, m.inputRate, m.processedRate,
		m.outputRows, m.sinkCommit, m.watermark, m.watermarkLag, m.idleInputs, m.stateRows, m.stateBytes, m.lateRows, m.evicted,
		m.badRecords, m.sinkBad, m.inputDropped, m.sourceLag, m.partitionLag, m.failures, m.restarts}
}

// RegisterRuntime registers the Go runtime collector and the process
// collector (CPU, memory, open files) with reg: what a job binary's
// /metrics serves beside the queries' metrics. A registry that already has
// them (prometheus.DefaultRegisterer does) is left as it is.
func RegisterRuntime(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return fmt.Errorf("microbatch: register runtime metrics: %w", err)
		}
	}
	return nil
}

// queryLabel is the "query" label of q's series: its name, else its id.
func queryLabel(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// observe records one completed batch. badSkipped and badDead are the
// increases of the sources' bad-record counts in the batch, by source.
func (m *Metrics) observe(query string, p *Progress, now time.Time, badSkipped, badDead map[string]int64) {
	if m == nil {
		return
	}
	m.batches.WithLabelValues(query).Inc()
	m.lastBatch.WithLabelValues(query).Set(float64(p.Batch))
	for phase, d := range p.Durations {
		m.batchDuration.WithLabelValues(query, phase).Observe(d.Seconds())
	}
	if d, ok := p.Durations[PhaseSinkCommit]; ok {
		m.sinkCommit.WithLabelValues(query, p.Sink.Description).Observe(d.Seconds())
	}
	if p.Sink.OutputRows >= 0 {
		m.outputRows.WithLabelValues(query, p.Sink.Description).Add(float64(p.Sink.OutputRows))
	}
	if p.Sink.DeadLettered > 0 {
		m.sinkBad.WithLabelValues(query, p.Sink.Description, "dead_lettered").Add(float64(p.Sink.DeadLettered))
	}
	m.processedRate.WithLabelValues(query).Set(finite(p.ProcessedPerS))
	for _, s := range p.Sources {
		m.inputRows.WithLabelValues(query, s.Name).Add(float64(s.Rows))
		m.inputRate.WithLabelValues(query, s.Name).Set(finite(s.InputRowsPerS))
		if s.Lag >= 0 {
			m.sourceLag.WithLabelValues(query, s.Name).Set(float64(s.Lag))
		}
		for part, l := range s.PartitionLag {
			topic, partition := part, ""
			if i := strings.LastIndexByte(part, '/'); i >= 0 {
				topic, partition = part[:i], part[i+1:]
			}
			m.partitionLag.WithLabelValues(query, s.Name, topic, partition).Set(float64(l))
		}
		if n := badSkipped[s.Name]; n > 0 {
			m.badRecords.WithLabelValues(query, s.Name, "skipped").Add(float64(n))
		}
		if n := badDead[s.Name]; n > 0 {
			m.badRecords.WithLabelValues(query, s.Name, "dead_lettered").Add(float64(n))
		}
		for _, d := range s.Dropped {
			m.inputDropped.WithLabelValues(query, s.Name, d.Kind).Add(float64(d.Count))
		}
	}
	if !p.Watermark.IsZero() {
		m.watermark.WithLabelValues(query).Set(float64(p.Watermark.UnixMicro()) / 1e6)
		m.watermarkLag.WithLabelValues(query).Set(now.Sub(p.Watermark).Seconds())
	}
	m.idleInputs.WithLabelValues(query).Set(float64(len(p.IdleInputs)))
	for _, s := range p.StateOperators {
		m.stateRows.WithLabelValues(query, s.Operator).Set(float64(s.Rows))
		m.stateBytes.WithLabelValues(query, s.Operator).Set(float64(s.Bytes))
		m.lateRows.WithLabelValues(query, s.Operator).Add(float64(s.DroppedLate))
		m.evicted.WithLabelValues(query, s.Operator).Add(float64(s.Evicted))
	}
}

// restarted counts a restart of query after a transient failure.
func (m *Metrics) restarted(query string) {
	if m == nil {
		return
	}
	m.restarts.WithLabelValues(query).Inc()
}

// stopped removes query's gauges (they would report a stopped query's last
// rates and lag as current) and counts a failure.
func (m *Metrics) stopped(query string, failed bool) {
	if m == nil {
		return
	}
	if failed {
		m.failures.WithLabelValues(query).Inc()
	}
	l := prometheus.Labels{"query": query}
	for _, g := range []*prometheus.GaugeVec{m.lastBatch, m.inputRate, m.processedRate, m.watermark, m.watermarkLag,
		m.idleInputs, m.stateRows, m.stateBytes, m.sourceLag, m.partitionLag} {
		g.DeletePartialMatch(l)
	}
}

// finite maps NaN and infinities (a zero-length interval) to 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
