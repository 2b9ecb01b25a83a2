package expr

import (
	"encoding/binary"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/cespare/xxhash/v2"
)

// hash evaluates OpHash. The recipe is a wire contract (shuffle partitioning
// on different executors must agree), so it never changes without a version
// bump:
//
//	for each row: buf = empty
//	  for each argument, in order:
//	    null            -> append 0x00
//	    otherwise       -> append 0x01, then the value's canonical bytes:
//	      signed ints (all widths), date32 (days), timestamp and duration
//	        (raw value in the column's unit) -> int64 little-endian, 8 bytes
//	      unsigned ints (all widths)         -> uint64 little-endian, 8 bytes
//	      float32/float64 -> float64 bits little-endian; -0 as +0, every NaN
//	        as 0x7ff8000000000000
//	      bool            -> 1 byte, 0 or 1
//	      decimal128      -> unscaled value: low uint64 LE then high int64 LE
//	      string, binary  -> uint32 LE byte length, then the bytes
//	  result = int64(xxhash64(buf))   (XXH64, seed 0, github.com/cespare/xxhash/v2)
//
// So int32 7 and int64 7 hash alike, but decimal(10,2) 1.00 and
// decimal(10,1) 1.0 do not: cast keys to one type before hashing.
func (ev *evaluator) hash(e *Expr) (val, error) {
	type col struct {
		id    arrow.Type
		a     arrow.Array
		vm    []byte
		off   int
		str   strView
		bits  []byte
		owned bool
		i8    []int8
		i16   []int16
		i32   []int32
		i64   []int64
		u8    []uint8
		u16   []uint16
		u32   []uint32
		u64   []uint64
		f32   []float32
		f64   []float64
		dec   []decimal128.Num
	}
	cols := make([]col, len(e.Args))
	defer func() {
		for _, c := range cols {
			if c.a != nil && c.owned {
				c.a.Release()
			}
		}
	}()
	for k, arg := range e.Args {
		v, err := ev.eval(arg)
		if err != nil {
			return val{}, err
		}
		a, _ := ev.materialize(v)
		c := col{id: a.DataType().ID(), a: a, owned: true}
		c.vm, c.off = validity(a)
		switch {
		case isString(a.DataType()) || isBinary(a.DataType()):
			c.str = strViewOf(a)
		case c.id == arrow.BOOL:
			c.bits = boolBits(a)
		}
		switch c.id {
		case arrow.INT8:
			c.i8 = fixedValues[int8](a)
		case arrow.INT16:
			c.i16 = fixedValues[int16](a)
		case arrow.INT32, arrow.DATE32:
			c.i32 = fixedValues[int32](a)
		case arrow.INT64, arrow.TIMESTAMP, arrow.DURATION, arrow.DATE64:
			c.i64 = fixedValues[int64](a)
		case arrow.UINT8:
			c.u8 = fixedValues[uint8](a)
		case arrow.UINT16:
			c.u16 = fixedValues[uint16](a)
		case arrow.UINT32:
			c.u32 = fixedValues[uint32](a)
		case arrow.UINT64:
			c.u64 = fixedValues[uint64](a)
		case arrow.FLOAT32:
			c.f32 = fixedValues[float32](a)
		case arrow.FLOAT64:
			c.f64 = fixedValues[float64](a)
		case arrow.DECIMAL128:
			c.dec = fixedValues[decimal128.Num](a)
		}
		cols[k] = c
	}
	buf := allocBuf(ev.mem, ev.n*8)
	out := arrow.GetData[int64](buf.Bytes())[:ev.n]
	scratch := make([]byte, 0, 64)
	var le = binary.LittleEndian
	for i := range out {
		b := scratch[:0]
		for _, c := range cols {
			if c.id == arrow.NULL || (c.vm != nil && !bitutil.BitIsSet(c.vm, c.off+i)) {
				b = append(b, 0)
				continue
			}
			b = append(b, 1)
			switch c.id {
			case arrow.INT8:
				b = le.AppendUint64(b, uint64(int64(c.i8[i])))
			case arrow.INT16:
				b = le.AppendUint64(b, uint64(int64(c.i16[i])))
			case arrow.INT32, arrow.DATE32:
				b = le.AppendUint64(b, uint64(int64(c.i32[i])))
			case arrow.INT64, arrow.TIMESTAMP, arrow.DURATION, arrow.DATE64:
				b = le.AppendUint64(b, uint64(c.i64[i]))
			case arrow.UINT8:
				b = le.AppendUint64(b, uint64(c.u8[i]))
			case arrow.UINT16:
				b = le.AppendUint64(b, uint64(c.u16[i]))
			case arrow.UINT32:
				b = le.AppendUint64(b, uint64(c.u32[i]))
			case arrow.UINT64:
				b = le.AppendUint64(b, c.u64[i])
			case arrow.FLOAT32:
				b = le.AppendUint64(b, floatBits(float64(c.f32[i])))
			case arrow.FLOAT64:
				b = le.AppendUint64(b, floatBits(c.f64[i]))
			case arrow.BOOL:
				b = append(b, b2u(bitutil.BitIsSet(c.bits, i)))
			case arrow.DECIMAL128:
				d := c.dec[i]
				b = le.AppendUint64(b, d.LowBits())
				b = le.AppendUint64(b, uint64(d.HighBits()))
			default:
				s := c.str.at(i)
				b = le.AppendUint32(b, uint32(len(s)))
				b = append(b, s...)
			}
		}
		scratch = b
		out[i] = int64(xxhash.Sum64(b))
	}
	dt := arrow.PrimitiveTypes.Int64
	return val{arr: makeArray(dt, ev.n, nil, 0, buf), dt: dt}, nil
}

func floatBits(f float64) uint64 {
	switch {
	case f != f:
		return 0x7ff8000000000000
	case f == 0:
		return 0
	}
	return math.Float64bits(f)
}
