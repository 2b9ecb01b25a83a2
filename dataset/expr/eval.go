package expr

import (
	"bytes"
	"cmp"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Eval evaluates e over rec and returns an array of rec.NumRows() values of
// the type e.DataType(rec.Schema()) reports. The caller owns the result and
// must Release it; a bare column reference returns the record's column,
// retained. rec is not retained. Errors wrap ErrUnknownColumn, ErrType or
// ErrCast and name the expression.
func Eval(mem memory.Allocator, e *Expr, rec arrow.Record) (arrow.Array, error) {
	ev := &evaluator{
		mem: mem, rec: rec, n: int(rec.NumRows()),
		b: binder{schema: rec.Schema(), root: e, types: map[*Expr]arrow.DataType{}},
	}
	if _, err := ev.b.typeOf(e); err != nil {
		return nil, err
	}
	v, err := ev.eval(e)
	if err != nil {
		return nil, err
	}
	return ev.materialize(v)
}

type evaluator struct {
	mem memory.Allocator
	rec arrow.Record
	n   int
	b   binder
}

// val is an intermediate result: an array of n values, or a scalar (lit)
// that kernels broadcast without materializing it.
type val struct {
	arr arrow.Array
	lit *Literal
	dt  arrow.DataType
}

func (v val) release() {
	if v.arr != nil {
		v.arr.Release()
	}
}

func (v val) scalar() bool { return v.arr == nil }

func (v val) null() bool { return v.arr == nil && (v.lit.Null || v.dt.ID() == arrow.NULL) }

func (ev *evaluator) materialize(v val) (arrow.Array, error) {
	if v.arr != nil {
		return v.arr, nil
	}
	return litArray(ev.mem, v.lit, v.dt, ev.n), nil
}

func (ev *evaluator) eval(e *Expr) (val, error) {
	dt := ev.b.types[e]
	switch e.Op {
	case OpCol:
		c := ev.rec.Column(ev.rec.Schema().FieldIndices(e.Name)[0])
		c.Retain()
		return val{arr: c, dt: dt}, nil
	case OpLit:
		return val{lit: e.Lit, dt: dt}, nil
	case OpAlias:
		return ev.eval(e.Args[0])
	case OpNeg:
		zero := val{lit: &Literal{Type: Type{dt}, Value: zeroValue(dt)}, dt: dt}
		a, err := ev.eval(e.Args[0])
		if err != nil {
			return val{}, err
		}
		if dt.ID() == arrow.NULL {
			return a, nil
		}
		defer a.release()
		return ev.arith(e, OpSub, zero, a, dt, dt, dt)
	case OpAdd, OpSub, OpMul, OpDiv, OpMod:
		lt, rt, out, _ := arithTypes(e.Op, ev.b.types[e.Args[0]], ev.b.types[e.Args[1]])
		a, b, err := ev.eval2(e)
		if err != nil {
			return val{}, err
		}
		defer a.release()
		defer b.release()
		return ev.arith(e, e.Op, a, b, lt, rt, out)
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		a, b, err := ev.eval2(e)
		if err != nil {
			return val{}, err
		}
		defer a.release()
		defer b.release()
		return ev.compare(e, e.Op, e.Args[0], e.Args[1], a, b)
	case OpBetween:
		return ev.between(e)
	case OpIn:
		return ev.in(e)
	case OpAnd, OpOr:
		a, b, err := ev.eval2(e)
		if err != nil {
			return val{}, err
		}
		defer a.release()
		defer b.release()
		return ev.logic(e.Op, a, b)
	case OpNot, OpIsNull, OpNotNull:
		a, err := ev.eval(e.Args[0])
		if err != nil {
			return val{}, err
		}
		defer a.release()
		return ev.unaryBool(e.Op, a)
	case OpCase:
		return ev.caseWhen(e, dt)
	case OpCoalesce:
		return ev.coalesce(e, dt)
	case OpCast:
		a, err := ev.eval(e.Args[0])
		if err != nil {
			return val{}, err
		}
		defer a.release()
		return ev.convert(e, a, dt)
	case OpLower, OpUpper, OpLength, OpSubstr, OpConcat, OpContains, OpStartsWith, OpRegexpExtract, OpSplitPart:
		return ev.stringFunc(e, dt)
	case OpDateTrunc, OpExtract, OpAddDuration:
		return ev.temporal(e, dt)
	case OpHash:
		return ev.hash(e)
	}
	return val{}, ev.b.errf(e, "unknown operator %q", e.Op)
}

func (ev *evaluator) eval2(e *Expr) (val, val, error) {
	a, err := ev.eval(e.Args[0])
	if err != nil {
		return val{}, val{}, err
	}
	b, err := ev.eval(e.Args[1])
	if err != nil {
		a.release()
		return val{}, val{}, err
	}
	return a, b, nil
}

// convert returns v as type to. It always returns a value the caller owns
// (v itself retained when no conversion is needed).
func (ev *evaluator) convert(e *Expr, v val, to arrow.DataType) (val, error) {
	if arrow.TypeEqual(v.dt, to) {
		if v.arr != nil {
			v.arr.Retain()
		}
		return v, nil
	}
	if v.scalar() {
		if v.null() {
			return val{lit: &Literal{Type: Type{to}, Null: true}, dt: to}, nil
		}
		a := litArray(ev.mem, v.lit, v.dt, 1)
		defer a.Release()
		c, err := castArray(ev.mem, a, to, e, ev.b.root)
		if err != nil {
			return val{}, err
		}
		defer c.Release()
		return val{lit: literalAt(c, 0), dt: to}, nil
	}
	c, err := castArray(ev.mem, v.arr, to, e, ev.b.root)
	if err != nil {
		return val{}, err
	}
	return val{arr: c, dt: to}, nil
}

func zeroValue(dt arrow.DataType) any {
	switch {
	case isUnsigned(dt):
		return uint64(0)
	case isFloat(dt):
		return float64(0)
	case isDecimal(dt):
		return decimal128.Num{}
	}
	return int64(0)
}

// ---- buffers and bitmaps ----

func allocBuf(mem memory.Allocator, size int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	b.Resize(size)
	return b
}

// makeArray wraps buffers (consumed: released here) into an array.
func makeArray(dt arrow.DataType, n int, valid *memory.Buffer, nulls int, bufs ...*memory.Buffer) arrow.Array {
	all := append([]*memory.Buffer{valid}, bufs...)
	data := array.NewData(dt, n, all, nil, nulls, 0)
	arr := array.MakeFromData(data)
	data.Release()
	for _, b := range all {
		if b != nil {
			b.Release()
		}
	}
	return arr
}

func nullArray(mem memory.Allocator, dt arrow.DataType, n int) arrow.Array {
	return array.MakeArrayOfNull(mem, dt, n)
}

// validity returns a's validity bitmap and bit offset, or nil when a has no nulls.
func validity(a arrow.Array) ([]byte, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	if a.DataType().ID() == arrow.NULL || a.NullBitmapBytes() == nil {
		return make([]byte, bitutil.BytesForBits(int64(a.Len()))), 0
	}
	return a.NullBitmapBytes(), a.Data().Offset()
}

// andValidity combines the validity of arrays (nil entries skipped) into a new
// buffer, or nil when no input has nulls.
func andValidity(mem memory.Allocator, n int, arrs ...arrow.Array) (*memory.Buffer, int) {
	var out *memory.Buffer
	for _, a := range arrs {
		if a == nil {
			continue
		}
		bm, off := validity(a)
		if bm == nil {
			continue
		}
		if out == nil {
			out = allocBuf(mem, int(bitutil.BytesForBits(int64(n))))
			bitutil.CopyBitmap(bm, off, n, out.Bytes(), 0)
			continue
		}
		bitutil.BitmapAnd(out.Bytes(), bm, 0, int64(off), out.Bytes(), 0, int64(n))
	}
	if out == nil {
		return nil, 0
	}
	return out, n - bitutil.CountSetBits(out.Bytes(), 0, n)
}

// boolBits returns a bool array's values as an offset-0 bitmap.
func boolBits(a arrow.Array) []byte {
	d := a.Data()
	if a.DataType().ID() == arrow.NULL || d.Buffers()[1] == nil {
		return make([]byte, bitutil.BytesForBits(int64(a.Len())))
	}
	return bitsAt0(d.Buffers()[1].Bytes(), d.Offset(), d.Len())
}

func bitsAt0(bm []byte, off, n int) []byte {
	if off%8 == 0 {
		return bm[off/8:]
	}
	out := make([]byte, bitutil.BytesForBits(int64(n)))
	bitutil.CopyBitmap(bm, off, n, out, 0)
	return out
}

func fixedValues[T arrow.FixedWidthType](a arrow.Array) []T {
	d := a.Data()
	buf := d.Buffers()[1]
	if buf == nil || d.Len() == 0 {
		return nil
	}
	return arrow.GetData[T](buf.Bytes())[d.Offset() : d.Offset()+d.Len()]
}

// ---- literals ----

func litNum[T number](l *Literal) T {
	switch v := l.Value.(type) {
	case int64:
		return T(v)
	case uint64:
		return T(v)
	case float64:
		return T(v)
	}
	var z T
	return z
}

func fillFixed[T arrow.FixedWidthType](mem memory.Allocator, dt arrow.DataType, n int, v T) arrow.Array {
	var z T
	buf := allocBuf(mem, n*int(sizeOf(z)))
	out := arrow.GetData[T](buf.Bytes())[:n]
	for i := range out {
		out[i] = v
	}
	return makeArray(dt, n, nil, 0, buf)
}

// litArray materializes a literal (of type dt) as an array of n copies.
func litArray(mem memory.Allocator, l *Literal, dt arrow.DataType, n int) arrow.Array {
	if l == nil || l.Null || dt.ID() == arrow.NULL {
		if dt.ID() == arrow.NULL {
			return array.NewNull(n)
		}
		return nullArray(mem, dt, n)
	}
	switch dt.ID() {
	case arrow.INT8:
		return fillFixed(mem, dt, n, litNum[int8](l))
	case arrow.INT16:
		return fillFixed(mem, dt, n, litNum[int16](l))
	case arrow.INT32, arrow.DATE32:
		return fillFixed(mem, dt, n, litNum[int32](l))
	case arrow.INT64, arrow.TIMESTAMP, arrow.DURATION, arrow.DATE64:
		return fillFixed(mem, dt, n, litNum[int64](l))
	case arrow.UINT8:
		return fillFixed(mem, dt, n, litNum[uint8](l))
	case arrow.UINT16:
		return fillFixed(mem, dt, n, litNum[uint16](l))
	case arrow.UINT32:
		return fillFixed(mem, dt, n, litNum[uint32](l))
	case arrow.UINT64:
		return fillFixed(mem, dt, n, litNum[uint64](l))
	case arrow.FLOAT32:
		return fillFixed(mem, dt, n, litNum[float32](l))
	case arrow.FLOAT64:
		return fillFixed(mem, dt, n, litNum[float64](l))
	case arrow.DECIMAL128:
		return fillFixed(mem, dt, n, l.Value.(decimal128.Num))
	case arrow.BOOL:
		buf := allocBuf(mem, int(bitutil.BytesForBits(int64(n))))
		fill := byte(0)
		if l.Value.(bool) {
			fill = 0xFF
		}
		for i := range buf.Bytes() {
			buf.Bytes()[i] = fill
		}
		return makeArray(dt, n, nil, 0, buf)
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		var s []byte
		switch v := l.Value.(type) {
		case string:
			s = []byte(v)
		case []byte:
			s = v
		}
		w := newStrWriter(n, len(s)*n)
		for i := 0; i < n; i++ {
			w.append(s)
		}
		return w.finish(mem, dt)
	}
	panic(fmt.Sprintf("expr: literal of type %s", dt))
}

// literalAt reads row i of a back into a literal.
func literalAt(a arrow.Array, i int) *Literal {
	l := &Literal{Type: Type{a.DataType()}}
	if a.IsNull(i) {
		l.Null = true
		return l
	}
	switch a := a.(type) {
	case *array.Boolean:
		l.Value = a.Value(i)
	case *array.Int8:
		l.Value = int64(a.Value(i))
	case *array.Int16:
		l.Value = int64(a.Value(i))
	case *array.Int32:
		l.Value = int64(a.Value(i))
	case *array.Int64:
		l.Value = a.Value(i)
	case *array.Uint8:
		l.Value = uint64(a.Value(i))
	case *array.Uint16:
		l.Value = uint64(a.Value(i))
	case *array.Uint32:
		l.Value = uint64(a.Value(i))
	case *array.Uint64:
		l.Value = a.Value(i)
	case *array.Float32:
		l.Value = float64(a.Value(i))
	case *array.Float64:
		l.Value = a.Value(i)
	case *array.Date32:
		l.Value = int64(a.Value(i))
	case *array.Timestamp:
		l.Value = int64(a.Value(i))
	case *array.Duration:
		l.Value = int64(a.Value(i))
	case *array.Decimal128:
		l.Value = a.Value(i)
	case *array.String:
		l.Value = a.Value(i)
	case *array.LargeString:
		l.Value = a.Value(i)
	case *array.Binary:
		l.Value = bytes.Clone(a.Value(i))
	case *array.LargeBinary:
		l.Value = bytes.Clone(a.Value(i))
	default:
		l.Null = true
	}
	return l
}

// ---- arithmetic ----

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func (ev *evaluator) arith(e *Expr, op Op, a, b val, lt, rt, out arrow.DataType) (val, error) {
	if a.null() || b.null() || out.ID() == arrow.NULL {
		return val{lit: &Literal{Type: Type{out}, Null: true}, dt: out}, nil
	}
	a, err := ev.convert(e, a, lt)
	if err != nil {
		return val{}, err
	}
	defer a.release()
	b, err = ev.convert(e, b, rt)
	if err != nil {
		return val{}, err
	}
	defer b.release()
	if a.scalar() && b.scalar() {
		arr, _ := ev.materialize(a)
		defer arr.Release()
		a = val{arr: arr, dt: a.dt}
	}
	var res arrow.Array
	switch lt.ID() {
	case arrow.INT8:
		res = arithInt[int8](ev, op, a, b, out)
	case arrow.INT16:
		res = arithInt[int16](ev, op, a, b, out)
	case arrow.INT32:
		res = arithInt[int32](ev, op, a, b, out)
	case arrow.INT64:
		res = arithInt[int64](ev, op, a, b, out)
	case arrow.UINT8:
		res = arithInt[uint8](ev, op, a, b, out)
	case arrow.UINT16:
		res = arithInt[uint16](ev, op, a, b, out)
	case arrow.UINT32:
		res = arithInt[uint32](ev, op, a, b, out)
	case arrow.UINT64:
		res = arithInt[uint64](ev, op, a, b, out)
	case arrow.FLOAT32:
		res = arithFloat[float32](ev, op, a, b, out)
	case arrow.FLOAT64:
		res = arithFloat[float64](ev, op, a, b, out)
	case arrow.DECIMAL128:
		res = arithDecimal(ev, op, a, b, out)
	default:
		return val{}, ev.b.errf(e, "arithmetic on %s", TypeString(lt))
	}
	return val{arr: res, dt: out}, nil
}

// operands returns typed views of a and b: a slice, or a scalar when the slice is nil.
func operands[T arrow.FixedWidthType](a, b val, conv func(*Literal) T) (av, bv []T, as, bs T) {
	if a.scalar() {
		as = conv(a.lit)
	} else {
		av = fixedValues[T](a.arr)
	}
	if b.scalar() {
		bs = conv(b.lit)
	} else {
		bv = fixedValues[T](b.arr)
	}
	return
}

// addSubMul computes out = a op b for +, -, *; integer overflow wraps.
func addSubMul[T number](op Op, av, bv []T, as, bs T, out []T) {
	n := len(out)
	switch {
	case av != nil && bv != nil:
		av, bv = av[:n], bv[:n]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = av[i] + bv[i]
			}
		case OpSub:
			for i := range out {
				out[i] = av[i] - bv[i]
			}
		case OpMul:
			for i := range out {
				out[i] = av[i] * bv[i]
			}
		}
	case av != nil:
		av = av[:n]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = av[i] + bs
			}
		case OpSub:
			for i := range out {
				out[i] = av[i] - bs
			}
		case OpMul:
			for i := range out {
				out[i] = av[i] * bs
			}
		}
	default:
		bv = bv[:n]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = as + bv[i]
			}
		case OpSub:
			for i := range out {
				out[i] = as - bv[i]
			}
		case OpMul:
			for i := range out {
				out[i] = as * bv[i]
			}
		}
	}
}

// nullSet collects rows that become null inside a kernel (division by zero).
type nullSet struct{ rows []int }

func (ev *evaluator) finishFixed(dt arrow.DataType, a, b val, buf *memory.Buffer, extra nullSet) arrow.Array {
	valid, nulls := andValidity(ev.mem, ev.n, a.arr, b.arr)
	if len(extra.rows) > 0 {
		if valid == nil {
			valid = allocBuf(ev.mem, int(bitutil.BytesForBits(int64(ev.n))))
			bitutil.SetBitsTo(valid.Bytes(), 0, int64(ev.n), true)
		}
		for _, i := range extra.rows {
			bitutil.ClearBit(valid.Bytes(), i)
		}
		nulls = ev.n - bitutil.CountSetBits(valid.Bytes(), 0, ev.n)
	}
	return makeArray(dt, ev.n, valid, nulls, buf)
}

func arithInt[T integer](ev *evaluator, op Op, a, b val, out arrow.DataType) arrow.Array {
	av, bv, as, bs := operands(a, b, litNum[T])
	var z T
	buf := allocBuf(ev.mem, ev.n*int(sizeOf(z)))
	res := arrow.GetData[T](buf.Bytes())[:ev.n]
	var zeros nullSet
	switch op {
	case OpAdd, OpSub, OpMul:
		addSubMul(op, av, bv, as, bs, res)
	default:
		if bv == nil && bs == 0 {
			buf.Release()
			return nullArray(ev.mem, out, ev.n)
		}
		for i := range res {
			x, y := as, bs
			if av != nil {
				x = av[i]
			}
			if bv != nil {
				y = bv[i]
				if y == 0 {
					zeros.rows = append(zeros.rows, i)
					res[i] = 0
					continue
				}
			}
			if op == OpDiv {
				res[i] = x / y
			} else {
				res[i] = x % y
			}
		}
	}
	return ev.finishFixed(out, a, b, buf, zeros)
}

func arithFloat[T float32 | float64](ev *evaluator, op Op, a, b val, out arrow.DataType) arrow.Array {
	av, bv, as, bs := operands(a, b, litNum[T])
	var z T
	buf := allocBuf(ev.mem, ev.n*int(sizeOf(z)))
	res := arrow.GetData[T](buf.Bytes())[:ev.n]
	var zeros nullSet
	switch op {
	case OpAdd, OpSub, OpMul:
		addSubMul(op, av, bv, as, bs, res)
	default:
		if bv == nil && bs == 0 {
			buf.Release()
			return nullArray(ev.mem, out, ev.n)
		}
		for i := range res {
			x, y := as, bs
			if av != nil {
				x = av[i]
			}
			if bv != nil {
				y = bv[i]
				if y == 0 {
					zeros.rows = append(zeros.rows, i)
					res[i] = 0
					continue
				}
			}
			if op == OpDiv {
				res[i] = x / y
			} else {
				res[i] = T(math.Mod(float64(x), float64(y)))
			}
		}
	}
	return ev.finishFixed(out, a, b, buf, zeros)
}

// arithDecimal handles +, -, * on operands already rescaled by arithTypes.
// Results that overflow 38 digits wrap (documented in doc.go).
func arithDecimal(ev *evaluator, op Op, a, b val, out arrow.DataType) arrow.Array {
	av, bv, as, bs := operands(a, b, func(l *Literal) decimal128.Num { return l.Value.(decimal128.Num) })
	buf := allocBuf(ev.mem, ev.n*16)
	res := arrow.GetData[decimal128.Num](buf.Bytes())[:ev.n]
	n := len(res)
	switch {
	case av != nil && bv != nil:
		av, bv = av[:n], bv[:n]
		switch op {
		case OpAdd:
			for i := range res {
				res[i] = av[i].Add(bv[i])
			}
		case OpSub:
			for i := range res {
				res[i] = av[i].Sub(bv[i])
			}
		default:
			for i := range res {
				res[i] = av[i].Mul(bv[i])
			}
		}
	case av != nil:
		av = av[:n]
		switch op {
		case OpAdd:
			for i := range res {
				res[i] = av[i].Add(bs)
			}
		case OpSub:
			for i := range res {
				res[i] = av[i].Sub(bs)
			}
		default:
			for i := range res {
				res[i] = av[i].Mul(bs)
			}
		}
	default:
		bv = bv[:n]
		switch op {
		case OpAdd:
			for i := range res {
				res[i] = as.Add(bv[i])
			}
		case OpSub:
			for i := range res {
				res[i] = as.Sub(bv[i])
			}
		default:
			for i := range res {
				res[i] = as.Mul(bv[i])
			}
		}
	}
	return ev.finishFixed(out, a, b, buf, nullSet{})
}

// ---- comparisons ----

var flipped = map[Op]Op{OpEq: OpEq, OpNe: OpNe, OpLt: OpGt, OpLe: OpGe, OpGt: OpLt, OpGe: OpLe}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (ev *evaluator) compare(e *Expr, op Op, ea, eb *Expr, a, b val) (val, error) {
	boolT := arrow.FixedWidthTypes.Boolean
	if a.null() || b.null() {
		return val{lit: &Literal{Type: Type{boolT}, Null: true}, dt: boolT}, nil
	}
	ct, err := compareType(ea, eb, a.dt, b.dt)
	if err != nil {
		return val{}, ev.b.errf(e, "%v", err)
	}
	a, err = ev.convert(e, a, ct)
	if err != nil {
		return val{}, err
	}
	defer a.release()
	b, err = ev.convert(e, b, ct)
	if err != nil {
		return val{}, err
	}
	defer b.release()
	if a.scalar() && b.scalar() {
		arr, _ := ev.materialize(a)
		defer arr.Release()
		a = val{arr: arr, dt: a.dt}
	}
	if a.scalar() { // keep the array on the left
		a, b, op = b, a, flipped[op]
	}
	buf := allocBuf(ev.mem, int(bitutil.BytesForBits(int64(ev.n))))
	bits := buf.Bytes()
	clear(bits)
	switch ct.ID() {
	case arrow.INT8:
		cmpFixed[int8](op, a, b, bits)
	case arrow.INT16:
		cmpFixed[int16](op, a, b, bits)
	case arrow.INT32, arrow.DATE32:
		cmpFixed[int32](op, a, b, bits)
	case arrow.INT64, arrow.TIMESTAMP, arrow.DURATION, arrow.DATE64:
		cmpFixed[int64](op, a, b, bits)
	case arrow.UINT8:
		cmpFixed[uint8](op, a, b, bits)
	case arrow.UINT16:
		cmpFixed[uint16](op, a, b, bits)
	case arrow.UINT32:
		cmpFixed[uint32](op, a, b, bits)
	case arrow.UINT64:
		cmpFixed[uint64](op, a, b, bits)
	case arrow.FLOAT32:
		cmpFloat[float32](op, a, b, bits)
	case arrow.FLOAT64:
		cmpFloat[float64](op, a, b, bits)
	case arrow.DECIMAL128:
		av := fixedValues[decimal128.Num](a.arr)
		if b.scalar() {
			y := b.lit.Value.(decimal128.Num)
			for i, x := range av {
				bits[i>>3] |= b2u(cmpResult(op, x.Cmp(y))) << (i & 7)
			}
		} else {
			bv := fixedValues[decimal128.Num](b.arr)
			for i, x := range av {
				bits[i>>3] |= b2u(cmpResult(op, x.Cmp(bv[i]))) << (i & 7)
			}
		}
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		av := strViewOf(a.arr)
		if b.scalar() {
			var s []byte
			switch v := b.lit.Value.(type) {
			case string:
				s = []byte(v)
			case []byte:
				s = v
			}
			switch op {
			case OpEq, OpNe:
				want := op == OpEq
				for i := 0; i < ev.n; i++ {
					bits[i>>3] |= b2u(bytes.Equal(av.at(i), s) == want) << (i & 7)
				}
			default:
				for i := 0; i < ev.n; i++ {
					bits[i>>3] |= b2u(cmpResult(op, bytes.Compare(av.at(i), s))) << (i & 7)
				}
			}
		} else {
			bv := strViewOf(b.arr)
			for i := 0; i < ev.n; i++ {
				bits[i>>3] |= b2u(cmpResult(op, bytes.Compare(av.at(i), bv.at(i)))) << (i & 7)
			}
		}
	case arrow.BOOL:
		ab := boolBits(a.arr)
		var bb []byte
		var y bool
		if b.scalar() {
			y = b.lit.Value.(bool)
		} else {
			bb = boolBits(b.arr)
		}
		for i := 0; i < ev.n; i++ {
			if bb != nil {
				y = bitutil.BitIsSet(bb, i)
			}
			bits[i>>3] |= b2u(cmpResult(op, cmpBool(bitutil.BitIsSet(ab, i), y))) << (i & 7)
		}
	default:
		buf.Release()
		return val{}, ev.b.errf(e, "cannot compare %s", TypeString(ct))
	}
	res := ev.finishFixed(boolT, a, b, buf, nullSet{})
	return val{arr: res, dt: boolT}, nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func cmpResult(op Op, c int) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	}
	return c >= 0
}

func cmpFixed[T number](op Op, a, b val, bits []byte) {
	av := fixedValues[T](a.arr)
	if b.scalar() {
		cmpVS(op, av, litNum[T](b.lit), bits)
	} else {
		cmpVV(op, av, fixedValues[T](b.arr), bits)
	}
}

// cmpFloat compares floats in Spark's total order: NaN equals NaN and is
// greater than every other value (+Inf included); -0.0 equals 0.0, as in
// IEEE. Sort, min/max, grouping and join keys use the same order, so a filter
// agrees with them. The kernels are branch-free: the NaN terms are a few
// extra compares and ORs per value (x != x is the NaN test), which keeps
// columns without NaN close to the plain IEEE loop (see BenchmarkFloat*).
func cmpFloat[T float32 | float64](op Op, a, b val, bits []byte) {
	av := fixedValues[T](a.arr)
	if !b.scalar() {
		cmpFloatVV(op, av, fixedValues[T](b.arr), bits)
		return
	}
	s := litNum[T](b.lit)
	if s == s {
		switch op {
		case OpGt:
			for i, v := range av {
				bits[i>>3] |= (b2u(v > s) | b2u(v != v)) << (i & 7)
			}
		case OpGe:
			for i, v := range av {
				bits[i>>3] |= (b2u(v >= s) | b2u(v != v)) << (i & 7)
			}
		default: // =, <>, <, <= give Spark's answer under IEEE when s is a number
			cmpVS(op, av, s, bits)
		}
		return
	}
	// s is NaN: only NaN equals it and nothing is greater.
	switch op {
	case OpEq, OpGe:
		for i, v := range av {
			bits[i>>3] |= b2u(v != v) << (i & 7)
		}
	case OpNe, OpLt:
		for i, v := range av {
			bits[i>>3] |= b2u(v == v) << (i & 7)
		}
	case OpLe:
		for i := range av {
			bits[i>>3] |= 1 << (i & 7)
		}
	}
}

func cmpFloatVV[T float32 | float64](op Op, a, b []T, out []byte) {
	b = b[:len(a)]
	switch op {
	case OpEq:
		for i, v := range a {
			w := b[i]
			out[i>>3] |= (b2u(v == w) | b2u(v != v)&b2u(w != w)) << (i & 7)
		}
	case OpNe:
		for i, v := range a {
			w := b[i]
			out[i>>3] |= (b2u(v != w) &^ (b2u(v != v) & b2u(w != w))) << (i & 7)
		}
	case OpLt:
		for i, v := range a {
			w := b[i]
			out[i>>3] |= (b2u(v < w) | b2u(v == v)&b2u(w != w)) << (i & 7)
		}
	case OpLe:
		for i, v := range a {
			w := b[i]
			out[i>>3] |= (b2u(v <= w) | b2u(w != w)) << (i & 7)
		}
	case OpGt:
		for i, v := range a {
			w := b[i]
			out[i>>3] |= (b2u(v > w) | b2u(v != v)&b2u(w == w)) << (i & 7)
		}
	case OpGe:
		for i, v := range a {
			w := b[i]
			out[i>>3] |= (b2u(v >= w) | b2u(v != v)) << (i & 7)
		}
	}
}

func cmpVS[T cmp.Ordered](op Op, a []T, s T, out []byte) {
	switch op {
	case OpEq:
		for i, v := range a {
			out[i>>3] |= b2u(v == s) << (i & 7)
		}
	case OpNe:
		for i, v := range a {
			out[i>>3] |= b2u(v != s) << (i & 7)
		}
	case OpLt:
		for i, v := range a {
			out[i>>3] |= b2u(v < s) << (i & 7)
		}
	case OpLe:
		for i, v := range a {
			out[i>>3] |= b2u(v <= s) << (i & 7)
		}
	case OpGt:
		for i, v := range a {
			out[i>>3] |= b2u(v > s) << (i & 7)
		}
	case OpGe:
		for i, v := range a {
			out[i>>3] |= b2u(v >= s) << (i & 7)
		}
	}
}

func cmpVV[T cmp.Ordered](op Op, a, b []T, out []byte) {
	b = b[:len(a)]
	switch op {
	case OpEq:
		for i, v := range a {
			out[i>>3] |= b2u(v == b[i]) << (i & 7)
		}
	case OpNe:
		for i, v := range a {
			out[i>>3] |= b2u(v != b[i]) << (i & 7)
		}
	case OpLt:
		for i, v := range a {
			out[i>>3] |= b2u(v < b[i]) << (i & 7)
		}
	case OpLe:
		for i, v := range a {
			out[i>>3] |= b2u(v <= b[i]) << (i & 7)
		}
	case OpGt:
		for i, v := range a {
			out[i>>3] |= b2u(v > b[i]) << (i & 7)
		}
	case OpGe:
		for i, v := range a {
			out[i>>3] |= b2u(v >= b[i]) << (i & 7)
		}
	}
}

func (ev *evaluator) between(e *Expr) (val, error) {
	x, err := ev.eval(e.Args[0])
	if err != nil {
		return val{}, err
	}
	defer x.release()
	var parts [2]val
	for k, op := range []Op{OpGe, OpLe} {
		bound, err := ev.eval(e.Args[k+1])
		if err != nil {
			if k == 1 {
				parts[0].release()
			}
			return val{}, err
		}
		parts[k], err = ev.compare(e, op, e.Args[0], e.Args[k+1], x, bound)
		bound.release()
		if err != nil {
			if k == 1 {
				parts[0].release()
			}
			return val{}, err
		}
	}
	defer parts[0].release()
	defer parts[1].release()
	return ev.logic(OpAnd, parts[0], parts[1])
}

// in is the Kleene OR of lhs = v for every v: null if lhs is null, true on a
// match, else null if a value is null, else false.
func (ev *evaluator) in(e *Expr) (val, error) {
	x, err := ev.eval(e.Args[0])
	if err != nil {
		return val{}, err
	}
	defer x.release()
	boolT := arrow.FixedWidthTypes.Boolean
	acc := val{lit: &Literal{Type: Type{boolT}, Value: false}, dt: boolT}
	for k, a := range e.Args[1:] {
		v, err := ev.eval(a)
		if err != nil {
			acc.release()
			return val{}, err
		}
		eq, err := ev.compare(e, OpEq, e.Args[0], a, x, v)
		v.release()
		if err != nil {
			acc.release()
			return val{}, err
		}
		if k == 0 {
			acc = eq
			continue
		}
		next, err := ev.logic(OpOr, acc, eq)
		acc.release()
		eq.release()
		if err != nil {
			return val{}, err
		}
		acc = next
	}
	return acc, nil
}

// ---- boolean logic ----

func (ev *evaluator) boolArrays(vs ...val) ([]arrow.Array, func()) {
	out := make([]arrow.Array, len(vs))
	var owned []arrow.Array
	for i, v := range vs {
		if v.arr != nil && v.dt.ID() == arrow.BOOL {
			out[i] = v.arr
			continue
		}
		var a arrow.Array
		if v.null() || v.dt.ID() == arrow.NULL {
			a = nullArray(ev.mem, arrow.FixedWidthTypes.Boolean, ev.n)
		} else {
			a = litArray(ev.mem, v.lit, v.dt, ev.n)
		}
		owned = append(owned, a)
		out[i] = a
	}
	return out, func() {
		for _, a := range owned {
			a.Release()
		}
	}
}

// logic is Kleene AND/OR: false AND null = false, true OR null = true.
func (ev *evaluator) logic(op Op, a, b val) (val, error) {
	boolT := arrow.FixedWidthTypes.Boolean
	if a.scalar() && b.scalar() && !a.null() && !b.null() {
		x, y := a.lit.Value.(bool), b.lit.Value.(bool)
		r := x && y
		if op == OpOr {
			r = x || y
		}
		return val{lit: &Literal{Type: Type{boolT}, Value: r}, dt: boolT}, nil
	}
	arrs, done := ev.boolArrays(a, b)
	defer done()
	nb := int(bitutil.BytesForBits(int64(ev.n)))
	av, bv := boolBits(arrs[0]), boolBits(arrs[1])
	va, oa := validity(arrs[0])
	vb, ob := validity(arrs[1])
	if va != nil {
		va = bitsAt0(va, oa, ev.n)
	}
	if vb != nil {
		vb = bitsAt0(vb, ob, ev.n)
	}
	vals := allocBuf(ev.mem, nb)
	out := vals.Bytes()
	if va == nil && vb == nil {
		for j := range out {
			if op == OpAnd {
				out[j] = av[j] & bv[j]
			} else {
				out[j] = av[j] | bv[j]
			}
		}
		return val{arr: makeArray(boolT, ev.n, nil, 0, vals), dt: boolT}, nil
	}
	valid := allocBuf(ev.mem, nb)
	vo := valid.Bytes()
	for j := range out {
		x, y := av[j], bv[j]
		vx, vy := byte(0xFF), byte(0xFF)
		if va != nil {
			vx = va[j]
		}
		if vb != nil {
			vy = vb[j]
		}
		if op == OpAnd {
			out[j] = x & y
			vo[j] = (vx & vy) | (vx &^ x) | (vy &^ y)
		} else {
			out[j] = x | y
			vo[j] = (vx & vy) | (vx & x) | (vy & y)
		}
	}
	nulls := ev.n - bitutil.CountSetBits(vo, 0, ev.n)
	return val{arr: makeArray(boolT, ev.n, valid, nulls, vals), dt: boolT}, nil
}

func (ev *evaluator) unaryBool(op Op, a val) (val, error) {
	boolT := arrow.FixedWidthTypes.Boolean
	if a.scalar() {
		switch op {
		case OpIsNull:
			return val{lit: &Literal{Type: Type{boolT}, Value: a.null()}, dt: boolT}, nil
		case OpNotNull:
			return val{lit: &Literal{Type: Type{boolT}, Value: !a.null()}, dt: boolT}, nil
		}
		if a.null() {
			return val{lit: &Literal{Type: Type{boolT}, Null: true}, dt: boolT}, nil
		}
		return val{lit: &Literal{Type: Type{boolT}, Value: !a.lit.Value.(bool)}, dt: boolT}, nil
	}
	nb := int(bitutil.BytesForBits(int64(ev.n)))
	vals := allocBuf(ev.mem, nb)
	out := vals.Bytes()
	vm, off := validity(a.arr)
	switch op {
	case OpIsNull, OpNotNull:
		if vm == nil {
			clear(out)
		} else {
			bitutil.CopyBitmap(vm, off, ev.n, out, 0)
		}
		if op == OpIsNull || vm == nil {
			fill := op == OpNotNull
			if vm != nil {
				for j := range out {
					out[j] = ^out[j]
				}
			} else {
				bitutil.SetBitsTo(out, 0, int64(ev.n), fill)
			}
		}
		return val{arr: makeArray(boolT, ev.n, nil, 0, vals), dt: boolT}, nil
	}
	if a.dt.ID() == arrow.NULL {
		vals.Release()
		return val{arr: nullArray(ev.mem, boolT, ev.n), dt: boolT}, nil
	}
	av := boolBits(a.arr)
	for j := range out {
		out[j] = ^av[j]
	}
	valid, nulls := andValidity(ev.mem, ev.n, a.arr)
	return val{arr: makeArray(boolT, ev.n, valid, nulls, vals), dt: boolT}, nil
}

// ---- case / coalesce ----

func (ev *evaluator) evalAs(e *Expr, arg *Expr, dt arrow.DataType) (arrow.Array, error) {
	v, err := ev.eval(arg)
	if err != nil {
		return nil, err
	}
	defer v.release()
	c, err := ev.convert(e, v, dt)
	if err != nil {
		return nil, err
	}
	return ev.materialize(c)
}

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		if a != nil {
			a.Release()
		}
	}
}

func (ev *evaluator) caseWhen(e *Expr, dt arrow.DataType) (val, error) {
	n := len(e.Args)
	if e.HasElse {
		n--
	}
	idx := make([]int32, ev.n)
	for i := range idx {
		idx[i] = -1
	}
	var srcs []arrow.Array
	defer func() { releaseAll(srcs) }()
	boolT := arrow.FixedWidthTypes.Boolean
	for k := 0; k < n; k += 2 {
		c, err := ev.evalAs(e, e.Args[k], boolT)
		if err != nil {
			return val{}, err
		}
		bits := boolBits(c)
		vm, off := validity(c)
		branch := int32(len(srcs))
		for i := range idx {
			if idx[i] == -1 && bitutil.BitIsSet(bits, i) && (vm == nil || bitutil.BitIsSet(vm, off+i)) {
				idx[i] = branch
			}
		}
		c.Release()
		v, err := ev.evalAs(e, e.Args[k+1], dt)
		if err != nil {
			return val{}, err
		}
		srcs = append(srcs, v)
	}
	if e.HasElse {
		v, err := ev.evalAs(e, e.Args[len(e.Args)-1], dt)
		if err != nil {
			return val{}, err
		}
		srcs = append(srcs, v)
		for i := range idx {
			if idx[i] == -1 {
				idx[i] = int32(len(srcs) - 1)
			}
		}
	}
	return val{arr: choose(ev.mem, dt, idx, srcs), dt: dt}, nil
}

func (ev *evaluator) coalesce(e *Expr, dt arrow.DataType) (val, error) {
	idx := make([]int32, ev.n)
	for i := range idx {
		idx[i] = -1
	}
	var srcs []arrow.Array
	defer func() { releaseAll(srcs) }()
	for _, arg := range e.Args {
		v, err := ev.evalAs(e, arg, dt)
		if err != nil {
			return val{}, err
		}
		k := int32(len(srcs))
		srcs = append(srcs, v)
		vm, off := validity(v)
		for i := range idx {
			if idx[i] == -1 && (vm == nil || bitutil.BitIsSet(vm, off+i)) {
				idx[i] = k
			}
		}
	}
	return val{arr: choose(ev.mem, dt, idx, srcs), dt: dt}, nil
}

// choose builds out[i] = srcs[idx[i]][i], null where idx[i] < 0.
func choose(mem memory.Allocator, dt arrow.DataType, idx []int32, srcs []arrow.Array) arrow.Array {
	n := len(idx)
	if dt.ID() == arrow.NULL {
		return array.NewNull(n)
	}
	nb := int(bitutil.BytesForBits(int64(n)))
	valid := allocBuf(mem, nb)
	vb := valid.Bytes()
	clear(vb)
	for i, k := range idx {
		if k >= 0 && srcs[k].IsValid(i) {
			bitutil.SetBit(vb, i)
		} else {
			idx[i] = -1
		}
	}
	nulls := n - bitutil.CountSetBits(vb, 0, n)
	switch dt.ID() {
	case arrow.BOOL:
		buf := allocBuf(mem, nb)
		clear(buf.Bytes())
		bits := make([][]byte, len(srcs))
		for k, s := range srcs {
			bits[k] = boolBits(s)
		}
		for i, k := range idx {
			if k >= 0 && bitutil.BitIsSet(bits[k], i) {
				bitutil.SetBit(buf.Bytes(), i)
			}
		}
		return makeArray(dt, n, valid, nulls, buf)
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		views := make([]strView, len(srcs))
		for k, s := range srcs {
			views[k] = strViewOf(s)
		}
		w := newStrWriter(n, 0)
		for i, k := range idx {
			if k >= 0 {
				w.append(views[k].at(i))
			} else {
				w.appendNull()
			}
		}
		valid.Release()
		return w.finish(mem, dt)
	}
	switch dt.(arrow.FixedWidthDataType).BitWidth() {
	case 8:
		return chooseFixed[uint8](mem, dt, idx, srcs, valid, nulls)
	case 16:
		return chooseFixed[uint16](mem, dt, idx, srcs, valid, nulls)
	case 32:
		return chooseFixed[uint32](mem, dt, idx, srcs, valid, nulls)
	case 64:
		return chooseFixed[uint64](mem, dt, idx, srcs, valid, nulls)
	}
	return chooseFixed[decimal128.Num](mem, dt, idx, srcs, valid, nulls)
}

func chooseFixed[T arrow.FixedWidthType](mem memory.Allocator, dt arrow.DataType, idx []int32, srcs []arrow.Array, valid *memory.Buffer, nulls int) arrow.Array {
	var z T
	buf := allocBuf(mem, len(idx)*int(sizeOf(z)))
	out := arrow.GetData[T](buf.Bytes())[:len(idx)]
	vals := make([][]T, len(srcs))
	for k, s := range srcs {
		vals[k] = fixedValues[T](s)
	}
	for i, k := range idx {
		if k >= 0 {
			out[i] = vals[k][i]
		} else {
			out[i] = z
		}
	}
	return makeArray(dt, len(idx), valid, nulls, buf)
}
