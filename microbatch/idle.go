package microbatch

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
)

// idleWatermark is the watermark batch e runs with when inputs declare
// idleness (Dataset.WithIdleness), with the facts e records for it: Active,
// per such input the batch time of the last batch up to e whose offsets
// moved for its sources (from active, the previous batch's, else e's own
// time: counting starts at the first batch that knows), and Idle, the
// inputs with no new offsets for their idleness or longer, left out of the
// combination. It is decided when e is planned, from e's recorded offsets
// and timestamp, so the decision is recorded with e and a re-run reads it
// back instead of deciding again.
//
// wm is the watermark the last commit computed over every input; wms that
// commit's per-input watermarks. The result is never behind wm. When every
// input is idle the watermark stays at wm (as Flink's combined watermark
// does when all its splits are idle): a stream that went quiet as a whole
// has not shown that its next rows will be on time. Under MaxWatermark
// idleness changes nothing: leaving an input out never raises a maximum.
func (q *Query) idleWatermark(e *checkpoint.OffsetEntry, active map[string]int64, wm int64, wms map[string]int64) (int64, map[string]int64, []string) {
	specs := q.cq.Spec().Watermarks
	if !slices.ContainsFunc(specs, func(s plan.WatermarkSpec) bool { return s.IdleMicros > 0 }) {
		return wm, nil, nil
	}
	act := map[string]int64{}
	var idle []string
	combined, counted := int64(math.MinInt64), false
	for _, s := range specs {
		if s.IdleMicros > 0 {
			last, ok := active[s.ID]
			if !ok || slices.ContainsFunc(s.Sources, func(name string) bool {
				o := e.Sources[name]
				return !bytes.Equal(o.Start, o.End)
			}) {
				last = e.Timestamp
			}
			act[s.ID] = last
			if e.Timestamp-last >= s.IdleMicros {
				idle = append(idle, s.ID)
				continue
			}
		}
		v, ok := wms[s.ID]
		if !ok {
			v = math.MinInt64
		}
		switch {
		case !counted:
			combined, counted = v, true
		case q.w.policy == MaxWatermark:
			combined = max(combined, v)
		default:
			combined = min(combined, v)
		}
	}
	if len(idle) == 0 || !counted {
		return wm, act, idle
	}
	return max(wm, combined), act, idle
}

// logIdle logs the inputs that became idle or active again with batch e,
// against was, the idle inputs of the batch before.
func (q *Query) logIdle(ctx context.Context, e *checkpoint.OffsetEntry, was []string) {
	// The sources name the input for a reader; its id names it in
	// offsets files and progress.
	sources := func(id string) slog.Attr {
		for _, s := range q.cq.Spec().Watermarks {
			if s.ID == id {
				return slog.String("sources", strings.Join(s.Sources, ","))
			}
		}
		return slog.String("sources", "")
	}
	for _, id := range e.Idle {
		if !slices.Contains(was, id) {
			q.log.LogAttrs(ctx, slog.LevelInfo, "input idle: it no longer holds the watermark back", slog.Int64("batch", e.Batch),
				slog.String("input", id), sources(id), slog.Time("last_data_batch_time", time.UnixMicro(e.Active[id]).UTC()))
		}
	}
	for _, id := range was {
		if !slices.Contains(e.Idle, id) {
			q.log.LogAttrs(ctx, slog.LevelInfo, "input active again", slog.Int64("batch", e.Batch), slog.String("input", id), sources(id))
		}
	}
}
