package exec

// Hash join.
//
// Main loop:
//
//	build: read the whole build side; concatenate its columns; number its key
//	       combinations with a keyGrouper (keys.go) and chain the rows of each
//	       group: head[group] -> next[row] -> ... -> -1
//	probe: per probe batch, find each row's group (-1 if a key is null or
//	       unseen); walk the chain to produce (probe row, build row) pairs,
//	       plus (probe row, null) for unmatched rows of an outer probe side;
//	       gather output columns with typed takes, at most joinOutputChunk rows
//	       per record; mark matched build groups.
//	end:   when the build side is outer (or is the left side of a semi/anti
//	       join) emit the build rows whose group was (semi) or was not
//	       (outer, anti) matched, with the probe side null.
//
// Invariants:
//  1. Null keys never match: a null key row is found in no group, and build
//     rows with a null key sit in groups no probe can find.
//  2. Output columns are left then right (semi/anti: left only), whichever
//     side is built.
//  3. The whole build side is held in memory; a probe batch's matches are
//     materialised before they are cut into output records.
//  4. Key types must be equal, except: signed integers of any widths (compared
//     as int64), unsigned integers of any widths (as uint64), float32 with
//     float64, string with large_string, binary with large_binary. Mixing
//     signed and unsigned, or decimals of different precision/scale, is an
//     error naming both keys (cast one side first).
//  5. With a residual condition (NewHashJoinWhere) a pair matches only when
//     the condition is true over the pair's left and right columns (null is
//     false); outer, semi and anti joins then count matches per row, not per
//     key group.

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

// JoinType is the SQL join kind.
type JoinType string

// Join types.
const (
	JoinInner JoinType = "inner"
	JoinLeft  JoinType = "left"
	JoinRight JoinType = "right"
	JoinFull  JoinType = "full"
	JoinSemi  JoinType = "semi" // left rows with at least one match, once each
	JoinAnti  JoinType = "anti" // left rows with no match (a null key never matches)
)

const joinOutputChunk = 1 << 16

type hashJoinOp struct {
	mem        memory.Allocator
	left       Operator
	right      Operator
	how        JoinType
	buildRight bool
	schema     *arrow.Schema

	build, probe         Operator
	buildKeys, probeKeys []*expr.Expr
	buildTypes           []arrow.DataType
	probeTypes           []arrow.DataType
	keyTypes             []arrow.DataType

	probeOuter, buildOuter bool
	filterOnly             bool // semi/anti

	built     bool
	bcols     []arrow.Array // concatenated build columns
	brows     int
	grouper   *keyGrouper
	bgroup    []uint32 // group of each build row
	head      []int32  // first build row of each group
	next      []int32  // next build row of the same group
	gmatched  []bool   // group matched by some probe row
	probeDone bool

	shared bool // the build side is a JoinTable: not ours to release

	cond     *expr.Expr // residual condition over the pair, or nil
	condSch  *arrow.Schema
	condCols [2][]int // left, right columns the condition reads, in condSch order
	bmatched []bool   // with cond: build row matched by some probe row

	out    []arrow.Record
	err    error
	closed bool
}

func joinKeyTypesCompatible(a, b arrow.DataType) bool {
	if arrow.TypeEqual(a, b) {
		return true
	}
	ka, errA := keyKindOf(a)
	kb, errB := keyKindOf(b)
	if errA != nil || errB != nil || ka != kb {
		return false
	}
	isInt := func(t arrow.DataType) bool {
		switch t.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
			arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
			return true
		}
		return false
	}
	switch ka {
	case kindInt, kindUint:
		return isInt(a) && isInt(b)
	case kindFloat:
		return true
	case kindBytes:
		str := func(t arrow.DataType) bool { return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING }
		return str(a) == str(b)
	}
	return false
}

// NewHashJoin joins left and right on leftKeys[i] = rightKeys[i] (see the file
// comment). buildRight picks the side held in memory. Output fields are left
// then right (semi/anti: left only); fields an outer join can null become
// nullable. It owns both inputs and closes them.
func NewHashJoin(mem memory.Allocator, left, right Operator, leftKeys, rightKeys []*expr.Expr, how JoinType, buildRight bool) (Operator, error) {
	return NewHashJoinWhere(mem, left, right, leftKeys, rightKeys, how, buildRight, nil)
}

// NewHashJoinWhere is NewHashJoin with a residual condition: a boolean
// expression over the columns of both sides (by name; the two sides' names
// must not clash where it reads them), true for the pairs that join.
func NewHashJoinWhere(mem memory.Allocator, left, right Operator, leftKeys, rightKeys []*expr.Expr, how JoinType, buildRight bool, cond *expr.Expr) (Operator, error) {
	if len(leftKeys) == 0 || len(leftKeys) != len(rightKeys) {
		return nil, fmt.Errorf("join: need equally many left and right keys, got %d and %d", len(leftKeys), len(rightKeys))
	}
	j := &hashJoinOp{mem: mem, left: left, right: right, how: how, buildRight: buildRight}
	ls, rs := left.Schema(), right.Schema()
	var ltypes, rtypes []arrow.DataType
	for i := range leftKeys {
		lt, err := leftKeys[i].DataType(ls)
		if err != nil {
			return nil, fmt.Errorf("join key %s: %w", leftKeys[i], err)
		}
		rt, err := rightKeys[i].DataType(rs)
		if err != nil {
			return nil, fmt.Errorf("join key %s: %w", rightKeys[i], err)
		}
		if !joinKeyTypesCompatible(lt, rt) {
			return nil, fmt.Errorf("join: %w: key %s (%s) cannot be compared with %s (%s)",
				expr.ErrType, leftKeys[i], lt, rightKeys[i], rt)
		}
		ltypes, rtypes = append(ltypes, lt), append(rtypes, rt)
	}
	nullLeft, nullRight := false, false
	switch how {
	case JoinInner:
	case JoinLeft:
		nullRight = true
	case JoinRight:
		nullLeft = true
	case JoinFull:
		nullLeft, nullRight = true, true
	case JoinSemi, JoinAnti:
		j.filterOnly = true
	default:
		return nil, fmt.Errorf("join: unknown join type %q", how)
	}
	var fields []arrow.Field
	for _, f := range ls.Fields() {
		f.Nullable = f.Nullable || nullLeft
		fields = append(fields, f)
	}
	if !j.filterOnly {
		for _, f := range rs.Fields() {
			f.Nullable = f.Nullable || nullRight
			fields = append(fields, f)
		}
	}
	j.schema = arrow.NewSchema(fields, nil)
	if buildRight {
		j.build, j.probe, j.buildKeys, j.probeKeys, j.keyTypes = right, left, rightKeys, leftKeys, rtypes
		j.probeOuter, j.buildOuter = nullRight, nullLeft
	} else {
		j.build, j.probe, j.buildKeys, j.probeKeys, j.keyTypes = left, right, leftKeys, rightKeys, ltypes
		j.probeOuter, j.buildOuter = nullLeft, nullRight
	}
	for _, f := range j.build.Schema().Fields() {
		j.buildTypes = append(j.buildTypes, f.Type)
	}
	for _, f := range j.probe.Schema().Fields() {
		j.probeTypes = append(j.probeTypes, f.Type)
	}
	var err error
	if j.grouper, err = newKeyGrouper(j.keyTypes); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if cond != nil {
		if err := j.setCond(cond, ls, rs); err != nil {
			return nil, err
		}
	}
	return j, nil
}

func (j *hashJoinOp) setCond(cond *expr.Expr, ls, rs *arrow.Schema) error {
	var fields []arrow.Field
	seen := map[string]bool{}
	for _, name := range cond.Columns() {
		if seen[name] {
			continue
		}
		seen[name] = true
		li, ri := ls.FieldIndices(name), rs.FieldIndices(name)
		switch {
		case len(li) > 0 && len(ri) > 0:
			return fmt.Errorf("join condition %s: column %q is on both sides; rename one", cond, name)
		case len(li) > 0:
			j.condCols[0] = append(j.condCols[0], li[0])
			fields = append(fields, ls.Field(li[0]))
		case len(ri) > 0:
			j.condCols[1] = append(j.condCols[1], ri[0])
			fields = append(fields, rs.Field(ri[0]))
		default:
			return fmt.Errorf("join condition %s: %w: %q is on neither side", cond, expr.ErrUnknownColumn, name)
		}
	}
	// Left columns first, then right: the order pairs are gathered in.
	var lf, rf []arrow.Field
	for _, i := range j.condCols[0] {
		lf = append(lf, ls.Field(i))
	}
	for _, i := range j.condCols[1] {
		rf = append(rf, rs.Field(i))
	}
	j.condSch = arrow.NewSchema(append(lf, rf...), nil)
	t, err := cond.DataType(j.condSch)
	if err != nil {
		return fmt.Errorf("join condition %s: %w", cond, err)
	}
	if t.ID() != arrow.BOOL {
		return fmt.Errorf("join condition %s: %w: it is %s, not boolean", cond, expr.ErrType, t)
	}
	j.cond = cond
	return nil
}

// residual keeps the candidate pairs (probe row pIdx[k], build row bIdx[k])
// for which the condition is true, in order.
func (j *hashJoinOp) residual(pcols []arrow.Array, pIdx, bIdx []int32) ([]int32, []int32, error) {
	var kp, kb []int32
	lIdx, rIdx := pIdx, bIdx
	lsrc, rsrc := pcols, j.bcols
	if !j.buildRight {
		lIdx, rIdx, lsrc, rsrc = bIdx, pIdx, j.bcols, pcols
	}
	for s := 0; s < len(pIdx); s += joinOutputChunk {
		e := min(len(pIdx), s+joinOutputChunk)
		var cols []arrow.Array
		for side, idx := range [2][]int32{lIdx[s:e], rIdx[s:e]} {
			src := lsrc
			if side == 1 {
				src = rsrc
			}
			pick := make([]arrow.Array, len(j.condCols[side]))
			types := make([]arrow.DataType, len(pick))
			for i, c := range j.condCols[side] {
				pick[i], types[i] = src[c], src[c].DataType()
			}
			cols = append(cols, takeColumns(j.mem, pick, types, idx)...)
		}
		rec := array.NewRecord(j.condSch, cols, int64(e-s))
		releaseAll(cols)
		res, err := expr.Eval(j.mem, j.cond, rec)
		rec.Release()
		if err != nil {
			return nil, nil, fmt.Errorf("join condition %s: %w", j.cond, err)
		}
		b := res.(*array.Boolean)
		for k := 0; k < e-s; k++ {
			if b.IsValid(k) && b.Value(k) {
				kp, kb = append(kp, pIdx[s+k]), append(kb, bIdx[s+k])
			}
		}
		res.Release()
	}
	return kp, kb, nil
}

func (j *hashJoinOp) Schema() *arrow.Schema { return j.schema }

func (j *hashJoinOp) Next(ctx context.Context) (arrow.Record, error) {
	if j.err != nil {
		return nil, j.err
	}
	if !j.built {
		if err := j.buildTable(ctx); err != nil {
			j.err = err
			return nil, err
		}
		j.built = true
	}
	for len(j.out) == 0 {
		if j.probeDone {
			j.err = io.EOF
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			j.err = err
			return nil, err
		}
		rec, err := j.probe.Next(ctx)
		if err == io.EOF {
			j.probeDone = true
			j.finish()
			continue
		}
		if err != nil {
			j.err = err
			return nil, err
		}
		err = j.probeBatch(rec)
		rec.Release()
		if err != nil {
			j.err = err
			return nil, err
		}
	}
	r := j.out[0]
	j.out = j.out[1:]
	return r, nil
}

func evalKeys(mem memory.Allocator, keys []*expr.Expr, rec arrow.Record) ([]arrow.Array, error) {
	cols := make([]arrow.Array, 0, len(keys))
	for _, k := range keys {
		c, err := expr.Eval(mem, k, rec)
		if err != nil {
			releaseAll(cols)
			return nil, fmt.Errorf("join key %s: %w", k, err)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

func releaseAll(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

func (j *hashJoinOp) buildTable(ctx context.Context) error {
	var recs []arrow.Record
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := j.build.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		recs = append(recs, rec)
		cols, err := evalKeys(j.mem, j.buildKeys, rec)
		if err != nil {
			return err
		}
		n := int(rec.NumRows())
		ids := make([]uint32, n)
		j.grouper.assign(cols, ids)
		releaseAll(cols)
		j.bgroup = append(j.bgroup, ids...)
	}
	j.brows = len(j.bgroup)
	j.head = make([]int32, j.grouper.n)
	for i := range j.head {
		j.head[i] = -1
	}
	j.next = make([]int32, j.brows)
	// Walk backwards so each chain lists its rows in input order.
	for r := j.brows - 1; r >= 0; r-- {
		g := j.bgroup[r]
		j.next[r] = j.head[g]
		j.head[g] = int32(r)
	}
	j.gmatched = make([]bool, j.grouper.n)
	if j.cond != nil {
		j.bmatched = make([]bool, j.brows)
	}
	j.bcols = make([]arrow.Array, len(j.buildTypes))
	for c := range j.bcols {
		switch len(recs) {
		case 0:
			j.bcols[c] = newNullArray(j.mem, j.buildTypes[c], 0)
		case 1:
			j.bcols[c] = recs[0].Column(c)
			j.bcols[c].Retain()
		default:
			parts := make([]arrow.Array, len(recs))
			for i, r := range recs {
				parts[i] = r.Column(c)
			}
			a, err := array.Concatenate(parts, j.mem)
			if err != nil {
				return fmt.Errorf("join: build side: %w", err)
			}
			j.bcols[c] = a
		}
	}
	return nil
}

func (j *hashJoinOp) probeBatch(rec arrow.Record) error {
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	cols, err := evalKeys(j.mem, j.probeKeys, rec)
	if err != nil {
		return err
	}
	gids := make([]int32, n)
	j.grouper.find(cols, gids)
	releaseAll(cols)
	if j.cond != nil {
		return j.probeWhere(rec, gids)
	}
	probeIsLeft := j.buildRight
	var pIdx, bIdx []int32
	switch {
	case j.filterOnly && probeIsLeft:
		want := j.how == JoinSemi
		for i, g := range gids {
			if (g >= 0) == want {
				pIdx = append(pIdx, int32(i))
			}
		}
	case j.filterOnly:
		for _, g := range gids {
			if g >= 0 {
				j.gmatched[g] = true
			}
		}
	default:
		for i, g := range gids {
			if g < 0 {
				if j.probeOuter {
					pIdx, bIdx = append(pIdx, int32(i)), append(bIdx, -1)
				}
				continue
			}
			j.gmatched[g] = true
			for r := j.head[g]; r >= 0; r = j.next[r] {
				pIdx, bIdx = append(pIdx, int32(i)), append(bIdx, r)
			}
		}
	}
	j.emit(rec.Columns(), pIdx, bIdx)
	return nil
}

// probeWhere is probeBatch with a residual condition: the key matches are
// candidates, the condition picks the pairs, and matches count per row.
func (j *hashJoinOp) probeWhere(rec arrow.Record, gids []int32) error {
	var cp, cb []int32
	for i, g := range gids {
		if g < 0 {
			continue
		}
		for r := j.head[g]; r >= 0; r = j.next[r] {
			cp, cb = append(cp, int32(i)), append(cb, r)
		}
	}
	kp, kb, err := j.residual(rec.Columns(), cp, cb)
	if err != nil {
		return err
	}
	pm := make([]bool, len(gids))
	for k, i := range kp {
		pm[i] = true
		j.bmatched[kb[k]] = true
	}
	var pIdx, bIdx []int32
	switch {
	case j.filterOnly && j.buildRight:
		want := j.how == JoinSemi
		for i, m := range pm {
			if m == want {
				pIdx = append(pIdx, int32(i))
			}
		}
		bIdx = nil
	case j.filterOnly:
		return nil
	case j.probeOuter:
		// The pairs of each probe row in order, or the row with nulls.
		k := 0
		for i := range gids {
			if !pm[i] {
				pIdx, bIdx = append(pIdx, int32(i)), append(bIdx, -1)
				continue
			}
			for ; k < len(kp) && kp[k] == int32(i); k++ {
				pIdx, bIdx = append(pIdx, kp[k]), append(bIdx, kb[k])
			}
		}
	default:
		pIdx, bIdx = kp, kb
	}
	j.emit(rec.Columns(), pIdx, bIdx)
	return nil
}

// emit gathers output records from probe rows pIdx and build rows bIdx
// (negative = null; bIdx nil for semi/anti with the probe on the left).
func (j *hashJoinOp) emit(pcols []arrow.Array, pIdx, bIdx []int32) {
	for s := 0; s < len(pIdx); s += joinOutputChunk {
		e := min(len(pIdx), s+joinOutputChunk)
		pc := takeColumns(j.mem, pcols, j.probeTypes, pIdx[s:e])
		var cols []arrow.Array
		switch {
		case bIdx == nil:
			cols = pc
		case j.buildRight:
			cols = append(pc, takeColumns(j.mem, j.bcols, j.buildTypes, bIdx[s:e])...)
		default:
			cols = append(takeColumns(j.mem, j.bcols, j.buildTypes, bIdx[s:e]), pc...)
		}
		j.out = append(j.out, array.NewRecord(j.schema, cols, int64(e-s)))
		releaseAll(cols)
	}
}

// finish emits the build rows that only appear once the probe side is done.
func (j *hashJoinOp) finish() {
	var rows []int32
	matched := func(r int, g uint32) bool {
		if j.bmatched != nil {
			return j.bmatched[r]
		}
		return j.gmatched[g]
	}
	switch {
	case j.filterOnly && !j.buildRight:
		want := j.how == JoinSemi
		for r, g := range j.bgroup {
			if matched(r, g) == want {
				rows = append(rows, int32(r))
			}
		}
	case j.buildOuter:
		for r, g := range j.bgroup {
			if !matched(r, g) {
				rows = append(rows, int32(r))
			}
		}
	default:
		return
	}
	for s := 0; s < len(rows); s += joinOutputChunk {
		e := min(len(rows), s+joinOutputChunk)
		bc := takeColumns(j.mem, j.bcols, j.buildTypes, rows[s:e])
		var cols []arrow.Array
		if j.filterOnly {
			cols = bc
		} else {
			pc := make([]arrow.Array, len(j.probeTypes))
			for i, t := range j.probeTypes {
				pc[i] = newNullArray(j.mem, t, e-s)
			}
			if j.buildRight {
				cols = append(pc, bc...)
			} else {
				cols = append(bc, pc...)
			}
		}
		j.out = append(j.out, array.NewRecord(j.schema, cols, int64(e-s)))
		releaseAll(cols)
	}
}

func (j *hashJoinOp) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	if !j.shared {
		releaseAll(j.bcols)
	}
	j.bcols = nil
	for _, r := range j.out {
		r.Release()
	}
	j.out = nil
	j.grouper = nil
	return errors.Join(j.left.Close(), j.right.Close())
}

// JoinTable is the build side of a hash join made once and probed by many
// joins, at the same time (a stream-static join's bounded side, shared by
// every task of every batch until it is collected again). It is read-only
// once built; Release frees it when no join uses it any more.
type JoinTable struct {
	schema   *arrow.Schema
	keys     []*expr.Expr
	cols     []arrow.Array
	rows     int
	grouper  *keyGrouper
	group    []uint32
	head     []int32
	next     []int32
	released bool
}

// NewJoinTable builds the hash table of recs (all of schema) on keys. It
// does not take ownership of recs.
func NewJoinTable(ctx context.Context, mem memory.Allocator, schema *arrow.Schema, recs []arrow.Record, keys []*expr.Expr) (*JoinTable, error) {
	types := make([]arrow.DataType, len(keys))
	for i, k := range keys {
		t, err := k.DataType(schema)
		if err != nil {
			return nil, fmt.Errorf("join key %s: %w", k, err)
		}
		types[i] = t
	}
	g, err := newKeyGrouper(types)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	j := &hashJoinOp{mem: mem, build: NewRecords(schema, recs), buildKeys: keys, grouper: g}
	for _, f := range schema.Fields() {
		j.buildTypes = append(j.buildTypes, f.Type)
	}
	defer j.build.Close()
	if err := j.buildTable(ctx); err != nil {
		return nil, err
	}
	return &JoinTable{schema: schema, keys: keys, cols: j.bcols, rows: j.brows, grouper: j.grouper,
		group: j.bgroup, head: j.head, next: j.next}, nil
}

// Release frees the table's columns.
func (t *JoinTable) Release() {
	if t != nil && !t.released {
		t.released = true
		releaseAll(t.cols)
	}
}

// NewHashJoinTable is NewHashJoinWhere with one side prebuilt: probe joins
// table (the left side when tableLeft) on probeKeys = the table's keys.
func NewHashJoinTable(mem memory.Allocator, probe Operator, table *JoinTable, probeKeys []*expr.Expr, how JoinType, tableLeft bool, cond *expr.Expr) (Operator, error) {
	placeholder := NewRecords(table.schema, nil)
	var op Operator
	var err error
	if tableLeft {
		op, err = NewHashJoinWhere(mem, placeholder, probe, table.keys, probeKeys, how, false, cond)
	} else {
		op, err = NewHashJoinWhere(mem, probe, placeholder, probeKeys, table.keys, how, true, cond)
	}
	if err != nil {
		return nil, err
	}
	j := op.(*hashJoinOp)
	j.shared, j.built = true, true
	j.bcols, j.brows, j.grouper, j.bgroup, j.head, j.next = table.cols, table.rows, table.grouper, table.group, table.head, table.next
	j.gmatched = make([]bool, table.grouper.n)
	if j.cond != nil {
		j.bmatched = make([]bool, j.brows)
	}
	return j, nil
}
