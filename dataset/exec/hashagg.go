package exec

// Hash aggregation.
//
// Main loop (per input batch):
//
//	keys   = eval key exprs                 (Final: the key columns by name)
//	ids    = grouper.assign(keys)           one pass, dense group ids (keys.go)
//	newRows: rows whose id == group count   append their key values to the key builders
//	for each aggregate: state.update(arg, ids)  (Final: state.merge(partial columns, ids))
//	                                        a tight typed loop over (ids, values)
//
// At end of input the key builders and aggregate states become one record
// (sliced into chunks of aggOutputChunk rows). Group ids are handed out in row
// order, so the output order is deterministic for identical input.
//
// Partial state columns (PartialSchema), per aggregate named n:
//
//	count, count(*)  n int64
//	sum              n of the sum type (int64, uint64, float64, decimal(min(38,p+10), s)), null = no value yet
//	avg              n_sum (float64, or the widened decimal for decimals), n_count int64
//	min, max         n of the argument type, null = no value yet
//	first, last      n of the argument type: the value of the first/last row of the split
//	count_distinct   n list<argument type>: the distinct non-null values of the group
//
// Invariants:
//  1. Final must receive the partial records of the splits in split order:
//     first keeps the first partial value it sees per group and last the last,
//     so feeding splits in order yields the globally first/last row (Spark's
//     first/last with ignoreNulls=false, i.e. a null row value is a result).
//  2. With no keys, Complete and Final output exactly one row even on empty
//     input (count = 0, other aggregates null); Partial outputs a row only if
//     it saw input, so empty splits do not disturb first/last.
//  3. avg is float64; for decimals the sum is exact in decimal and divided as
//     float64 at the end.
//  4. Integer sums wrap on overflow (Spark's non-ANSI behaviour); decimal sums
//     are not checked against the widened precision.
//  5. min/max order NaN above every other float (Spark); grouping and
//     count_distinct treat -0 as 0 and all NaNs as one value, and a float
//     group key comes out as Spark emits it: 0.0 for -0.0, one NaN.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

// AggFunc names an aggregate function.
type AggFunc string

// Aggregate functions.
const (
	AggCount         AggFunc = "count" // count(x) counts non-null x; Arg nil = count(*)
	AggCountDistinct AggFunc = "count_distinct"
	AggSum           AggFunc = "sum"
	AggMin           AggFunc = "min"
	AggMax           AggFunc = "max"
	AggAvg           AggFunc = "avg"
	AggFirst         AggFunc = "first"
	AggLast          AggFunc = "last"
)

// Agg is one aggregate: Func over Arg, output column Name.
type Agg struct {
	Func AggFunc
	Arg  *expr.Expr // nil only for count(*)
	Name string     // output column
}

func (a Agg) String() string {
	if a.Arg == nil {
		return string(a.Func) + "(*)"
	}
	return fmt.Sprintf("%s(%s)", a.Func, a.Arg)
}

// AggMode says which half of a two-phase aggregation an operator runs.
type AggMode int

const (
	AggComplete AggMode = iota // input rows -> final values
	AggPartial                 // input rows -> partial states (PartialSchema)
	AggFinal                   // partial states -> final values
	AggMerge                   // partial states -> merged partial states (streaming state)
)

const aggOutputChunk = 1 << 16

// aggSpec is one aggregate resolved against its input types.
type aggSpec struct {
	agg     Agg
	partial []arrow.Field
	final   arrow.Field
	// valueType: the sum/avg accumulator type for sum and avg, the argument type otherwise.
	valueType arrow.DataType
}

func sumType(a Agg, t arrow.DataType) (arrow.DataType, error) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		return arrow.PrimitiveTypes.Int64, nil
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return arrow.PrimitiveTypes.Uint64, nil
	case arrow.FLOAT32, arrow.FLOAT64:
		return arrow.PrimitiveTypes.Float64, nil
	case arrow.DECIMAL128:
		d := t.(*arrow.Decimal128Type)
		return &arrow.Decimal128Type{Precision: min(38, d.Precision+10), Scale: d.Scale}, nil
	}
	return nil, fmt.Errorf("%s: %w: cannot aggregate type %s", a, expr.ErrType, t)
}

func avgSumType(a Agg, t arrow.DataType) (arrow.DataType, error) {
	if t.ID() == arrow.DECIMAL128 {
		return sumType(a, t)
	}
	if _, err := sumType(a, t); err != nil {
		return nil, err
	}
	return arrow.PrimitiveTypes.Float64, nil
}

func checkOrderable(a Agg, t arrow.DataType) error {
	switch t.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.DURATION, arrow.TIME32, arrow.TIME64,
		arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY, arrow.DECIMAL128:
		return nil
	}
	return fmt.Errorf("%s: %w: cannot aggregate type %s", a, expr.ErrType, t)
}

// resolveAgg types an aggregate over its raw input (Complete/Partial).
func resolveAgg(in *arrow.Schema, a Agg) (aggSpec, error) {
	s := aggSpec{agg: a}
	var t arrow.DataType
	if a.Arg == nil {
		if a.Func != AggCount {
			return s, fmt.Errorf("%s: argument required", a.Func)
		}
	} else {
		var err error
		if t, err = a.Arg.DataType(in); err != nil {
			return s, fmt.Errorf("%s: %w", a, err)
		}
	}
	switch a.Func {
	case AggCount:
		s.valueType = t
	case AggSum, AggAvg:
		f := sumType
		if a.Func == AggAvg {
			f = avgSumType
		}
		vt, err := f(a, t)
		if err != nil {
			return s, err
		}
		s.valueType = vt
	case AggMin, AggMax:
		if err := checkOrderable(a, t); err != nil {
			return s, err
		}
		s.valueType = t
	case AggFirst, AggLast:
		if err := checkOrderable(a, t); err != nil {
			return s, err
		}
		s.valueType = t
	case AggCountDistinct:
		if _, err := keyKindOf(t); err != nil {
			return s, fmt.Errorf("%s: %w: %v", a, expr.ErrType, err)
		}
		s.valueType = t
	default:
		return s, fmt.Errorf("unknown aggregate function %q", a.Func)
	}
	s.fillFields()
	return s, nil
}

func (s *aggSpec) fillFields() {
	n, vt := s.agg.Name, s.valueType
	switch s.agg.Func {
	case AggCount:
		s.partial = []arrow.Field{{Name: n, Type: arrow.PrimitiveTypes.Int64}}
		s.final = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Int64}
	case AggAvg:
		s.partial = []arrow.Field{
			{Name: n + "_sum", Type: vt, Nullable: true},
			{Name: n + "_count", Type: arrow.PrimitiveTypes.Int64},
		}
		s.final = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	case AggCountDistinct:
		s.partial = []arrow.Field{{Name: n, Type: arrow.ListOf(vt)}}
		s.final = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Int64}
	default:
		s.partial = []arrow.Field{{Name: n, Type: vt, Nullable: true}}
		s.final = arrow.Field{Name: n, Type: vt, Nullable: true}
	}
}

// resolveFinal types aggregates from a partial schema (Final mode).
func resolveFinal(in *arrow.Schema, nkeys int, aggs []Agg) ([]aggSpec, error) {
	pos := nkeys
	specs := make([]aggSpec, len(aggs))
	for i, a := range aggs {
		width := 1
		if a.Func == AggAvg {
			width = 2
		}
		if pos+width > in.NumFields() {
			return nil, fmt.Errorf("final %s: partial schema has too few columns: %s", a, in)
		}
		t := in.Field(pos).Type
		switch a.Func {
		case AggCountDistinct:
			lt, ok := t.(*arrow.ListType)
			if !ok {
				return nil, fmt.Errorf("final %s: partial column %q is %s, want a list", a, in.Field(pos).Name, t)
			}
			t = lt.Elem()
		case AggCount:
			if t.ID() != arrow.INT64 {
				return nil, fmt.Errorf("final %s: partial column %q is %s, want int64", a, in.Field(pos).Name, t)
			}
			t = nil
		case AggSum, AggAvg:
			switch t.ID() {
			case arrow.INT64, arrow.UINT64, arrow.FLOAT64, arrow.DECIMAL128:
			default:
				return nil, fmt.Errorf("final %s: partial column %q is %s, not a sum type", a, in.Field(pos).Name, t)
			}
			if a.Func == AggAvg && in.Field(pos+1).Type.ID() != arrow.INT64 {
				return nil, fmt.Errorf("final %s: partial column %q is %s, want int64", a, in.Field(pos+1).Name, in.Field(pos+1).Type)
			}
		case AggMin, AggMax, AggFirst, AggLast:
			if err := checkOrderable(a, t); err != nil {
				return nil, fmt.Errorf("final %w", err)
			}
		default:
			return nil, fmt.Errorf("unknown aggregate function %q", a.Func)
		}
		specs[i] = aggSpec{agg: a, valueType: t}
		specs[i].fillFields()
		pos += width
	}
	if pos != in.NumFields() {
		return nil, fmt.Errorf("final aggregate: partial schema has %d columns, want %d", in.NumFields(), pos)
	}
	return specs, nil
}

func keyFields(in *arrow.Schema, keys []*expr.Expr) ([]arrow.Field, error) {
	fields := make([]arrow.Field, len(keys))
	for i, k := range keys {
		t, err := k.DataType(in)
		if err != nil {
			return nil, fmt.Errorf("group by %s: %w", k, err)
		}
		if _, err := keyKindOf(t); err != nil {
			return nil, fmt.Errorf("group by %s: %w: %v", k, expr.ErrType, err)
		}
		fields[i] = arrow.Field{Name: k.OutputName(), Type: t, Nullable: true}
	}
	return fields, nil
}

func resolveAggs(in *arrow.Schema, keys []*expr.Expr, aggs []Agg) ([]arrow.Field, []aggSpec, error) {
	kf, err := keyFields(in, keys)
	if err != nil {
		return nil, nil, err
	}
	specs := make([]aggSpec, len(aggs))
	for i, a := range aggs {
		if specs[i], err = resolveAgg(in, a); err != nil {
			return nil, nil, err
		}
	}
	return kf, specs, nil
}

// PartialSchema is the output schema of a Partial aggregation over in: the
// keys (named by their OutputName) then each aggregate's state columns (see
// the file comment).
func PartialSchema(in *arrow.Schema, keys []*expr.Expr, aggs []Agg) (*arrow.Schema, error) {
	kf, specs, err := resolveAggs(in, keys, aggs)
	if err != nil {
		return nil, err
	}
	return schemaOf(kf, specs, AggPartial), nil
}

// AggSchema is the output schema of a Complete aggregation over in (and of a
// Final one over its PartialSchema).
func AggSchema(in *arrow.Schema, keys []*expr.Expr, aggs []Agg) (*arrow.Schema, error) {
	kf, specs, err := resolveAggs(in, keys, aggs)
	if err != nil {
		return nil, err
	}
	return schemaOf(kf, specs, AggComplete), nil
}

func schemaOf(kf []arrow.Field, specs []aggSpec, mode AggMode) *arrow.Schema {
	fields := append([]arrow.Field(nil), kf...)
	for _, s := range specs {
		if mode.partialOut() {
			fields = append(fields, s.partial...)
		} else {
			fields = append(fields, s.final)
		}
	}
	return arrow.NewSchema(fields, nil)
}

// partialIn: the input holds partial states (Final, Merge).
func (m AggMode) partialIn() bool { return m == AggFinal || m == AggMerge }

// partialOut: the output holds partial states (Partial, Merge).
func (m AggMode) partialOut() bool { return m == AggPartial || m == AggMerge }

type hashAggOp struct {
	mem      memory.Allocator
	in       Operator
	mode     AggMode
	keys     []*expr.Expr // evaluated on the input (Final: column refs by output name)
	keyTypes []arrow.DataType
	specs    []aggSpec
	states   []aggState
	argPos   []int // Final: first partial column of each aggregate
	schema   *arrow.Schema

	grouper  *keyGrouper
	keyBuild []array.Builder
	ids      []uint32
	newRows  []int32

	out    []arrow.Record
	done   bool
	err    error
	closed bool
}

// NewHashAgg groups the rows of in by keys and computes aggs (see the file
// comment for modes and partial state). The operator reads all its input on
// the first Next; it owns in and closes it.
func NewHashAgg(mem memory.Allocator, in Operator, keys []*expr.Expr, aggs []Agg, mode AggMode) (Operator, error) {
	op := &hashAggOp{mem: mem, in: in, mode: mode}
	var kf []arrow.Field
	var err error
	if mode.partialIn() {
		op.keys = make([]*expr.Expr, len(keys))
		for i, k := range keys {
			op.keys[i] = expr.Col(k.OutputName())
		}
		if kf, err = keyFields(in.Schema(), op.keys); err != nil {
			return nil, err
		}
		if op.specs, err = resolveFinal(in.Schema(), len(keys), aggs); err != nil {
			return nil, err
		}
		pos := len(keys)
		for _, s := range op.specs {
			op.argPos = append(op.argPos, pos)
			pos += len(s.partial)
		}
	} else {
		op.keys = keys
		if kf, op.specs, err = resolveAggs(in.Schema(), keys, aggs); err != nil {
			return nil, err
		}
	}
	op.schema = schemaOf(kf, op.specs, mode)
	for _, f := range kf {
		op.keyTypes = append(op.keyTypes, f.Type)
	}
	if op.grouper, err = newKeyGrouper(op.keyTypes); err != nil {
		return nil, err
	}
	for _, t := range op.keyTypes {
		op.keyBuild = append(op.keyBuild, array.NewBuilder(mem, t))
	}
	for _, s := range op.specs {
		st, err := newAggState(mem, s)
		if err != nil {
			op.release()
			return nil, err
		}
		op.states = append(op.states, st)
	}
	return op, nil
}

// NewDistinct returns the distinct rows of in (group by every column).
func NewDistinct(mem memory.Allocator, in Operator) (Operator, error) {
	var keys []*expr.Expr
	for _, f := range in.Schema().Fields() {
		keys = append(keys, expr.Col(f.Name))
	}
	return NewHashAgg(mem, in, keys, nil, AggComplete)
}

func (h *hashAggOp) Schema() *arrow.Schema { return h.schema }

func (h *hashAggOp) Next(ctx context.Context) (arrow.Record, error) {
	if h.err != nil {
		return nil, h.err
	}
	if !h.done {
		if err := h.consume(ctx); err != nil {
			h.err = err
			return nil, err
		}
		h.done = true
	}
	if len(h.out) == 0 {
		h.err = io.EOF
		return nil, io.EOF
	}
	r := h.out[0]
	h.out = h.out[1:]
	return r, nil
}

func (h *hashAggOp) consume(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := h.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		err = h.add(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return h.emit()
}

func (h *hashAggOp) add(rec arrow.Record) error {
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	cols := make([]arrow.Array, 0, len(h.keys))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, k := range h.keys {
		c, err := expr.Eval(h.mem, k, rec)
		if err != nil {
			return fmt.Errorf("group by %s: %w", k, err)
		}
		cols = append(cols, c)
	}
	if cap(h.ids) < n {
		h.ids = make([]uint32, n)
	}
	ids := h.ids[:n]
	before := h.grouper.n
	h.grouper.assign(cols, ids)
	if h.grouper.n > before && len(cols) > 0 {
		next := uint32(before)
		h.newRows = h.newRows[:0]
		for i, id := range ids {
			if id == next {
				h.newRows = append(h.newRows, int32(i))
				next++
			}
		}
		for k, c := range cols {
			appendKeyRows(h.keyBuild[k], c, h.newRows)
		}
	}
	for i, st := range h.states {
		st.grow(h.grouper.n)
		if h.mode.partialIn() {
			p := h.argPos[i]
			st.merge(rec.Columns()[p:p+len(h.specs[i].partial)], ids)
			continue
		}
		a := h.specs[i].agg
		if a.Arg == nil {
			st.update(nil, ids)
			continue
		}
		arg, err := expr.Eval(h.mem, a.Arg, rec)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		st.update(arg, ids)
		arg.Release()
	}
	return nil
}

func (h *hashAggOp) emit() error {
	n := h.grouper.n
	if len(h.keys) == 0 && n == 0 && !h.mode.partialOut() {
		n = 1
	}
	if n == 0 {
		return nil
	}
	cols := make([]arrow.Array, 0, h.schema.NumFields())
	for _, b := range h.keyBuild {
		cols = append(cols, b.NewArray())
	}
	for _, st := range h.states {
		st.grow(n)
		if h.mode.partialOut() {
			cols = append(cols, st.partial(n)...)
		} else {
			cols = append(cols, st.final(n))
		}
	}
	rec := array.NewRecord(h.schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	h.release()
	if n <= aggOutputChunk {
		h.out = []arrow.Record{rec}
		return nil
	}
	for i := 0; i < n; i += aggOutputChunk {
		h.out = append(h.out, rec.NewSlice(int64(i), int64(min(n, i+aggOutputChunk))))
	}
	rec.Release()
	return nil
}

// release frees the grouping state (after emit, or on Close).
func (h *hashAggOp) release() {
	for _, b := range h.keyBuild {
		b.Release()
	}
	h.keyBuild = nil
	for _, st := range h.states {
		st.release()
	}
	h.states = nil
	h.grouper = nil
}

func (h *hashAggOp) Close() error {
	if h.closed {
		return nil
	}
	h.closed = true
	h.release()
	for _, r := range h.out {
		r.Release()
	}
	h.out = nil
	return h.in.Close()
}

// aggState accumulates one aggregate for groups 0..n-1.
type aggState interface {
	grow(n int)                             // make groups < n addressable
	update(arg arrow.Array, ids []uint32)   // raw values (nil: count(*))
	merge(cols []arrow.Array, ids []uint32) // partial state columns
	partial(n int) []arrow.Array            // state columns (caller releases)
	final(n int) arrow.Array                // final values (caller releases)
	release()
}

func newAggState(mem memory.Allocator, s aggSpec) (aggState, error) {
	vt := s.valueType
	switch s.agg.Func {
	case AggCount:
		return &countState{mem: mem}, nil
	case AggSum:
		return newSumState(mem, vt), nil
	case AggAvg:
		return &avgState{sum: newSumState(mem, vt), cnt: countState{mem: mem}}, nil
	case AggMin, AggMax, AggFirst, AggLast:
		return newValueState(mem, s.agg.Func, vt), nil
	case AggCountDistinct:
		return newDistinctState(mem, vt)
	}
	return nil, fmt.Errorf("unknown aggregate function %q", s.agg.Func)
}

// growSlice extends s to length n with zero values.
func growSlice[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		return s[:n]
	}
	ns := make([]T, n, max(n, 2*cap(s)))
	copy(ns, s)
	return ns
}

// buildFixed makes an array of type dt from vals; valid nil means no nulls.
func buildFixed[T arrow.FixedWidthType](mem memory.Allocator, dt arrow.DataType, vals []T, valid []bool) arrow.Array {
	n := len(vals)
	var zero T
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(n * int(unsafe.Sizeof(zero)))
	copy(buf.Bytes(), arrow.GetBytes(vals))
	buffers := []*memory.Buffer{nil, buf}
	nulls := 0
	if valid != nil {
		for _, v := range valid[:n] {
			if !v {
				nulls++
			}
		}
		if nulls > 0 {
			nb := memory.NewResizableBuffer(mem)
			nb.Resize(int(bitutil.BytesForBits(int64(n))))
			bm := nb.Bytes()
			for i, v := range valid[:n] {
				bitutil.SetBitTo(bm, i, v)
			}
			buffers[0] = nb
		}
	}
	data := array.NewData(dt, n, buffers, nil, nulls, 0)
	arr := array.MakeFromData(data)
	data.Release()
	for _, b := range buffers {
		if b != nil {
			b.Release()
		}
	}
	return arr
}

func buildBool(mem memory.Allocator, vals []bool, valid []bool) arrow.Array {
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func buildBytes(mem memory.Allocator, dt arrow.DataType, vals [][]byte, valid []bool) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	var bb *array.BinaryBuilder
	switch x := b.(type) {
	case *array.StringBuilder:
		bb = x.BinaryBuilder
	case *array.LargeStringBuilder:
		bb = x.BinaryBuilder
	case *array.BinaryBuilder:
		bb = x
	}
	bb.Reserve(len(vals))
	for i, v := range vals {
		if valid[i] {
			bb.Append(v)
		} else {
			bb.AppendNull()
		}
	}
	return b.NewArray()
}

// countState counts rows (count(*)), non-null values (count(x)), or sums
// partial counts (merge).
type countState struct {
	mem memory.Allocator
	c   []int64
}

func (s *countState) grow(n int) { s.c = growSlice(s.c, n) }
func (s *countState) update(arg arrow.Array, ids []uint32) {
	c := s.c
	if arg == nil || arg.NullN() == 0 {
		if len(c) <= lanesMax {
			countLanes(c, ids)
			return
		}
		for _, g := range ids {
			c[g]++
		}
		return
	}
	for i, g := range ids {
		if arg.IsValid(i) {
			c[g]++
		}
	}
}

// countLanes counts rows per group for few groups; see sumLanes.
func countLanes(c []int64, ids []uint32) {
	var lanes [4][lanesMax]int64
	n := len(ids) &^ 3
	for i := 0; i < n; i += 4 {
		lanes[0][ids[i]%lanesMax]++
		lanes[1][ids[i+1]%lanesMax]++
		lanes[2][ids[i+2]%lanesMax]++
		lanes[3][ids[i+3]%lanesMax]++
	}
	for i := n; i < len(ids); i++ {
		lanes[0][ids[i]%lanesMax]++
	}
	for g := range c {
		c[g] += lanes[0][g] + lanes[1][g] + lanes[2][g] + lanes[3][g]
	}
}

func (s *countState) merge(cols []arrow.Array, ids []uint32) {
	vals := arrow.GetValues[int64](cols[0].Data(), 1)
	c := s.c
	for i, g := range ids {
		if cols[0].IsValid(i) {
			c[g] += vals[i]
		}
	}
}
func (s *countState) partial(n int) []arrow.Array { return []arrow.Array{s.final(n)} }
func (s *countState) final(n int) arrow.Array {
	return buildFixed(s.mem, arrow.PrimitiveTypes.Int64, s.c[:n], nil)
}
func (s *countState) release() { s.c = nil }

// sumState sums into int64, uint64, float64 or decimal128 accumulators.
type sumState struct {
	mem  memory.Allocator
	dt   arrow.DataType // accumulator (output) type
	i64  []int64
	u64  []uint64
	f64  []float64
	dec  []decimal128.Num
	seen []bool
}

func newSumState(mem memory.Allocator, dt arrow.DataType) *sumState {
	return &sumState{mem: mem, dt: dt}
}

func (s *sumState) grow(n int) {
	s.seen = growSlice(s.seen, n)
	switch s.dt.ID() {
	case arrow.INT64:
		s.i64 = growSlice(s.i64, n)
	case arrow.UINT64:
		s.u64 = growSlice(s.u64, n)
	case arrow.FLOAT64:
		s.f64 = growSlice(s.f64, n)
	default:
		s.dec = growSlice(s.dec, n)
	}
}

func (s *sumState) update(arg arrow.Array, ids []uint32) {
	d := arg.Data()
	switch s.dt.ID() {
	case arrow.INT64:
		switch arg.DataType().ID() {
		case arrow.INT8:
			sumLoop(s.i64, s.seen, arrow.GetValues[int8](d, 1), arg, ids)
		case arrow.INT16:
			sumLoop(s.i64, s.seen, arrow.GetValues[int16](d, 1), arg, ids)
		case arrow.INT32:
			sumLoop(s.i64, s.seen, arrow.GetValues[int32](d, 1), arg, ids)
		default:
			sumLoop(s.i64, s.seen, arrow.GetValues[int64](d, 1), arg, ids)
		}
	case arrow.UINT64:
		switch arg.DataType().ID() {
		case arrow.UINT8:
			sumLoop(s.u64, s.seen, arrow.GetValues[uint8](d, 1), arg, ids)
		case arrow.UINT16:
			sumLoop(s.u64, s.seen, arrow.GetValues[uint16](d, 1), arg, ids)
		case arrow.UINT32:
			sumLoop(s.u64, s.seen, arrow.GetValues[uint32](d, 1), arg, ids)
		default:
			sumLoop(s.u64, s.seen, arrow.GetValues[uint64](d, 1), arg, ids)
		}
	case arrow.FLOAT64:
		switch arg.DataType().ID() {
		case arrow.INT8:
			sumLoop(s.f64, s.seen, arrow.GetValues[int8](d, 1), arg, ids)
		case arrow.INT16:
			sumLoop(s.f64, s.seen, arrow.GetValues[int16](d, 1), arg, ids)
		case arrow.INT32:
			sumLoop(s.f64, s.seen, arrow.GetValues[int32](d, 1), arg, ids)
		case arrow.INT64:
			sumLoop(s.f64, s.seen, arrow.GetValues[int64](d, 1), arg, ids)
		case arrow.UINT8:
			sumLoop(s.f64, s.seen, arrow.GetValues[uint8](d, 1), arg, ids)
		case arrow.UINT16:
			sumLoop(s.f64, s.seen, arrow.GetValues[uint16](d, 1), arg, ids)
		case arrow.UINT32:
			sumLoop(s.f64, s.seen, arrow.GetValues[uint32](d, 1), arg, ids)
		case arrow.UINT64:
			sumLoop(s.f64, s.seen, arrow.GetValues[uint64](d, 1), arg, ids)
		case arrow.FLOAT32:
			sumLoop(s.f64, s.seen, arrow.GetValues[float32](d, 1), arg, ids)
		default:
			sumLoop(s.f64, s.seen, arrow.GetValues[float64](d, 1), arg, ids)
		}
	default:
		vals := arrow.GetValues[decimal128.Num](d, 1)
		nulls := arg.NullN() > 0
		for i, g := range ids {
			if nulls && arg.IsNull(i) {
				continue
			}
			s.dec[g] = s.dec[g].Add(vals[i])
			s.seen[g] = true
		}
	}
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

func sumLoop[A int64 | uint64 | float64, T number](acc []A, seen []bool, vals []T, arg arrow.Array, ids []uint32) {
	if arg.NullN() == 0 && len(acc) <= lanesMax {
		sumLanes(acc, seen, vals, ids)
		return
	}
	if arg.NullN() == 0 {
		vals = vals[:len(ids)]
		for i, g := range ids {
			acc[g] += A(vals[i])
			seen[g] = true
		}
		return
	}
	for i, g := range ids {
		if arg.IsValid(i) {
			acc[g] += A(vals[i])
			seen[g] = true
		}
	}
}

// lanesMax is the most groups sumLanes handles.
const lanesMax = 64

// sumLanes is sumLoop for few groups and no nulls. With few groups,
// consecutive rows often update the same accumulator, so a plain loop waits
// on each add's store before the next load (Q1's four groups ran at 2.9 ns
// per update); four independent lanes let those adds overlap. Lanes are
// combined in a fixed order, so results stay deterministic.
func sumLanes[A int64 | uint64 | float64, T number](acc []A, seen []bool, vals []T, ids []uint32) {
	var lanes [4][lanesMax]A
	var hit [lanesMax]bool
	vals = vals[:len(ids)]
	n := len(ids) &^ 3
	for i := 0; i < n; i += 4 {
		g0, g1, g2, g3 := ids[i]%lanesMax, ids[i+1]%lanesMax, ids[i+2]%lanesMax, ids[i+3]%lanesMax
		lanes[0][g0] += A(vals[i])
		lanes[1][g1] += A(vals[i+1])
		lanes[2][g2] += A(vals[i+2])
		lanes[3][g3] += A(vals[i+3])
		hit[g0], hit[g1], hit[g2], hit[g3] = true, true, true, true
	}
	for i := n; i < len(ids); i++ {
		g := ids[i] % lanesMax
		lanes[0][g] += A(vals[i])
		hit[g] = true
	}
	for g := range acc {
		if hit[g] {
			acc[g] += (lanes[0][g] + lanes[1][g]) + (lanes[2][g] + lanes[3][g])
			seen[g] = true
		}
	}
}

func (s *sumState) merge(cols []arrow.Array, ids []uint32) { s.update(cols[0], ids) }
func (s *sumState) partial(n int) []arrow.Array            { return []arrow.Array{s.final(n)} }
func (s *sumState) final(n int) arrow.Array {
	seen := s.seen[:n]
	switch s.dt.ID() {
	case arrow.INT64:
		return buildFixed(s.mem, s.dt, s.i64[:n], seen)
	case arrow.UINT64:
		return buildFixed(s.mem, s.dt, s.u64[:n], seen)
	case arrow.FLOAT64:
		return buildFixed(s.mem, s.dt, s.f64[:n], seen)
	}
	return buildFixed(s.mem, s.dt, s.dec[:n], seen)
}
func (s *sumState) release() { s.i64, s.u64, s.f64, s.dec, s.seen = nil, nil, nil, nil, nil }

// avgState is a sum and a count; the final value is float64.
type avgState struct {
	sum *sumState
	cnt countState
}

func (s *avgState) grow(n int) { s.sum.grow(n); s.cnt.grow(n) }
func (s *avgState) update(arg arrow.Array, ids []uint32) {
	s.sum.update(arg, ids)
	s.cnt.update(arg, ids)
}
func (s *avgState) merge(cols []arrow.Array, ids []uint32) {
	s.sum.update(cols[0], ids)
	s.cnt.merge(cols[1:], ids)
}
func (s *avgState) partial(n int) []arrow.Array {
	return []arrow.Array{s.sum.final(n), s.cnt.final(n)}
}
func (s *avgState) final(n int) arrow.Array {
	out := make([]float64, n)
	valid := make([]bool, n)
	for g := 0; g < n; g++ {
		c := s.cnt.c[g]
		if c == 0 {
			continue
		}
		valid[g] = true
		switch s.sum.dt.ID() {
		case arrow.FLOAT64:
			out[g] = s.sum.f64[g] / float64(c)
		default:
			out[g] = s.sum.dec[g].ToFloat64(s.sum.dt.(*arrow.Decimal128Type).Scale) / float64(c)
		}
	}
	return buildFixed(s.sum.mem, arrow.PrimitiveTypes.Float64, out, valid)
}
func (s *avgState) release() { s.sum.release(); s.cnt.release() }

// valueState keeps one value per group: min, max, first or last.
type valueState struct {
	mem   memory.Allocator
	fn    AggFunc
	dt    arrow.DataType
	seen  []bool // a row (min/max: a non-null value) was taken
	valid []bool // first/last: the kept value is not null
	impl  valueImpl
	upd   func(arr arrow.Array, ids []uint32)
}

type valueImpl interface {
	grow(n int)
	build(mem memory.Allocator, dt arrow.DataType, valid []bool) arrow.Array
	release()
}

func newValueState(mem memory.Allocator, fn AggFunc, dt arrow.DataType) *valueState {
	s := &valueState{mem: mem, fn: fn, dt: dt}
	switch dt.ID() {
	case arrow.BOOL:
		v := &boolVals{}
		s.impl, s.upd = v, func(a arrow.Array, ids []uint32) { v.update(s, a, ids) }
	case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
		v := &bytesVals{}
		s.impl, s.upd = v, func(a arrow.Array, ids []uint32) { v.update(s, a, ids) }
	case arrow.DECIMAL128:
		v := &decVals{}
		s.impl, s.upd = v, func(a arrow.Array, ids []uint32) { v.update(s, a, ids) }
	case arrow.INT8:
		s.impl, s.upd = orderedImpl[int8](s)
	case arrow.INT16:
		s.impl, s.upd = orderedImpl[int16](s)
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		s.impl, s.upd = orderedImpl[int32](s)
	case arrow.UINT8:
		s.impl, s.upd = orderedImpl[uint8](s)
	case arrow.UINT16:
		s.impl, s.upd = orderedImpl[uint16](s)
	case arrow.UINT32:
		s.impl, s.upd = orderedImpl[uint32](s)
	case arrow.UINT64:
		s.impl, s.upd = orderedImpl[uint64](s)
	case arrow.FLOAT32:
		s.impl, s.upd = orderedImpl[float32](s)
	case arrow.FLOAT64:
		s.impl, s.upd = orderedImpl[float64](s)
	default: // int64 and 64-bit temporals
		s.impl, s.upd = orderedImpl[int64](s)
	}
	return s
}

func orderedImpl[T number](s *valueState) (valueImpl, func(arrow.Array, []uint32)) {
	v := &orderedVals[T]{}
	return v, func(a arrow.Array, ids []uint32) { v.update(s, a, ids) }
}

func (s *valueState) grow(n int) {
	s.seen = growSlice(s.seen, n)
	s.valid = growSlice(s.valid, n)
	s.impl.grow(n)
}

func (s *valueState) update(arg arrow.Array, ids []uint32)   { s.upd(arg, ids) }
func (s *valueState) merge(cols []arrow.Array, ids []uint32) { s.upd(cols[0], ids) }
func (s *valueState) partial(n int) []arrow.Array            { return []arrow.Array{s.final(n)} }
func (s *valueState) final(n int) arrow.Array {
	valid := s.valid[:n]
	return s.impl.build(s.mem, s.dt, valid)
}
func (s *valueState) release() { s.impl.release(); s.seen, s.valid = nil, nil }

// isMinMax: min/max skip nulls; first/last keep a null row's value.
func (s *valueState) isMinMax() bool { return s.fn == AggMin || s.fn == AggMax }

type orderedVals[T number] struct{ v []T }

func (o *orderedVals[T]) grow(n int) { o.v = growSlice(o.v, n) }
func (o *orderedVals[T]) release()   { o.v = nil }
func (o *orderedVals[T]) build(mem memory.Allocator, dt arrow.DataType, valid []bool) arrow.Array {
	return buildFixed(mem, dt, o.v[:len(valid)], valid)
}

func (o *orderedVals[T]) update(s *valueState, arr arrow.Array, ids []uint32) {
	vals := arrow.GetValues[T](arr.Data(), 1)
	nulls := arr.NullN() > 0
	v, seen, valid := o.v, s.seen, s.valid
	switch s.fn {
	case AggMin:
		for i, g := range ids {
			if nulls && arr.IsNull(i) {
				continue
			}
			x, cur := vals[i], v[g]
			// NaN sorts above every number (Spark), so it only wins when nothing else is seen.
			if !seen[g] || x < cur || (cur != cur && x == x) {
				v[g], seen[g], valid[g] = x, true, true
			}
		}
	case AggMax:
		for i, g := range ids {
			if nulls && arr.IsNull(i) {
				continue
			}
			x, cur := vals[i], v[g]
			if !seen[g] || x > cur || (x != x && cur == cur) {
				v[g], seen[g], valid[g] = x, true, true
			}
		}
	case AggFirst:
		for i, g := range ids {
			if !seen[g] {
				seen[g] = true
				valid[g] = !nulls || arr.IsValid(i)
				v[g] = vals[i]
			}
		}
	case AggLast:
		for i, g := range ids {
			seen[g] = true
			valid[g] = !nulls || arr.IsValid(i)
			v[g] = vals[i]
		}
	}
}

type boolVals struct{ v []bool }

func (o *boolVals) grow(n int) { o.v = growSlice(o.v, n) }
func (o *boolVals) release()   { o.v = nil }
func (o *boolVals) build(mem memory.Allocator, _ arrow.DataType, valid []bool) arrow.Array {
	return buildBool(mem, o.v[:len(valid)], valid)
}
func (o *boolVals) update(s *valueState, arr arrow.Array, ids []uint32) {
	a := arr.(*array.Boolean)
	for i, g := range ids {
		null := a.IsNull(i)
		if s.isMinMax() && null {
			continue
		}
		x := !null && a.Value(i)
		switch s.fn {
		case AggMin:
			if !s.seen[g] || !x {
				o.v[g] = x
			}
		case AggMax:
			if !s.seen[g] || x {
				o.v[g] = x
			}
		case AggFirst:
			if s.seen[g] {
				continue
			}
			o.v[g] = x
		case AggLast:
			o.v[g] = x
		}
		s.seen[g], s.valid[g] = true, !null
	}
}

type decVals struct{ v []decimal128.Num }

func (o *decVals) grow(n int) { o.v = growSlice(o.v, n) }
func (o *decVals) release()   { o.v = nil }
func (o *decVals) build(mem memory.Allocator, dt arrow.DataType, valid []bool) arrow.Array {
	return buildFixed(mem, dt, o.v[:len(valid)], valid)
}
func (o *decVals) update(s *valueState, arr arrow.Array, ids []uint32) {
	vals := arrow.GetValues[decimal128.Num](arr.Data(), 1)
	for i, g := range ids {
		null := arr.IsNull(i)
		if s.isMinMax() && null {
			continue
		}
		x := vals[i]
		switch s.fn {
		case AggMin:
			if s.seen[g] && x.Cmp(o.v[g]) >= 0 {
				continue
			}
		case AggMax:
			if s.seen[g] && x.Cmp(o.v[g]) <= 0 {
				continue
			}
		case AggFirst:
			if s.seen[g] {
				continue
			}
		}
		o.v[g] = x
		s.seen[g], s.valid[g] = true, !null
	}
}

// bytesVals keeps a private copy per group (reusing its buffer), so no input
// array is retained.
type bytesVals struct{ v [][]byte }

func (o *bytesVals) grow(n int) { o.v = growSlice(o.v, n) }
func (o *bytesVals) release()   { o.v = nil }
func (o *bytesVals) build(mem memory.Allocator, dt arrow.DataType, valid []bool) arrow.Array {
	return buildBytes(mem, dt, o.v[:len(valid)], valid)
}
func (o *bytesVals) update(s *valueState, arr arrow.Array, ids []uint32) {
	forEachBytes(arr, func(i int, b []byte, ok bool) {
		g := ids[i]
		if s.isMinMax() && !ok {
			return
		}
		switch s.fn {
		case AggMin:
			if s.seen[g] && bytes.Compare(b, o.v[g]) >= 0 {
				return
			}
		case AggMax:
			if s.seen[g] && bytes.Compare(b, o.v[g]) <= 0 {
				return
			}
		case AggFirst:
			if s.seen[g] {
				return
			}
		}
		if ok {
			o.v[g] = append(o.v[g][:0], b...)
		}
		s.seen[g], s.valid[g] = true, ok
	})
}

// distinctState counts distinct non-null values per group. Values are
// numbered by a one-column keyGrouper; (group, value id) pairs live in a
// u64Table. Its partial state is a list of the group's distinct values.
type distinctState struct {
	mem    memory.Allocator
	dt     arrow.DataType
	vals   *keyGrouper
	valB   array.Builder // distinct values, by value id
	pairs  *u64Table
	plist  []uint64 // pairs in insertion order: group<<32 | value id
	counts []int64
	vids   []uint32
	rows   []int32
}

func newDistinctState(mem memory.Allocator, dt arrow.DataType) (*distinctState, error) {
	g, err := newKeyGrouper([]arrow.DataType{dt})
	if err != nil {
		return nil, err
	}
	return &distinctState{mem: mem, dt: dt, vals: g, valB: array.NewBuilder(mem, dt), pairs: newU64Table()}, nil
}

func (s *distinctState) grow(n int) { s.counts = growSlice(s.counts, n) }

func (s *distinctState) update(arr arrow.Array, ids []uint32) {
	n := arr.Len()
	if cap(s.vids) < n {
		s.vids = make([]uint32, n)
	}
	vids := s.vids[:n]
	before := s.vals.n
	s.vals.assign([]arrow.Array{arr}, vids)
	if s.vals.n > before {
		next := uint32(before)
		s.rows = s.rows[:0]
		for i, v := range vids {
			if v == next {
				s.rows = append(s.rows, int32(i))
				next++
			}
		}
		appendRows(s.valB, arr, s.rows)
	}
	nulls := arr.NullN() > 0
	for i, g := range ids {
		if nulls && arr.IsNull(i) {
			continue
		}
		k := uint64(g)<<32 | uint64(vids[i])
		if s.pairs.insert(k, uint32(len(s.plist))) == uint32(len(s.plist)) {
			s.plist = append(s.plist, k)
			s.counts[g]++
		}
	}
}

func (s *distinctState) merge(cols []arrow.Array, ids []uint32) {
	l := cols[0].(*array.List)
	if l.Len() == 0 {
		return
	}
	start, _ := l.ValueOffsets(0)
	_, end := l.ValueOffsets(l.Len() - 1)
	child := array.NewSlice(l.ListValues(), start, end)
	defer child.Release()
	cids := make([]uint32, end-start)
	for i, g := range ids {
		if l.IsNull(i) {
			continue
		}
		b, e := l.ValueOffsets(i)
		for j := b; j < e; j++ {
			cids[j-start] = g
		}
	}
	s.update(child, cids)
}

func (s *distinctState) partial(n int) []arrow.Array {
	distinct := s.valB.NewArray()
	defer distinct.Release()
	// Counting sort of pairs by group keeps each group's values in first-seen order.
	starts := make([]int, n+1)
	for _, k := range s.plist {
		starts[k>>32+1]++
	}
	for g := 0; g < n; g++ {
		starts[g+1] += starts[g]
	}
	rows := make([]int32, len(s.plist))
	pos := append([]int(nil), starts...)
	for _, k := range s.plist {
		g := k >> 32
		rows[pos[g]] = int32(uint32(k))
		pos[g]++
	}
	lb := array.NewListBuilder(s.mem, s.dt)
	defer lb.Release()
	vb := lb.ValueBuilder()
	for g := 0; g < n; g++ {
		lb.Append(true)
		appendRows(vb, distinct, rows[starts[g]:starts[g+1]])
	}
	return []arrow.Array{lb.NewArray()}
}

func (s *distinctState) final(n int) arrow.Array {
	return buildFixed(s.mem, arrow.PrimitiveTypes.Int64, s.counts[:n], nil)
}

func (s *distinctState) release() {
	if s.valB != nil {
		s.valB.Release()
		s.valB = nil
	}
	s.vals, s.pairs, s.plist, s.counts = nil, nil, nil, nil
}
