package dataset

import (
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/dataset/plan"
)

// WithWatermark declares col (a timestamp) as the event time of a stream
// whose rows arrive at most delay late. A streaming query's watermark is the
// largest event time seen minus delay; windows that end at or before it are
// final (append mode emits them once, state drops them) and rows for them
// are dropped as late, and counted. Batch jobs ignore it.
func (d *Dataset) WithWatermark(col string, delay time.Duration) *Dataset {
	if d.err != nil {
		return d
	}
	return d.derive(plan.NewWatermark(d.node, col, delay))
}

// WithIdleness makes the WithWatermark declaration that produced d stop
// holding a streaming query's watermark back while the streams it reads
// have no new data (Flink's WatermarkStrategy.withIdleness): once none of
// them had new offsets for idle of batch time, the query's watermark (the
// minimum over its inputs) is taken over the other inputs only. When data
// comes back the input counts again, and as the watermark never moves back,
// its rows behind the watermark are late. When every input is idle the
// watermark stays where it is. Batch time is the batch timestamps the
// checkpoint records, and each batch's offsets record the idle inputs, so
// a re-run agrees.
//
// An input is one WithWatermark declaration: its watermark follows the
// largest event time over all the partitions it reads (as in Spark), so a
// silent Kafka partition alone never holds it back; a silent input of a
// join or a union does. Batch jobs ignore it.
func (d *Dataset) WithIdleness(idle time.Duration) *Dataset {
	if d.err != nil {
		return d
	}
	if idle <= 0 {
		return d.derive(nil, fmt.Errorf("WithIdleness(%v): %w: must be positive", idle, plan.ErrPlan))
	}
	if d.node.Kind != plan.KindWatermark {
		return d.derive(nil, fmt.Errorf("WithIdleness: %w: the Dataset is not the result of WithWatermark", plan.ErrPlan))
	}
	w := *d.node.Watermark
	w.IdleMicros = idle.Microseconds()
	n := *d.node
	n.Watermark = &w
	return d.derive(&n, nil)
}

// WindowKey groups rows by event-time window in GroupBy: the output gets
// window_start and window_end columns.
type WindowKey struct {
	col                 string
	size, slide, offset time.Duration
}

// Window is a tumbling window of the given size on a timestamp column.
func Window(col string, size time.Duration) WindowKey {
	return WindowKey{col: col, size: size, slide: size}
}

// SlidingWindow is a window of size starting every slide (slide <= size);
// each row belongs to size/slide windows.
func SlidingWindow(col string, size, slide time.Duration) WindowKey {
	return WindowKey{col: col, size: size, slide: slide}
}

// Offset shifts window starts (e.g. hourly windows at :15).
func (w WindowKey) Offset(d time.Duration) WindowKey { w.offset = d; return w }

// SessionKey groups rows by session window in GroupBy: rows of the same
// other keys whose event times are less than gap apart form one session
// [first time, last time + gap); the output gets window_start and
// window_end. In a stream, sessions merge across batches (a late row can
// bridge two), and append mode emits a session once the watermark passes
// its end.
type SessionKey struct {
	col string
	gap time.Duration
}

// SessionWindow is a session window with the given gap on a timestamp column.
func SessionWindow(col string, gap time.Duration) SessionKey { return SessionKey{col: col, gap: gap} }

func (d *Dataset) session(s SessionKey, keys []string) *Dataset {
	if d.err != nil {
		return d
	}
	idx := d.node.Schema.FieldIndices(s.col)
	if len(idx) == 0 {
		return d.derive(nil, fmt.Errorf("session window on %q: %w: available %s", s.col, expr.ErrUnknownColumn, names(d.node.Schema)))
	}
	ts, ok := d.node.Schema.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return d.derive(nil, fmt.Errorf("session window on %q: %w: the column is %s, not a timestamp", s.col, expr.ErrType, d.node.Schema.Field(idx[0]).Type))
	}
	return d.derive(plan.NewSessionWindow(d.node, exec.SessionSpec{Column: s.col, Gap: exec.FromMicros(s.gap.Microseconds(), ts.Unit),
		Keys: keys, StartName: WindowStart, EndName: WindowEnd}))
}

// Names of the window columns GroupBy(Window(...)) adds.
const (
	WindowStart = "window_start"
	WindowEnd   = "window_end"
)

// window adds the window columns to d, in the time column's unit.
func (d *Dataset) window(w WindowKey) *Dataset {
	if d.err != nil {
		return d
	}
	idx := d.node.Schema.FieldIndices(w.col)
	if len(idx) == 0 {
		return d.derive(nil, fmt.Errorf("window on %q: %w: available %s", w.col, expr.ErrUnknownColumn, names(d.node.Schema)))
	}
	ts, ok := d.node.Schema.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return d.derive(nil, fmt.Errorf("window on %q: %w: the column is %s, not a timestamp", w.col, expr.ErrType, d.node.Schema.Field(idx[0]).Type))
	}
	unit := func(x time.Duration) int64 { return exec.FromMicros(x.Microseconds(), ts.Unit) }
	if w.size%time.Microsecond != 0 || w.slide%time.Microsecond != 0 || w.offset%time.Microsecond != 0 {
		return d.derive(nil, fmt.Errorf("window on %q: durations must be whole microseconds", w.col))
	}
	return d.derive(plan.NewWindow(d.node, exec.WindowSpec{Column: w.col, Size: unit(w.size), Slide: unit(w.slide),
		Offset: unit(w.offset), StartName: WindowStart, EndName: WindowEnd}))
}
