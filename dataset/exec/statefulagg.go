package exec

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/internal/state"
)

// StateSpec places a stateful operator's state: one store per key-group
// range, versioned by micro-batch (batch N reads version N and writes N+1).
// Operator, KeyGroups, Emit, EventTimeKey and Unit are the compiled plan's;
// the fields marked json:"-" are the batch's and the task's, filled where
// the task runs.
type StateSpec struct {
	// Provider opens and keeps the operator's stores (state.Provider); it is
	// a live handle, not part of the spec's data. Each operator reads it in
	// one method (stores).
	Provider  state.Provider `json:"-"`
	Operator  string         // e.g. "agg-0"
	KeyGroups int
	Version   int64 `json:"-"` // the version this batch reads; it commits Version+1
	// Emit is "update" (the groups this batch changed), "complete" (every
	// group) or "append" (each group once, when the watermark closes it).
	Emit string
	// EventTimeKey is the index of the key column (a window end) the
	// watermark closes groups by, or -1. A group whose key is <= Watermark
	// (in that column's unit) is final: append mode emits it, and append and
	// update modes drop it from state.
	EventTimeKey int
	// Unit is the unit Watermark is in: the event-time key's (a join's:
	// microseconds). Watermark is the batch's, converted (set per task).
	Unit      arrow.TimeUnit
	Watermark int64 `json:"-"`
	// Metrics, when set, receives the state's size after the commit and
	// the rows a TTL evicted (the task's metrics; not part of a plan).
	Metrics *Metrics `json:"-"`
	// BatchTime is the batch's processing time, µs (TTLs and timeouts).
	BatchTime int64 `json:"-"`
}

// statefulAgg merges a batch's partial aggregates (one partition of the
// exchange: the key groups [lo, hi)) into the stored partial states and
// emits final values.
type statefulAgg struct {
	mem    memory.Allocator
	in     Operator
	keys   []*expr.Expr // column refs into the partial schema
	aggs   []Agg
	spec   StateSpec
	lo, hi int
	schema *arrow.Schema
	batchOutput
}

// NewStatefulAgg returns the final stage of a streaming aggregation for key
// groups [lo, hi). in yields records of PartialSchema(keys, aggs).
func NewStatefulAgg(mem memory.Allocator, in Operator, keys []*expr.Expr, aggs []Agg, spec StateSpec, lo, hi int) (Operator, error) {
	for _, a := range aggs {
		if a.Func == AggCountDistinct {
			return nil, fmt.Errorf("%s: count_distinct is not supported in streaming aggregations", a)
		}
	}
	final := make([]*expr.Expr, len(keys))
	for i, k := range keys {
		final[i] = expr.Col(k.OutputName())
	}
	// The output schema is Final's over the partial schema.
	empty := NewRecords(in.Schema(), nil)
	probe, err := NewHashAgg(mem, empty, final, aggs, AggFinal)
	if err != nil {
		empty.Close()
		return nil, err
	}
	schema := probe.Schema()
	probe.Close()
	return &statefulAgg{mem: mem, in: in, keys: final, aggs: aggs, spec: spec, lo: lo, hi: hi, schema: schema}, nil
}

func (s *statefulAgg) Schema() *arrow.Schema { return s.schema }

func (s *statefulAgg) stores() (state.Provider, error) {
	return needProvider(s.spec.Provider, s.spec.Operator)
}

// needProvider is p, or an error naming the operator when the plan gave it
// no state provider.
func needProvider(p state.Provider, op string) (state.Provider, error) {
	if p == nil {
		return nil, fmt.Errorf("state of %s: no state provider", op)
	}
	return p, nil
}

// timeColumn names field col of sch for StoreSpec.TimeColumn when it is a
// time the store can index (a 64- or 32-bit signed integer-like type), so
// ScanWhere and EvictWhere on it visit only the due entries; "" otherwise,
// or when col < 0.
func timeColumn(sch *arrow.Schema, col int) string {
	if col < 0 || col >= sch.NumFields() {
		return ""
	}
	switch sch.Field(col).Type.ID() {
	case arrow.INT64, arrow.TIMESTAMP, arrow.DATE64, arrow.TIME64, arrow.DURATION,
		arrow.INT32, arrow.DATE32, arrow.TIME32:
		return sch.Field(col).Name
	}
	return ""
}

func (s *statefulAgg) Next(ctx context.Context) (arrow.Record, error) {
	return s.batchOutput.next(ctx, s.run, func(err error) error {
		return fmt.Errorf("stateful aggregate %s [%d, %d): %w", s.spec.Operator, s.lo, s.hi, err)
	})
}

// batchOutput is the Next of an operator that does all its work in one run
// and then hands out the records run left in out.
type batchOutput struct {
	out  []arrow.Record
	done bool
	err  error
}

func (b *batchOutput) next(ctx context.Context, run func(context.Context) error, wrap func(error) error) (arrow.Record, error) {
	if b.err != nil {
		return nil, b.err
	}
	if !b.done {
		b.done = true
		if err := run(ctx); err != nil {
			b.err = wrap(err)
			return nil, b.err
		}
	}
	if len(b.out) == 0 {
		b.err = io.EOF
		return nil, io.EOF
	}
	r := b.out[0]
	b.out = b.out[1:]
	return r, nil
}

// run is the whole batch:
//
//	store := open version V of [lo, hi)
//	prev  := stored partial states of the keys in this batch
//	merged := Merge(prev, batch partials)       (prev first: first/last keep order)
//	store.Put(merged); store.Commit(V+1)
//	emit Final(merged) (update) or Final(every stored state) (complete)
func (s *statefulAgg) run(ctx context.Context) error {
	pschema := s.in.Schema()
	nk := len(s.keys)
	keySchema := stateKeySchema(pschema, nk)
	valSchema := arrow.NewSchema(pschema.Fields()[nk:], nil)
	stores, err := s.stores()
	if err != nil {
		return err
	}
	spec := state.StoreSpec{
		Operator: s.spec.Operator, KeyGroups: s.spec.KeyGroups,
		Lo: s.lo, Hi: s.hi, KeySchema: keySchema, ValueSchema: valSchema, Allocator: s.mem,
	}
	if s.spec.Emit != "complete" {
		// Closing windows pop the groups the watermark passed.
		spec.TimeColumn = timeColumn(keySchema, s.spec.EventTimeKey)
	}
	store, err := stores.Open(spec, s.spec.Version)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if committed {
			stores.Keep(store, nil)
		} else {
			store.Close()
		}
	}()

	var batch []arrow.Record
	defer func() { releaseRecords(batch) }()
	for {
		r, err := s.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		batch = append(batch, r)
	}
	var merged []arrow.Record
	defer func() { releaseRecords(merged) }()
	if len(batch) > 0 {
		all, err := ConcatRecords(s.mem, pschema, batch)
		if err != nil {
			return err
		}
		prev, err := s.stored(store, all, nk, pschema)
		if err != nil {
			all.Release()
			return err
		}
		inputs := []arrow.Record{all}
		if prev != nil {
			inputs = []arrow.Record{prev, all}
		}
		merged, err = aggregateRecords(ctx, s.mem, pschema, inputs, s.keys, s.aggs, AggMerge)
		releaseRecords(inputs)
		if err != nil {
			return err
		}
		for _, m := range merged {
			k := stateKeys(s.mem, keySchema, m, nk)
			v := array.NewRecord(valSchema, m.Columns()[nk:], m.NumRows())
			err := store.Put(k, v, nil)
			k.Release()
			v.Release()
			if err != nil {
				return err
			}
		}
	}
	var closed []arrow.Record
	defer func() { releaseRecords(closed) }()
	if s.spec.EventTimeKey >= 0 && s.spec.Emit != "complete" {
		if s.spec.Emit == "append" {
			if closed, err = s.closedGroups(store, pschema, nk); err != nil {
				return err
			}
		}
		if _, err := store.EvictWhere(s.spec.EventTimeKey, s.spec.Watermark+1); err != nil {
			return err
		}
	}
	if err := store.Commit(s.spec.Version + 1); err != nil {
		return err
	}
	committed = true
	s.spec.Metrics.AddState(s.spec.Operator, int64(store.Len()), store.SizeBytes())
	emit := merged
	if s.spec.Emit == "append" {
		emit = closed
	}
	if s.spec.Emit == "complete" {
		var all []arrow.Record
		err := store.Scan(func(k, v arrow.Record) error {
			cols := append(append([]arrow.Array{}, k.Columns()[:nk]...), v.Columns()...)
			all = append(all, array.NewRecord(pschema, cols, k.NumRows()))
			return nil
		})
		defer func() { releaseRecords(all) }()
		if err != nil {
			return err
		}
		emit = all
	}
	if len(emit) == 0 {
		return nil
	}
	s.out, err = aggregateRecords(ctx, s.mem, pschema, emit, s.keys, s.aggs, AggFinal)
	return err
}

// closedGroups returns the stored partial states of every group whose
// event-time key is at or behind the watermark, in key order.
func (s *statefulAgg) closedGroups(store state.Store, pschema *arrow.Schema, nk int) ([]arrow.Record, error) {
	var out []arrow.Record
	err := store.ScanWhere(s.spec.EventTimeKey, s.spec.Watermark+1, func(k, v arrow.Record) error {
		ts := k.Column(s.spec.EventTimeKey).(*array.Timestamp)
		var rows []int
		for i, e := range ts.TimestampValues() {
			if ts.IsValid(i) && int64(e) <= s.spec.Watermark {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			return nil
		}
		cols := append(append([]arrow.Array{}, k.Columns()[:nk]...), v.Columns()...)
		full := array.NewRecord(pschema, cols, k.NumRows())
		defer full.Release()
		r, err := TakeRecord(s.mem, full, rows)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		releaseRecords(out)
		return nil, err
	}
	return out, nil
}

// stored returns the stored partial states (keys and values) of the distinct
// keys of batch that the store has, or nil when it has none.
func (s *statefulAgg) stored(store state.Store, batch arrow.Record, nk int, pschema *arrow.Schema) (arrow.Record, error) {
	keys := stateKeys(s.mem, stateKeySchema(pschema, nk), batch, nk)
	defer keys.Release()
	slots := make([]int32, batch.NumRows())
	if err := store.Lookup(keys, slots); err != nil {
		return nil, err
	}
	seen := map[int32]bool{}
	var rows []int
	var found []int32
	for i, sl := range slots {
		if sl >= 0 && !seen[sl] {
			seen[sl] = true
			rows = append(rows, i)
			found = append(found, sl)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	k, err := TakeRecord(s.mem, keys, rows)
	if err != nil {
		return nil, err
	}
	defer k.Release()
	v, err := store.Values(found)
	if err != nil {
		return nil, err
	}
	defer v.Release()
	cols := append(append([]arrow.Array{}, k.Columns()[:nk]...), v.Columns()...)
	return array.NewRecord(pschema, cols, int64(len(found))), nil
}

// globalKey is the state key of an aggregate without group keys: one
// constant, so the whole result is one state entry.
const globalKey = "__global"

// stateKeySchema is the state store's key schema: the group keys, or the
// constant global key when there are none.
func stateKeySchema(pschema *arrow.Schema, nk int) *arrow.Schema {
	if nk == 0 {
		return arrow.NewSchema([]arrow.Field{{Name: globalKey, Type: arrow.PrimitiveTypes.Int64}}, nil)
	}
	return arrow.NewSchema(pschema.Fields()[:nk], nil)
}

// stateKeys is the key record of rec's rows (caller releases).
func stateKeys(mem memory.Allocator, keySchema *arrow.Schema, rec arrow.Record, nk int) arrow.Record {
	if nk == 0 {
		c := int64Const(mem, int(rec.NumRows()), 0)
		defer c.Release()
		return array.NewRecord(keySchema, []arrow.Array{c}, rec.NumRows())
	}
	return array.NewRecord(keySchema, rec.Columns()[:nk], rec.NumRows())
}

// aggregateRecords runs a hash aggregate over recs (not taken over: the
// caller keeps its references) and returns its output.
func aggregateRecords(ctx context.Context, mem memory.Allocator, schema *arrow.Schema, recs []arrow.Record, keys []*expr.Expr, aggs []Agg, mode AggMode) ([]arrow.Record, error) {
	in := NewRecords(schema, recs)
	op, err := NewHashAgg(mem, in, keys, aggs, mode)
	if err != nil {
		in.Close()
		return nil, err
	}
	return drain(ctx, func() (Operator, error) { return op, nil })
}

// drain runs an operator to the end and returns its records.
func drain(ctx context.Context, mk func() (Operator, error)) ([]arrow.Record, error) {
	op, err := mk()
	if err != nil {
		return nil, err
	}
	defer op.Close()
	var out []arrow.Record
	for {
		r, err := op.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			releaseRecords(out)
			return nil, err
		}
		out = append(out, r)
	}
}

func (s *statefulAgg) Close() error {
	releaseRecords(s.out)
	s.out = nil
	return s.in.Close()
}

func releaseRecords(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}
