package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// caster carries what a cast error must name.
type caster struct {
	mem  memory.Allocator
	e    *Expr // the node being evaluated (for the message)
	root *Expr
}

func (c caster) fail(a arrow.Array, row int, to arrow.DataType) error {
	return fmt.Errorf("%w: cannot cast %s to %s at row %d in %s", ErrCast, literalAt(a, row), TypeString(to), row, c.root)
}

func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// castArray converts a to type to (ANSI: an unparseable or overflowing
// value is an error naming the value, row and expression). The result is
// owned by the caller; a is not released.
func castArray(mem memory.Allocator, a arrow.Array, to arrow.DataType, e, root *Expr) (arrow.Array, error) {
	c := caster{mem: mem, e: e, root: root}
	from := a.DataType()
	n := a.Len()
	switch {
	case arrow.TypeEqual(from, to):
		a.Retain()
		return a, nil
	case sameLayout(from, to):
		return retype(a, to), nil
	case from.ID() == arrow.NULL:
		if to.ID() == arrow.NULL {
			return nullArray(mem, to, n), nil
		}
		return nullArray(mem, to, n), nil
	case isString(to) || (isBinary(to) && (isString(from) || isBinary(from))):
		return c.toString(a, to)
	case isString(from):
		return c.fromString(a, to)
	case from.ID() == arrow.BOOL:
		if !isNumeric(to) {
			break
		}
		bits := boolBits(a)
		buf := allocBuf(mem, n*8)
		out := arrow.GetData[int64](buf.Bytes())[:n]
		for i := range out {
			out[i] = int64(b2u(bitutil.BitIsSet(bits, i)))
		}
		valid, nulls := andValidity(mem, n, a)
		tmp := makeArray(arrow.PrimitiveTypes.Int64, n, valid, nulls, buf)
		defer tmp.Release()
		return castArray(mem, tmp, to, e, root)
	case isDecimal(from):
		return c.fromDecimal(a, to)
	case isNumeric(from):
		return c.fromNumber(a, to)
	case isTemporal(from) && isTemporal(to):
		return c.temporal(a, to)
	}
	return nil, fmt.Errorf("%w: cannot cast %s to %s in %s", ErrType, TypeString(from), TypeString(to), root)
}

func (c caster) fromNumber(a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	switch a.DataType().ID() {
	case arrow.INT8:
		return castFrom[int8](c, a, to)
	case arrow.INT16:
		return castFrom[int16](c, a, to)
	case arrow.INT32:
		return castFrom[int32](c, a, to)
	case arrow.INT64:
		return castFrom[int64](c, a, to)
	case arrow.UINT8:
		return castFrom[uint8](c, a, to)
	case arrow.UINT16:
		return castFrom[uint16](c, a, to)
	case arrow.UINT32:
		return castFrom[uint32](c, a, to)
	case arrow.UINT64:
		return castFrom[uint64](c, a, to)
	case arrow.FLOAT32:
		return castFrom[float32](c, a, to)
	case arrow.FLOAT64:
		return castFrom[float64](c, a, to)
	}
	return nil, fmt.Errorf("%w: cannot cast %s in %s", ErrType, TypeString(a.DataType()), c.root)
}

func castFrom[F number](c caster, a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	src := fixedValues[F](a)
	switch to.ID() {
	case arrow.INT8:
		return convNum[F, int8](c, a, src, to)
	case arrow.INT16:
		return convNum[F, int16](c, a, src, to)
	case arrow.INT32:
		return convNum[F, int32](c, a, src, to)
	case arrow.INT64:
		return convNum[F, int64](c, a, src, to)
	case arrow.UINT8:
		return convNum[F, uint8](c, a, src, to)
	case arrow.UINT16:
		return convNum[F, uint16](c, a, src, to)
	case arrow.UINT32:
		return convNum[F, uint32](c, a, src, to)
	case arrow.UINT64:
		return convNum[F, uint64](c, a, src, to)
	case arrow.FLOAT32:
		return convNum[F, float32](c, a, src, to)
	case arrow.FLOAT64:
		return convNum[F, float64](c, a, src, to)
	case arrow.BOOL:
		n := a.Len()
		buf := allocBuf(c.mem, int(bitutil.BytesForBits(int64(n))))
		clear(buf.Bytes())
		for i, v := range src {
			buf.Bytes()[i>>3] |= b2u(v != 0) << (i & 7)
		}
		valid, nulls := andValidity(c.mem, n, a)
		return makeArray(to, n, valid, nulls, buf), nil
	case arrow.DECIMAL128:
		dt := to.(*arrow.Decimal128Type)
		n := a.Len()
		buf := allocBuf(c.mem, n*16)
		out := arrow.GetData[decimal128.Num](buf.Bytes())[:n]
		var zf F
		_, fromFloat := any(zf).(float32)
		if _, ok := any(zf).(float64); ok {
			fromFloat = true
		}
		vm, off := validity(a)
		limit := decimal128.GetScaleMultiplier(int(dt.Precision - dt.Scale))
		for i, v := range src {
			if vm != nil && !bitutil.BitIsSet(vm, off+i) {
				continue
			}
			var d decimal128.Num
			var err error
			switch {
			case fromFloat:
				d, err = decimal128.FromFloat64(float64(v), dt.Precision, dt.Scale)
			case v < 0:
				d = decimal128.FromI64(int64(v))
			default:
				d = decimal128.FromU64(uint64(v))
			}
			if !fromFloat {
				if !d.Abs().Less(limit) {
					err = fmt.Errorf("overflow")
				} else {
					d = d.Mul(decimal128.GetScaleMultiplier(int(dt.Scale)))
				}
			}
			if err != nil {
				buf.Release()
				return nil, c.fail(a, i, to)
			}
			out[i] = d
		}
		valid, nulls := andValidity(c.mem, n, a)
		return makeArray(to, n, valid, nulls, buf), nil
	}
	return nil, fmt.Errorf("%w: cannot cast %s to %s in %s", ErrType, TypeString(a.DataType()), TypeString(to), c.root)
}

func floatKind[T number]() bool {
	var z T
	switch any(z).(type) {
	case float32, float64:
		return true
	}
	return false
}

// intRange is [lo, hi) of integer type T as float64 (exact powers of two).
func intRange[T number]() (float64, float64) {
	var z T
	switch any(z).(type) {
	case int8:
		return -128, 128
	case int16:
		return -32768, 32768
	case int32:
		return -(1 << 31), 1 << 31
	case int64:
		return -(1 << 63), 1 << 63
	case uint8:
		return 0, 256
	case uint16:
		return 0, 65536
	case uint32:
		return 0, 1 << 32
	}
	return 0, 1 << 64
}

func convNum[F, T number](c caster, a arrow.Array, src []F, to arrow.DataType) (arrow.Array, error) {
	n := a.Len()
	var zt T
	buf := allocBuf(c.mem, n*int(sizeOf(zt)))
	out := arrow.GetData[T](buf.Bytes())[:n]
	fromFloat, toFloat := floatKind[F](), floatKind[T]()
	lo, hi := intRange[T]()
	vm, off := validity(a)
	for i, v := range src {
		t := T(v)
		if !toFloat {
			var bad bool
			if fromFloat {
				f := float64(v)
				bad = !(f >= lo && f < hi)
			} else {
				bad = F(t) != v || (v < 0) != (t < 0)
			}
			if bad {
				if vm == nil || bitutil.BitIsSet(vm, off+i) {
					buf.Release()
					return nil, c.fail(a, i, to)
				}
				t = 0
			}
		}
		out[i] = t
	}
	valid, nulls := andValidity(c.mem, n, a)
	return makeArray(to, n, valid, nulls, buf), nil
}

func (c caster) fromDecimal(a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	dt := a.DataType().(*arrow.Decimal128Type)
	src := fixedValues[decimal128.Num](a)
	n := a.Len()
	vm, off := validity(a)
	valid := func(i int) bool { return vm == nil || bitutil.BitIsSet(vm, off+i) }
	switch {
	case isDecimal(to):
		td := to.(*arrow.Decimal128Type)
		buf := allocBuf(c.mem, n*16)
		out := arrow.GetData[decimal128.Num](buf.Bytes())[:n]
		for i, v := range src {
			if !valid(i) {
				out[i] = decimal128.Num{}
				continue
			}
			d, ok := rescale(v, dt.Scale, td.Scale, td.Precision)
			if !ok {
				buf.Release()
				return nil, c.fail(a, i, to)
			}
			out[i] = d
		}
		vb, nulls := andValidity(c.mem, n, a)
		return makeArray(to, n, vb, nulls, buf), nil
	case isFloat(to), isInteger(to):
		buf := allocBuf(c.mem, n*8)
		tmpT := arrow.DataType(arrow.PrimitiveTypes.Float64)
		if isFloat(to) {
			out := arrow.GetData[float64](buf.Bytes())[:n]
			for i, v := range src {
				out[i] = v.ToFloat64(dt.Scale)
			}
		} else {
			tmpT = arrow.PrimitiveTypes.Int64
			out := arrow.GetData[int64](buf.Bytes())[:n]
			for i, v := range src {
				if !valid(i) {
					out[i] = 0
					continue
				}
				r := v.ReduceScaleBy(dt.Scale, false)
				if r.HighBits() != int64(r.LowBits())>>63 {
					buf.Release()
					return nil, c.fail(a, i, to)
				}
				out[i] = int64(r.LowBits())
			}
		}
		vb, nulls := andValidity(c.mem, n, a)
		tmp := makeArray(tmpT, n, vb, nulls, buf)
		defer tmp.Release()
		return castArray(c.mem, tmp, to, c.e, c.root)
	}
	return nil, fmt.Errorf("%w: cannot cast %s to %s in %s", ErrType, TypeString(dt), TypeString(to), c.root)
}

// rescale changes v's scale from s1 to s2 (rounding half up when reducing)
// and reports whether the result fits precision p.
func rescale(v decimal128.Num, s1, s2, p int32) (decimal128.Num, bool) {
	if s2 >= s1 {
		room := p - (s2 - s1)
		if room < 0 || !v.Abs().Less(decimal128.GetScaleMultiplier(int(max(room, 0)))) {
			return v, v.Sign() == 0
		}
		return v.Mul(decimal128.GetScaleMultiplier(int(s2 - s1))), true
	}
	r := v.ReduceScaleBy(s1-s2, true)
	return r, r.FitsInPrecision(p)
}

func (c caster) toString(a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	n := a.Len()
	w := newStrWriter(n, 0)
	vm, off := validity(a)
	from := a.DataType()
	var loc *time.Location
	if ts, ok := from.(*arrow.TimestampType); ok {
		var err error
		if loc, err = loadLocation(ts.TimeZone); err != nil {
			return nil, fmt.Errorf("%w: %v in %s", ErrType, err, c.root)
		}
	}
	var sv strView
	if isString(from) || isBinary(from) {
		sv = strViewOf(a)
	}
	var bits []byte
	if from.ID() == arrow.BOOL {
		bits = boolBits(a)
	}
	for i := 0; i < n; i++ {
		if vm != nil && !bitutil.BitIsSet(vm, off+i) {
			w.appendNull()
			continue
		}
		d := w.data
		switch from.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
			d = append(d, sv.at(i)...)
		case arrow.BOOL:
			d = strconv.AppendBool(d, bitutil.BitIsSet(bits, i))
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
			d = strconv.AppendInt(d, literalAt(a, i).Value.(int64), 10)
		case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
			d = strconv.AppendUint(d, literalAt(a, i).Value.(uint64), 10)
		case arrow.FLOAT32, arrow.FLOAT64:
			d = append(d, literalAt(a, i).String()...)
		case arrow.DECIMAL128:
			d = append(d, literalAt(a, i).String()...)
		case arrow.DATE32:
			days := int64(fixedValues[int32](a)[i])
			d = time.Unix(days*86400, 0).UTC().AppendFormat(d, "2006-01-02")
		case arrow.TIMESTAMP:
			ts := from.(*arrow.TimestampType)
			d = tsToTime(fixedValues[int64](a)[i], ts.Unit).In(loc).AppendFormat(d, "2006-01-02 15:04:05.999999999")
		default:
			return nil, fmt.Errorf("%w: cannot cast %s to %s in %s", ErrType, TypeString(from), TypeString(to), c.root)
		}
		w.data = d
		w.offs = append(w.offs, int64(len(w.data)))
	}
	return w.finish(c.mem, to), nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "y", "1":
		return true, true
	case "false", "f", "no", "n", "0":
		return false, true
	}
	return false, false
}

var tsLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseTimestamp accepts RFC 3339 and "2006-01-02 15:04:05[.fff]"; a value
// without an offset is read in loc.
func parseTimestamp(s string, loc *time.Location) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range tsLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseDate(s string) (int32, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && (s[10] == ' ' || s[10] == 'T') {
		s = s[:10]
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return int32(floorDiv(t.Unix(), 86400)), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

var unitPerSec = map[arrow.TimeUnit]int64{arrow.Second: 1, arrow.Millisecond: 1e3, arrow.Microsecond: 1e6, arrow.Nanosecond: 1e9}

func timeToUnit(t time.Time, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return t.Unix()
	case arrow.Millisecond:
		return t.UnixMilli()
	case arrow.Microsecond:
		return t.UnixMicro()
	}
	return t.UnixNano()
}

func (c caster) fromString(a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	n := a.Len()
	sv := strViewOf(a)
	vm, off := validity(a)
	valid := func(i int) bool { return vm == nil || bitutil.BitIsSet(vm, off+i) }
	var bb *memory.Buffer
	switch to.ID() {
	case arrow.BOOL:
		bb = allocBuf(c.mem, int(bitutil.BytesForBits(int64(n))))
		clear(bb.Bytes())
	case arrow.DATE32:
		bb = allocBuf(c.mem, n*4)
	case arrow.TIMESTAMP:
		bb = allocBuf(c.mem, n*8)
	case arrow.DECIMAL128:
		bb = allocBuf(c.mem, n*16)
	default:
		if !isNumeric(to) {
			return nil, fmt.Errorf("%w: cannot cast %s to %s in %s", ErrType, TypeString(a.DataType()), TypeString(to), c.root)
		}
		// Parse into int64/uint64/float64, then narrow with range checks.
		bb = allocBuf(c.mem, n*8)
	}
	var loc *time.Location
	if ts, ok := to.(*arrow.TimestampType); ok {
		var err error
		if loc, err = loadLocation(ts.TimeZone); err != nil {
			bb.Release()
			return nil, fmt.Errorf("%w: %v in %s", ErrType, err, c.root)
		}
	}
	tmpT := to
	for i := 0; i < n; i++ {
		if !valid(i) {
			continue
		}
		s := bstr(sv.at(i))
		ok := true
		switch {
		case to.ID() == arrow.BOOL:
			var v bool
			if v, ok = parseBool(s); v {
				bitutil.SetBit(bb.Bytes(), i)
			}
		case to.ID() == arrow.DATE32:
			arrow.GetData[int32](bb.Bytes())[i], ok = parseDate(s)
		case to.ID() == arrow.TIMESTAMP:
			var t time.Time
			t, ok = parseTimestamp(s, loc)
			arrow.GetData[int64](bb.Bytes())[i] = timeToUnit(t, to.(*arrow.TimestampType).Unit)
		case to.ID() == arrow.DECIMAL128:
			dt := to.(*arrow.Decimal128Type)
			v, err := decimal128.FromString(strings.TrimSpace(s), dt.Precision, dt.Scale)
			ok = err == nil && v.FitsInPrecision(dt.Precision)
			arrow.GetData[decimal128.Num](bb.Bytes())[i] = v
		case isFloat(to):
			tmpT = arrow.PrimitiveTypes.Float64
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			ok = err == nil || (err != nil && math.IsInf(v, 0) && false)
			arrow.GetData[float64](bb.Bytes())[i] = v
		case isUnsigned(to):
			tmpT = arrow.PrimitiveTypes.Uint64
			v, err := strconv.ParseUint(strings.TrimSpace(s), 10, intBits(to))
			ok = err == nil
			arrow.GetData[uint64](bb.Bytes())[i] = v
		default:
			tmpT = arrow.PrimitiveTypes.Int64
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, intBits(to))
			ok = err == nil
			arrow.GetData[int64](bb.Bytes())[i] = v
		}
		if !ok {
			bb.Release()
			return nil, c.fail(a, i, to)
		}
	}
	vb, nulls := andValidity(c.mem, n, a)
	out := makeArray(tmpT, n, vb, nulls, bb)
	if arrow.TypeEqual(tmpT, to) {
		return out, nil
	}
	defer out.Release()
	return castArray(c.mem, out, to, c.e, c.root)
}

func (c caster) temporal(a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	n := a.Len()
	from := a.DataType()
	vb, nulls := andValidity(c.mem, n, a)
	vm, off := validity(a)
	valid := func(i int) bool { return vm == nil || bitutil.BitIsSet(vm, off+i) }
	switch {
	case from.ID() == arrow.DATE32 && to.ID() == arrow.TIMESTAMP:
		ts := to.(*arrow.TimestampType)
		loc, err := loadLocation(ts.TimeZone)
		if err != nil {
			releaseBuf(vb)
			return nil, fmt.Errorf("%w: %v in %s", ErrType, err, c.root)
		}
		buf := allocBuf(c.mem, n*8)
		out := arrow.GetData[int64](buf.Bytes())[:n]
		per := unitPerSec[ts.Unit]
		for i, d := range fixedValues[int32](a) {
			if loc == time.UTC {
				out[i] = int64(d) * 86400 * per
			} else {
				y, m, dd := time.Unix(int64(d)*86400, 0).UTC().Date()
				out[i] = timeToUnit(time.Date(y, m, dd, 0, 0, 0, 0, loc), ts.Unit)
			}
		}
		return makeArray(to, n, vb, nulls, buf), nil
	case from.ID() == arrow.TIMESTAMP && to.ID() == arrow.DATE32:
		ts := from.(*arrow.TimestampType)
		loc, err := loadLocation(ts.TimeZone)
		if err != nil {
			releaseBuf(vb)
			return nil, fmt.Errorf("%w: %v in %s", ErrType, err, c.root)
		}
		buf := allocBuf(c.mem, n*4)
		out := arrow.GetData[int32](buf.Bytes())[:n]
		per := unitPerSec[ts.Unit]
		for i, v := range fixedValues[int64](a) {
			if loc == time.UTC {
				out[i] = int32(floorDiv(v, per*86400))
			} else {
				t := tsToTime(v, ts.Unit).In(loc)
				y, m, d := t.Date()
				out[i] = int32(floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400))
			}
		}
		return makeArray(to, n, vb, nulls, buf), nil
	case from.ID() == arrow.TIMESTAMP && to.ID() == arrow.TIMESTAMP:
		f, t := unitPerSec[from.(*arrow.TimestampType).Unit], unitPerSec[to.(*arrow.TimestampType).Unit]
		buf := allocBuf(c.mem, n*8)
		out := arrow.GetData[int64](buf.Bytes())[:n]
		src := fixedValues[int64](a)
		switch {
		case f == t:
			copy(out, src)
		case t > f:
			k := t / f
			lim := math.MaxInt64 / k
			for i, v := range src {
				if (v > lim || v < -lim) && valid(i) {
					buf.Release()
					releaseBuf(vb)
					return nil, c.fail(a, i, to)
				}
				out[i] = v * k
			}
		default:
			k := f / t
			for i, v := range src {
				out[i] = floorDiv(v, k)
			}
		}
		return makeArray(to, n, vb, nulls, buf), nil
	}
	releaseBuf(vb)
	return nil, fmt.Errorf("%w: cannot cast %s to %s in %s", ErrType, TypeString(from), TypeString(to), c.root)
}

func releaseBuf(b *memory.Buffer) {
	if b != nil {
		b.Release()
	}
}

// sameLayout reports casts that change only type metadata: a decimal gaining
// precision at the same scale, a timestamp changing zone in the same unit,
// string <-> binary with the same offset width.
func sameLayout(from, to arrow.DataType) bool {
	switch f := from.(type) {
	case *arrow.Decimal128Type:
		t, ok := to.(*arrow.Decimal128Type)
		return ok && t.Scale == f.Scale && t.Precision >= f.Precision
	case *arrow.TimestampType:
		t, ok := to.(*arrow.TimestampType)
		return ok && t.Unit == f.Unit
	}
	switch from.ID() {
	case arrow.STRING, arrow.BINARY:
		return to.ID() == arrow.STRING || to.ID() == arrow.BINARY
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return to.ID() == arrow.LARGE_STRING || to.ID() == arrow.LARGE_BINARY
	}
	return false
}

// retype shares a's buffers under type to.
func retype(a arrow.Array, to arrow.DataType) arrow.Array {
	d := a.Data()
	nd := array.NewData(to, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
	defer nd.Release()
	return array.MakeFromData(nd)
}
