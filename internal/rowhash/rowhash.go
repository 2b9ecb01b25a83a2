package rowhash

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/cespare/xxhash/v2"
)

var (
	// ErrUnsupported: Columns got a column of a type it does not hash.
	ErrUnsupported = errors.New("rowhash: unsupported type")
)

// class is how a type's values are encoded (see the recipe in doc.go).
type class int

const (
	classNull    class = iota // null type: every row is null
	classBool                 // 1 byte
	classInt                  // signed, widened to int64
	classUint                 // unsigned, widened to uint64
	classFloat                // float64 bits, canonical -0 and NaN
	classDecimal              // 16 bytes
	classBytes                // length-prefixed bytes
)

func classOf(dt arrow.DataType) (class, bool) {
	switch dt.ID() {
	case arrow.NULL:
		return classNull, true
	case arrow.BOOL:
		return classBool, true
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.DATE32, arrow.DATE64,
		arrow.TIME32, arrow.TIME64, arrow.TIMESTAMP, arrow.DURATION:
		return classInt, true
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return classUint, true
	case arrow.FLOAT32, arrow.FLOAT64:
		return classFloat, true
	case arrow.DECIMAL128:
		return classDecimal, true
	case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return classBytes, true
	}
	return 0, false
}

// Supports reports whether Columns hashes columns of type dt.
func Supports(dt arrow.DataType) bool {
	_, ok := classOf(dt)
	return ok
}

// CanonFloat is the 8 bytes (as a little-endian uint64) a float contributes:
// -0 as 0 and every NaN as one NaN. Grouping uses the same codes, so values
// equal for grouping hash alike.
func CanonFloat(f float64) uint64 {
	if f == 0 {
		return 0
	}
	if f != f {
		return 0x7ff8000000000000
	}
	return math.Float64bits(f)
}

// Columns writes the hash of every row of cols to out (len(out) = rows; every
// column has that many rows). A column of a type Supports rejects is an
// ErrUnsupported error naming the type, and out is left unwritten.
func Columns(cols []arrow.Array, out []uint64) error {
	n := len(out)
	classes := make([]class, len(cols))
	for k, c := range cols {
		cl, ok := classOf(c.DataType())
		if !ok {
			return fmt.Errorf("%w %s", ErrUnsupported, c.DataType())
		}
		if c.Len() != n {
			return fmt.Errorf("rowhash: column %d has %d rows, want %d", k, c.Len(), n)
		}
		classes[k] = cl
	}
	// Pass 1: the byte length of every row.
	ends := make([]int, n)
	for k, c := range cols {
		w := 9
		switch classes[k] {
		case classNull:
			w = 1
		case classBool:
			w = 2
		case classDecimal:
			w = 17
		case classBytes:
			forEachBytes(c, func(i int, b []byte, valid bool) {
				if valid {
					ends[i] += 5 + len(b)
				} else {
					ends[i]++
				}
			})
			continue
		}
		if classes[k] == classNull || c.NullN() == 0 {
			for i := range ends {
				ends[i] += w
			}
			continue
		}
		for i := range ends {
			if c.IsNull(i) {
				ends[i]++
			} else {
				ends[i] += w
			}
		}
	}
	pos := make([]int, n)
	total := 0
	for i, w := range ends {
		pos[i] = total
		total += w
		ends[i] = total
	}
	// Pass 2: every column writes its bytes at each row's cursor.
	arena := make([]byte, total)
	var codes []uint64
	for k, c := range cols {
		switch classes[k] {
		case classNull:
			for i := range pos {
				arena[pos[i]] = 0
				pos[i]++
			}
		case classBytes:
			forEachBytes(c, func(i int, b []byte, valid bool) {
				p := pos[i]
				if !valid {
					arena[p] = 0
					pos[i] = p + 1
					return
				}
				arena[p] = 1
				binary.LittleEndian.PutUint32(arena[p+1:], uint32(len(b)))
				copy(arena[p+5:], b)
				pos[i] = p + 5 + len(b)
			})
		case classDecimal:
			vals := arrow.GetValues[decimal128.Num](c.Data(), 1)
			nulls := c.NullN() > 0
			for i := range pos {
				p := pos[i]
				if nulls && c.IsNull(i) {
					arena[p] = 0
					pos[i] = p + 1
					continue
				}
				arena[p] = 1
				binary.LittleEndian.PutUint64(arena[p+1:], vals[i].LowBits())
				binary.LittleEndian.PutUint64(arena[p+9:], uint64(vals[i].HighBits()))
				pos[i] = p + 17
			}
		default:
			if codes == nil {
				codes = make([]uint64, n)
			}
			RowCodes(c, codes)
			nulls := c.NullN() > 0
			if classes[k] == classBool {
				for i := range pos {
					p := pos[i]
					if nulls && c.IsNull(i) {
						arena[p] = 0
						pos[i] = p + 1
						continue
					}
					arena[p] = 1
					arena[p+1] = byte(codes[i])
					pos[i] = p + 2
				}
				continue
			}
			for i := range pos {
				p := pos[i]
				if nulls && c.IsNull(i) {
					arena[p] = 0
					pos[i] = p + 1
					continue
				}
				arena[p] = 1
				binary.LittleEndian.PutUint64(arena[p+1:], codes[i])
				pos[i] = p + 9
			}
		}
	}
	start := 0
	for i, e := range ends {
		out[i] = xxhash.Sum64(arena[start:e])
		start = e
	}
	return nil
}

// RowCodes writes the widened 8-byte code of every bool, integer, temporal
// or float row (nulls: unspecified): what the hash reads of such a value,
// and the group key of grouping and dictionary codes (exec), so the two
// never disagree on which values are equal.
func RowCodes(arr arrow.Array, out []uint64) {
	data := arr.Data()
	switch arr.DataType().ID() {
	case arrow.BOOL:
		a := arr.(*array.Boolean)
		for i := range out {
			if a.Value(i) {
				out[i] = 1
			} else {
				out[i] = 0
			}
		}
	case arrow.INT8:
		codes(arrow.GetValues[int8](data, 1), out, func(v int8) uint64 { return uint64(int64(v)) })
	case arrow.INT16:
		codes(arrow.GetValues[int16](data, 1), out, func(v int16) uint64 { return uint64(int64(v)) })
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		codes(arrow.GetValues[int32](data, 1), out, func(v int32) uint64 { return uint64(int64(v)) })
	case arrow.UINT8:
		codes(arrow.GetValues[uint8](data, 1), out, func(v uint8) uint64 { return uint64(v) })
	case arrow.UINT16:
		codes(arrow.GetValues[uint16](data, 1), out, func(v uint16) uint64 { return uint64(v) })
	case arrow.UINT32:
		codes(arrow.GetValues[uint32](data, 1), out, func(v uint32) uint64 { return uint64(v) })
	case arrow.UINT64:
		codes(arrow.GetValues[uint64](data, 1), out, func(v uint64) uint64 { return v })
	case arrow.FLOAT32:
		codes(arrow.GetValues[float32](data, 1), out, func(v float32) uint64 { return CanonFloat(float64(v)) })
	case arrow.FLOAT64:
		codes(arrow.GetValues[float64](data, 1), out, CanonFloat)
	default: // int64, date64, time64, timestamp, duration
		codes(arrow.GetValues[int64](data, 1), out, func(v int64) uint64 { return uint64(v) })
	}
}

func codes[T any](vals []T, out []uint64, code func(T) uint64) {
	for i := range out {
		out[i] = code(vals[i])
	}
}

// forEachBytes calls fn for every row of a string or binary array with the
// value's bytes (valid during the call only) and its validity.
func forEachBytes(arr arrow.Array, fn func(i int, b []byte, valid bool)) {
	n := arr.Len()
	if n == 0 {
		return
	}
	data := arr.Data()
	var buf []byte
	if bb := data.Buffers()[2]; bb != nil {
		buf = bb.Bytes()
	}
	nulls := arr.NullN() > 0
	switch arr.DataType().ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		offs := arrow.GetOffsets[int64](data, 1)
		for i := 0; i < n; i++ {
			fn(i, buf[offs[i]:offs[i+1]], !nulls || arr.IsValid(i))
		}
	default:
		offs := arrow.GetOffsets[int32](data, 1)
		for i := 0; i < n; i++ {
			fn(i, buf[offs[i]:offs[i+1]], !nulls || arr.IsValid(i))
		}
	}
}
