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
	leaves  [][]pq.Value // nested columns: values per parquet leaf index
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

// encodeNested emits the values of rows [start, end) of a list or struct
// column into e.leaves, with Dremel repetition and definition levels. It
// walks row by row (nested columns are not on the flat fast path).
func (e *encoder) encodeNested(c *column, arr arrow.Array, start, end int) error {
	for _, l := range c.nested.leaves {
		for len(e.leaves) <= l {
			e.leaves = append(e.leaves, nil)
		}
		e.leaves[l] = e.leaves[l][:0]
	}
	e.scratch = e.scratch[:0]
	for i := start; i < end; i++ {
		if err := e.emit(c.nested, arr, i, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) emitNull(n *nnode, rep, def int) {
	for _, l := range n.leaves {
		e.leaves[l] = append(e.leaves[l], pq.NullValue().Level(rep, def, l))
	}
}

// emit writes element i of arr, whose node is n; rep is the repetition level
// of its first value and parentDef the definition level its parent reached.
func (e *encoder) emit(n *nnode, arr arrow.Array, i, rep, parentDef int) error {
	if arr.IsNull(i) {
		e.emitNull(n, rep, parentDef)
		return nil
	}
	def := parentDef + 1
	switch n.kind {
	case nLeaf:
		v, err := e.valueAt(&n.leaf, arr, i)
		if err != nil {
			return err
		}
		v.SetRepetitionLevel(rep)
		v.SetDefinitionLevel(def)
		v.SetColumnIndex(n.leaf.leaf)
		e.leaves[n.leaf.leaf] = append(e.leaves[n.leaf.leaf], v)
	case nStruct:
		s := arr.(*array.Struct)
		for j, child := range n.children {
			if err := e.emit(child, s.Field(j), i, rep, def); err != nil {
				return err
			}
		}
	case nList:
		l := arr.(array.ListLike)
		lo, hi := l.ValueOffsets(i)
		if lo == hi { // empty list: defined, no element
			e.emitNull(n, rep, def)
			return nil
		}
		vals := l.ListValues()
		for k := lo; k < hi; k++ {
			r := n.rep
			if k == lo {
				r = rep
			}
			if err := e.emit(n.children[0], vals, int(k), r, def+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// valueAt is the one-value form of encode for leaves of nested columns.
func (e *encoder) valueAt(c *column, arr arrow.Array, i int) (pq.Value, error) {
	switch c.kind {
	case kBool:
		return pq.BooleanValue(arr.(*array.Boolean).Value(i)), nil
	case kInt8:
		return pq.Int32Value(int32(arr.(*array.Int8).Value(i))), nil
	case kInt16:
		return pq.Int32Value(int32(arr.(*array.Int16).Value(i))), nil
	case kInt32:
		return pq.Int32Value(arr.(*array.Int32).Value(i)), nil
	case kInt64:
		return pq.Int64Value(arr.(*array.Int64).Value(i)), nil
	case kUint8:
		return pq.Int32Value(int32(arr.(*array.Uint8).Value(i))), nil
	case kUint16:
		return pq.Int32Value(int32(arr.(*array.Uint16).Value(i))), nil
	case kUint32:
		return pq.Int32Value(int32(arr.(*array.Uint32).Value(i))), nil
	case kUint64:
		return pq.Int64Value(int64(arr.(*array.Uint64).Value(i))), nil
	case kFloat32:
		return pq.FloatValue(arr.(*array.Float32).Value(i)), nil
	case kFloat64:
		return pq.DoubleValue(arr.(*array.Float64).Value(i)), nil
	case kDate32:
		return pq.Int32Value(int32(arr.(*array.Date32).Value(i))), nil
	case kTimestamp:
		v := int64(arr.(*array.Timestamp).Value(i))
		if c.mult != 1 {
			if v > math.MaxInt64/c.mult || v < math.MinInt64/c.mult {
				return pq.Value{}, fmt.Errorf("%w: column %s: timestamp %d s does not fit in int64 milliseconds", ErrOutOfRange, c.name, v)
			}
			v *= c.mult
		}
		return pq.Int64Value(v), nil
	case kString:
		return pq.ByteArrayValue(stringBytes(arr.(*array.String).Value(i))), nil
	case kLargeString:
		return pq.ByteArrayValue(stringBytes(arr.(*array.LargeString).Value(i))), nil
	case kBinary:
		return pq.ByteArrayValue(arr.(*array.Binary).Value(i)), nil
	case kLargeBinary:
		return pq.ByteArrayValue(arr.(*array.LargeBinary).Value(i)), nil
	case kDecimal128:
		v := arr.(*array.Decimal128).Value(i)
		// Values keep pointing into an outgrown scratch array, which the
		// garbage collector keeps alive; the bytes never change.
		at := len(e.scratch)
		e.scratch = binary.BigEndian.AppendUint64(e.scratch, uint64(v.HighBits()))
		e.scratch = binary.BigEndian.AppendUint64(e.scratch, v.LowBits())
		return pq.FixedLenByteArrayValue(e.scratch[at+16-c.width : at+16]), nil
	}
	panic("parquet sink: value of unknown kind") // fileSchema admits only the kinds above
}
