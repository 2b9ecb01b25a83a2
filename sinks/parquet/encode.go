package parquet

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	pq "github.com/parquet-go/parquet-go"
)

// encoder turns rows [start, end) of one Arrow array into parquet values
// for one optional leaf column. The loops switch on the type once per call,
// never per row; values of byte-array columns point into the Arrow buffers
// (or into scratch for decimals) and are copied by parquet-go when written.
type encoder struct {
	values  []pq.Value
	scratch []byte
}

func (e *encoder) encode(c *column, arr arrow.Array, start, end int) ([]pq.Value, error) {
	n := end - start
	if cap(e.values) < n {
		e.values = make([]pq.Value, n)
	}
	out := e.values[:n]
	leaf := c.leaf
	null := pq.NullValue().Level(0, 0, leaf)
	hasNulls := arr.NullN() > 0
	switch c.kind {
	case kBool:
		a := arr.(*array.Boolean)
		for i := start; i < end; i++ {
			if hasNulls && a.IsNull(i) {
				out[i-start] = null
				continue
			}
			out[i-start] = pq.BooleanValue(a.Value(i))
			setLevels(&out[i-start], leaf)
		}
	case kInt8:
		fixed(out, arr, arr.(*array.Int8).Int8Values(), start, hasNulls, null, leaf, func(v int8) pq.Value { return pq.Int32Value(int32(v)) })
	case kInt16:
		fixed(out, arr, arr.(*array.Int16).Int16Values(), start, hasNulls, null, leaf, func(v int16) pq.Value { return pq.Int32Value(int32(v)) })
	case kInt32:
		fixed(out, arr, arr.(*array.Int32).Int32Values(), start, hasNulls, null, leaf, pq.Int32Value)
	case kInt64:
		fixed(out, arr, arr.(*array.Int64).Int64Values(), start, hasNulls, null, leaf, pq.Int64Value)
	case kUint8:
		fixed(out, arr, arr.(*array.Uint8).Uint8Values(), start, hasNulls, null, leaf, func(v uint8) pq.Value { return pq.Int32Value(int32(v)) })
	case kUint16:
		fixed(out, arr, arr.(*array.Uint16).Uint16Values(), start, hasNulls, null, leaf, func(v uint16) pq.Value { return pq.Int32Value(int32(v)) })
	case kUint32:
		fixed(out, arr, arr.(*array.Uint32).Uint32Values(), start, hasNulls, null, leaf, func(v uint32) pq.Value { return pq.Int32Value(int32(v)) })
	case kUint64:
		fixed(out, arr, arr.(*array.Uint64).Uint64Values(), start, hasNulls, null, leaf, func(v uint64) pq.Value { return pq.Int64Value(int64(v)) })
	case kFloat32:
		fixed(out, arr, arr.(*array.Float32).Float32Values(), start, hasNulls, null, leaf, pq.FloatValue)
	case kFloat64:
		fixed(out, arr, arr.(*array.Float64).Float64Values(), start, hasNulls, null, leaf, pq.DoubleValue)
	case kDate32:
		fixed(out, arr, arr.(*array.Date32).Date32Values(), start, hasNulls, null, leaf, func(v arrow.Date32) pq.Value { return pq.Int32Value(int32(v)) })
	case kTimestamp:
		vals := arr.(*array.Timestamp).TimestampValues()
		if m := c.mult; m != 1 {
			lo, hi := math.MinInt64/m, math.MaxInt64/m
			for i, v := range vals[start:end] {
				if (int64(v) < lo || int64(v) > hi) && !arr.IsNull(start+i) {
					return nil, fmt.Errorf("%w: timestamp %d s does not fit in int64 milliseconds", ErrOutOfRange, int64(v))
				}
			}
			fixed(out, arr, vals, start, hasNulls, null, leaf, func(v arrow.Timestamp) pq.Value { return pq.Int64Value(int64(v) * m) })
		} else {
			fixed(out, arr, vals, start, hasNulls, null, leaf, func(v arrow.Timestamp) pq.Value { return pq.Int64Value(int64(v)) })
		}
	case kString:
		a := arr.(*array.String)
		for i := start; i < end; i++ {
			if hasNulls && a.IsNull(i) {
				out[i-start] = null
				continue
			}
			out[i-start] = pq.ByteArrayValue(stringBytes(a.Value(i)))
			setLevels(&out[i-start], leaf)
		}
	case kLargeString:
		a := arr.(*array.LargeString)
		for i := start; i < end; i++ {
			if hasNulls && a.IsNull(i) {
				out[i-start] = null
				continue
			}
			out[i-start] = pq.ByteArrayValue(stringBytes(a.Value(i)))
			setLevels(&out[i-start], leaf)
		}
	case kBinary:
		a := arr.(*array.Binary)
		for i := start; i < end; i++ {
			if hasNulls && a.IsNull(i) {
				out[i-start] = null
				continue
			}
			out[i-start] = pq.ByteArrayValue(a.Value(i))
			setLevels(&out[i-start], leaf)
		}
	case kLargeBinary:
		a := arr.(*array.LargeBinary)
		for i := start; i < end; i++ {
			if hasNulls && a.IsNull(i) {
				out[i-start] = null
				continue
			}
			out[i-start] = pq.ByteArrayValue(a.Value(i))
			setLevels(&out[i-start], leaf)
		}
	case kDecimal128:
		a := arr.(*array.Decimal128)
		w := c.width
		if cap(e.scratch) < n*16 {
			e.scratch = make([]byte, n*16)
		}
		buf := e.scratch[:n*16]
		for i := start; i < end; i++ {
			if hasNulls && a.IsNull(i) {
				out[i-start] = null
				continue
			}
			v := a.Value(i)
			b := buf[(i-start)*16 : (i-start+1)*16]
			binary.BigEndian.PutUint64(b[:8], uint64(v.HighBits()))
			binary.BigEndian.PutUint64(b[8:], v.LowBits())
			out[i-start] = pq.FixedLenByteArrayValue(b[16-w:])
			setLevels(&out[i-start], leaf)
		}
	default:
		panic("parquet sink: encoder for unknown kind") // fileSchema admits only the kinds above
	}
	return out, nil
}

// fixed encodes a fixed-width column; conv is inlined at each instantiation
// site by the compiler only when cheap, so the hot kinds pass plain
// constructors.
func fixed[T any](out []pq.Value, arr arrow.Array, vals []T, start int, hasNulls bool, null pq.Value, leaf int, conv func(T) pq.Value) {
	vals = vals[start : start+len(out)]
	if !hasNulls {
		for i, v := range vals {
			out[i] = conv(v)
			setLevels(&out[i], leaf)
		}
		return
	}
	for i, v := range vals {
		if arr.IsNull(start + i) {
			out[i] = null
			continue
		}
		out[i] = conv(v)
		setLevels(&out[i], leaf)
	}
}

func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// setLevels marks a value defined in column leaf. Value.Level does the same
// but is not inlined; the setters are (they were 17% of a write's CPU).
func setLevels(v *pq.Value, leaf int) {
	v.SetDefinitionLevel(1)
	v.SetColumnIndex(leaf)
}
