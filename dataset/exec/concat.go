package exec

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// ConcatRecords copies recs, all of the given schema, into one record. The
// caller owns the result and keeps ownership of recs. A single input is
// returned retained, not copied; no input gives an empty record.
func ConcatRecords(mem memory.Allocator, schema *arrow.Schema, recs []arrow.Record) (arrow.Record, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	parts := make([]arrow.Array, len(recs))
	for i, f := range schema.Fields() {
		if len(recs) == 0 {
			cols[i] = array.MakeArrayOfNull(mem, f.Type, 0)
			continue
		}
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		c, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, fmt.Errorf("concat column %q: %w", f.Name, err)
		}
		cols[i] = c
	}
	return array.NewRecord(schema, cols, n), nil
}

// TakeRecord gathers rows indices (each in [0, rec.NumRows())) of rec into a
// new record owned by the caller. Fixed-width, boolean, string and binary
// columns are gathered by typed loops; other types go through compute.TakeArray.
func TakeRecord(mem memory.Allocator, rec arrow.Record, indices []int) (arrow.Record, error) {
	cols := make([]arrow.Array, rec.NumCols())
	for i := range cols {
		c, err := TakeArray(mem, rec.Column(i), indices)
		if err != nil {
			for _, c := range cols[:i] {
				c.Release()
			}
			return nil, fmt.Errorf("take column %q: %w", rec.ColumnName(i), err)
		}
		cols[i] = c
	}
	out := array.NewRecord(rec.Schema(), cols, int64(len(indices)))
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

// TakeArray gathers indices of arr into a new array owned by the caller.
func TakeArray(mem memory.Allocator, arr arrow.Array, indices []int) (arrow.Array, error) {
	data := arr.Data()
	var bufs []*memory.Buffer
	switch arr.DataType().ID() {
	case arrow.INT8, arrow.UINT8:
		bufs = takeFixed[uint8](mem, data, indices)
	case arrow.INT16, arrow.UINT16, arrow.FLOAT16:
		bufs = takeFixed[uint16](mem, data, indices)
	case arrow.INT32, arrow.UINT32, arrow.FLOAT32, arrow.DATE32, arrow.TIME32, arrow.INTERVAL_MONTHS:
		bufs = takeFixed[uint32](mem, data, indices)
	case arrow.INT64, arrow.UINT64, arrow.FLOAT64, arrow.DATE64, arrow.TIME64, arrow.TIMESTAMP, arrow.DURATION:
		bufs = takeFixed[uint64](mem, data, indices)
	case arrow.DECIMAL128:
		bufs = takeFixed[[2]uint64](mem, data, indices)
	case arrow.DECIMAL256:
		bufs = takeFixed[[4]uint64](mem, data, indices)
	case arrow.BOOL:
		bufs = takeBool(mem, data, indices)
	case arrow.STRING, arrow.BINARY:
		bufs = takeBinary(mem, data, indices)
	case arrow.NULL:
		return array.NewNull(len(indices)), nil
	default:
		return takeFallback(mem, arr, indices)
	}
	nulls := 0
	if bufs[0] != nil {
		nulls = len(indices) - bitutil.CountSetBits(bufs[0].Bytes(), 0, len(indices))
	}
	out := array.NewData(arr.DataType(), len(indices), bufs, nil, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	defer out.Release()
	return array.MakeFromData(out), nil
}

func takeFallback(mem memory.Allocator, arr arrow.Array, indices []int) (arrow.Array, error) {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(len(indices))
	for _, i := range indices {
		b.UnsafeAppend(int64(i))
	}
	idx := b.NewArray()
	defer idx.Release()
	return compute.TakeArray(compute.WithAllocator(context.Background(), mem), arr, idx)
}

// rawValues views the data buffer of a fixed-width array as []T, starting at
// the array's logical offset.
func rawValues[T any](data arrow.ArrayData) []T {
	buf := data.Buffers()[1]
	if buf == nil || buf.Len() == 0 {
		return nil
	}
	b := buf.Bytes()
	var zero T
	n := len(b) / int(unsafe.Sizeof(zero))
	all := unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
	return all[data.Offset() : data.Offset()+data.Len()]
}

// takeValidity gathers the validity bitmap, or returns nil when the input has
// no nulls.
func takeValidity(mem memory.Allocator, data arrow.ArrayData, indices []int) *memory.Buffer {
	// data.NullN may be -1 (not yet counted): only 0 means no nulls.
	if data.NullN() == 0 || data.Buffers()[0] == nil {
		return nil
	}
	src := data.Buffers()[0].Bytes()
	off := data.Offset()
	out := memory.NewResizableBuffer(mem)
	out.Resize(int(bitutil.BytesForBits(int64(len(indices)))))
	dst := out.Bytes()
	clear(dst)
	for j, i := range indices {
		if bitutil.BitIsSet(src, off+i) {
			bitutil.SetBit(dst, j)
		}
	}
	return out
}

func takeFixed[T any](mem memory.Allocator, data arrow.ArrayData, indices []int) []*memory.Buffer {
	src := rawValues[T](data)
	var zero T
	out := memory.NewResizableBuffer(mem)
	out.Resize(len(indices) * int(unsafe.Sizeof(zero)))
	if len(indices) > 0 {
		dst := unsafe.Slice((*T)(unsafe.Pointer(&out.Bytes()[0])), len(indices))
		for j, i := range indices {
			dst[j] = src[i]
		}
	}
	return []*memory.Buffer{takeValidity(mem, data, indices), out}
}

func takeBool(mem memory.Allocator, data arrow.ArrayData, indices []int) []*memory.Buffer {
	var src []byte
	if b := data.Buffers()[1]; b != nil { // an empty array may have none
		src = b.Bytes()
	}
	off := data.Offset()
	out := memory.NewResizableBuffer(mem)
	out.Resize(int(bitutil.BytesForBits(int64(len(indices)))))
	dst := out.Bytes()
	clear(dst)
	for j, i := range indices {
		if bitutil.BitIsSet(src, off+i) {
			bitutil.SetBit(dst, j)
		}
	}
	return []*memory.Buffer{takeValidity(mem, data, indices), out}
}

func takeBinary(mem memory.Allocator, data arrow.ArrayData, indices []int) []*memory.Buffer {
	var offs []int32
	if b := data.Buffers()[1]; b != nil && b.Len() > 0 {
		all := arrow.Int32Traits.CastFromBytes(b.Bytes())
		offs = all[data.Offset() : data.Offset()+data.Len()+1]
	}
	var vals []byte
	if b := data.Buffers()[2]; b != nil {
		vals = b.Bytes()
	}
	total := 0
	for _, i := range indices {
		total += int(offs[i+1] - offs[i])
	}
	offBuf := memory.NewResizableBuffer(mem)
	offBuf.Resize((len(indices) + 1) * 4)
	dstOff := arrow.Int32Traits.CastFromBytes(offBuf.Bytes())
	valBuf := memory.NewResizableBuffer(mem)
	valBuf.Resize(total)
	dst := valBuf.Bytes()
	pos := int32(0)
	dstOff[0] = 0
	for j, i := range indices {
		pos += int32(copy(dst[pos:], vals[offs[i]:offs[i+1]]))
		dstOff[j+1] = pos
	}
	return []*memory.Buffer{takeValidity(mem, data, indices), offBuf, valBuf}
}
