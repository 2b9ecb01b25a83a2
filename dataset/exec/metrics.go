package exec

import (
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
)

// Metrics is what one task's operators observed: rows read and bad records
// dropped per source, rows written to the sink, the largest event time per
// watermark, and per stateful operator the late rows
// dropped, the rows a TTL evicted and the state's size. It is returned with
// the task's result and folded by the driver into progress and the next
// watermark, so it is plain data (JSON) apart from Late.
//
// Operators record into it concurrently (a push scan reads on its own
// goroutine); every method is safe on a nil *Metrics, which records nothing.
type Metrics struct {
	mu           sync.Mutex
	SourceRows   map[string]int64            `json:"source_rows,omitempty"`
	MaxEventTime map[string]int64            `json:"max_event_time,omitempty"` // by watermark id, µs
	Operators    map[string]*OperatorMetrics `json:"operators,omitempty"`
	// SinkRows counts the rows the task handed to its sink writer (a
	// prepared writer's; Progress.Sink.OutputRows).
	SinkRows int64 `json:"sink_rows,omitempty"`
	// SinkDeadLettered counts the rows of SinkRows the sink handed to its
	// dead-letter sink (sinks.BadRecordCounter).
	SinkDeadLettered int64 `json:"sink_dead_lettered,omitempty"`
	// Skipped and DeadLettered count, per source, the bad records the
	// task's reads dropped under a skip or dead-letter policy
	// (sources.BadRecordCounter).
	Skipped      map[string]int64 `json:"skipped,omitempty"`
	DeadLettered map[string]int64 `json:"dead_lettered,omitempty"`
	// KeepLate asks late filters to keep the rows they drop in Late (a
	// query with a late-rows sink); set before the task runs.
	KeepLate bool `json:"-"`
	// Late are the dropped rows when KeepLate is set; the Metrics owns them
	// until TakeLate.
	Late []arrow.Record `json:"-"`
}

// OperatorMetrics are one stateful operator's counts in a task.
type OperatorMetrics struct {
	DroppedLate int64 `json:"dropped_late,omitempty"`
	Evicted     int64 `json:"evicted,omitempty"`
	StateRows   int64 `json:"state_rows,omitempty"`
	StateBytes  int64 `json:"state_bytes,omitempty"`
	// Loads counts the key-group ranges whose state was read from the
	// checkpoint rather than found warm where the task ran (the first
	// batch after a restart, or a range that moved to another executor).
	Loads int64 `json:"loads,omitempty"`
}

func (m *Metrics) op(name string) *OperatorMetrics {
	if m.Operators == nil {
		m.Operators = map[string]*OperatorMetrics{}
	}
	o := m.Operators[name]
	if o == nil {
		o = &OperatorMetrics{}
		m.Operators[name] = o
	}
	return o
}

// AddStateLoad counts a range of op's state loaded from files.
func (m *Metrics) AddStateLoad(op string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.op(op).Loads++
}

// AddSourceRows counts rows read from source.
func (m *Metrics) AddSourceRows(source string, n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.SourceRows == nil {
		m.SourceRows = map[string]int64{}
	}
	m.SourceRows[source] += n
}

// AddBadRecords counts bad records a read of source skipped and
// dead-lettered.
func (m *Metrics) AddBadRecords(source string, skipped, deadLettered int64) {
	if m == nil || (skipped == 0 && deadLettered == 0) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Skipped == nil {
		m.Skipped, m.DeadLettered = map[string]int64{}, map[string]int64{}
	}
	m.Skipped[source] += skipped
	m.DeadLettered[source] += deadLettered
}

// AddSinkRows counts rows written to the task's sink writer, deadLettered
// of them handed to its dead-letter sink.
func (m *Metrics) AddSinkRows(n, deadLettered int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.SinkRows += n
	m.SinkDeadLettered += deadLettered
}

// ObserveEventTime records the largest event time (µs) seen for watermark id.
func (m *Metrics) ObserveEventTime(id string, maxMicros int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.MaxEventTime == nil {
		m.MaxEventTime = map[string]int64{}
	}
	if old, ok := m.MaxEventTime[id]; !ok || maxMicros > old {
		m.MaxEventTime[id] = maxMicros
	}
}

// AddDropped counts late rows operator dropped.
func (m *Metrics) AddDropped(operator string, n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.op(operator).DroppedLate += n
}

// AddEvicted counts state rows operator's TTL dropped.
func (m *Metrics) AddEvicted(operator string, n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.op(operator).Evicted += n
}

// AddState adds the size of one of operator's stores after its commit.
func (m *Metrics) AddState(operator string, rows, bytes int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.op(operator)
	o.StateRows += rows
	o.StateBytes += bytes
}

// AddLate keeps dropped rows (taking ownership) when KeepLate is set, and
// releases them otherwise.
func (m *Metrics) AddLate(rec arrow.Record) {
	if m == nil || !m.KeepLate {
		rec.Release()
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Late = append(m.Late, rec)
}

// TakeLate returns the kept late rows; the caller owns them.
func (m *Metrics) TakeLate() []arrow.Record {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.Late
	m.Late = nil
	return l
}

// Merge adds o's counts to m (event times by max); o's late rows move to m.
func (m *Metrics) Merge(o *Metrics) {
	if m == nil || o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, v := range o.SourceRows {
		m.AddSourceRows(k, v)
	}
	for k, v := range o.MaxEventTime {
		m.ObserveEventTime(k, v)
	}
	for k := range o.Skipped {
		m.AddBadRecords(k, o.Skipped[k], o.DeadLettered[k])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.SinkRows += o.SinkRows
	m.SinkDeadLettered += o.SinkDeadLettered
	for k, v := range o.Operators {
		d := m.op(k)
		d.DroppedLate += v.DroppedLate
		d.Evicted += v.Evicted
		d.StateRows += v.StateRows
		d.Loads += v.Loads
		d.StateBytes += v.StateBytes
	}
	m.Late = append(m.Late, o.Late...)
	o.Late = nil
}

// Release frees kept late rows.
func (m *Metrics) Release() {
	for _, r := range m.TakeLate() {
		r.Release()
	}
}
