package exec

// Stream-stream join.
//
// Each side's rows live in a state store of their own (operator
// "<op>-left" / "<op>-right", key groups [lo, hi)), keyed by (sequence
// number, event time) with the row's columns, whether it has matched, and
// when its join key was last seen as values. One batch, per task:
//
//	lnew, rnew := this batch's rows of the task's key groups
//	lold, rold := the stored rows (state version V): the rows kept after the
//	              last batch when the store is warm, else a scan of it
//	pairs      := lnew ⋈ (rold ∪ rnew)  ∪  lold ⋈ rnew     (keys, then the condition)
//	emit pairs (inner, outer), or each left row the first time it matches (semi)
//	evict      := left rows with t + Upper <= watermark, right rows with
//	              t - Lower <= watermark (no later row can match them), and
//	              rows whose key was not seen for TTL of batch time
//	emit the evicted rows of an outer side that never matched, null-padded
//	store what is left (and the new rows) as version V+1
//
// Invariants:
//  1. A pair is emitted exactly once: in the batch where the later of its
//     two rows arrives (old rows never meet old rows again).
//  2. An outer row is emitted with nulls exactly once, when it is evicted
//     unmatched; rows the late filter lets through have t > the previous
//     batch's watermark, so nothing that could still match them was evicted.
//  3. Sequence numbers are version<<32 | row index of the task's input, so a
//     re-run of batch V stores the same keys and emits the same rows.
//  4. Rows of the batch are kept in input order, state rows in key order
//     (= arrival order, as sequence numbers grow): the output order depends
//     only on input and state, warm or loaded.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/internal/state"
)

// StreamJoinSpec is a join of two streams.
type StreamJoinSpec struct {
	How                 JoinType
	LeftKeys, RightKeys []string
	Cond                *expr.Expr
	// LeftTime and RightTime are the event-time columns bounding the state
	// ("" when the join has no bound); right time - left time lies in
	// [Lower, Upper] microseconds (math.MinInt64 / MaxInt64: open).
	LeftTime, RightTime string
	Lower, Upper        int64
	// TTL drops a stored row whose join key was not seen on either side for
	// TTL microseconds of batch time (0: never).
	TTL int64
}

type joinSide struct {
	name    string // "left" or "right"
	in      Operator
	sch     *arrow.Schema
	keys    []int
	timeCol int // -1: none
	unit    arrow.TimeUnit
	ext     *arrow.Schema // sch + seq, matched, seen, t
	spec    state.StoreSpec
	store   state.Store
}

const (
	extSeq     = iota
	extMatched // stored values
	extSeen
	extTime
	extRow // the row's index in old ++ new (not stored)
	extCols
)

// joinKeySchema keys stored rows by sequence number first, so key order is
// arrival order: the rows kept after a batch (old ones, then new ones) are
// already in the order a scan of the store returns.
var joinKeySchema = arrow.NewSchema([]arrow.Field{
	{Name: "__seq", Type: arrow.PrimitiveTypes.Int64},
	{Name: "__t", Type: arrow.PrimitiveTypes.Int64},
}, nil)

type streamJoin struct {
	batchOutput
	mem          memory.Allocator
	spec         StreamJoinSpec
	st           StateSpec
	lo, hi       int
	l, r         *joinSide
	schema       *arrow.Schema
	keyTypes     []arrow.DataType
	nullL, nullR bool // outer sides: the other side's columns may be null
}

// NewStreamJoin joins the rows of two streams with the rows both have stored
// (see the file comment). left and right are one partition of exchanges by
// key group of the join keys: key groups [lo, hi). The output is left
// columns then right columns (semi: left only), as NewHashJoin's.
func NewStreamJoin(mem memory.Allocator, left, right Operator, spec StreamJoinSpec, st StateSpec, lo, hi int) (Operator, error) {
	j := &streamJoin{mem: mem, spec: spec, st: st, lo: lo, hi: hi}
	var err error
	if j.l, err = j.side("left", "__l.", left, spec.LeftKeys, spec.LeftTime); err != nil {
		return nil, err
	}
	if j.r, err = j.side("right", "__r.", right, spec.RightKeys, spec.RightTime); err != nil {
		return nil, err
	}
	for i, k := range j.l.keys {
		lt, rt := j.l.sch.Field(k).Type, j.r.sch.Field(j.r.keys[i]).Type
		if !arrow.TypeEqual(lt, rt) {
			return nil, fmt.Errorf("stream join: key %s (%s) and %s (%s) have different types", spec.LeftKeys[i], lt, spec.RightKeys[i], rt)
		}
		j.keyTypes = append(j.keyTypes, lt)
	}
	switch spec.How {
	case JoinInner, JoinSemi:
	case JoinLeft:
		j.nullR = true
	case JoinRight:
		j.nullL = true
	case JoinFull:
		j.nullL, j.nullR = true, true
	default:
		return nil, fmt.Errorf("stream join: %s joins of two streams are not supported", spec.How)
	}
	var fields []arrow.Field
	for _, f := range j.l.sch.Fields() {
		f.Nullable = f.Nullable || j.nullL
		fields = append(fields, f)
	}
	if spec.How != JoinSemi {
		for _, f := range j.r.sch.Fields() {
			f.Nullable = f.Nullable || j.nullR
			fields = append(fields, f)
		}
	}
	j.schema = arrow.NewSchema(fields, nil)
	return j, nil
}

func (j *streamJoin) side(name, prefix string, in Operator, keys []string, timeCol string) (*joinSide, error) {
	s := &joinSide{name: name, in: in, sch: in.Schema(), timeCol: -1}
	for _, k := range keys {
		idx := s.sch.FieldIndices(k)
		if len(idx) == 0 {
			return nil, fmt.Errorf("stream join: %s side has no key column %q", name, k)
		}
		s.keys = append(s.keys, idx[0])
	}
	if timeCol != "" {
		idx := s.sch.FieldIndices(timeCol)
		if len(idx) == 0 {
			return nil, fmt.Errorf("stream join: %s side has no event-time column %q", name, timeCol)
		}
		t, ok := s.sch.Field(idx[0]).Type.(*arrow.TimestampType)
		if !ok {
			return nil, fmt.Errorf("stream join: event-time column %q is %s, not a timestamp", timeCol, s.sch.Field(idx[0]).Type)
		}
		s.timeCol, s.unit = idx[0], t.Unit
	}
	ext := append([]arrow.Field{}, s.sch.Fields()...)
	ext = append(ext,
		arrow.Field{Name: prefix + "seq", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: prefix + "matched", Type: arrow.FixedWidthTypes.Boolean},
		arrow.Field{Name: prefix + "seen", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: prefix + "t", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: prefix + "row", Type: arrow.PrimitiveTypes.Int64})
	s.ext = arrow.NewSchema(ext, nil)
	vals := append([]arrow.Field{}, s.sch.Fields()...)
	vals = append(vals,
		arrow.Field{Name: "__matched", Type: arrow.FixedWidthTypes.Boolean},
		arrow.Field{Name: "__seen", Type: arrow.PrimitiveTypes.Int64})
	s.spec = state.StoreSpec{Operator: j.st.Operator + "-" + name, KeyGroups: j.st.KeyGroups,
		Lo: j.lo, Hi: j.hi, KeySchema: joinKeySchema, ValueSchema: arrow.NewSchema(vals, nil), Allocator: j.mem}
	return s, nil
}

func (j *streamJoin) Schema() *arrow.Schema { return j.schema }

func (j *streamJoin) stores() (state.Provider, error) {
	return needProvider(j.st.Provider, j.st.Operator)
}

func (j *streamJoin) Next(ctx context.Context) (arrow.Record, error) {
	return j.batchOutput.next(ctx, j.run, func(err error) error {
		return fmt.Errorf("stream join %s [%d, %d): %w", j.st.Operator, j.lo, j.hi, err)
	})
}

// sideRows is one side's rows of the batch: stored rows then new rows, in
// the ext schema, with per-row bookkeeping.
type sideRows struct {
	all      arrow.Record // old ++ new
	old, new arrow.Record // slices of all
	matched  []bool       // old ++ new: matched before or in this batch
	was      []bool       // old ++ new: matched before this batch
	seen     []int64
	t        []int64
}

func (j *streamJoin) run(ctx context.Context) error {
	// The rows each side kept after the last batch, when its store is warm:
	// no scan of the store needed.
	var kept, survivors [2]arrow.Record
	defer func() { release(kept[0], kept[1], survivors[0], survivors[1]) }()
	stores, err := j.stores()
	if err != nil {
		return err
	}
	for i, s := range []*joinSide{j.l, j.r} {
		st, aux, err := stores.OpenAux(s.spec, j.st.Version)
		if err != nil {
			return err
		}
		s.store, kept[i] = st, aux
	}
	committed := false
	defer func() {
		for i, s := range []*joinSide{j.l, j.r} {
			if committed {
				stores.Keep(s.store, survivors[i])
				survivors[i] = nil
			} else if s.store != nil {
				s.store.Close()
			}
			s.store = nil
		}
	}()
	var rows [2]*sideRows
	defer func() {
		for _, r := range rows {
			if r != nil {
				release(r.all, r.old, r.new)
			}
		}
	}()
	for i, s := range []*joinSide{j.l, j.r} {
		r, err := j.load(ctx, s, kept[i])
		if err != nil {
			return err
		}
		rows[i] = r
	}
	lr, rr := rows[0], rows[1]
	// lnew ⋈ (rold ∪ rnew), then lold ⋈ rnew.
	p1, err := j.pairs(ctx, lr.new, rr.all)
	if err != nil {
		return err
	}
	p2, err := j.pairs(ctx, lr.old, rr.new)
	if err != nil {
		releaseRecords(p1)
		return err
	}
	pairs := append(p1, p2...)
	defer releaseRecords(pairs)
	nl, nr := len(j.l.sch.Fields()), len(j.r.sch.Fields())
	lOld, rOld := int(lr.old.NumRows()), int(rr.old.NumRows())
	// Which rows matched: pairs carry both sides' row indexes.
	track := j.spec.How != JoinInner // inner joins never look at matched
	var semi []int                   // left rows (old ++ new) emitted by a semi join, first match order
	for _, p := range pairs {
		ls := p.Column(nl + extRow).(*array.Int64).Int64Values()
		rs := p.Column(nl + extCols + nr + extRow).(*array.Int64).Int64Values()
		for k := range ls {
			li, ri := int(ls[k]), int(rs[k])
			if j.spec.How == JoinSemi && !lr.matched[li] {
				semi = append(semi, li)
			}
			if track {
				lr.matched[li], rr.matched[ri] = true, true
			}
		}
		if j.spec.How != JoinSemi {
			cols := append(append([]arrow.Array{}, p.Columns()[:nl]...), p.Columns()[nl+extCols:nl+extCols+nr]...)
			j.out = append(j.out, array.NewRecord(j.schema, cols, p.NumRows()))
		}
	}
	if len(semi) > 0 {
		rec, err := TakeRecord(j.mem, lr.all, semi)
		if err != nil {
			return err
		}
		j.out = append(j.out, projectCols(rec, j.schema, 0, nl))
	}
	if j.spec.TTL > 0 {
		if err := j.touch(lr, rr); err != nil {
			return err
		}
	}
	// Evict, emit outer rows, and write what stays.
	var evicted int64
	for i, s := range []*joinSide{j.l, j.r} {
		sr := rows[i]
		nOld := lOld
		if i == 1 {
			nOld = rOld
		}
		limit, bounded := j.evictAt(i == 0)
		outer := (i == 0 && j.nullR) || (i == 1 && j.nullL)
		var gone, keep, outerRows []int
		oldSeen := sr.old.Column(len(s.sch.Fields()) + extSeen).(*array.Int64).Int64Values()
		for k := range sr.matched {
			switch {
			case bounded && sr.t[k] <= limit:
				gone = append(gone, k)
				if outer && !sr.matched[k] {
					outerRows = append(outerRows, k)
				}
			case j.spec.TTL > 0 && sr.seen[k] <= j.st.BatchTime-j.spec.TTL:
				gone = append(gone, k)
				evicted++
			case i == 0 && j.spec.How == JoinSemi && sr.matched[k]:
				gone = append(gone, k) // emitted: a semi join row never emits again
			case k >= nOld || sr.matched[k] != sr.was[k] || sr.seen[k] != oldSeen[k]:
				keep = append(keep, k)
			}
		}
		if err := j.write(s, sr, nOld, gone, keep); err != nil {
			return err
		}
		if survivors[i], err = j.survivors(sr, gone); err != nil {
			return err
		}
		if len(outerRows) > 0 {
			if err := j.emitOuter(sr, i == 0, outerRows); err != nil {
				return err
			}
		}
	}
	for _, s := range []*joinSide{j.l, j.r} {
		if err := s.store.Commit(j.st.Version + 1); err != nil {
			return fmt.Errorf("%s side: %w", s.name, err)
		}
	}
	committed = true
	j.st.Metrics.AddState(j.st.Operator, int64(j.l.store.Len()+j.r.store.Len()), j.l.store.SizeBytes()+j.r.store.SizeBytes())
	if evicted > 0 {
		j.st.Metrics.AddEvicted(j.st.Operator, evicted)
	}
	return nil
}

// evictAt returns the event time at or below which a side's stored rows can
// no longer match a row the late filter lets through, and whether there is one.
func (j *streamJoin) evictAt(left bool) (int64, bool) {
	wm := j.st.Watermark
	if j.spec.LeftTime == "" || wm == math.MinInt64 {
		return 0, false
	}
	if left {
		// A later right row has t > wm; it matches left t only if t + Upper >= it.
		if j.spec.Upper == math.MaxInt64 {
			return 0, false
		}
		return satAdd(wm, -j.spec.Upper), true
	}
	if j.spec.Lower == math.MinInt64 {
		return 0, false
	}
	return satAdd(wm, j.spec.Lower), true
}

func satAdd(a, b int64) int64 {
	c := a + b
	switch {
	case b > 0 && c < a:
		return math.MaxInt64
	case b < 0 && c > a:
		return math.MinInt64
	}
	return c
}

// load reads a side's stored rows and this batch's rows into ext records.
func (j *streamJoin) load(ctx context.Context, s *joinSide, kept arrow.Record) (*sideRows, error) {
	nu := len(s.sch.Fields())
	var olds []arrow.Record // stored rows, then this batch's
	defer func() { releaseRecords(olds) }()
	nOld := 0
	if kept != nil && int(kept.NumRows()) == s.store.Len() {
		// Warm: the rows kept after the last batch, in key order; only the
		// row index column is renumbered.
		nOld = int(kept.NumRows())
		row := rowIndexes(j.mem, 0, nOld)
		cols := append([]arrow.Array{}, kept.Columns()...)
		cols[nu+extRow] = row
		olds = append(olds, array.NewRecord(s.ext, cols, int64(nOld)))
		row.Release()
	} else {
		err := s.store.Scan(func(k, v arrow.Record) error {
			n := int(k.NumRows())
			row := rowIndexes(j.mem, nOld, n)
			defer row.Release()
			cols := append([]arrow.Array{}, v.Columns()[:nu]...)
			cols = append(cols, k.Column(0), v.Column(nu), v.Column(nu+1), k.Column(1), row)
			olds = append(olds, array.NewRecord(s.ext, cols, int64(n)))
			nOld += n
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// This batch's rows, each input record extended with its bookkeeping
	// columns; then stored and new rows copied once into one record.
	var seen, tm []int64
	n := 0
	for {
		r, err := s.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		k := int(r.NumRows())
		seq, rt, rs, row := make([]int64, k), make([]int64, k), make([]int64, k), make([]int64, k)
		for i := range seq {
			seq[i] = j.st.Version<<32 | int64(n+i)
			rs[i] = j.st.BatchTime
			row[i] = int64(nOld + n + i)
		}
		if s.timeCol >= 0 {
			c := r.Column(s.timeCol).(*array.Timestamp)
			for i := range rt {
				if c.IsNull(i) {
					rt[i] = math.MinInt64 // matches no time range: evicted first
				} else {
					rt[i] = ToMicros(int64(c.Value(i)), s.unit)
				}
			}
		}
		extra := []arrow.Array{int64Array(j.mem, seq), boolArray(j.mem, make([]bool, k)), int64Array(j.mem, rs), int64Array(j.mem, rt), int64Array(j.mem, row)}
		olds = append(olds, array.NewRecord(s.ext, append(append([]arrow.Array{}, r.Columns()...), extra...), int64(k)))
		releaseAll(extra)
		r.Release()
		seen, tm = append(seen, rs...), append(tm, rt...)
		n += k
	}
	all, err := ConcatRecords(j.mem, s.ext, olds)
	if err != nil {
		return nil, err
	}
	sr := &sideRows{all: all, old: all.NewSlice(0, int64(nOld)), new: all.NewSlice(int64(nOld), int64(nOld+n))}
	total := nOld + n
	sr.matched, sr.was = make([]bool, total), make([]bool, total)
	sr.seen, sr.t = make([]int64, 0, total), make([]int64, 0, total)
	m := sr.old.Column(nu + extMatched).(*array.Boolean)
	for i := 0; i < nOld; i++ {
		sr.matched[i] = m.Value(i)
		sr.was[i] = sr.matched[i]
	}
	sr.seen = append(append(sr.seen, sr.old.Column(nu+extSeen).(*array.Int64).Int64Values()...), seen...)
	sr.t = append(append(sr.t, sr.old.Column(nu+extTime).(*array.Int64).Int64Values()...), tm...)
	return sr, nil
}

// pairs inner-joins two ext records on the keys and the condition.
func (j *streamJoin) pairs(ctx context.Context, l, r arrow.Record) ([]arrow.Record, error) {
	if l.NumRows() == 0 || r.NumRows() == 0 {
		return nil, nil
	}
	lk, rk := make([]*expr.Expr, len(j.l.keys)), make([]*expr.Expr, len(j.r.keys))
	for i := range lk {
		lk[i], rk[i] = expr.Col(j.spec.LeftKeys[i]), expr.Col(j.spec.RightKeys[i])
	}
	return drain(ctx, func() (Operator, error) {
		return NewHashJoinWhere(j.mem, NewRecords(j.l.ext, []arrow.Record{l}), NewRecords(j.r.ext, []arrow.Record{r}),
			lk, rk, JoinInner, r.NumRows() <= l.NumRows(), j.spec.Cond)
	})
}

// touch sets the last-seen time of the stored rows whose join key appears
// among this batch's rows of either side to the batch time.
func (j *streamJoin) touch(lr, rr *sideRows) error {
	g, err := newKeyGrouper(j.keyTypes)
	if err != nil {
		return err
	}
	for i, sr := range []*sideRows{lr, rr} {
		s := []*joinSide{j.l, j.r}[i]
		n := int(sr.new.NumRows())
		if n == 0 {
			continue
		}
		cols := make([]arrow.Array, len(s.keys))
		for c, k := range s.keys {
			cols[c] = sr.new.Column(k)
		}
		g.assign(cols, make([]uint32, n))
	}
	for i, sr := range []*sideRows{lr, rr} {
		s := []*joinSide{j.l, j.r}[i]
		n := int(sr.old.NumRows())
		if n == 0 || g.n == 0 {
			continue
		}
		cols := make([]arrow.Array, len(s.keys))
		for c, k := range s.keys {
			cols[c] = sr.old.Column(k)
		}
		ids := make([]int32, n)
		g.find(cols, ids)
		for k, id := range ids {
			if id >= 0 {
				sr.seen[k] = j.st.BatchTime
			}
		}
	}
	return nil
}

// write deletes a side's gone rows from its store and puts its kept rows
// (new ones, and old ones whose values changed).
func (j *streamJoin) write(s *joinSide, sr *sideRows, nOld int, gone, keep []int) error {
	var goneOld []int
	for _, k := range gone {
		if k < nOld {
			goneOld = append(goneOld, k)
		}
	}
	if len(goneOld) > 0 {
		rec, err := TakeRecord(j.mem, sr.old, goneOld)
		if err != nil {
			return err
		}
		keys := j.stateKeys(s, rec)
		err = s.store.Delete(keys)
		keys.Release()
		rec.Release()
		if err != nil {
			return err
		}
	}
	if len(keep) == 0 {
		return nil
	}
	rec, err := TakeRecord(j.mem, sr.all, keep)
	if err != nil {
		return err
	}
	defer rec.Release()
	matched := make([]bool, len(keep))
	seen := make([]int64, len(keep))
	for i, k := range keep {
		matched[i], seen[i] = sr.matched[k], sr.seen[k]
	}
	nu := len(s.sch.Fields())
	mc, sc := boolArray(j.mem, matched), int64Array(j.mem, seen)
	defer releaseAll([]arrow.Array{mc, sc})
	vals := array.NewRecord(s.spec.ValueSchema, append(append([]arrow.Array{}, rec.Columns()[:nu]...), mc, sc), rec.NumRows())
	defer vals.Release()
	keys := j.stateKeys(s, rec)
	defer keys.Release()
	return s.store.Put(keys, vals, nil)
}

func (j *streamJoin) stateKeys(s *joinSide, ext arrow.Record) arrow.Record {
	nu := len(s.sch.Fields())
	return array.NewRecord(joinKeySchema, []arrow.Array{ext.Column(nu + extSeq), ext.Column(nu + extTime)}, ext.NumRows())
}

// survivors returns a side's rows that stay in state after this batch (all
// but gone, which is in ascending order), with their matched and seen
// values of now: what the store holds at the next version, in its key
// order, so the next batch need not scan the store.
func (j *streamJoin) survivors(sr *sideRows, gone []int) (arrow.Record, error) {
	stay := make([]int, 0, len(sr.matched)-len(gone))
	g := 0
	for k := range sr.matched {
		if g < len(gone) && gone[g] == k {
			g++
			continue
		}
		stay = append(stay, k)
	}
	rec, err := TakeRecord(j.mem, sr.all, stay)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	matched := make([]bool, len(stay))
	seen := make([]int64, len(stay))
	for i, k := range stay {
		matched[i], seen[i] = sr.matched[k], sr.seen[k]
	}
	mc, sc := boolArray(j.mem, matched), int64Array(j.mem, seen)
	defer releaseAll([]arrow.Array{mc, sc})
	nu := int(rec.NumCols()) - extCols
	cols := append([]arrow.Array{}, rec.Columns()...)
	cols[nu+extMatched], cols[nu+extSeen] = mc, sc
	return array.NewRecord(rec.Schema(), cols, rec.NumRows()), nil
}

// emitOuter emits rows of one side padded with nulls for the other.
func (j *streamJoin) emitOuter(sr *sideRows, left bool, idx []int) error {
	s, other := j.l, j.r
	if !left {
		s, other = j.r, j.l
	}
	rec, err := TakeRecord(j.mem, sr.all, idx)
	if err != nil {
		return err
	}
	defer rec.Release()
	n := int(rec.NumRows())
	nu := len(s.sch.Fields())
	nulls := make([]arrow.Array, len(other.sch.Fields()))
	for i, f := range other.sch.Fields() {
		nulls[i] = array.MakeArrayOfNull(j.mem, f.Type, n)
	}
	defer releaseAll(nulls)
	var cols []arrow.Array
	if left {
		cols = append(append(cols, rec.Columns()[:nu]...), nulls...)
	} else {
		cols = append(append(cols, nulls...), rec.Columns()[:nu]...)
	}
	j.out = append(j.out, array.NewRecord(j.schema, cols, int64(n)))
	return nil
}

func (j *streamJoin) Close() error {
	releaseRecords(j.out)
	j.out = nil
	return errors.Join(j.l.in.Close(), j.r.in.Close())
}

// projectCols returns columns [from, to) of rec as a record of schema and
// releases rec.
func projectCols(rec arrow.Record, schema *arrow.Schema, from, to int) arrow.Record {
	out := array.NewRecord(schema, rec.Columns()[from:to], rec.NumRows())
	rec.Release()
	return out
}

func release(recs ...arrow.Record) {
	for _, r := range recs {
		if r != nil {
			r.Release()
		}
	}
}

// rowIndexes is the int64 array from, from+1, ..., from+n-1.
func rowIndexes(mem memory.Allocator, from, n int) arrow.Array {
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = int64(from + i)
	}
	return int64Array(mem, idx)
}

func int64Array(mem memory.Allocator, v []int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func boolArray(mem memory.Allocator, v []bool) arrow.Array {
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}
