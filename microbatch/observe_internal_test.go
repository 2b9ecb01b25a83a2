package microbatch

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// benchProgress is a batch of a one-source, one-operator query, as the
// streaming benchmark's.
func benchProgress() *Progress {
	return &Progress{ID: "q", RunID: "r", Batch: 7, Timestamp: time.Now(), InputRows: 1_000_000, InputRowsPerS: 5e6, ProcessedPerS: 6e6,
		Durations: map[string]time.Duration{PhaseLatestOffset: time.Millisecond, PhaseWALCommit: time.Millisecond, PhaseAddBatch: 100 * time.Millisecond,
			PhaseSinkCommit: 2 * time.Millisecond, PhaseCommitLog: time.Millisecond, PhaseTotal: 105 * time.Millisecond},
		Watermark: time.Now().Add(-time.Minute),
		Sources: []SourceProgress{{Name: "events", Rows: 1_000_000, InputRowsPerS: 5e6, ProcessedPerS: 6e6, Lag: 1000,
			PartitionLag: map[string]int64{"t/0": 300, "t/1": 300, "t/2": 400}}},
		StateOperators: []StateProgress{{Operator: "agg-0", Rows: 20000, Bytes: 2 << 20}},
		Sink:           SinkProgress{Description: "parquet", OutputRows: 10000}}
}

// What a batch pays for its metrics and its Info log line (JSON, to a
// discarding writer: the encoding, not the disk).
func BenchmarkObservePerBatch(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	q := &Query{w: &StreamWriter{metrics: m}, label: "q", log: slog.New(slog.NewJSONHandler(io.Discard, nil)).With("query", "q")}
	p := benchProgress()
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.observe(q.label, p, now, nil, nil)
		q.logBatch(ctx, p)
	}
}

// What one scrape costs the process: gathering the query metrics and the
// Go runtime and process collectors, encoded as text.
func BenchmarkScrape(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	if err := RegisterRuntime(reg); err != nil {
		b.Fatal(err)
	}
	m.observe("q", benchProgress(), time.Now(), nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		fams, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}
