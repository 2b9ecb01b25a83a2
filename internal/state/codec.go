package state

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// kind is the storage recipe of one column type: how its rows are laid out
// in Arrow and how they are turned into canonical bytes.
type kind uint8

const (
	kSigned   kind = iota // little-endian two's complement of width bytes
	kUnsigned             // little-endian unsigned of width bytes
	kFloat32
	kFloat64
	kBool
	kFixedBinary // width raw bytes
	kVar32       // string/binary: int32 offsets + data
	kVar64       // large_string/large_binary: int64 offsets + data
)

// colType is a supported column type and its recipe.
type colType struct {
	kind  kind
	width int // bytes per row for fixed kinds (bool: 1 in canonical bytes)
	dt    arrow.DataType
}

func (c colType) fixed() bool { return c.kind != kVar32 && c.kind != kVar64 }

// typeOf returns the recipe of dt or an error for types the store does not
// hold (nested, dictionary, float16, intervals, decimal256).
func typeOf(dt arrow.DataType) (colType, error) {
	c := colType{dt: dt}
	switch dt.ID() {
	case arrow.INT8:
		c.kind, c.width = kSigned, 1
	case arrow.INT16:
		c.kind, c.width = kSigned, 2
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		c.kind, c.width = kSigned, 4
	case arrow.INT64, arrow.DATE64, arrow.TIME64, arrow.TIMESTAMP, arrow.DURATION:
		c.kind, c.width = kSigned, 8
	case arrow.DECIMAL128:
		c.kind, c.width = kSigned, 16
	case arrow.UINT8:
		c.kind, c.width = kUnsigned, 1
	case arrow.UINT16:
		c.kind, c.width = kUnsigned, 2
	case arrow.UINT32:
		c.kind, c.width = kUnsigned, 4
	case arrow.UINT64:
		c.kind, c.width = kUnsigned, 8
	case arrow.FLOAT32:
		c.kind, c.width = kFloat32, 4
	case arrow.FLOAT64:
		c.kind, c.width = kFloat64, 8
	case arrow.BOOL:
		c.kind, c.width = kBool, 1
	case arrow.FIXED_SIZE_BINARY:
		c.kind, c.width = kFixedBinary, dt.(*arrow.FixedSizeBinaryType).ByteWidth
	case arrow.STRING, arrow.BINARY:
		c.kind = kVar32
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		c.kind = kVar64
	default:
		return c, fmt.Errorf("type %s is not supported in state", dt)
	}
	return c, nil
}

func typesOf(s *arrow.Schema) ([]colType, error) {
	out := make([]colType, s.NumFields())
	for i, f := range s.Fields() {
		t, err := typeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f.Name, err)
		}
		out[i] = t
	}
	return out, nil
}

// codec turns rows of a fixed list of columns into canonical bytes and back.
//
// Canonical row bytes (format.md, "Canonical row bytes"): a null bitmap of
// ceil(ncols/8) bytes (bit j set = column j null), then each non-null column
// in order: signed ints, dates, times, timestamps, durations and decimal128
// big-endian with the sign bit flipped; unsigned ints big-endian; floats with
// -0 folded into +0 and every NaN into one quiet NaN, big-endian with the
// sign bit flipped (all bits flipped for negatives); bool one byte 0/1;
// fixed_size_binary raw; string/binary a uvarint length then the bytes. The
// recipe makes equal keys equal bytes and orders integers naturally.
type codec struct {
	cols []colType
	nb   int   // bitmap bytes
	cur  []int // scratch: per-row write/read cursor
}

func newCodec(cols []colType) *codec {
	return &codec{cols: cols, nb: (len(cols) + 7) / 8}
}

// validity returns the null bitmap and bit offset of a, or nil when a has no
// nulls.
func validity(a arrow.Array) ([]byte, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	return a.NullBitmapBytes(), a.Data().Offset()
}

func var32(a arrow.Array) (offs []int32, data []byte) {
	d := a.Data()
	offs = arrow.Int32Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()+1]
	if b := d.Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	return offs, data
}

func var64(a arrow.Array) (offs []int64, data []byte) {
	d := a.Data()
	offs = arrow.Int64Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()+1]
	if b := d.Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	return offs, data
}

func fixedData(a arrow.Array, width int) []byte {
	d := a.Data()
	if b := d.Buffers()[1]; b != nil {
		return b.Bytes()[d.Offset()*width:]
	}
	return nil
}

// encode writes the canonical bytes of rows [0, n) of arrs (one array per
// codec column) into buf, and row i's bytes are buf[offs[i]:offs[i+1]].
// buf and offs are reused when large enough.
func (c *codec) encode(arrs []arrow.Array, n int, buf []byte, offs []int) ([]byte, []int) {
	if cap(offs) < n+1 {
		offs = make([]int, n+1)
	}
	offs = offs[:n+1]
	// Pass 1: row sizes in offs[i+1].
	offs[0] = 0
	for i := 1; i <= n; i++ {
		offs[i] = c.nb
	}
	for j, t := range c.cols {
		a := arrs[j]
		bm, bo := validity(a)
		switch t.kind {
		case kVar32:
			vo, _ := var32(a)
			for i := 0; i < n; i++ {
				if bm == nil || bitutil.BitIsSet(bm, bo+i) {
					l := int(vo[i+1] - vo[i])
					offs[i+1] += uvarintLen(uint64(l)) + l
				}
			}
		case kVar64:
			vo, _ := var64(a)
			for i := 0; i < n; i++ {
				if bm == nil || bitutil.BitIsSet(bm, bo+i) {
					l := int(vo[i+1] - vo[i])
					offs[i+1] += uvarintLen(uint64(l)) + l
				}
			}
		default:
			for i := 0; i < n; i++ {
				if bm == nil || bitutil.BitIsSet(bm, bo+i) {
					offs[i+1] += t.width
				}
			}
		}
	}
	for i := 1; i <= n; i++ {
		offs[i] += offs[i-1]
	}
	total := offs[n]
	if cap(buf) < total {
		buf = make([]byte, total, total+total/4)
	}
	buf = buf[:total]
	if cap(c.cur) < n {
		c.cur = make([]int, n)
	}
	cur := c.cur[:n]
	for i := 0; i < n; i++ {
		clear(buf[offs[i] : offs[i]+c.nb])
		cur[i] = offs[i] + c.nb
	}
	// Pass 2: column by column, the type switch outside the row loop.
	for j, t := range c.cols {
		a := arrs[j]
		bm, bo := validity(a)
		null := func(i int) bool {
			if bm == nil || bitutil.BitIsSet(bm, bo+i) {
				return false
			}
			buf[offs[i]+j/8] |= 1 << (j % 8)
			return true
		}
		w := t.width
		switch t.kind {
		case kSigned, kUnsigned:
			src := fixedData(a, w)
			var flip uint64 // the sign bit of a signed value
			if t.kind == kSigned {
				flip = 1 << (8*w - 1)
			}
			// The common widths as one load and one byte-swapped store.
			switch w {
			case 8:
				for i := 0; i < n; i++ {
					if bm != nil && null(i) {
						continue
					}
					binary.BigEndian.PutUint64(buf[cur[i]:], binary.LittleEndian.Uint64(src[i*8:])^flip)
					cur[i] += 8
				}
				continue
			case 4:
				for i := 0; i < n; i++ {
					if bm != nil && null(i) {
						continue
					}
					binary.BigEndian.PutUint32(buf[cur[i]:], binary.LittleEndian.Uint32(src[i*4:])^uint32(flip))
					cur[i] += 4
				}
				continue
			}
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				dst, s := buf[cur[i]:cur[i]+w], src[i*w:i*w+w]
				for b := 0; b < w; b++ {
					dst[b] = s[w-1-b]
				}
				if t.kind == kSigned {
					dst[0] ^= 0x80
				}
				cur[i] += w
			}
		case kFloat32:
			src := fixedData(a, 4)
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				binary.BigEndian.PutUint32(buf[cur[i]:], float32Key(binary.LittleEndian.Uint32(src[i*4:])))
				cur[i] += 4
			}
		case kFloat64:
			src := fixedData(a, 8)
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				binary.BigEndian.PutUint64(buf[cur[i]:], float64Key(binary.LittleEndian.Uint64(src[i*8:])))
				cur[i] += 8
			}
		case kBool:
			d := a.Data()
			bits := d.Buffers()[1].Bytes()
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				if bitutil.BitIsSet(bits, d.Offset()+i) {
					buf[cur[i]] = 1
				} else {
					buf[cur[i]] = 0
				}
				cur[i]++
			}
		case kFixedBinary:
			src := fixedData(a, w)
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				cur[i] += copy(buf[cur[i]:cur[i]+w], src[i*w:i*w+w])
			}
		case kVar32:
			vo, data := var32(a)
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				v := data[vo[i]:vo[i+1]]
				cur[i] += binary.PutUvarint(buf[cur[i]:], uint64(len(v)))
				cur[i] += copy(buf[cur[i]:], v)
			}
		case kVar64:
			vo, data := var64(a)
			for i := 0; i < n; i++ {
				if null(i) {
					continue
				}
				v := data[vo[i]:vo[i+1]]
				cur[i] += binary.PutUvarint(buf[cur[i]:], uint64(len(v)))
				cur[i] += copy(buf[cur[i]:], v)
			}
		}
	}
	return buf, offs
}

// field returns column j of row r (bytes encode gave), without a
// variable column's length prefix, or false when it is null: for fixed
// kinds the canonical bytes, or with a raw codec (rawTypes) the value's
// own little-endian bytes.
func (c *codec) field(r []byte, j int) ([]byte, bool) {
	null := func(i int) bool { return r[i/8]&(1<<(i%8)) != 0 }
	if null(j) {
		return nil, false
	}
	p := c.nb
	for i := 0; ; i++ {
		if null(i) {
			continue
		}
		t := c.cols[i]
		if t.fixed() {
			if i == j {
				return r[p : p+t.width], true
			}
			p += t.width
			continue
		}
		l, m := binary.Uvarint(r[p:])
		if i == j {
			return r[p+m : p+m+int(l)], true
		}
		p += m + int(l)
	}
}

func float64Key(bits uint64) uint64 {
	f := math.Float64frombits(bits)
	switch {
	case f == 0:
		bits = 0
	case f != f:
		bits = 0x7ff8000000000000
	}
	if bits>>63 == 1 {
		return ^bits
	}
	return bits | 1<<63
}

func float64FromKey(k uint64) uint64 {
	if k>>63 == 1 {
		return k &^ (1 << 63)
	}
	return ^k
}

func float32Key(bits uint32) uint32 {
	f := math.Float32frombits(bits)
	switch {
	case f == 0:
		bits = 0
	case f != f:
		bits = 0x7fc00000
	}
	if bits>>31 == 1 {
		return ^bits
	}
	return bits | 1<<31
}

func float32FromKey(k uint32) uint32 {
	if k>>31 == 1 {
		return k &^ (1 << 31)
	}
	return ^k
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// decode builds one Arrow array per codec column from canonical rows. The
// caller owns (releases) the returned arrays. Rows must have been produced
// by encode with the same columns; decode panics on bytes it did not write,
// which the store never hands it (file rows are re-encoded, not trusted).
func (c *codec) decode(mem memory.Allocator, rows [][]byte) []arrow.Array {
	n := len(rows)
	if cap(c.cur) < n {
		c.cur = make([]int, n)
	}
	cur := c.cur[:n]
	for i := range cur {
		cur[i] = c.nb
	}
	out := make([]arrow.Array, len(c.cols))
	for j, t := range c.cols {
		isNull := func(i int) bool { return rows[i][j/8]&(1<<(j%8)) != 0 }
		cb := newColBuilder(mem, t, n)
		w := t.width
		switch t.kind {
		case kSigned, kUnsigned, kFloat32, kFloat64, kFixedBinary, kBool:
			for i, r := range rows {
				if isNull(i) {
					cb.setNull(i)
					continue
				}
				cb.setFixedKey(i, r[cur[i]:cur[i]+w])
				cur[i] += w
			}
		default:
			for i, r := range rows {
				if isNull(i) {
					cb.appendNull()
					continue
				}
				l, k := binary.Uvarint(r[cur[i]:])
				cur[i] += k
				cb.appendVar(r[cur[i] : cur[i]+int(l)])
				cur[i] += int(l)
			}
		}
		out[j] = cb.finish()
	}
	return out
}

// colBuilder builds one array of n rows straight into allocator buffers:
// fixed kinds by row index, variable kinds by appending in row order.
type colBuilder struct {
	mem   memory.Allocator
	t     colType
	n     int
	valid *memory.Buffer // nil until the first null
	data  *memory.Buffer
	offs  *memory.Buffer
	heap  []byte
	nulls int
	next  int // var kinds: rows appended
}

func newColBuilder(mem memory.Allocator, t colType, n int) *colBuilder {
	b := &colBuilder{mem: mem, t: t, n: n, data: memory.NewResizableBuffer(mem)}
	switch t.kind {
	case kBool:
		b.data.Resize(int(bitutil.BytesForBits(int64(n))))
	case kVar32:
		b.offs = memory.NewResizableBuffer(mem)
		b.offs.Resize((n + 1) * 4)
		clear(b.offs.Bytes())
	case kVar64:
		b.offs = memory.NewResizableBuffer(mem)
		b.offs.Resize((n + 1) * 8)
		clear(b.offs.Bytes())
	default:
		b.data.Resize(n * t.width)
	}
	clear(b.data.Bytes())
	return b
}

func (b *colBuilder) setNull(i int) {
	if b.valid == nil {
		b.valid = memory.NewResizableBuffer(b.mem)
		b.valid.Resize(int(bitutil.BytesForBits(int64(b.n))))
		bitutil.SetBitsTo(b.valid.Bytes(), 0, int64(b.n), true)
	}
	bitutil.ClearBit(b.valid.Bytes(), i)
	b.nulls++
}

// setFixedKey stores row i from its canonical bytes k.
func (b *colBuilder) setFixedKey(i int, k []byte) {
	w := b.t.width
	switch b.t.kind {
	case kSigned, kUnsigned:
		var flip uint64 // the sign bit of a signed value
		if b.t.kind == kSigned {
			flip = 1 << (8*w - 1)
		}
		switch w {
		case 8:
			binary.LittleEndian.PutUint64(b.data.Bytes()[i*8:], binary.BigEndian.Uint64(k)^flip)
			return
		case 4:
			binary.LittleEndian.PutUint32(b.data.Bytes()[i*4:], binary.BigEndian.Uint32(k)^uint32(flip))
			return
		}
		dst := b.data.Bytes()[i*w : i*w+w]
		for x := 0; x < w; x++ {
			dst[x] = k[w-1-x]
		}
		if b.t.kind == kSigned {
			dst[w-1] ^= 0x80
		}
	case kFloat32:
		binary.LittleEndian.PutUint32(b.data.Bytes()[i*4:], float32FromKey(binary.BigEndian.Uint32(k)))
	case kFloat64:
		binary.LittleEndian.PutUint64(b.data.Bytes()[i*8:], float64FromKey(binary.BigEndian.Uint64(k)))
	case kBool:
		if k[0] != 0 {
			bitutil.SetBit(b.data.Bytes(), i)
		}
	case kFixedBinary:
		copy(b.data.Bytes()[i*w:i*w+w], k)
	}
}

// setFixedRaw stores row i from its Arrow (little-endian) bytes; bool takes
// one byte 0/1.
func (b *colBuilder) setFixedRaw(i int, v []byte) {
	if b.t.kind == kBool {
		if v[0] != 0 {
			bitutil.SetBit(b.data.Bytes(), i)
		}
		return
	}
	copy(b.data.Bytes()[i*b.t.width:], v)
}

// nullRun makes rows [i, i+n) null (variable kinds: appended).
func (b *colBuilder) nullRun(i, n int) {
	fixed := b.t.fixed()
	for x := 0; x < n; x++ {
		if fixed {
			b.setNull(i + x)
		} else {
			b.appendNull()
		}
	}
}

// copyRun sets rows [i, i+n) to rows [from, from+n) of col, an array of
// the builder's raw type (variable kinds: appended, so i is the next row):
// the bytes setFixedRaw and appendVar give row by row, null values zero.
func (b *colBuilder) copyRun(i int, col arrow.Array, from, n int) {
	valid, voff := validity(col)
	null := func(x int) bool { return valid != nil && !bitutil.BitIsSet(valid, voff+from+x) }
	switch b.t.kind {
	case kVar32, kVar64:
		var o32 []int32
		var o64 []int64
		var data []byte
		if b.t.kind == kVar32 {
			o32, data = var32(col)
		} else {
			o64, data = var64(col)
		}
		at := func(r int) int {
			if o32 != nil {
				return int(o32[r])
			}
			return int(o64[r])
		}
		if valid == nil {
			base, start := len(b.heap), at(from)
			b.heap = append(b.heap, data[start:at(from+n)]...)
			for x := 1; x <= n; x++ {
				b.setOff(b.next+x, base+at(from+x)-start)
			}
			b.next += n
			return
		}
		for x := 0; x < n; x++ {
			if null(x) {
				b.appendNull()
			} else {
				b.appendVar(data[at(from+x):at(from+x+1)])
			}
		}
	case kBool:
		c := col.(*array.Boolean)
		for x := 0; x < n; x++ {
			if null(x) {
				b.setNull(i + x)
			} else if c.Value(from + x) {
				bitutil.SetBit(b.data.Bytes(), i+x)
			}
		}
	default:
		w := b.t.width
		dst := b.data.Bytes()[i*w : (i+n)*w]
		copy(dst, fixedData(col, w)[from*w:(from+n)*w])
		if valid == nil {
			return
		}
		for x := 0; x < n; x++ {
			if null(x) {
				b.setNull(i + x)
				clear(dst[x*w : x*w+w])
			}
		}
	}
}

func (b *colBuilder) appendVar(v []byte) {
	b.heap = append(b.heap, v...)
	b.next++
	b.setOff(b.next, len(b.heap))
}

func (b *colBuilder) appendNull() {
	b.setNull(b.next)
	b.next++
	b.setOff(b.next, len(b.heap))
}

func (b *colBuilder) setOff(i, off int) {
	if b.t.kind == kVar32 {
		arrow.Int32Traits.CastFromBytes(b.offs.Bytes())[i] = int32(off)
	} else {
		arrow.Int64Traits.CastFromBytes(b.offs.Bytes())[i] = int64(off)
	}
}

// finish returns the array (caller releases) and releases the builder's
// buffer references.
func (b *colBuilder) finish() arrow.Array {
	var bufs []*memory.Buffer
	if b.t.fixed() {
		bufs = []*memory.Buffer{b.valid, b.data}
	} else {
		b.data.Resize(len(b.heap))
		copy(b.data.Bytes(), b.heap)
		bufs = []*memory.Buffer{b.valid, b.offs, b.data}
	}
	d := array.NewData(b.t.dt, b.n, bufs, nil, b.nulls, 0)
	for _, buf := range bufs {
		if buf != nil {
			buf.Release()
		}
	}
	a := array.MakeFromData(d)
	d.Release()
	return a
}
