package exec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
)

// TimeoutKind says what may time a key of FlatMapGroupsWithState out.
type TimeoutKind string

const (
	NoTimeout             TimeoutKind = "NoTimeout"
	ProcessingTimeTimeout TimeoutKind = "ProcessingTimeTimeout"
	EventTimeTimeout      TimeoutKind = "EventTimeTimeout"
)

// NoTimestamp is "none" for watermarks, batch times and timeouts (µs).
const NoTimestamp = math.MinInt64

// GroupsSpec is a FlatMapGroupsWithState operator as plain plan data.
type GroupsSpec struct {
	Func    string // the GroupFunc's registered name
	Keys    []string
	Timeout TimeoutKind
	// StateType names the Go type the state is (JSON of): a checkpoint
	// made with another type is refused (it is part of the fingerprint).
	StateType string `json:",omitempty"`
	// Watermark and BatchTime (µs, NoTimestamp = none) are the batch's,
	// set by physical planning of a micro-batch; batch jobs leave them
	// NoTimestamp and their timeouts never fire.
	Watermark int64 `json:",omitempty"`
	BatchTime int64 `json:",omitempty"`
}

// GroupCall is one call of a GroupFunc: one key, its rows of the batch and
// its stored state. Everything in it is valid during the call only.
type GroupCall struct {
	Key      []any        // the key columns' values (see GroupKeyValue)
	Rows     arrow.Record // the key's rows in input order; 0 rows when TimedOut
	State    []byte       // the stored state; nil when the key has none
	TimedOut bool         // called because the key's timeout expired, with no rows
	Timeout  TimeoutKind  // the operator's timeout kind
	// Watermark and BatchTime are the batch's, µs (NoTimestamp: none).
	Watermark, BatchTime int64
	// Out receives the output rows; every field must get the same number
	// of values by the end of the call.
	Out *array.RecordBuilder
}

// GroupResult is the state a call leaves behind.
type GroupResult struct {
	Exists bool   // false: the state is removed
	State  []byte // the state when Exists (nil is stored as null)
	// Timeout is the absolute time (µs: event time for EventTimeTimeout,
	// batch time for ProcessingTimeTimeout) at which the key times out, or
	// NoTimestamp. A key with a timeout keeps its entry even when its state
	// does not exist.
	Timeout int64
}

// GroupFunc is user code of FlatMapGroupsWithState (dataset.StateFunc
// builds one). A panic in it becomes the task's error.
type GroupFunc func(c *GroupCall) (GroupResult, error)

// groupStateSchema is a FlatMapGroupsWithState entry's value in the state
// store: the serialized state and the absolute timeout (null: none).
var groupStateSchema = arrow.NewSchema([]arrow.Field{
	{Name: "state", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "timeout_us", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// timeoutField is the value column of groupStateSchema holding the timeout.
const timeoutField = 1

// flatMapGroups runs a GroupFunc per key (Spark's flatMapGroupsWithState).
// In a stream (spec != nil) the states of key groups [lo, hi) live in a
// state store, version spec.Version -> Version+1; in a batch job every key
// starts without state and nothing is stored.
type flatMapGroups struct {
	mem    memory.Allocator
	in     Operator
	g      GroupsSpec
	fn     GroupFunc
	outSch *arrow.Schema
	keys   []int
	keySch *arrow.Schema
	spec   *StateSpec
	lo, hi int
	batchOutput
}

// flushRows is the output size at which a call's rows are cut into a record.
const flushRows = 1 << 16

// NewFlatMapGroups calls fn once per key of in's rows and, in a stream,
// once per key whose timeout expired without rows; out is the schema of
// the rows fn emits. spec nil means a batch job.
func NewFlatMapGroups(mem memory.Allocator, in Operator, g GroupsSpec, fn GroupFunc, out *arrow.Schema, spec *StateSpec, lo, hi int) (Operator, error) {
	f := &flatMapGroups{mem: mem, in: in, g: g, fn: fn, outSch: out, spec: spec, lo: lo, hi: hi}
	var fields []arrow.Field
	for _, k := range g.Keys {
		idx := in.Schema().FieldIndices(k)
		if len(idx) == 0 {
			return nil, fmt.Errorf("flatMapGroupsWithState %q: no key column %q", g.Func, k)
		}
		fld := in.Schema().Field(idx[0])
		if _, err := keyKindOf(fld.Type); err != nil {
			return nil, fmt.Errorf("flatMapGroupsWithState %q: key %q: %w", g.Func, k, err)
		}
		f.keys = append(f.keys, idx[0])
		fields = append(fields, fld)
	}
	f.keySch = arrow.NewSchema(fields, nil)
	return f, nil
}

func (f *flatMapGroups) Schema() *arrow.Schema { return f.outSch }

func (f *flatMapGroups) stores() (state.Provider, error) {
	return needProvider(f.spec.Provider, f.spec.Operator)
}

func (f *flatMapGroups) Next(ctx context.Context) (arrow.Record, error) {
	return f.batchOutput.next(ctx, f.run, func(err error) error {
		if f.spec != nil {
			return fmt.Errorf("flatMapGroupsWithState %q (%s [%d, %d)): %w", f.g.Func, f.spec.Operator, f.lo, f.hi, err)
		}
		return fmt.Errorf("flatMapGroupsWithState %q: %w", f.g.Func, err)
	})
}

func (f *flatMapGroups) Close() error {
	releaseRecords(f.out)
	f.out = nil
	return f.in.Close()
}

// run is the whole batch:
//
//	store := open version V of [lo, hi)                 (streams only)
//	expired := stored entries whose timeout passed       (before any change)
//	rows := the batch, grouped by key in order of first appearance
//	for each key with rows:      fn(key, its rows, stored state)
//	for each expired key without rows, in key order: fn(key, no rows, state, timed out)
//	put changed entries, delete removed ones; store.Commit(V+1)
//
// Output records left in f.out on an error are released by Close.
func (f *flatMapGroups) run(ctx context.Context) error {
	var store state.Store
	if f.spec != nil {
		stores, err := f.stores()
		if err != nil {
			return err
		}
		spec := state.StoreSpec{Operator: f.spec.Operator, KeyGroups: f.spec.KeyGroups,
			Lo: f.lo, Hi: f.hi, KeySchema: f.keySch, ValueSchema: groupStateSchema, Allocator: f.mem}
		if f.g.Timeout != NoTimeout {
			// Due timers pop from the store's time index (expired).
			spec.TimeColumn = groupStateSchema.Field(timeoutField).Name
		}
		if store, err = stores.Open(spec, f.spec.Version); err != nil {
			return err
		}
		defer func() {
			if store.Version() == f.spec.Version+1 {
				stores.Keep(store, nil)
			} else {
				store.Close()
			}
		}()
	}
	var expKeys, expVals arrow.Record
	defer func() {
		if expKeys != nil {
			expKeys.Release()
			expVals.Release()
		}
	}()
	if store != nil && f.g.Timeout != NoTimeout {
		var err error
		if expKeys, expVals, err = f.expired(store); err != nil {
			return err
		}
	}

	var batch []arrow.Record
	defer func() { releaseRecords(batch) }()
	for {
		r, err := f.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		batch = append(batch, r)
	}
	all, err := ConcatRecords(f.mem, f.in.Schema(), batch)
	if err != nil {
		return err
	}
	defer all.Release()
	releaseRecords(batch)
	batch = nil
	sorted, starts, keyRec, err := f.group(all)
	if err != nil {
		return err
	}
	defer sorted.Release()
	defer keyRec.Release()
	ob := array.NewRecordBuilder(f.mem, f.outSch)
	defer ob.Release()

	// Look every key up before anything changes: a key with rows is never
	// also called as timed out.
	groups := len(starts) - 1
	slots := make([]int32, groups)
	for i := range slots {
		slots[i] = -1
	}
	var stateCol *array.Binary
	var timeoutCol *array.Int64
	var expIdx []int
	var expSlots []int32
	if store != nil {
		if groups > 0 {
			if err := store.Lookup(keyRec, slots); err != nil {
				return err
			}
			vals, err := store.Values(slots)
			if err != nil {
				return err
			}
			defer vals.Release()
			stateCol, timeoutCol = vals.Column(0).(*array.Binary), vals.Column(1).(*array.Int64)
		}
		if expKeys != nil && expKeys.NumRows() > 0 {
			inBatch := make(map[int32]bool, groups)
			for _, sl := range slots {
				if sl >= 0 {
					inBatch[sl] = true
				}
			}
			all := make([]int32, expKeys.NumRows())
			if err := store.Lookup(expKeys, all); err != nil {
				return err
			}
			for i, sl := range all {
				if !inBatch[sl] {
					expIdx = append(expIdx, i)
					expSlots = append(expSlots, sl)
				}
			}
		}
	}

	// Keys with rows, in order of first appearance.
	results := make([]GroupResult, groups)
	for g := 0; g < groups; g++ {
		rows := sorted.NewSlice(int64(starts[g]), int64(starts[g+1]))
		c := &GroupCall{Key: keyValues(keyRec, g), Rows: rows, Timeout: f.g.Timeout,
			Watermark: f.g.Watermark, BatchTime: f.g.BatchTime, Out: ob}
		if stateCol != nil && stateCol.IsValid(g) {
			c.State = stateCol.Value(g)
		}
		results[g], err = f.call(c, ob)
		rows.Release()
		if err != nil {
			return err
		}
	}
	if store == nil {
		f.flush(ob)
		return nil
	}
	if err := f.apply(store, keyRec, slots, stateCol, timeoutCol, results); err != nil {
		return err
	}

	// Keys whose timeout passed and that had no rows, in key order.
	if len(expIdx) > 0 {
		ks, err := TakeRecord(f.mem, expKeys, expIdx)
		if err != nil {
			return err
		}
		defer ks.Release()
		vs, err := TakeRecord(f.mem, expVals, expIdx)
		if err != nil {
			return err
		}
		defer vs.Release()
		sc, tc := vs.Column(0).(*array.Binary), vs.Column(1).(*array.Int64)
		empty := sorted.NewSlice(0, 0)
		defer empty.Release()
		tres := make([]GroupResult, len(expIdx))
		for j := range expIdx {
			c := &GroupCall{Key: keyValues(ks, j), Rows: empty, TimedOut: true, Timeout: f.g.Timeout,
				Watermark: f.g.Watermark, BatchTime: f.g.BatchTime, Out: ob}
			if sc.IsValid(j) {
				c.State = sc.Value(j)
			}
			if tres[j], err = f.call(c, ob); err != nil {
				return err
			}
		}
		// Compared with the stored (expired) timeout, a call that set no
		// new one rewrites the entry without it: a timeout fires once.
		if err := f.apply(store, ks, expSlots, sc, tc, tres); err != nil {
			return err
		}
	}
	f.flush(ob)
	if err := store.Commit(f.spec.Version + 1); err != nil {
		return err
	}
	f.spec.Metrics.AddState(f.spec.Operator, int64(store.Len()), store.SizeBytes())
	return nil
}

// expired returns copies of the stored entries (keys, values) whose timeout
// has passed: an event-time timeout once the watermark is past it, a
// processing-time one once the batch time reaches it. Key order. The store
// indexes the timeout column (TimeColumn), so ScanWhere visits only the
// due entries, not every key.
func (f *flatMapGroups) expired(store state.Store) (arrow.Record, arrow.Record, error) {
	var ks, vs []arrow.Record
	defer func() {
		releaseRecords(ks)
		releaseRecords(vs)
	}()
	due := func(t int64) bool {
		switch f.g.Timeout {
		case EventTimeTimeout:
			return f.g.Watermark != NoTimestamp && t < f.g.Watermark
		case ProcessingTimeTimeout:
			return f.g.BatchTime != NoTimestamp && t <= f.g.BatchTime
		}
		return false
	}
	// The bound below which a timeout is due; none: nothing is.
	var less int64
	switch {
	case f.g.Timeout == EventTimeTimeout && f.g.Watermark != NoTimestamp:
		less = f.g.Watermark
	case f.g.Timeout == ProcessingTimeTimeout && f.g.BatchTime != NoTimestamp && f.g.BatchTime < math.MaxInt64:
		less = f.g.BatchTime + 1
	case f.g.Timeout == ProcessingTimeTimeout && f.g.BatchTime == math.MaxInt64:
		less = math.MaxInt64 // and a timeout of MaxInt64 is due too: scan below
	default:
		less = math.MinInt64
	}
	collect := func(k, v arrow.Record) error {
		tc := v.Column(timeoutField).(*array.Int64)
		var rows []int
		for i := 0; i < tc.Len(); i++ {
			if tc.IsValid(i) && due(tc.Value(i)) {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			return nil
		}
		kr, err := TakeRecord(f.mem, k, rows)
		if err != nil {
			return err
		}
		ks = append(ks, kr)
		vr, err := TakeRecord(f.mem, v, rows)
		if err != nil {
			return err
		}
		vs = append(vs, vr)
		return nil
	}
	var err error
	switch {
	case less == math.MaxInt64:
		err = store.Scan(collect)
	case less > math.MinInt64:
		err = store.ScanWhere(len(f.keys)+timeoutField, less, collect)
	}
	if err != nil {
		return nil, nil, err
	}
	k, err := ConcatRecords(f.mem, f.keySch, ks)
	if err != nil {
		return nil, nil, err
	}
	v, err := ConcatRecords(f.mem, groupStateSchema, vs)
	if err != nil {
		k.Release()
		return nil, nil, err
	}
	return k, v, nil
}

// group sorts rec's rows by key, keys in order of first appearance and rows
// in input order within a key. Key g's rows are sorted[starts[g]:starts[g+1]]
// and its key values row g of keys.
func (f *flatMapGroups) group(rec arrow.Record) (sorted arrow.Record, starts []int, keys arrow.Record, err error) {
	n := int(rec.NumRows())
	cols := make([]arrow.Array, len(f.keys))
	types := make([]arrow.DataType, len(f.keys))
	for i, k := range f.keys {
		cols[i] = rec.Column(k)
		types[i] = cols[i].DataType()
	}
	gr, err := newKeyGrouper(types)
	if err != nil {
		return nil, nil, nil, err
	}
	ids := make([]uint32, n)
	gr.assign(cols, ids)
	groups := 0
	if n > 0 {
		groups = gr.n
	}
	// Group ids are dense in order of first appearance.
	starts = make([]int, groups+1)
	first := make([]int, groups)
	for i := range first {
		first[i] = -1
	}
	for i, id := range ids {
		starts[id+1]++
		if first[id] < 0 {
			first[id] = i
		}
	}
	for g := 0; g < groups; g++ {
		starts[g+1] += starts[g]
	}
	perm := make([]int, n)
	pos := append([]int(nil), starts[:groups]...)
	for i, id := range ids {
		perm[pos[id]] = i
		pos[id]++
	}
	if sorted, err = TakeRecord(f.mem, rec, perm); err != nil {
		return nil, nil, nil, err
	}
	kr := array.NewRecord(f.keySch, cols, int64(n))
	defer kr.Release()
	if keys, err = TakeRecord(f.mem, kr, first); err != nil {
		sorted.Release()
		return nil, nil, nil, err
	}
	return sorted, starts, keys, nil
}

// call runs the user function once, turning a panic into an error and
// checking it left the output builder with equal column lengths.
func (f *flatMapGroups) call(c *GroupCall, ob *array.RecordBuilder) (res GroupResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("key %v: panic: %v", c.Key, r)
		}
	}()
	res, err = f.fn(c)
	if err != nil {
		return res, fmt.Errorf("key %v: %w", c.Key, err)
	}
	fields := ob.Fields()
	for i := 1; i < len(fields); i++ {
		if fields[i].Len() != fields[0].Len() {
			return res, fmt.Errorf("key %v: output column %q has %d values but %q has %d: append one value to every column per row",
				c.Key, f.outSch.Field(i).Name, fields[i].Len(), f.outSch.Field(0).Name, fields[0].Len())
		}
	}
	if len(fields) > 0 && fields[0].Len() >= flushRows {
		f.flush(ob)
	}
	return res, nil
}

func (f *flatMapGroups) flush(ob *array.RecordBuilder) {
	if len(ob.Fields()) == 0 || ob.Fields()[0].Len() == 0 {
		return
	}
	f.out = append(f.out, ob.NewRecord())
}

// apply writes the calls' results for keys (row i of keys, stored at
// slots[i] or -1, with stored values state/timeout or nil) to the store:
// changed entries are put, removed ones deleted, unchanged ones left alone
// so the delta holds only what changed.
func (f *flatMapGroups) apply(store state.Store, keys arrow.Record, slots []int32, stateCol *array.Binary, timeoutCol *array.Int64, res []GroupResult) error {
	var put, del []int
	sb := array.NewBinaryBuilder(f.mem, arrow.BinaryTypes.Binary)
	defer sb.Release()
	tb := array.NewInt64Builder(f.mem)
	defer tb.Release()
	for i, r := range res {
		keep := r.Exists || r.Timeout != NoTimestamp
		if !keep {
			if slots[i] >= 0 {
				del = append(del, i)
			}
			continue
		}
		if slots[i] >= 0 && stateCol != nil {
			same := stateCol.IsValid(i) == (r.Exists && r.State != nil) && bytes.Equal(stateCol.Value(i), r.State)
			sameT := (timeoutCol.IsNull(i) && r.Timeout == NoTimestamp) || (timeoutCol.IsValid(i) && timeoutCol.Value(i) == r.Timeout)
			if same && sameT {
				continue
			}
		}
		put = append(put, i)
		if r.Exists && r.State != nil {
			sb.Append(r.State)
		} else {
			sb.AppendNull()
		}
		if r.Timeout == NoTimestamp {
			tb.AppendNull()
		} else {
			tb.Append(r.Timeout)
		}
	}
	sc, tc := sb.NewArray(), tb.NewArray()
	defer sc.Release()
	defer tc.Release()
	if len(put) > 0 {
		k, err := TakeRecord(f.mem, keys, put)
		if err != nil {
			return err
		}
		v := array.NewRecord(groupStateSchema, []arrow.Array{sc, tc}, int64(len(put)))
		err = store.Put(k, v, nil)
		k.Release()
		v.Release()
		if err != nil {
			return err
		}
	}
	if len(del) > 0 {
		k, err := TakeRecord(f.mem, keys, del)
		if err != nil {
			return err
		}
		err = store.Delete(k)
		k.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// keyValues is row i of keys as Go values (GroupKeyValue).
func keyValues(keys arrow.Record, i int) []any {
	out := make([]any, keys.NumCols())
	for c := range out {
		out[c] = GroupKeyValue(keys.Column(c), i)
	}
	return out
}

// GroupKeyValue is arr[i] as the Go value a GroupFunc sees: nil for null;
// string for strings, []byte for binary, bool, int64 for signed integers,
// uint64 for unsigned, float64 for floats, time.Time (UTC) for timestamps
// and dates, time.Duration for durations, decimal128.Num for decimals, and
// the array's text for anything else.
func GroupKeyValue(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return bytes.Clone(a.Value(i))
	case *array.LargeBinary:
		return bytes.Clone(a.Value(i))
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return uint64(a.Value(i))
	case *array.Uint16:
		return uint64(a.Value(i))
	case *array.Uint32:
		return uint64(a.Value(i))
	case *array.Uint64:
		return a.Value(i)
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.Timestamp:
		return a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit).UTC()
	case *array.Date32:
		return a.Value(i).ToTime().UTC()
	case *array.Date64:
		return a.Value(i).ToTime().UTC()
	case *array.Duration:
		d := int64(a.Value(i))
		switch a.DataType().(*arrow.DurationType).Unit {
		case arrow.Second:
			return time.Duration(d) * time.Second
		case arrow.Millisecond:
			return time.Duration(d) * time.Millisecond
		case arrow.Microsecond:
			return time.Duration(d) * time.Microsecond
		}
		return time.Duration(d)
	case *array.Decimal128:
		return decimal128.Num(a.Value(i))
	}
	return arr.ValueStr(i)
}
