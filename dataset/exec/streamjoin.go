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
	"slices"

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

// sideRows is one side's rows of the batch: the stored rows, then this
// batch's, as record chunks in the ext schema (never copied into one
// record: the stored rows are most of the state and were copied twice a
// batch, into old ++ new and out again as the survivors), with per-row
// bookkeeping indexed by a row's place in old ++ new.
type sideRows struct {
	chunks  []arrow.Record // the first nOldChunks hold the stored rows
	start   []int          // start[i]: index of chunks[i]'s first row; the last is the total
	nOldCh  int
	nOld    int
	matched []bool  // matched before or in this batch
	was     []bool  // matched before this batch
	seen    []int64 // when the row's join key was last seen
	wasSeen []int64 // seen as stored (old rows)
	seq, t  []int64
}

func (sr *sideRows) add(rec arrow.Record) {
	sr.chunks = append(sr.chunks, rec)
	sr.start = append(sr.start, sr.total()+int(rec.NumRows()))
}

func (sr *sideRows) total() int            { return sr.start[len(sr.start)-1] }
func (sr *sideRows) old() []arrow.Record   { return sr.chunks[:sr.nOldCh] }
func (sr *sideRows) fresh() []arrow.Record { return sr.chunks[sr.nOldCh:] }

// maxKeptChunks bounds the chunks a side keeps between batches: past it
// they are copied into one record (a batch adds a few chunks; eviction by
// time retires whole chunks, so this is rare).
const maxKeptChunks = 64

func (j *streamJoin) run(ctx context.Context) error {
	// The rows each side kept after the last batch, when its store is warm:
	// no scan of the store needed.
	var kept, survivors [2][]arrow.Record
	defer func() {
		for i := range kept {
			releaseRecords(kept[i])
			releaseRecords(survivors[i])
		}
	}()
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
				releaseRecords(r.chunks)
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
	p1, err := j.pairs(ctx, lr.fresh(), rr.chunks)
	if err != nil {
		return err
	}
	p2, err := j.pairs(ctx, lr.old(), rr.fresh())
	if err != nil {
		releaseRecords(p1)
		return err
	}
	pairs := append(p1, p2...)
	defer releaseRecords(pairs)
	nl, nr := len(j.l.sch.Fields()), len(j.r.sch.Fields())
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
		if err := j.emitSemi(lr, semi); err != nil {
			return err
		}
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
		limit, bounded := j.evictAt(i == 0)
		outer := (i == 0 && j.nullR) || (i == 1 && j.nullL)
		var gone, keep, outerRows []int
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
			case k >= sr.nOld || sr.matched[k] != sr.was[k] || sr.seen[k] != sr.wasSeen[k]:
				keep = append(keep, k)
			}
		}
		if err := j.write(s, sr, gone, keep); err != nil {
			return err
		}
		if survivors[i], err = j.survivors(s, sr, gone); err != nil {
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
func (j *streamJoin) load(ctx context.Context, s *joinSide, kept []arrow.Record) (*sideRows, error) {
	nu := len(s.sch.Fields())
	sr := &sideRows{start: []int{0}}
	ok := false
	defer func() {
		if !ok {
			releaseRecords(sr.chunks)
		}
	}()
	if kept != nil && rowsOf(kept) == s.store.Len() {
		// Warm: the rows kept after the last batch, in key order; only the
		// row index column is renumbered.
		for _, k := range kept {
			row := rowIndexes(j.mem, sr.total(), int(k.NumRows()))
			cols := append([]arrow.Array{}, k.Columns()...)
			cols[nu+extRow] = row
			sr.add(array.NewRecord(s.ext, cols, k.NumRows()))
			row.Release()
		}
	} else {
		err := s.store.Scan(func(k, v arrow.Record) error {
			n := int(k.NumRows())
			if n == 0 {
				return nil
			}
			row := rowIndexes(j.mem, sr.total(), n)
			defer row.Release()
			cols := append([]arrow.Array{}, v.Columns()[:nu]...)
			cols = append(cols, k.Column(0), v.Column(nu), v.Column(nu+1), k.Column(1), row)
			sr.add(array.NewRecord(s.ext, cols, int64(n)))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sr.nOldCh, sr.nOld = len(sr.chunks), sr.total()
	// This batch's rows, each input record extended with its bookkeeping
	// columns.
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
		if k == 0 {
			r.Release()
			continue
		}
		seq, rt, rs, row := make([]int64, k), make([]int64, k), make([]int64, k), make([]int64, k)
		for i := range seq {
			seq[i] = j.st.Version<<32 | int64(n+i)
			rs[i] = j.st.BatchTime
			row[i] = int64(sr.total() + i)
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
		sr.add(array.NewRecord(s.ext, append(append([]arrow.Array{}, r.Columns()...), extra...), int64(k)))
		releaseAll(extra)
		r.Release()
		n += k
	}
	total := sr.total()
	sr.matched, sr.was = make([]bool, total), make([]bool, total)
	sr.seen, sr.seq, sr.t = make([]int64, 0, total), make([]int64, 0, total), make([]int64, 0, total)
	for _, c := range sr.chunks {
		m := c.Column(nu + extMatched).(*array.Boolean)
		at := len(sr.seen)
		for i := 0; i < m.Len(); i++ {
			sr.matched[at+i] = m.Value(i)
		}
		sr.seq = append(sr.seq, c.Column(nu+extSeq).(*array.Int64).Int64Values()...)
		sr.seen = append(sr.seen, c.Column(nu+extSeen).(*array.Int64).Int64Values()...)
		sr.t = append(sr.t, c.Column(nu+extTime).(*array.Int64).Int64Values()...)
	}
	copy(sr.was, sr.matched)
	sr.wasSeen = append([]int64(nil), sr.seen[:sr.nOld]...)
	ok = true
	return sr, nil
}

func rowsOf(recs []arrow.Record) int {
	n := 0
	for _, r := range recs {
		n += int(r.NumRows())
	}
	return n
}

// pairs inner-joins two sides' ext records on the keys and the condition.
func (j *streamJoin) pairs(ctx context.Context, l, r []arrow.Record) ([]arrow.Record, error) {
	ln, rn := rowsOf(l), rowsOf(r)
	if ln == 0 || rn == 0 {
		return nil, nil
	}
	lk, rk := make([]*expr.Expr, len(j.l.keys)), make([]*expr.Expr, len(j.r.keys))
	for i := range lk {
		lk[i], rk[i] = expr.Col(j.spec.LeftKeys[i]), expr.Col(j.spec.RightKeys[i])
	}
	return drain(ctx, func() (Operator, error) {
		return NewHashJoinWhere(j.mem, NewRecords(j.l.ext, l), NewRecords(j.r.ext, r),
			lk, rk, JoinInner, rn <= ln, j.spec.Cond)
	})
}

// gather returns rows idx (ascending) of sr as records, in order: a chunk
// all of whose rows are asked for as it is, a run of one chunk's rows as a
// slice (with compact, only when the run is at least half the chunk, so a
// few rows kept for later batches do not pin a whole chunk's memory), else
// a copy of the rows.
func (j *streamJoin) gather(sr *sideRows, idx []int, compact bool) ([]arrow.Record, error) {
	var out []arrow.Record
	c := 0
	for a := 0; a < len(idx); {
		for sr.start[c+1] <= idx[a] {
			c++
		}
		lo, hi := sr.start[c], sr.start[c+1]
		b := a
		for b < len(idx) && idx[b] < hi {
			b++
		}
		n, first, last := b-a, idx[a]-lo, idx[b-1]-lo
		chunk := sr.chunks[c]
		switch {
		case n == hi-lo:
			chunk.Retain()
			out = append(out, chunk)
		case last-first+1 == n && (!compact || 2*n >= hi-lo):
			out = append(out, chunk.NewSlice(int64(first), int64(last+1)))
		default:
			local := make([]int, n)
			for i := range local {
				local[i] = idx[a+i] - lo
			}
			rec, err := TakeRecord(j.mem, chunk, local)
			if err != nil {
				releaseRecords(out)
				return nil, err
			}
			out = append(out, rec)
		}
		a = b
	}
	return out, nil
}

// emitSemi emits the left rows idx (first-match order) of a semi join.
func (j *streamJoin) emitSemi(lr *sideRows, idx []int) error {
	nl := len(j.l.sch.Fields())
	if slices.IsSorted(idx) {
		recs, err := j.gather(lr, idx, false)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			j.out = append(j.out, projectCols(rec, j.schema, 0, nl))
		}
		return nil
	}
	all, err := ConcatRecords(j.mem, j.l.ext, lr.chunks)
	if err != nil {
		return err
	}
	rec, err := TakeRecord(j.mem, all, idx)
	all.Release()
	if err != nil {
		return err
	}
	j.out = append(j.out, projectCols(rec, j.schema, 0, nl))
	return nil
}

// touch sets the last-seen time of the stored rows whose join key appears
// among this batch's rows of either side to the batch time.
func (j *streamJoin) touch(lr, rr *sideRows) error {
	g, err := newKeyGrouper(j.keyTypes)
	if err != nil {
		return err
	}
	keyCols := func(s *joinSide, rec arrow.Record) []arrow.Array {
		cols := make([]arrow.Array, len(s.keys))
		for c, k := range s.keys {
			cols[c] = rec.Column(k)
		}
		return cols
	}
	for i, sr := range []*sideRows{lr, rr} {
		s := []*joinSide{j.l, j.r}[i]
		for _, rec := range sr.fresh() {
			g.assign(keyCols(s, rec), make([]uint32, rec.NumRows()))
		}
	}
	if g.n == 0 {
		return nil
	}
	for i, sr := range []*sideRows{lr, rr} {
		s := []*joinSide{j.l, j.r}[i]
		for c, rec := range sr.old() {
			ids := make([]int32, rec.NumRows())
			g.find(keyCols(s, rec), ids)
			for k, id := range ids {
				if id >= 0 {
					sr.seen[sr.start[c]+k] = j.st.BatchTime
				}
			}
		}
	}
	return nil
}

// write deletes a side's gone rows from its store and puts its kept rows
// (new ones, and old ones whose values changed).
func (j *streamJoin) write(s *joinSide, sr *sideRows, gone, keep []int) error {
	var seq, tm []int64
	for _, k := range gone {
		if k < sr.nOld {
			seq, tm = append(seq, sr.seq[k]), append(tm, sr.t[k])
		}
	}
	if len(seq) > 0 {
		cols := []arrow.Array{int64Array(j.mem, seq), int64Array(j.mem, tm)}
		keys := array.NewRecord(joinKeySchema, cols, int64(len(seq)))
		releaseAll(cols)
		err := s.store.Delete(keys)
		keys.Release()
		if err != nil {
			return err
		}
	}
	recs, err := j.gather(sr, keep, false)
	if err != nil {
		return err
	}
	defer releaseRecords(recs)
	nu := len(s.sch.Fields())
	off := 0
	for _, rec := range recs {
		n := int(rec.NumRows())
		mc, sc := j.bookkeeping(sr, keep[off:off+n])
		off += n
		vals := array.NewRecord(s.spec.ValueSchema, append(append([]arrow.Array{}, rec.Columns()[:nu]...), mc, sc), int64(n))
		keys := j.stateKeys(s, rec)
		releaseAll([]arrow.Array{mc, sc})
		err := s.store.Put(keys, vals, nil)
		keys.Release()
		vals.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// bookkeeping returns the matched and seen columns of rows idx as of now.
func (j *streamJoin) bookkeeping(sr *sideRows, idx []int) (arrow.Array, arrow.Array) {
	matched := make([]bool, len(idx))
	seen := make([]int64, len(idx))
	for i, k := range idx {
		matched[i], seen[i] = sr.matched[k], sr.seen[k]
	}
	return boolArray(j.mem, matched), int64Array(j.mem, seen)
}

func (j *streamJoin) stateKeys(s *joinSide, ext arrow.Record) arrow.Record {
	nu := len(s.sch.Fields())
	return array.NewRecord(joinKeySchema, []arrow.Array{ext.Column(nu + extSeq), ext.Column(nu + extTime)}, ext.NumRows())
}

// survivors returns a side's rows that stay in state after this batch (all
// but gone, which is in ascending order), with their matched and seen
// values of now: what the store holds at the next version, in its key
// order, so the next batch need not scan the store. Chunks whose rows all
// stay unchanged are kept as they are: no copy of the state per batch.
func (j *streamJoin) survivors(s *joinSide, sr *sideRows, gone []int) ([]arrow.Record, error) {
	stay := make([]int, 0, len(sr.matched)-len(gone))
	g := 0
	for k := range sr.matched {
		if g < len(gone) && gone[g] == k {
			g++
			continue
		}
		stay = append(stay, k)
	}
	recs, err := j.gather(sr, stay, true)
	if err != nil {
		return nil, err
	}
	nu := len(s.sch.Fields())
	off := 0
	for i, rec := range recs {
		n := int(rec.NumRows())
		idx := stay[off : off+n]
		off += n
		if !j.changed(sr, idx) {
			continue
		}
		mc, sc := j.bookkeeping(sr, idx)
		cols := append([]arrow.Array{}, rec.Columns()...)
		cols[nu+extMatched], cols[nu+extSeen] = mc, sc
		recs[i] = array.NewRecord(rec.Schema(), cols, rec.NumRows())
		releaseAll([]arrow.Array{mc, sc})
		rec.Release()
	}
	if len(recs) > maxKeptChunks {
		all, err := ConcatRecords(j.mem, s.ext, recs)
		releaseRecords(recs)
		if err != nil {
			return nil, err
		}
		recs = []arrow.Record{all}
	}
	if recs == nil {
		recs = []arrow.Record{}
	}
	return recs, nil
}

// changed reports whether any of rows idx has matched or seen values other
// than its ext columns hold (stored values for old rows; false and the
// batch time for new ones).
func (j *streamJoin) changed(sr *sideRows, idx []int) bool {
	for _, k := range idx {
		if k < sr.nOld {
			if sr.matched[k] != sr.was[k] || sr.seen[k] != sr.wasSeen[k] {
				return true
			}
		} else if sr.matched[k] || sr.seen[k] != j.st.BatchTime {
			return true
		}
	}
	return false
}

// emitOuter emits rows idx (ascending) of one side padded with nulls for
// the other.
func (j *streamJoin) emitOuter(sr *sideRows, left bool, idx []int) error {
	s, other := j.l, j.r
	if !left {
		s, other = j.r, j.l
	}
	recs, err := j.gather(sr, idx, false)
	if err != nil {
		return err
	}
	defer releaseRecords(recs)
	nu := len(s.sch.Fields())
	for _, rec := range recs {
		n := int(rec.NumRows())
		nulls := make([]arrow.Array, len(other.sch.Fields()))
		for i, f := range other.sch.Fields() {
			nulls[i] = array.MakeArrayOfNull(j.mem, f.Type, n)
		}
		var cols []arrow.Array
		if left {
			cols = append(append(cols, rec.Columns()[:nu]...), nulls...)
		} else {
			cols = append(append(cols, nulls...), rec.Columns()[:nu]...)
		}
		j.out = append(j.out, array.NewRecord(j.schema, cols, int64(n)))
		releaseAll(nulls)
	}
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
