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
				b = le.AppendUint64(b, uint64(int64(fixedValues[int8](c.a)[i])))
			case arrow.INT16:
				b = le.AppendUint64(b, uint64(int64(fixedValues[int16](c.a)[i])))
			case arrow.INT32, arrow.DATE32:
				b = le.AppendUint64(b, uint64(int64(fixedValues[int32](c.a)[i])))
			case arrow.INT64, arrow.TIMESTAMP, arrow.DURATION, arrow.DATE64:
				b = le.AppendUint64(b, uint64(fixedValues[int64](c.a)[i]))
			case arrow.UINT8:
				b = le.AppendUint64(b, uint64(fixedValues[uint8](c.a)[i]))
			case arrow.UINT16:
				b = le.AppendUint64(b, uint64(fixedValues[uint16](c.a)[i]))
			case arrow.UINT32:
				b = le.AppendUint64(b, uint64(fixedValues[uint32](c.a)[i]))
			case arrow.UINT64:
				b = le.AppendUint64(b, fixedValues[uint64](c.a)[i])
			case arrow.FLOAT32:
				b = le.AppendUint64(b, floatBits(float64(fixedValues[float32](c.a)[i])))
			case arrow.FLOAT64:
				b = le.AppendUint64(b, floatBits(fixedValues[float64](c.a)[i]))
			case arrow.BOOL:
				b = append(b, b2u(bitutil.BitIsSet(c.bits, i)))
			case arrow.DECIMAL128:
				d := fixedValues[decimal128.Num](c.a)[i]
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
