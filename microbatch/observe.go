package microbatch

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sources"
)

// Log keys every record of the engine uses for the same things (a log
// search for batch=7 or topic=orders finds them all).
const (
	logBatch     = "batch"
	logSource    = "source"
	logWatermark = "watermark"
)

// backlogs asks each source that can tell (sources.Backlog) how far the
// batch entry plans is behind what is available. A source's error only
// leaves its lag unknown: it is logged at Debug, never fatal.
func (q *Query) backlogs(ctx context.Context, e *checkpoint.OffsetEntry) map[string]sourceBacklog {
	var out map[string]sourceBacklog
	for _, s := range q.w.ds.Streams() {
		b, ok := s.(sources.Backlog)
		if !ok {
			continue
		}
		latest, lag, parts, err := b.Backlog(ctx, e.Sources[s.Name()].End)
		if err != nil {
			q.log.LogAttrs(ctx, slog.LevelDebug, "source backlog unknown", slog.Int64(logBatch, e.Batch),
				slog.String(logSource, s.Name()), slog.Any("error", err))
			continue
		}
		if out == nil {
			out = map[string]sourceBacklog{}
		}
		out[s.Name()] = sourceBacklog{latest: latest, lag: lag, parts: parts}
	}
	return out
}

// logBadRecords logs, at Warn, what the batch's reads skipped and
// dead-lettered (the tasks' counts, sources.BadRecordCounter) and the rows
// its sink dead-lettered (sinks.BadRecordCounter).
func (q *Query) logBadRecords(ctx context.Context, batch int64, m *exec.Metrics) {
	for _, name := range slices.Sorted(maps.Keys(m.Skipped)) {
		q.log.LogAttrs(ctx, slog.LevelWarn, "bad records", slog.Int64(logBatch, batch), slog.String(logSource, name),
			slog.Int64("skipped", m.Skipped[name]), slog.Int64("dead_lettered", m.DeadLettered[name]))
	}
	if m.SinkDeadLettered > 0 {
		q.log.LogAttrs(ctx, slog.LevelWarn, "bad records", slog.Int64(logBatch, batch), slog.String("sink", q.w.sink.Name()),
			slog.Int64("dead_lettered", m.SinkDeadLettered))
	}
}

// logBatch writes the batch's Info line: its heartbeat in the log.
func (q *Query) logBatch(ctx context.Context, p *Progress) {
	if !q.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.Int64(logBatch, p.Batch), slog.Int64("input_rows", p.InputRows),
		slog.Int64("output_rows", p.Sink.OutputRows), slog.Int64("duration_ms", p.Durations[PhaseTotal].Milliseconds()),
		slog.Int64("add_batch_ms", p.Durations[PhaseAddBatch].Milliseconds()),
		slog.Int64("sink_commit_ms", p.Durations[PhaseSinkCommit].Milliseconds()),
		slog.Float64("input_rows_per_s", math.Round(finite(p.InputRowsPerS))),
		slog.Float64("processed_rows_per_s", math.Round(finite(p.ProcessedPerS))))
	if !p.Watermark.IsZero() {
		attrs = append(attrs, slog.String(logWatermark, p.Watermark.UTC().Format(sparkTime)))
	}
	if len(p.IdleInputs) > 0 {
		attrs = append(attrs, slog.String("idle_inputs", strings.Join(p.IdleInputs, ",")))
	}
	var lag int64 = -1
	for _, s := range p.Sources {
		if s.Lag >= 0 {
			lag = max(lag, 0) + s.Lag
		}
	}
	if lag >= 0 {
		attrs = append(attrs, slog.Int64("lag", lag))
	}
	var stateRows, late int64
	for _, s := range p.StateOperators {
		stateRows += s.Rows
		late += s.DroppedLate
	}
	if len(p.StateOperators) > 0 {
		attrs = append(attrs, slog.Int64("state_rows", stateRows), slog.Int64("late_rows", late))
	}
	q.log.LogAttrs(ctx, slog.LevelInfo, "batch completed", attrs...)
}

// logStop logs how the query ended and closes its metrics.
func (q *Query) logStop(ctx context.Context, err error) {
	reason := "stopped" // by Stop or the caller's context
	if ctx.Err() == nil {
		reason = "input done" // Once, AvailableNow
	}
	ctx = context.WithoutCancel(ctx)
	q.w.metrics.stopped(q.label, err != nil)
	var last int64 = -1
	q.mu.Lock()
	if n := len(q.progress); n > 0 {
		last = q.progress[n-1].Batch
	}
	q.mu.Unlock()
	if err == nil {
		q.log.LogAttrs(ctx, slog.LevelInfo, "query stopped", slog.String("reason", reason), slog.Int64("last_batch", last))
		return
	}
	reason = "failed"
	if errors.Is(err, plan.ErrFenced) {
		reason = "fenced"
	}
	q.log.LogAttrs(ctx, slog.LevelError, "query failed", slog.String("reason", reason), slog.Int64("last_batch", last), slog.Any("error", err))
}

// watermarkAttr is a watermark (µs, MinInt64 when none) as a log attribute.
func watermarkAttr(wm int64) slog.Attr {
	if wm == math.MinInt64 {
		return slog.String(logWatermark, "")
	}
	return slog.String(logWatermark, time.UnixMicro(wm).UTC().Format(sparkTime))
}
