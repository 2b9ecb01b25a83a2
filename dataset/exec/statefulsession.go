package exec

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/internal/state"
)

// touched marks, through a merge, which sessions this batch's rows reached.
const touched = "__touched"

// statefulSession aggregates session windows across micro-batches for key
// groups [lo, hi). State holds every open session: key = the group keys
// with the session start, value = the session end and the partial
// aggregates. Each batch's rows are sessionized, then merged with the
// stored sessions, so a late-arriving row can join or bridge sessions.
type statefulSession struct {
	mem    memory.Allocator
	in     Operator
	sess   SessionSpec
	keys   []*expr.Expr // group keys in output order, including start and end
	aggs   []Agg
	spec   StateSpec
	lo, hi int
	schema *arrow.Schema
	batchOutput
}

// NewStatefulSession returns the stateful final stage of a session window
// aggregation. in yields raw rows (all rows of the partition's keys); keys
// are the aggregate's group keys, which include sess.StartName and
// sess.EndName.
func NewStatefulSession(mem memory.Allocator, in Operator, sess SessionSpec, keys []*expr.Expr, aggs []Agg, spec StateSpec, lo, hi int) (Operator, error) {
	for _, a := range aggs {
		if a.Func == AggCountDistinct {
			return nil, fmt.Errorf("%s: count_distinct is not supported in streaming aggregations", a)
		}
	}
	sch, err := SessionSchema(in.Schema(), sess)
	if err != nil {
		return nil, err
	}
	out, err := AggSchema(sch, keys, aggs)
	if err != nil {
		return nil, err
	}
	return &statefulSession{mem: mem, in: in, sess: sess, keys: keys, aggs: aggs, spec: spec, lo: lo, hi: hi, schema: out}, nil
}

func (s *statefulSession) Schema() *arrow.Schema { return s.schema }

func (s *statefulSession) stores() (state.Provider, error) {
	return needProvider(s.spec.Provider, s.spec.Operator)
}

func (s *statefulSession) Next(ctx context.Context) (arrow.Record, error) {
	return s.batchOutput.next(ctx, s.run, func(err error) error {
		return fmt.Errorf("session aggregate %s [%d, %d): %w", s.spec.Operator, s.lo, s.hi, err)
	})
}

// run is the whole batch:
//
//	P := partial aggregates of this batch's sessions, touched = 1
//	S := the stored sessions of P's keys, and those the watermark closed
//	     (complete: every stored session), touched = 0
//	M := Merge(P and S with overlapping intervals of a key merged)
//	state := state - S + (M minus the sessions the watermark closed)
//	emit Final(closed M) (append), Final(touched M) (update) or Final(M) (complete)
//
// A stored session of a key without rows in the batch merges with nothing
// (the sessions of a key were merged when stored) and is emitted only when
// the watermark closes it, so in append and update mode S leaves it out and
// it stays in the store untouched. S is found without scanning the store:
// the stored sessions of P's keys through the store's index on the group
// keys (PartKey: the key is the group keys and the start), those the
// watermark closes through its index on the session end (TimeColumn), each
// taken once. Only complete mode (S is everything), a watermark at the end
// of time (everything closes) and a query without group keys (one group,
// in the batch whenever it has rows) read every stored session.
func (s *statefulSession) run(ctx context.Context) error {
	sessSchema, err := SessionSchema(s.in.Schema(), s.sess)
	if err != nil {
		return err
	}
	keys := append([]*expr.Expr{}, s.keys...)
	aggs := append(append([]Agg{}, s.aggs...), Agg{Func: AggMax, Arg: expr.Col(touched), Name: touched})
	withTouched := arrow.NewSchema(append(append([]arrow.Field{}, sessSchema.Fields()...), arrow.Field{Name: touched, Type: arrow.PrimitiveTypes.Int64}), nil)
	pschema, err := PartialSchema(withTouched, keys, aggs)
	if err != nil {
		return err
	}
	nk := len(keys)
	startIdx, endIdx := -1, -1
	for i, k := range keys {
		switch k.OutputName() {
		case s.sess.StartName:
			startIdx = i
		case s.sess.EndName:
			endIdx = i
		}
	}
	if startIdx < 0 || endIdx < 0 {
		return fmt.Errorf("the group keys must include %s and %s", s.sess.StartName, s.sess.EndName)
	}
	// Stored key: every group key but the end; value: the end and the partials.
	var keyFields, valFields []arrow.Field
	for i, f := range pschema.Fields() {
		switch {
		case i == endIdx:
			valFields = append([]arrow.Field{f}, valFields...)
		case i < nk:
			keyFields = append(keyFields, f)
		default:
			valFields = append(valFields, f)
		}
	}
	keySchema, valSchema := arrow.NewSchema(keyFields, nil), arrow.NewSchema(valFields, nil)
	stores, err := s.stores()
	if err != nil {
		return err
	}
	all := s.spec.Emit == "complete" // S is every stored session
	closes := s.spec.EventTimeKey >= 0 && !all
	spec := state.StoreSpec{Operator: s.spec.Operator, KeyGroups: s.spec.KeyGroups,
		Lo: s.lo, Hi: s.hi, KeySchema: keySchema, ValueSchema: valSchema, Allocator: s.mem}
	if closes {
		spec.TimeColumn = timeColumn(valSchema, 0) // the session end
	}
	if !all {
		for _, f := range keyFields { // the group keys: every key but the start
			if f.Name != s.sess.StartName {
				spec.PartKey = append(spec.PartKey, f.Name)
			}
		}
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
	split := func(r arrow.Record) (k, v arrow.Record) {
		var kc, vc []arrow.Array
		for i, c := range r.Columns() {
			switch {
			case i == endIdx:
				vc = append([]arrow.Array{c}, vc...)
			case i < nk:
				kc = append(kc, c)
			default:
				vc = append(vc, c)
			}
		}
		return array.NewRecord(keySchema, kc, r.NumRows()), array.NewRecord(valSchema, vc, r.NumRows())
	}
	join := func(k, v arrow.Record) arrow.Record {
		cols := make([]arrow.Array, 0, pschema.NumFields())
		ki := 0
		for i := 0; i < nk; i++ {
			if i == endIdx {
				cols = append(cols, v.Column(0))
				continue
			}
			cols = append(cols, k.Column(ki))
			ki++
		}
		cols = append(cols, v.Columns()[1:]...)
		return array.NewRecord(pschema, cols, k.NumRows())
	}

	// P: this batch's sessions.
	var parts []arrow.Record
	defer func() { releaseRecords(parts) }()
	rows, err := drain(ctx, func() (Operator, error) { return s.in, nil })
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		all, err := ConcatRecords(s.mem, s.in.Schema(), rows)
		releaseRecords(rows)
		if err != nil {
			return err
		}
		sessions, err := sessionize(s.mem, all, s.sess, sessSchema)
		all.Release()
		if err != nil {
			return err
		}
		marked := appendConst(s.mem, sessions, withTouched, 1)
		sessions.Release()
		p, err := aggregateRecords(ctx, s.mem, withTouched, []arrow.Record{marked}, keys, aggs, AggPartial)
		marked.Release()
		if err != nil {
			return err
		}
		parts = append(parts, p...)
	}
	// S: the stored sessions this batch merges, emits or closes, untouched.
	var storedKeys []arrow.Record
	defer func() { releaseRecords(storedKeys) }()
	// take adds the rows of a stored chunk to S (nil: all of them).
	take := func(k, v arrow.Record, rows []int) error {
		if rows != nil && len(rows) == 0 {
			return nil
		}
		full := join(k, v)
		defer full.Release()
		if rows != nil && len(rows) < int(k.NumRows()) {
			kr, err := TakeRecord(s.mem, k, rows)
			if err != nil {
				return err
			}
			storedKeys = append(storedKeys, kr)
			fr, err := TakeRecord(s.mem, full, rows)
			if err != nil {
				return err
			}
			defer fr.Release()
			full = fr
		} else {
			k.Retain()
			storedKeys = append(storedKeys, k)
		}
		zero, err := setConst(s.mem, full, pschema.NumFields()-1, 0)
		if err != nil {
			return err
		}
		parts = append(parts, zero)
		return nil
	}
	wm := s.spec.Watermark
	switch {
	case all:
		err = store.Scan(func(k, v arrow.Record) error { return take(k, v, nil) })
	case len(parts) == 0 && closes && wm < math.MaxInt64:
		// No rows: only the sessions the watermark closes, from the index.
		err = store.ScanWhere(len(keyFields), wm+1, func(k, v arrow.Record) error { return take(k, v, nil) })
	case len(parts) > 0 && len(spec.PartKey) > 0 && !(closes && wm == math.MaxInt64):
		err = s.storedOfBatch(store, spec.PartKey, parts, keySchema, startIdx, endIdx, nk, closes, wm, join, take)
	case len(parts) > 0 || closes:
		var inBatch func(full arrow.Record) ([]bool, error)
		if inBatch, err = s.batchKeys(parts, startIdx, endIdx, nk); err != nil {
			return err
		}
		err = store.Scan(func(k, v arrow.Record) error {
			full := join(k, v)
			defer full.Release()
			in, err := inBatch(full)
			if err != nil {
				return err
			}
			ends := v.Column(0).(*array.Timestamp).TimestampValues()
			rows := []int{}
			for i, e := range ends {
				if in[i] || (closes && int64(e) <= wm) {
					rows = append(rows, i)
				}
			}
			return take(k, v, rows)
		})
	}
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		if err := store.Commit(s.spec.Version + 1); err != nil {
			return err
		}
		committed = true
		return nil
	}
	combined, err := ConcatRecords(s.mem, pschema, parts)
	if err != nil {
		return err
	}
	defer combined.Release()
	merged, err := s.mergeSessions(ctx, combined, pschema, keys, aggs, startIdx, endIdx)
	if err != nil {
		return err
	}
	defer func() { releaseRecords(merged) }()

	for _, k := range storedKeys {
		if err := store.Delete(k); err != nil {
			return err
		}
	}
	var emit []arrow.Record
	defer func() { releaseRecords(emit) }()
	for _, m := range merged {
		ends := m.Column(endIdx).(*array.Timestamp).TimestampValues()
		touch := m.Column(pschema.NumFields() - 1).(*array.Int64).Int64Values()
		var keep, out []int
		for i := range ends {
			closed := s.spec.EventTimeKey >= 0 && int64(ends[i]) <= s.spec.Watermark && s.spec.Emit != "complete"
			if !closed {
				keep = append(keep, i)
			}
			switch s.spec.Emit {
			case "append":
				if closed {
					out = append(out, i)
				}
			case "update":
				if touch[i] == 1 {
					out = append(out, i)
				}
			default:
				out = append(out, i)
			}
		}
		if len(keep) > 0 {
			kept, err := TakeRecord(s.mem, m, keep)
			if err != nil {
				return err
			}
			k, v := split(kept)
			err = store.Put(k, v, nil)
			k.Release()
			v.Release()
			kept.Release()
			if err != nil {
				return err
			}
		}
		if len(out) > 0 {
			r, err := TakeRecord(s.mem, m, out)
			if err != nil {
				return err
			}
			emit = append(emit, r)
		}
	}
	if err := store.Commit(s.spec.Version + 1); err != nil {
		return err
	}
	committed = true
	s.spec.Metrics.AddState(s.spec.Operator, int64(store.Len()), store.SizeBytes())
	if len(emit) == 0 {
		return nil
	}
	final := make([]*expr.Expr, nk)
	for i, k := range keys {
		final[i] = expr.Col(k.OutputName())
	}
	// Final over the partial states without the internal touched column.
	outSchema := arrow.NewSchema(pschema.Fields()[:pschema.NumFields()-1], nil)
	stripped := make([]arrow.Record, len(emit))
	for i, r := range emit {
		stripped[i] = array.NewRecord(outSchema, r.Columns()[:r.NumCols()-1], r.NumRows())
	}
	defer releaseRecords(stripped)
	s.out, err = aggregateRecords(ctx, s.mem, outSchema, stripped, final, s.aggs, AggFinal)
	return err
}

// storedOfBatch takes (take) the stored sessions of the group keys of the
// batch's sessions (batch), through the store's index on them (PartKey),
// and with closes those the watermark wm closes, through its index on the
// session end, less the ones of the batch's keys already taken: each
// session once, visiting only those it takes.
func (s *statefulSession) storedOfBatch(store state.Store, partKey []string, batch []arrow.Record, keySchema *arrow.Schema, startIdx, endIdx, nk int, closes bool, wm int64,
	join func(k, v arrow.Record) arrow.Record, take func(k, v arrow.Record, rows []int) error) error {
	var inBatch func(full arrow.Record) ([]bool, error)
	if closes {
		var err error
		if inBatch, err = s.batchKeys(batch, startIdx, endIdx, nk); err != nil {
			return err
		}
	}
	var fields []arrow.Field
	for _, name := range partKey {
		fields = append(fields, keySchema.Field(keySchema.FieldIndices(name)[0]))
	}
	groupSchema := arrow.NewSchema(fields, nil)
	groups := make([]arrow.Record, len(batch))
	for j, p := range batch {
		var cols []arrow.Array
		for i := 0; i < nk; i++ {
			if i != startIdx && i != endIdx {
				cols = append(cols, p.Column(i))
			}
		}
		groups[j] = array.NewRecord(groupSchema, cols, p.NumRows())
	}
	// One record: ScanPart gives a session once however often its key
	// comes, not across calls.
	all, err := ConcatRecords(s.mem, groupSchema, groups)
	releaseRecords(groups)
	if err != nil {
		return err
	}
	err = store.ScanPart(all, func(k, v arrow.Record) error { return take(k, v, nil) })
	all.Release()
	if err != nil || !closes {
		return err
	}
	return store.ScanWhere(keySchema.NumFields(), wm+1, func(k, v arrow.Record) error {
		full := join(k, v)
		defer full.Release()
		in, err := inBatch(full)
		if err != nil {
			return err
		}
		rows := []int{}
		for i, b := range in {
			if !b {
				rows = append(rows, i)
			}
		}
		return take(k, v, rows)
	})
}

// batchKeys returns a function telling, for rows of the partial-state
// schema, which have the group key (the keys but start and end) of a row of
// parts; nulls equal nulls, as mergeSessions groups them.
func (s *statefulSession) batchKeys(parts []arrow.Record, startIdx, endIdx, nk int) (func(full arrow.Record) ([]bool, error), error) {
	groupCols := func(r arrow.Record) []arrow.Array {
		var cols []arrow.Array
		for i := 0; i < nk; i++ {
			if i != startIdx && i != endIdx {
				cols = append(cols, r.Column(i))
			}
		}
		return cols
	}
	if len(parts) == 0 || nk == 2 {
		// No rows: no key is in the batch. No group key: one group, in
		// the batch when it has rows.
		in := len(parts) > 0
		return func(full arrow.Record) ([]bool, error) {
			out := make([]bool, full.NumRows())
			for i := range out {
				out[i] = in
			}
			return out, nil
		}, nil
	}
	var types []arrow.DataType
	for _, c := range groupCols(parts[0]) {
		types = append(types, c.DataType())
	}
	g, err := newKeyGrouper(types)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		g.assign(groupCols(p), make([]uint32, p.NumRows()))
	}
	seen := uint32(g.n) // ids below: a key of the batch
	return func(full arrow.Record) ([]bool, error) {
		ids := make([]uint32, full.NumRows())
		g.assign(groupCols(full), ids)
		out := make([]bool, len(ids))
		for i, id := range ids {
			out[i] = id < seen
		}
		return out, nil
	}, nil
}

// mergeSessions merges the overlapping sessions of each key in combined
// (partial-state rows) into one row per session.
func (s *statefulSession) mergeSessions(ctx context.Context, combined arrow.Record, pschema *arrow.Schema, keys []*expr.Expr, aggs []Agg, startIdx, endIdx int) ([]arrow.Record, error) {
	var groupCols []arrow.Array
	for i := range keys {
		if i != startIdx && i != endIdx {
			groupCols = append(groupCols, combined.Column(i))
		}
	}
	starts := timestamps(combined.Column(startIdx))
	ends := timestamps(combined.Column(endIdx))
	order, ss, se, err := mergeIntervals(groupCols, starts, ends)
	if err != nil {
		return nil, err
	}
	sorted, err := TakeRecord(s.mem, combined, order)
	if err != nil {
		return nil, err
	}
	defer sorted.Release()
	typ := pschema.Field(startIdx).Type.(*arrow.TimestampType)
	start, end := tsArray(s.mem, typ, ss), tsArray(s.mem, typ, se)
	defer start.Release()
	defer end.Release()
	cols := append([]arrow.Array{}, sorted.Columns()...)
	cols[startIdx], cols[endIdx] = start, end
	rec := array.NewRecord(pschema, cols, sorted.NumRows())
	defer rec.Release()
	mergeKeys := make([]*expr.Expr, len(keys))
	for i, k := range keys {
		mergeKeys[i] = expr.Col(k.OutputName())
	}
	return aggregateRecords(ctx, s.mem, pschema, []arrow.Record{rec}, mergeKeys, aggs, AggMerge)
}

func timestamps(a arrow.Array) []int64 {
	v := a.(*array.Timestamp).TimestampValues()
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func tsArray(mem memory.Allocator, typ *arrow.TimestampType, v []int64) arrow.Array {
	b := array.NewTimestampBuilder(mem, typ)
	defer b.Release()
	b.Reserve(len(v))
	for _, x := range v {
		b.UnsafeAppend(arrow.Timestamp(x))
	}
	return b.NewArray()
}

func int64Const(mem memory.Allocator, n int, v int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(n)
	for i := 0; i < n; i++ {
		b.UnsafeAppend(v)
	}
	return b.NewArray()
}

// appendConst returns rec with an int64 column of v appended (schema).
func appendConst(mem memory.Allocator, rec arrow.Record, schema *arrow.Schema, v int64) arrow.Record {
	c := int64Const(mem, int(rec.NumRows()), v)
	defer c.Release()
	return array.NewRecord(schema, append(append([]arrow.Array{}, rec.Columns()...), c), rec.NumRows())
}

// setConst returns rec with column i replaced by an int64 column of v.
func setConst(mem memory.Allocator, rec arrow.Record, i int, v int64) (arrow.Record, error) {
	if rec.Column(i).DataType().ID() != arrow.INT64 {
		return nil, fmt.Errorf("column %d is %s, want int64", i, rec.Column(i).DataType())
	}
	c := int64Const(mem, int(rec.NumRows()), v)
	defer c.Release()
	cols := append([]arrow.Array{}, rec.Columns()...)
	cols[i] = c
	return array.NewRecord(rec.Schema(), cols, rec.NumRows()), nil
}

func (s *statefulSession) Close() error {
	releaseRecords(s.out)
	s.out = nil
	return s.in.Close()
}
