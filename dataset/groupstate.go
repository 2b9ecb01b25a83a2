package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
)

// Timeout says what may time a key of FlatMapGroupsWithState out.
type Timeout = exec.TimeoutKind

const (
	// NoTimeout: keys are only ever called with rows.
	NoTimeout = exec.NoTimeout
	// ProcessingTimeTimeout: State.SetTimeoutDuration(d) times the key out
	// in the first batch whose batch time (recorded in the offsets log, so
	// reruns agree) is at or after the call's batch time + d.
	ProcessingTimeTimeout = exec.ProcessingTimeTimeout
	// EventTimeTimeout: State.SetTimeoutTimestamp(t) times the key out in
	// the first batch whose watermark is after t. The input needs a
	// watermark (WithWatermark); rows at or behind it are dropped as late.
	EventTimeTimeout = exec.EventTimeTimeout
)

// KeyedDataset is a Dataset grouped by key columns, waiting for the
// function to run per key.
type KeyedDataset struct {
	d    *Dataset
	keys []string
}

// GroupByKey groups rows by the values of the key columns (at least one),
// for FlatMapGroupsWithState.
func (d *Dataset) GroupByKey(keys ...string) *KeyedDataset {
	return &KeyedDataset{d: d, keys: append([]string(nil), keys...)}
}

// Key is the values of a group's key columns, in GroupByKey order: nil for
// null, string, []byte, bool, int64 (signed integers), uint64, float64,
// time.Time (timestamps and dates, UTC), time.Duration or decimal128.Num.
type Key []any

// GroupFunc is a per-key function with typed state; StateFunc makes one.
type GroupFunc struct {
	fn        exec.GroupFunc
	stateType string // S of StateFunc[S]: pinned in the checkpoint's fingerprint
}

// FlatMapGroupsWithState calls fn once per key with the key's rows, in
// input order, and the state fn kept for the key (Spark's
// flatMapGroupsWithState). fn appends zero or more rows of schema out to
// the builder it is given; they are the result.
//
// In a stream, per micro-batch: fn runs once for every key that has rows,
// in order of first appearance, then once (with no rows and
// State.HasTimedOut) for every key whose timeout expired and that had no
// rows, in key order, so a rerun of a batch emits the same rows. State is
// kept in the query's state store (operator "groups-N"), checkpointed and
// restored like an aggregation's; a key leaves it when fn calls Remove
// and sets no timeout. Every call clears the key's timeout: a key that
// should time out again must set it again. Append and update output modes
// pass the rows on as emitted; complete mode is refused.
//
// In a batch job fn runs once per key with all its rows and no state, and
// timeouts never fire.
//
// The registration of fn under name belongs to the returned Dataset and to
// the Datasets made from it, not to the process; the rule is MapBatches's:
// tasks find fn by name in the job's registry (executors in other processes
// rebuild the same job from the same code, so use a stable name), and
// within one plan a name means one registration. Registering a name the
// plan already has (earlier in this lineage, or brought in by a Union or
// Join; MapBatches names count too) makes the result carry an error naming
// the name and both places, even for the same fn; the same Dataset reached
// twice (a self-union) is one registration and is fine.
func (k *KeyedDataset) FlatMapGroupsWithState(name string, out *arrow.Schema, timeout Timeout, fn GroupFunc) *Dataset {
	d := k.d
	if d.err != nil {
		return d
	}
	switch {
	case name == "":
		return d.derive(nil, fmt.Errorf("flatMapGroupsWithState: %w: the function needs a name", plan.ErrPlan))
	case fn.fn == nil:
		return d.derive(nil, fmt.Errorf("flatMapGroupsWithState %q: %w: no function (make one with StateFunc)", name, plan.ErrPlan))
	case out == nil:
		return d.derive(nil, fmt.Errorf("flatMapGroupsWithState %q: %w: no output schema", name, plan.ErrPlan))
	}
	switch timeout {
	case NoTimeout, ProcessingTimeTimeout, EventTimeTimeout:
	default:
		return d.derive(nil, fmt.Errorf("flatMapGroupsWithState %q: %w: unknown timeout %q", name, plan.ErrPlan, timeout))
	}
	n, err := plan.NewFlatMapGroups(d.node, exec.GroupsSpec{Func: name, Keys: k.keys, Timeout: timeout, StateType: fn.stateType}, out)
	if err != nil {
		return d.derive(nil, err)
	}
	return d.withFunc("flatMapGroupsWithState", n, &exec.Func{Name: name, Group: fn.fn})
}

// StateFunc makes a GroupFunc of fn with state of type S, stored as JSON
// (encoding/json: exported fields only). fn gets the key, the key's rows of
// the batch (zero rows when the call is a timeout), its state and the
// output builder; the record and the state are valid during the call only.
// An error from fn, or a misuse of the state (a timeout of the wrong kind,
// an event-time timeout behind the watermark), fails the batch.
func StateFunc[S any](fn func(key Key, rows arrow.Record, st *State[S], out *array.RecordBuilder) error) GroupFunc {
	if fn == nil {
		return GroupFunc{}
	}
	return GroupFunc{stateType: reflect.TypeFor[S]().String(), fn: func(c *exec.GroupCall) (exec.GroupResult, error) {
		st := &State[S]{raw: c.State, exists: c.State != nil, timedOut: c.TimedOut, kind: c.Timeout,
			watermark: c.Watermark, batchTime: c.BatchTime, timeout: exec.NoTimestamp}
		if err := fn(Key(c.Key), c.Rows, st, c.Out); err != nil {
			return exec.GroupResult{}, err
		}
		if st.err != nil {
			return exec.GroupResult{}, st.err
		}
		res := exec.GroupResult{Exists: st.exists, Timeout: st.timeout}
		if !st.exists {
			return res, nil
		}
		if !st.updated {
			res.State = c.State
			return res, nil
		}
		b, err := json.Marshal(st.value)
		if err != nil {
			return exec.GroupResult{}, fmt.Errorf("encode state: %w", err)
		}
		res.State = b
		return res, nil
	}}
}

// State is one key's state in a FlatMapGroupsWithState call.
type State[S any] struct {
	raw       []byte // stored JSON, decoded on first Get
	decoded   bool
	value     S
	exists    bool
	updated   bool
	timedOut  bool
	kind      Timeout
	watermark int64
	batchTime int64
	timeout   int64 // absolute µs, exec.NoTimestamp = none
	err       error
}

// Get returns the state and whether it exists (the zero S when not).
func (s *State[S]) Get() (S, bool) {
	if !s.exists {
		var zero S
		return zero, false
	}
	if !s.decoded {
		s.decoded = true
		if err := json.Unmarshal(s.raw, &s.value); err != nil && s.err == nil {
			s.err = fmt.Errorf("decode state: %w", err)
		}
	}
	return s.value, true
}

// Exists reports whether the key has state.
func (s *State[S]) Exists() bool { return s.exists }

// Update replaces the state.
func (s *State[S]) Update(v S) {
	s.value, s.exists, s.updated, s.decoded = v, true, true, true
}

// Remove drops the state; the key leaves the store unless a timeout is set.
func (s *State[S]) Remove() {
	var zero S
	s.value, s.exists, s.updated, s.decoded = zero, false, true, true
}

// HasTimedOut reports whether this call is the key's timeout (no rows).
func (s *State[S]) HasTimedOut() bool { return s.timedOut }

// CurrentWatermark is the batch's watermark (the zero Time when there is
// none, and in batch jobs).
func (s *State[S]) CurrentWatermark() time.Time { return fromMicros(s.watermark) }

// BatchTime is the batch's processing time as recorded in the offsets log
// (the zero Time in batch jobs): never the wall clock, so reruns agree.
func (s *State[S]) BatchTime() time.Time { return fromMicros(s.batchTime) }

// errTimeout is a misuse of a timeout setter; it fails the batch.
var errTimeout = errors.New("dataset: invalid group state timeout")

// SetTimeoutDuration times the key out d (> 0) after this batch's time,
// with ProcessingTimeTimeout only.
func (s *State[S]) SetTimeoutDuration(d time.Duration) {
	switch {
	case s.kind != ProcessingTimeTimeout:
		s.fail(fmt.Errorf("%w: SetTimeoutDuration needs ProcessingTimeTimeout, the operator has %s", errTimeout, s.kind))
	case d <= 0:
		s.fail(fmt.Errorf("%w: SetTimeoutDuration(%v): the duration must be positive", errTimeout, d))
	case s.batchTime == exec.NoTimestamp:
		s.timeout = d.Microseconds() // a batch job: never fires
	default:
		s.timeout = s.batchTime + d.Microseconds()
	}
}

// SetTimeoutTimestamp times the key out once the watermark passes t, with
// EventTimeTimeout only; t must not be behind the current watermark.
func (s *State[S]) SetTimeoutTimestamp(t time.Time) {
	us := t.UnixMicro()
	switch {
	case s.kind != EventTimeTimeout:
		s.fail(fmt.Errorf("%w: SetTimeoutTimestamp needs EventTimeTimeout, the operator has %s", errTimeout, s.kind))
	case s.watermark != exec.NoTimestamp && us < s.watermark:
		s.fail(fmt.Errorf("%w: SetTimeoutTimestamp(%s) is behind the watermark %s", errTimeout,
			t.UTC().Format(time.RFC3339Nano), fromMicros(s.watermark).Format(time.RFC3339Nano)))
	default:
		s.timeout = us
	}
}

func (s *State[S]) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func fromMicros(us int64) time.Time {
	if us == exec.NoTimestamp {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
