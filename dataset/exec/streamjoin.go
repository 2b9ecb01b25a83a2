package exec

// Stream-stream join.
//
// Each side's rows live in a state store of their own (operator
// "<op>-left" / "<op>-right", key groups [lo, hi)), keyed by (sequence
// number, event time) with the row's columns, whether it has matched, and
// when its join key was last seen as values. One batch, per task:
//
//	lnew, rnew := this batch's rows of the task's key groups, each side's
//	              as a hash table on its join keys
//	lold, rold := the stored rows (state version V), met a chunk at a time:
//	              the chunks kept after the last batch when the store is
//	              a warm memStore (state.InMemory), else a scan of the
//	              store: of a log store (an inner join's side without a
//	              TTL), which holds the very records the join put; on the
//	              disk backend (unless the join has both a time bound and a
//	              TTL), while the store keeps its indexes (Store.Indexed:
//	              its rows stay for many batches), only the stored rows
//	              whose join key a new row of the other side (with a TTL:
//	              of either side) has, read through the store's part index
//	              on the join key (storedIndexed: no other stored row can
//	              pair or change in this batch)
//	pairs      := rold ⋈ lnew, then lnew ⋈ rnew, then lold ⋈ rnew: each
//	              stored chunk probes the other side's new rows (keys, then
//	              the condition), and the chunk's fate is settled before
//	              the next one is read
//	emit pairs (inner, outer), or each left row the first time it matches (semi)
//	evict      := left rows with t + Upper <= watermark, right rows with
//	              t - Lower <= watermark (no later row can match them), and
//	              rows whose key was not seen for TTL of batch time; with
//	              an indexed store one EvictWhere through its time index on
//	              the event time (and, for an outer side, a ScanWhere of
//	              the evicted rows first), or a ScanWhere of its index on
//	              the last-seen time (a TTL without a time bound)
//	emit the evicted rows of an outer side that never matched, null-padded,
//	              after every pair (left side, then right)
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
//     (= arrival order, as sequence numbers grow), and pairs come out in
//     probe order (the stored rows' order, whatever their chunks): the
//     output order depends only on input and state, warm, loaded or on
//     disk.

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
	keyCols []*expr.Expr // the join keys, as the hash tables take them
	timeCol int          // -1: none
	unit    arrow.TimeUnit
	ext     *arrow.Schema // sch + seq, matched, seen, t
	spec    state.StoreSpec
	store   state.Store
	// indexed: the store is on disk and indexed by join key (PartKey) and
	// time (TimeColumn: event time, or last-seen time for a TTL without a
	// time bound), and keeps the indexes now (Store.Indexed): a batch
	// reads the stored rows its new rows can match or renew and the rows
	// it evicts, not every row (storedIndexed).
	indexed bool
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

// joinTimeKey is the event-time column of joinKeySchema.
const joinTimeKey = 1

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
		s.keyCols = append(s.keyCols, expr.Col(k))
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
		Lo: j.lo, Hi: j.hi, KeySchema: joinKeySchema, ValueSchema: arrow.NewSchema(vals, nil), Allocator: j.mem,
		// Rows are put once, by ascending sequence number, and read back
		// by Scan only; a changed row's put (matched, seen) is the rare
		// overwrite. The watermark evicts by __t (EvictLive: the join
		// names the rows, having read them all).
		Log: true}
	if j.st.Provider != nil && j.indexes(j.st.Provider) {
		// Indexed by join key and by event time, or without a time
		// bound by last-seen time (storedIndexed).
		for _, k := range s.keys {
			s.spec.PartKey = append(s.spec.PartKey, s.sch.Field(k).Name)
		}
		switch {
		case timeCol != "":
			s.spec.TimeColumn = joinKeySchema.Field(joinTimeKey).Name
		case j.spec.TTL > 0:
			s.spec.TimeColumn = "__seen"
		}
	}
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

// fresh is one side's rows of this batch, as record chunks in the ext
// schema (extRow: the row's index among them), with per-row bookkeeping.
type fresh struct {
	chunks  []arrow.Record
	start   []int // start[i]: index of chunks[i]'s first row; the last is n
	n       int
	matched []bool  // matched in this batch
	seen    []int64 // when the row's join key was last seen (the batch time)
	seq, t  []int64
	semi    []int // left rows a semi join emits, in first-match order
}

// oldSide gathers what a batch does to one side's stored rows, which it
// meets chunk by chunk (the rows kept after the last batch, or a scan of
// the store) and never holds all at once unless it keeps them for the next
// batch: the keys to delete, the rows to put (changed stored rows, then
// the batch's rows), the evicted unmatched rows an outer side emits, and,
// with the memory backend, the rows that stay (the next batch's kept
// chunks, in key order).
type oldSide struct {
	goneSeq, goneT []int64
	// lateSeq and lateT are the stored rows the time bound evicts, every
	// row below lateBelow: one EvictLive, which the state records as such
	// instead of a tombstone per row.
	lateSeq, lateT []int64
	lateBelow      int64
	// With an indexed store: evictBelow (> MinInt64) is the EvictWhere
	// bound on the time key that replaces lateSeq, and matchedLate the
	// rows below it that matched in this batch (no outer row for them).
	evictBelow   int64
	matchedLate  map[int64]bool
	putKeys, put []arrow.Record
	outer        []arrow.Record // ext rows
	keep         bool
	kept         []arrow.Record
	evicted      int64
}

func (o *oldSide) release() {
	releaseRecords(o.putKeys)
	releaseRecords(o.put)
	releaseRecords(o.outer)
	releaseRecords(o.kept)
}

// maxKeptChunks bounds the chunks a side keeps between batches: past it
// they are copied into one record (a batch adds a few chunks; eviction by
// time retires whole chunks, so this is rare).
const maxKeptChunks = 64

func (j *streamJoin) run(ctx context.Context) error {
	// The rows each side kept after the last batch, when its store is warm
	// in memory: no scan of the store needed.
	var kept [2][]arrow.Record
	var olds [2]*oldSide
	defer func() {
		for i := range kept {
			releaseRecords(kept[i])
			if olds[i] != nil {
				olds[i].release()
			}
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
		// A side whose rows do not stay long keeps no indexes (the disk
		// backend's LogIndexes): one scan a batch costs it less.
		s.indexed = len(s.spec.PartKey) > 0 && st.Indexed()
		s.store, kept[i] = st, aux
		// A warm memStore's rows that stay are kept for the next batch; a
		// log store holds them itself (a copy kept here would be a second
		// one once either compacts), and a disk-backed store is scanned
		// again, so that memory holds a batch's rows and one chunk of the
		// state, not the state.
		olds[i] = &oldSide{keep: state.InMemory(st), evictBelow: math.MinInt64}
	}
	committed := false
	defer func() {
		for i, s := range []*joinSide{j.l, j.r} {
			if committed {
				var survivors []arrow.Record
				if olds[i].keep {
					survivors, olds[i].kept = olds[i].kept, nil
					if survivors == nil {
						survivors = []arrow.Record{}
					}
				}
				stores.Keep(s.store, survivors)
			} else if s.store != nil {
				s.store.Close()
			}
			s.store = nil
		}
	}()
	var news [2]*fresh
	defer func() {
		for _, f := range news {
			if f != nil {
				releaseRecords(f.chunks)
			}
		}
	}()
	for i, s := range []*joinSide{j.l, j.r} {
		if news[i], err = j.loadNew(ctx, s); err != nil {
			return err
		}
	}
	ln, rn := news[0], news[1]
	// The keys of this batch's rows, for the TTL's last-seen times.
	var seenKeys *keyGrouper
	if j.spec.TTL > 0 {
		if seenKeys, err = j.newKeys(ln, rn); err != nil {
			return err
		}
	}
	// Each side's new rows as a hash table, probed by the other side's
	// stored rows chunk by chunk and (the right's) by the new left rows:
	// pairs come out in probe order, so in the order of the stored rows
	// whatever their chunks, and the same on both backends (invariant 4).
	// A table nothing would probe is not built: q7's stored right rows
	// (a window's max is evicted as it arrives) are none, and its left
	// side's new rows a million and a half a batch.
	var tl, tr *JoinTable
	defer func() { tl.Release(); tr.Release() }()
	if ln.n > 0 && j.r.store.Len() > 0 {
		if tl, err = NewJoinTable(ctx, j.mem, j.l.ext, ln.chunks, j.l.keyCols); err != nil {
			return err
		}
	}
	if rn.n > 0 && (ln.n > 0 || j.l.store.Len() > 0) {
		if tr, err = NewJoinTable(ctx, j.mem, j.r.ext, rn.chunks, j.r.keyCols); err != nil {
			return err
		}
	}
	// Stored right rows with the new left rows, then new with new, then
	// stored left rows with the new right rows.
	if err := j.stored(ctx, j.r, kept[1], tl, ln, rn, seenKeys, olds[1]); err != nil {
		return err
	}
	if tr != nil {
		for _, c := range ln.chunks {
			ps, err := j.probe(ctx, c, j.l, tr)
			if err != nil {
				return err
			}
			j.pairsOf(ps, ln.matched, rn.matched, &ln.semi)
		}
	}
	if len(ln.semi) > 0 {
		if err := j.emitRows(ln.chunks, ln.start, ln.semi); err != nil {
			return err
		}
	}
	if err := j.stored(ctx, j.l, kept[0], tr, rn, ln, seenKeys, olds[0]); err != nil {
		return err
	}
	// The batch's rows go into state, or are gone at once.
	for i, s := range []*joinSide{j.l, j.r} {
		if err := j.settleNew(s, news[i], olds[i]); err != nil {
			return err
		}
	}
	var evicted int64
	for i, s := range []*joinSide{j.l, j.r} {
		if err := j.write(s, olds[i]); err != nil {
			return err
		}
		evicted += olds[i].evicted
	}
	// Outer rows after every pair: the left side's, then the right's,
	// each stored ones then new ones.
	for i, s := range []*joinSide{j.l, j.r} {
		j.emitOuter(s, olds[i].outer)
	}
	for _, s := range []*joinSide{j.l, j.r} {
		if err := s.store.Commit(j.st.Version + 1); err != nil {
			return fmt.Errorf("%s side: %w", s.name, err)
		}
	}
	for i, o := range olds {
		if o.keep && len(o.kept) > maxKeptChunks {
			s := []*joinSide{j.l, j.r}[i]
			all, err := ConcatRecords(j.mem, s.ext, o.kept)
			if err != nil {
				return err
			}
			releaseRecords(o.kept)
			// Numbered once here, not by every later batch (eachOld).
			n := int(all.NumRows())
			cols := append([]arrow.Array{}, all.Columns()...)
			row := rowIndexes(0, n)
			cols[len(s.sch.Fields())+extRow] = row
			o.kept = []arrow.Record{array.NewRecord(s.ext, cols, int64(n))}
			row.Release()
			all.Release()
		}
	}
	committed = true
	j.st.Metrics.AddState(j.st.Operator, int64(j.l.store.Len()+j.r.store.Len()), j.l.store.SizeBytes()+j.r.store.SizeBytes())
	if evicted > 0 {
		j.st.Metrics.AddEvicted(j.st.Operator, evicted)
	}
	return nil
}

// probe joins rec, rows of side s (ext schema), with table, the other
// side's new rows: pairs of left ext ++ right ext columns, in rec's order.
func (j *streamJoin) probe(ctx context.Context, rec arrow.Record, s *joinSide, table *JoinTable) ([]arrow.Record, error) {
	return drain(ctx, func() (Operator, error) {
		return NewHashJoinTable(j.mem, NewRecords(s.ext, []arrow.Record{rec}), table, s.keyCols, JoinInner, s == j.r, j.spec.Cond)
	})
}

// pairsOf takes pair records (left ext ++ right ext) apart: it marks the
// rows that matched in lm and rm (by the pairs' extRow: an old chunk's
// flags or a side's new rows'), appends to semi the left rows a semi join
// emits because they matched for the first time, emits the pairs of the
// other joins, and releases ps.
func (j *streamJoin) pairsOf(ps []arrow.Record, lm, rm []bool, semi *[]int) {
	nl, nr := len(j.l.sch.Fields()), len(j.r.sch.Fields())
	track := j.spec.How != JoinInner // inner joins never look at matched
	for _, p := range ps {
		ls := p.Column(nl + extRow).(*array.Int64).Int64Values()
		rs := p.Column(nl + extCols + nr + extRow).(*array.Int64).Int64Values()
		for k := range ls {
			li, ri := int(ls[k]), int(rs[k])
			if j.spec.How == JoinSemi && !lm[li] {
				*semi = append(*semi, li)
			}
			if track {
				lm[li], rm[ri] = true, true
			}
		}
		if j.spec.How != JoinSemi {
			cols := append(append([]arrow.Array{}, p.Columns()[:nl]...), p.Columns()[nl+extCols:nl+extCols+nr]...)
			j.out = append(j.out, array.NewRecord(j.schema, cols, p.NumRows()))
		}
		p.Release()
	}
}

// eachOld calls fn with side s's stored rows in key (= arrival) order, in
// ext records whose extRow is a row's index in its record: the records
// kept after the last batch when the store is warm in memory, else a scan
// of the store.
func (j *streamJoin) eachOld(s *joinSide, kept []arrow.Record, fn func(arrow.Record) error) error {
	nu := len(s.sch.Fields())
	ext := func(cols []arrow.Array, n int) error {
		row := rowIndexes(0, n)
		cols[nu+extRow] = row
		rec := array.NewRecord(s.ext, cols, int64(n))
		row.Release()
		err := fn(rec)
		rec.Release()
		return err
	}
	if kept != nil && rowsOf(kept) == s.store.Len() {
		for _, k := range kept {
			if localRows(k.Column(nu + extRow)) {
				// Kept whole from a stored chunk: numbered already, so
				// a chunk that stays batch after batch costs nothing.
				if err := fn(k); err != nil {
					return err
				}
				continue
			}
			if err := ext(append([]arrow.Array{}, k.Columns()...), int(k.NumRows())); err != nil {
				return err
			}
		}
		return nil
	}
	return s.store.Scan(s.extRecords(fn))
}

// extRecords turns a store scan's chunks into ext records (extRow: the
// row's index in its record) for fn.
func (s *joinSide) extRecords(fn func(arrow.Record) error) func(k, v arrow.Record) error {
	nu := len(s.sch.Fields())
	return func(k, v arrow.Record) error {
		n := int(k.NumRows())
		if n == 0 {
			return nil
		}
		cols := append([]arrow.Array{}, v.Columns()[:nu]...)
		row := rowIndexes(0, n)
		cols = append(cols, k.Column(0), v.Column(nu), v.Column(nu+1), k.Column(1), row)
		rec := array.NewRecord(s.ext, cols, int64(n))
		row.Release()
		err := fn(rec)
		rec.Release()
		return err
	}
}

// indexes reports whether the join's stores should be indexed by join key
// and time: on the disk backend, where a scan reads every row from disk,
// unless the join has both a time bound and a TTL (a store keeps one time
// index: the event time's, or the last-seen time's).
func (j *streamJoin) indexes(stores state.Provider) bool {
	return stores.Backend() == state.BackendDisk && (j.spec.TTL == 0 || j.spec.LeftTime == "")
}

// stored does a batch's work on side s's stored rows: with an indexed
// store, on the rows the batch's new rows can match or touch
// (storedIndexed); else on every stored row (eachOld). other is the other
// side's new rows, same s's own.
func (j *streamJoin) stored(ctx context.Context, s *joinSide, kept []arrow.Record, table *JoinTable, other, same *fresh, seenKeys *keyGrouper, o *oldSide) error {
	if !s.indexed {
		return j.eachOld(s, kept, func(c arrow.Record) error {
			return j.old(ctx, s, c, table, other, seenKeys, o)
		})
	}
	return j.storedIndexed(ctx, s, table, other, same, seenKeys, o)
}

// storedIndexed is stored's work read through the store's indexes: the
// stored rows whose join key is one of the other side's new rows' (with a
// TTL, of either side's: their last-seen time changes) by ScanPart, in key
// order, as a scan would meet them, so pairs come out in the same order;
// then, when the watermark evicts, the evicted rows of an outer side that
// never matched (ScanWhere, in key order), the eviction itself being one
// EvictWhere in write; or, with a TTL, the rows it expires (ScanWhere on
// the last-seen time, in key order). Every other stored row is untouched
// by the batch: it pairs with nothing new, and nothing else changes it.
func (j *streamJoin) storedIndexed(ctx context.Context, s *joinSide, table *JoinTable, other, same *fresh, seenKeys *keyGrouper, o *oldSide) error {
	left := s == j.l
	limit, bounded := j.evictAt(left)
	if bounded && limit == math.MaxInt64 {
		// Every stored row is evicted: there is no bound above them to
		// evict by, so the rows are read and go by name, as eachOld's do.
		return s.store.Scan(s.extRecords(func(c arrow.Record) error {
			return j.old(ctx, s, c, table, other, nil, o)
		}))
	}
	ttl := j.spec.TTL > 0
	if (table != nil || (ttl && other.n+same.n > 0)) && s.store.Len() > 0 {
		sides, froms := []*joinSide{j.l}, []*fresh{other}
		if s == j.l {
			sides[0] = j.r
		}
		if ttl {
			sides, froms = append(sides, s), append(froms, same)
		}
		parts, err := j.partsOf(s, sides, froms)
		if err != nil {
			return err
		}
		err = s.store.ScanPart(parts, s.extRecords(func(c arrow.Record) error {
			return j.old(ctx, s, c, table, other, seenKeys, o)
		}))
		parts.Release()
		if err != nil {
			return err
		}
	}
	if ttl && !bounded {
		return j.expire(s, seenKeys, o)
	}
	if !bounded {
		return nil
	}
	o.evictBelow = limit + 1
	if !((left && j.nullR) || (!left && j.nullL)) {
		return nil
	}
	nu := len(s.sch.Fields())
	return s.store.ScanWhere(joinTimeKey, o.evictBelow, s.extRecords(func(c arrow.Record) error {
		m := c.Column(nu + extMatched).(*array.Boolean)
		seq := c.Column(nu + extSeq).(*array.Int64).Int64Values()
		var rows []int
		for k := range seq {
			if !m.Value(k) && !o.matchedLate[seq[k]] {
				rows = append(rows, k)
			}
		}
		if len(rows) == 0 {
			return nil
		}
		rec, err := TakeRecord(j.mem, c, rows)
		if err != nil {
			return err
		}
		o.outer = append(o.outer, rec)
		return nil
	}))
}

// expire does a TTL's eviction on indexed side s: the stored rows whose
// join key was last seen TTL or more ago (ScanWhere on the last-seen
// time) are gone, as old has it, but for those whose key the batch saw
// (seenKeys: ScanPart read them and old renewed them), and without an
// outer row (state a TTL drops is dropped, as Flink's).
func (j *streamJoin) expire(s *joinSide, seenKeys *keyGrouper, o *oldSide) error {
	nu, nk := len(s.sch.Fields()), len(joinKeySchema.Fields())
	// seen <= BatchTime - TTL, as old has it.
	return s.store.ScanWhere(nk+nu+1, j.st.BatchTime-j.spec.TTL+1, s.extRecords(func(c arrow.Record) error {
		seq := c.Column(nu + extSeq).(*array.Int64).Int64Values()
		t := c.Column(nu + extTime).(*array.Int64).Int64Values()
		cols := make([]arrow.Array, len(s.keys))
		for i, k := range s.keys {
			cols[i] = c.Column(k)
		}
		ids := make([]int32, len(seq))
		seenKeys.find(cols, ids)
		for k, id := range ids {
			if id < 0 {
				o.goneSeq, o.goneT = append(o.goneSeq, seq[k]), append(o.goneT, t[k])
				o.evicted++
			}
		}
		return nil
	}))
}

// partsOf is the join keys of the rows of froms (the batch's new rows of
// sides[i] each) as one record, ScanPart's parts for s's store (the types
// are s's: the join checked the two sides' are equal), without the rows
// with a null key: those match nothing and renew nothing (keyGrouper.find
// finds no null key), and a stored row with one is settled by eviction
// alone.
func (j *streamJoin) partsOf(s *joinSide, sides []*joinSide, froms []*fresh) (arrow.Record, error) {
	fields := make([]arrow.Field, len(s.keys))
	for i, k := range s.keys {
		fields[i] = s.sch.Field(k)
		fields[i].Nullable = true
	}
	sch := arrow.NewSchema(fields, nil)
	var recs []arrow.Record
	for i, f := range froms {
		from := sides[i]
		for _, rec := range f.chunks {
			cols := make([]arrow.Array, len(from.keys))
			nulls := false
			for i, k := range from.keys {
				cols[i] = rec.Column(k)
				nulls = nulls || cols[i].NullN() > 0
			}
			keys := array.NewRecord(sch, cols, rec.NumRows())
			if nulls {
				var valid []int
				for r := range int(rec.NumRows()) {
					if !slices.ContainsFunc(cols, func(a arrow.Array) bool { return a.IsNull(r) }) {
						valid = append(valid, r)
					}
				}
				taken, err := TakeRecord(j.mem, keys, valid)
				keys.Release()
				if err != nil {
					releaseRecords(recs)
					return nil, err
				}
				keys = taken
			}
			recs = append(recs, keys)
		}
	}
	defer releaseRecords(recs)
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	return ConcatRecords(j.mem, sch, recs)
}

// localRows reports whether a record's extRow column is 0, 1, ..., n-1.
func localRows(a arrow.Array) bool {
	for i, v := range a.(*array.Int64).Int64Values() {
		if v != int64(i) {
			return false
		}
	}
	return true
}

// old does a batch's work on chunk c of side s's stored rows: its pairs
// with the other side's new rows (table, other), the TTL's last-seen
// times, then what becomes of each row (evicted, emitted by a semi join,
// changed, kept), gathered into o.
func (j *streamJoin) old(ctx context.Context, s *joinSide, c arrow.Record, table *JoinTable, other *fresh, seenKeys *keyGrouper, o *oldSide) error {
	nu := len(s.sch.Fields())
	n := int(c.NumRows())
	left := s == j.l
	// Only the joins that track matches (outer, semi) and TTLs change a
	// stored row's values: an inner join without a TTL copies nothing.
	var matched, was []bool // nil: no tracking, all false
	if j.spec.How != JoinInner {
		matched = make([]bool, n)
		m := c.Column(nu + extMatched).(*array.Boolean)
		for i := range matched {
			matched[i] = m.Value(i)
		}
		was = append([]bool(nil), matched...)
	}
	wasSeen := c.Column(nu + extSeen).(*array.Int64).Int64Values()
	seen := wasSeen
	if seenKeys != nil {
		seen = append([]int64(nil), wasSeen...)
	}
	t := c.Column(nu + extTime).(*array.Int64).Int64Values()
	seq := c.Column(nu + extSeq).(*array.Int64).Int64Values()
	if table != nil {
		ps, err := j.probe(ctx, c, s, table)
		if err != nil {
			return err
		}
		if left {
			var semi []int
			j.pairsOf(ps, matched, other.matched, &semi)
			if len(semi) > 0 {
				if err := j.emitRows([]arrow.Record{c}, []int{0, n}, semi); err != nil {
					return err
				}
			}
		} else {
			j.pairsOf(ps, other.matched, matched, &other.semi)
		}
	}
	if seenKeys != nil {
		cols := make([]arrow.Array, len(s.keys))
		for i, k := range s.keys {
			cols[i] = c.Column(k)
		}
		ids := make([]int32, n)
		seenKeys.find(cols, ids)
		for k, id := range ids {
			if id >= 0 {
				seen[k] = j.st.BatchTime
			}
		}
	}
	limit, bounded := j.evictAt(left)
	outer := (left && j.nullR) || (!left && j.nullL)
	var outerRows, changed, stay []int
	for k := 0; k < n; k++ {
		switch {
		case bounded && t[k] <= limit && s.indexed && limit < math.MaxInt64:
			// Evicted by storedIndexed's EvictWhere, its outer row (if
			// any) emitted by its ScanWhere, which must skip it if it
			// matched now.
			if outer && matched[k] {
				if o.matchedLate == nil {
					o.matchedLate = map[int64]bool{}
				}
				o.matchedLate[seq[k]] = true
			}
			continue
		case bounded && t[k] <= limit:
			if outer && !matched[k] {
				outerRows = append(outerRows, k)
			}
			if limit < math.MaxInt64 {
				o.lateSeq, o.lateT, o.lateBelow = append(o.lateSeq, seq[k]), append(o.lateT, t[k]), limit+1
				continue
			}
		case j.spec.TTL > 0 && seen[k] <= j.st.BatchTime-j.spec.TTL:
			o.evicted++
		case left && j.spec.How == JoinSemi && matched[k]:
			// emitted: a semi join row never emits again
		default:
			stay = append(stay, k)
			if (matched != nil && matched[k] != was[k]) || seen[k] != wasSeen[k] {
				changed = append(changed, k)
			}
			continue
		}
		o.goneSeq, o.goneT = append(o.goneSeq, seq[k]), append(o.goneT, t[k])
	}
	if len(outerRows) > 0 {
		rec, err := TakeRecord(j.mem, c, outerRows)
		if err != nil {
			return err
		}
		o.outer = append(o.outer, rec)
	}
	one := []int{0, n}
	if len(changed) > 0 {
		if err := j.addPuts(s, o, []arrow.Record{c}, one, changed, matched, seen); err != nil {
			return err
		}
	}
	if o.keep && len(stay) > 0 {
		recs, err := j.gather([]arrow.Record{c}, one, stay, true)
		if err != nil {
			return err
		}
		if len(changed) > 0 {
			recs = withBookkeeping(j.mem, recs, nu, stay, matched, seen)
		}
		o.kept = append(o.kept, recs...)
	}
	return nil
}

// settleNew decides the fate of side s's new rows once every pair is
// known: into state (and kept, with the memory backend), or gone at once
// (behind the watermark already, or emitted by a semi join).
func (j *streamJoin) settleNew(s *joinSide, f *fresh, o *oldSide) error {
	left := s == j.l
	limit, bounded := j.evictAt(left)
	outer := (left && j.nullR) || (!left && j.nullL)
	var outerRows, stay []int
	changed := false
	for k := 0; k < f.n; k++ {
		switch {
		case bounded && f.t[k] <= limit:
			if outer && !f.matched[k] {
				outerRows = append(outerRows, k)
			}
		case left && j.spec.How == JoinSemi && f.matched[k]:
		default:
			stay = append(stay, k)
			changed = changed || f.matched[k]
		}
	}
	if len(outerRows) > 0 {
		recs, err := j.gather(f.chunks, f.start, outerRows, false)
		if err != nil {
			return err
		}
		o.outer = append(o.outer, recs...)
	}
	if len(stay) == 0 {
		return nil
	}
	// One copy (or none: whole chunks and long runs are shared) for the
	// store and the kept rows: a log store keeps the records it is put,
	// so both are the same memory.
	recs, err := j.gather(f.chunks, f.start, stay, true)
	if err != nil {
		return err
	}
	if o.keep {
		for _, r := range recs {
			r.Retain()
		}
		kept := recs
		if changed {
			kept = withBookkeeping(j.mem, slices.Clone(recs), len(s.sch.Fields()), stay, f.matched, f.seen)
		}
		o.kept = append(o.kept, kept...)
	}
	j.putRecords(s, o, recs, stay, f.matched, f.seen)
	return nil
}

// addPuts adds rows idx (ascending) of chunks to o's puts, with their
// matched and seen values of now (indexed like idx's rows).
func (j *streamJoin) addPuts(s *joinSide, o *oldSide, chunks []arrow.Record, start, idx []int, matched []bool, seen []int64) error {
	recs, err := j.gather(chunks, start, idx, false)
	if err != nil {
		return err
	}
	j.putRecords(s, o, recs, idx, matched, seen)
	return nil
}

// putRecords adds recs, rows idx of a side's rows gathered in order, to o's
// puts with their matched and seen values of now, and releases recs.
func (j *streamJoin) putRecords(s *joinSide, o *oldSide, recs []arrow.Record, idx []int, matched []bool, seen []int64) {
	nu := len(s.sch.Fields())
	off := 0
	for _, rec := range recs {
		n := int(rec.NumRows())
		mc, sc := bookkeeping(j.mem, idx[off:off+n], matched, seen)
		off += n
		vals := array.NewRecord(s.spec.ValueSchema, append(append([]arrow.Array{}, rec.Columns()[:nu]...), mc, sc), int64(n))
		keys := array.NewRecord(joinKeySchema, []arrow.Array{rec.Column(nu + extSeq), rec.Column(nu + extTime)}, int64(n))
		releaseAll([]arrow.Array{mc, sc})
		rec.Release()
		o.putKeys, o.put = append(o.putKeys, keys), append(o.put, vals)
	}
}

// write deletes a side's gone stored rows from its store and puts its
// changed and new rows.
func (j *streamJoin) write(s *joinSide, o *oldSide) error {
	if o.evictBelow > math.MinInt64 {
		// Through the time index: every stored row below the bound,
		// recorded as one eviction, as EvictLive below records it.
		if _, err := s.store.EvictWhere(joinTimeKey, o.evictBelow); err != nil {
			return err
		}
	}
	if len(o.lateSeq) > 0 {
		keys := joinKeys(o.lateSeq, o.lateT)
		err := s.store.EvictLive(keys, joinTimeKey, o.lateBelow) // every stored row below it: this batch read them all
		keys.Release()
		if err != nil {
			return err
		}
	}
	if len(o.goneSeq) > 0 {
		keys := joinKeys(o.goneSeq, o.goneT)
		err := s.store.DeleteLive(keys) // rows this batch read from the store
		keys.Release()
		if err != nil {
			return err
		}
	}
	for i := range o.put {
		if err := s.store.Put(o.putKeys[i], o.put[i], nil); err != nil {
			return err
		}
	}
	return nil
}

// bookkeeping returns the matched (nil: all false) and seen columns of
// rows idx.
func bookkeeping(mem memory.Allocator, idx []int, matched []bool, seen []int64) (arrow.Array, arrow.Array) {
	m := make([]bool, len(idx))
	sn := make([]int64, len(idx))
	for i, k := range idx {
		m[i], sn[i] = matched != nil && matched[k], seen[k]
	}
	return boolArray(mem, m), int64Array(sn)
}

// withBookkeeping replaces the matched and seen columns of recs (rows idx,
// in order) with their values of now, releasing recs.
func withBookkeeping(mem memory.Allocator, recs []arrow.Record, nu int, idx []int, matched []bool, seen []int64) []arrow.Record {
	off := 0
	for i, rec := range recs {
		n := int(rec.NumRows())
		mc, sc := bookkeeping(mem, idx[off:off+n], matched, seen)
		off += n
		cols := append([]arrow.Array{}, rec.Columns()...)
		cols[nu+extMatched], cols[nu+extSeen] = mc, sc
		recs[i] = array.NewRecord(rec.Schema(), cols, rec.NumRows())
		releaseAll([]arrow.Array{mc, sc})
		rec.Release()
	}
	return recs
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

// loadNew reads side s's rows of this batch into ext records.
func (j *streamJoin) loadNew(ctx context.Context, s *joinSide) (*fresh, error) {
	f := &fresh{start: []int{0}}
	ok := false
	defer func() {
		if !ok {
			releaseRecords(f.chunks)
		}
	}()
	var in []arrow.Record
	defer func() { releaseRecords(in) }()
	for {
		r, err := s.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if r.NumRows() == 0 {
			r.Release()
			continue
		}
		in = append(in, r)
		f.n += int(r.NumRows())
	}
	// The bookkeeping of all rows in one allocation each; the chunks'
	// columns are views of it (int64Array), not copies.
	n := f.n
	f.seq, f.t, f.seen = make([]int64, n), make([]int64, n), make([]int64, n)
	row := make([]int64, n)
	for i := range n {
		f.seq[i] = j.st.Version<<32 | int64(i)
		f.seen[i] = j.st.BatchTime
		row[i] = int64(i)
	}
	a := 0
	for _, r := range in {
		k := int(r.NumRows())
		b := a + k
		if s.timeCol >= 0 {
			c := r.Column(s.timeCol).(*array.Timestamp)
			rt := f.t[a:b]
			for i := range rt {
				if c.IsNull(i) {
					rt[i] = math.MinInt64 // matches no time range: evicted first
				} else {
					rt[i] = ToMicros(int64(c.Value(i)), s.unit)
				}
			}
		}
		extra := []arrow.Array{int64Array(f.seq[a:b:b]), boolArray(j.mem, make([]bool, k)),
			int64Array(f.seen[a:b:b]), int64Array(f.t[a:b:b]), int64Array(row[a:b:b])}
		f.chunks = append(f.chunks, array.NewRecord(s.ext, append(append([]arrow.Array{}, r.Columns()...), extra...), int64(k)))
		releaseAll(extra)
		f.start = append(f.start, b)
		a = b
	}
	f.matched = make([]bool, f.n)
	ok = true
	return f, nil
}

func rowsOf(recs []arrow.Record) int {
	n := 0
	for _, r := range recs {
		n += int(r.NumRows())
	}
	return n
}

// newKeys groups the join keys of this batch's rows of both sides.
func (j *streamJoin) newKeys(ln, rn *fresh) (*keyGrouper, error) {
	g, err := newKeyGrouper(j.keyTypes)
	if err != nil {
		return nil, err
	}
	for i, f := range []*fresh{ln, rn} {
		s := []*joinSide{j.l, j.r}[i]
		for _, rec := range f.chunks {
			cols := make([]arrow.Array, len(s.keys))
			for c, k := range s.keys {
				cols[c] = rec.Column(k)
			}
			g.assign(cols, make([]uint32, rec.NumRows()))
		}
	}
	return g, nil
}

// gather returns rows idx (ascending) of chunks (start: their first rows'
// indexes, then the total) as records, in order: a chunk all of whose rows
// are asked for as it is, a run of one chunk's rows as a slice (with
// compact, only when the run is at least half the chunk, so a few rows
// kept for later batches do not pin a whole chunk's memory), else a copy.
func (j *streamJoin) gather(chunks []arrow.Record, start, idx []int, compact bool) ([]arrow.Record, error) {
	var out []arrow.Record
	c := 0
	for a := 0; a < len(idx); {
		for start[c+1] <= idx[a] {
			c++
		}
		lo, hi := start[c], start[c+1]
		b := a
		for b < len(idx) && idx[b] < hi {
			b++
		}
		n, first, last := b-a, idx[a]-lo, idx[b-1]-lo
		chunk := chunks[c]
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

// emitRows emits rows idx (in that order) of left-side chunks: a semi
// join's output.
func (j *streamJoin) emitRows(chunks []arrow.Record, start, idx []int) error {
	nl := len(j.l.sch.Fields())
	if slices.IsSorted(idx) {
		recs, err := j.gather(chunks, start, idx, false)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			j.out = append(j.out, projectCols(rec, j.schema, 0, nl))
		}
		return nil
	}
	all, err := ConcatRecords(j.mem, j.l.ext, chunks)
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

// emitOuter emits ext rows of side s padded with nulls for the other side.
func (j *streamJoin) emitOuter(s *joinSide, recs []arrow.Record) {
	other := j.r
	if s == j.r {
		other = j.l
	}
	nu := len(s.sch.Fields())
	for _, rec := range recs {
		n := int(rec.NumRows())
		nulls := make([]arrow.Array, len(other.sch.Fields()))
		for i, f := range other.sch.Fields() {
			nulls[i] = array.MakeArrayOfNull(j.mem, f.Type, n)
		}
		var cols []arrow.Array
		if s == j.l {
			cols = append(append(cols, rec.Columns()[:nu]...), nulls...)
		} else {
			cols = append(append(cols, nulls...), rec.Columns()[:nu]...)
		}
		j.out = append(j.out, array.NewRecord(j.schema, cols, int64(n)))
		releaseAll(nulls)
	}
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

// joinKeys is the store keys (joinKeySchema) of rows seq, t (views of them).
func joinKeys(seq, t []int64) arrow.Record {
	cols := []arrow.Array{int64Array(seq), int64Array(t)}
	defer releaseAll(cols)
	return array.NewRecord(joinKeySchema, cols, int64(len(seq)))
}

// rowIndexes is the int64 array from, from+1, ..., from+n-1.
func rowIndexes(from, n int) arrow.Array {
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = int64(from + i)
	}
	return int64Array(idx)
}

// int64Array is an int64 array over v's memory, not a copy: v must not
// change after (and the array keeps it alive, as Go memory).
func int64Array(v []int64) arrow.Array {
	d := array.NewData(arrow.PrimitiveTypes.Int64, len(v),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(v))}, nil, 0, 0)
	defer d.Release()
	return array.NewInt64Data(d)
}

func boolArray(mem memory.Allocator, v []bool) arrow.Array {
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}
