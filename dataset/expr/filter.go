package expr

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// CountTrue counts the rows where mask is true (null counts as false).
func CountTrue(mask *array.Boolean) int {
	n := mask.Len()
	if n == 0 {
		return 0
	}
	d := mask.Data()
	vals := d.Buffers()[1].Bytes()
	if mask.NullN() == 0 {
		return bitutil.CountSetBits(vals, d.Offset(), n)
	}
	if mask.NullN() == n {
		return 0
	}
	tmp := make([]byte, bitutil.BytesForBits(int64(n)))
	bitutil.BitmapAnd(vals, mask.NullBitmapBytes(), int64(d.Offset()), int64(d.Offset()), tmp, 0, int64(n))
	return bitutil.CountSetBits(tmp, 0, n)
}

// FilterRecord returns the rows of rec where mask is true (null drops the
// row). The caller owns the result; when every row passes it is rec itself,
// retained. rec and mask are not released. Fixed-width, boolean, string and
// binary columns use our kernels; other types (lists, structs) fall back to
// compute.FilterArray column by column (never FilterRecordBatch, which is
// quadratic in Arrow v17).
func FilterRecord(mem memory.Allocator, rec arrow.Record, mask *array.Boolean) (arrow.Record, error) {
	n := int(rec.NumRows())
	if mask.Len() != n {
		return nil, fmt.Errorf("%w: filter mask has %d rows, record %d", ErrType, mask.Len(), n)
	}
	k := CountTrue(mask)
	if k == n {
		rec.Retain()
		return rec, nil
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer releaseAll(cols)
	if k == 0 {
		for i, c := range rec.Columns() {
			cols[i] = array.MakeArrayOfNull(mem, c.DataType(), 0)
		}
		return array.NewRecord(rec.Schema(), cols, 0), nil
	}
	sel := selection(mask, k)
	for i, c := range rec.Columns() {
		out, err := gather(mem, c, sel, mask)
		if err != nil {
			return nil, fmt.Errorf("filter column %q: %w", rec.ColumnName(i), err)
		}
		cols[i] = out
	}
	return array.NewRecord(rec.Schema(), cols, int64(k)), nil
}

// selection lists the rows where mask is true and valid.
func selection(mask *array.Boolean, k int) []int32 {
	n := mask.Len()
	d := mask.Data()
	vals := bitsAt0(d.Buffers()[1].Bytes(), d.Offset(), n)
	if mask.NullN() > 0 {
		tmp := make([]byte, bitutil.BytesForBits(int64(n)))
		bitutil.BitmapAnd(d.Buffers()[1].Bytes(), mask.NullBitmapBytes(), int64(d.Offset()), int64(d.Offset()), tmp, 0, int64(n))
		vals = tmp
	}
	sel := make([]int32, 0, k)
	nb := int(bitutil.BytesForBits(int64(n)))
	for j := 0; j < nb; j++ {
		b := vals[j]
		if j == nb-1 && n%8 != 0 {
			b &= byte(1)<<(n%8) - 1
		}
		for b != 0 {
			t := bits.TrailingZeros8(b)
			sel = append(sel, int32(j*8+t))
			b &= b - 1
		}
	}
	return sel
}

func gather(mem memory.Allocator, c arrow.Array, sel []int32, mask *array.Boolean) (arrow.Array, error) {
	dt := c.DataType()
	k := len(sel)
	var valid *memory.Buffer
	nulls := 0
	if c.NullN() > 0 && dt.ID() != arrow.NULL {
		valid = allocBuf(mem, int(bitutil.BytesForBits(int64(k))))
		vb := valid.Bytes()
		clear(vb)
		src, off := c.NullBitmapBytes(), c.Data().Offset()
		for j, i := range sel {
			if bitutil.BitIsSet(src, off+int(i)) {
				bitutil.SetBit(vb, j)
			}
		}
		nulls = k - bitutil.CountSetBits(vb, 0, k)
	}
	switch dt.ID() {
	case arrow.NULL:
		return array.NewNull(k), nil
	case arrow.BOOL:
		src := boolBits(c)
		buf := allocBuf(mem, int(bitutil.BytesForBits(int64(k))))
		out := buf.Bytes()
		clear(out)
		for j, i := range sel {
			out[j>>3] |= b2u(bitutil.BitIsSet(src, int(i))) << (j & 7)
		}
		return makeArray(dt, k, valid, nulls, buf), nil
	case arrow.INT8, arrow.UINT8:
		return gatherFixed[uint8](mem, c, sel, valid, nulls), nil
	case arrow.INT16, arrow.UINT16, arrow.FLOAT16:
		return gatherFixed[uint16](mem, c, sel, valid, nulls), nil
	case arrow.INT32, arrow.UINT32, arrow.FLOAT32, arrow.DATE32, arrow.TIME32:
		return gatherFixed[uint32](mem, c, sel, valid, nulls), nil
	case arrow.INT64, arrow.UINT64, arrow.FLOAT64, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME64, arrow.DURATION:
		return gatherFixed[uint64](mem, c, sel, valid, nulls), nil
	case arrow.DECIMAL128:
		return gatherFixed[decimal128.Num](mem, c, sel, valid, nulls), nil
	case arrow.STRING, arrow.BINARY:
		return gatherVar[int32](mem, c, sel, valid, nulls), nil
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return gatherVar[int64](mem, c, sel, valid, nulls), nil
	}
	releaseBuf(valid)
	return compute.FilterArray(context.Background(), c, mask, *compute.DefaultFilterOptions())
}

func gatherFixed[T arrow.FixedWidthType](mem memory.Allocator, c arrow.Array, sel []int32, valid *memory.Buffer, nulls int) arrow.Array {
	var z T
	buf := allocBuf(mem, len(sel)*int(sizeOf(z)))
	out := arrow.GetData[T](buf.Bytes())[:len(sel)]
	src := fixedValues[T](c)
	for j, i := range sel {
		out[j] = src[i]
	}
	return makeArray(c.DataType(), len(sel), valid, nulls, buf)
}

func gatherVar[O int32 | int64](mem memory.Allocator, c arrow.Array, sel []int32, valid *memory.Buffer, nulls int) arrow.Array {
	d := c.Data()
	offs := arrow.GetData[O](d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()+1]
	var data []byte
	if b := d.Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	total := 0
	for _, i := range sel {
		total += int(offs[i+1] - offs[i])
	}
	var z O
	ob := allocBuf(mem, (len(sel)+1)*int(sizeOf(z)))
	out := arrow.GetData[O](ob.Bytes())[:len(sel)+1]
	db := allocBuf(mem, total)
	dst := db.Bytes()
	pos := O(0)
	out[0] = 0
	for j, i := range sel {
		s, e := offs[i], offs[i+1]
		pos += O(copy(dst[pos:], data[s:e]))
		out[j+1] = pos
	}
	return makeArray(c.DataType(), len(sel), valid, nulls, ob, db)
}
