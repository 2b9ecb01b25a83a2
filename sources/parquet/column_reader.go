package parquet

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
)

// columnReader turns the pages of one column chunk into Arrow arrays, n rows
// at a time. The caller owns each returned array.
type columnReader interface {
	// read allocates its buffers through p, so that readColumn can free
	// them when it fails or panics halfway.
	read(mem memory.Allocator, n int, p *pending) (arrow.Array, error)
	column() string
	close()
}

// pending holds the buffers of an array under construction.
type pending struct{ bufs []*memory.Buffer }

func (p *pending) buffer(mem memory.Allocator, size int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	p.bufs = append(p.bufs, b)
	b.Resize(size)
	return b
}

func (p *pending) release() {
	for _, b := range p.bufs {
		b.Release()
	}
	p.bufs = nil
}

// readColumn reads n rows of one column. parquet-go panics on some corrupt
// pages; that is the file's error, not the process's.
func readColumn(r columnReader, mem memory.Allocator, n int) (a arrow.Array, err error) {
	var p pending
	defer func() {
		if x := recover(); x != nil {
			p.release()
			a, err = nil, fmt.Errorf("column %q: %w: %v", r.column(), ErrCorrupt, x)
		}
	}()
	a, err = r.read(mem, n, &p)
	if err != nil {
		p.release()
	}
	return a, err
}

func (c *pageCursor) column() string { return c.name }

// pageCursor walks the pages of one flat column chunk. For a flat column a
// definition level is a row: pos counts levels (rows) of the current page,
// vpos counts its non-null values (or dictionary indexes).
type pageCursor struct {
	name    string
	pages   pq.Pages
	maxDef  byte
	page    pq.Page
	def     []byte  // nil for a required column
	n       int     // levels in the page
	pos     int     // next level
	vpos    int     // next value
	nv      int     // non-null values in the page
	idx     []int32 // dictionary indexes, nil for a plain page
	dict    pq.Dictionary
	newDict bool
}

func (c *pageCursor) next() error {
	if c.page != nil {
		pq.Release(c.page)
		c.page = nil
	}
	p, err := c.pages.ReadPage()
	if err == io.EOF {
		return fmt.Errorf("column %q: %w: column chunk ends before the row group's rows", c.name, ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("column %q: %w: %v", c.name, ErrCorrupt, err)
	}
	c.page = p
	c.pos, c.vpos = 0, 0
	c.def = nil
	if c.maxDef > 0 {
		c.def = p.DefinitionLevels()
		c.n = len(c.def)
		c.nv = c.n - int(p.NumNulls())
	} else {
		c.n = int(p.NumValues())
		c.nv = c.n
	}
	c.idx = nil
	if c.nv == 0 {
		return nil // an all-null page: its values (and dictionary) are never read
	}
	if d := p.Dictionary(); d != nil {
		data := p.Data()
		c.idx = data.Int32()
		if d != c.dict {
			c.dict, c.newDict = d, true
		}
		if len(c.idx) < c.nv {
			return fmt.Errorf("column %q: %w: page has %d dictionary indexes for %d values", c.name, ErrCorrupt, len(c.idx), c.nv)
		}
	}
	return nil
}

func (c *pageCursor) close() {
	if c.page != nil {
		pq.Release(c.page)
		c.page = nil
	}
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

func newColumnReader(col column, chunk pq.ColumnChunk, maxDef int) columnReader {
	c := pageCursor{name: col.name, pages: chunk.Pages(), maxDef: byte(maxDef)}
	switch col.conv {
	case convBool:
		return &boolReader{fixedReader: fixedReader[bool]{pageCursor: c, dt: col.dt, convert: convertBool}}
	case convInt32:
		return &fixedReader[int32]{pageCursor: c, dt: col.dt, convert: func(v encoding.Values, _ int, _ *[]int32) []int32 { return v.Int32() }}
	case convInt32To8:
		return &fixedReader[int8]{pageCursor: c, dt: col.dt, convert: narrow[int8]}
	case convInt32To16:
		return &fixedReader[int16]{pageCursor: c, dt: col.dt, convert: narrow[int16]}
	case convInt32ToU8:
		return &fixedReader[uint8]{pageCursor: c, dt: col.dt, convert: narrow[uint8]}
	case convInt32ToU16:
		return &fixedReader[uint16]{pageCursor: c, dt: col.dt, convert: narrow[uint16]}
	case convInt64:
		return &fixedReader[int64]{pageCursor: c, dt: col.dt, convert: func(v encoding.Values, _ int, _ *[]int64) []int64 { return v.Int64() }}
	case convFloat:
		return &fixedReader[float32]{pageCursor: c, dt: col.dt, convert: func(v encoding.Values, _ int, _ *[]float32) []float32 { return v.Float() }}
	case convDouble:
		return &fixedReader[float64]{pageCursor: c, dt: col.dt, convert: func(v encoding.Values, _ int, _ *[]float64) []float64 { return v.Double() }}
	case convInt96:
		return &fixedReader[int64]{pageCursor: c, dt: col.dt, convert: convertInt96}
	case convDecInt32:
		return &fixedReader[decimal128.Num]{pageCursor: c, dt: col.dt, convert: convertDecInt32}
	case convDecInt64:
		return &fixedReader[decimal128.Num]{pageCursor: c, dt: col.dt, convert: convertDecInt64}
	case convDecBytes:
		return &fixedReader[decimal128.Num]{pageCursor: c, dt: col.dt, convert: convertDecBytes}
	case convBytes:
		return &bytesReader{pageCursor: c, dt: col.dt}
	case convFixed:
		return &fixedBytesReader{pageCursor: c, dt: col.dt.(*arrow.FixedSizeBinaryType)}
	}
	panic(fmt.Sprintf("parquet: column %q: no reader for conversion %d", col.name, col.conv))
}

// fixedReader reads a fixed-width column. convert maps a page's (or a
// dictionary's) values to T, either aliasing the page buffer when the bits
// are the same or converting into *scratch.
type fixedReader[T any] struct {
	pageCursor
	dt       arrow.DataType
	convert  func(v encoding.Values, nv int, scratch *[]T) []T
	vals     []T // values of the current page, or of its dictionary
	dictVals []T
	scratch  []T
}

func (r *fixedReader[T]) load() error {
	if err := r.next(); err != nil || r.nv == 0 {
		return err
	}
	if r.idx != nil {
		if r.newDict {
			r.newDict = false
			var own []T // the dictionary outlives many pages: never the scratch
			r.dictVals = r.convert(r.dict.Page().Data(), r.dict.Len(), &own)
		}
		r.vals = r.dictVals
		for _, x := range r.idx[:r.nv] {
			if uint(x) >= uint(len(r.vals)) {
				return fmt.Errorf("column %q: %w: dictionary index %d out of %d", r.name, ErrCorrupt, x, len(r.vals))
			}
		}
		return nil
	}
	r.vals = r.convert(r.page.Data(), r.nv, &r.scratch)
	if len(r.vals) < r.nv {
		return fmt.Errorf("column %q: %w: page holds %d values, levels say %d", r.name, ErrCorrupt, len(r.vals), r.nv)
	}
	return nil
}

// fill writes n rows into out and, for an optional column, bits; it returns
// the number of nulls.
func (r *fixedReader[T]) fill(out []T, bits []byte) (int, error) {
	var zero T
	nulls, o, n := 0, 0, len(out)
	for o < n {
		if r.page == nil || r.pos == r.n {
			if err := r.load(); err != nil {
				return 0, err
			}
			continue
		}
		k := min(n-o, r.n-r.pos)
		if r.def == nil {
			if r.idx == nil {
				copy(out[o:o+k], r.vals[r.vpos:r.vpos+k])
			} else {
				dst := out[o : o+k]
				for i, x := range r.idx[r.vpos : r.vpos+k] {
					dst[i] = r.vals[x]
				}
			}
			if bits != nil {
				bitutil.SetBitsTo(bits, int64(o), int64(k), true)
			}
			r.vpos += k
		} else {
			def, maxDef, vp := r.def[r.pos:r.pos+k], r.maxDef, r.vpos
			dst := out[o : o+k]
			if r.idx == nil {
				vals := r.vals
				for i, d := range def {
					if d == maxDef {
						dst[i] = vals[vp]
						vp++
						bits[uint(o+i)/8] |= 1 << (uint(o+i) % 8)
					} else {
						dst[i] = zero
						nulls++
					}
				}
			} else {
				vals, idx := r.vals, r.idx
				for i, d := range def {
					if d == maxDef {
						dst[i] = vals[idx[vp]]
						vp++
						bits[uint(o+i)/8] |= 1 << (uint(o+i) % 8)
					} else {
						dst[i] = zero
						nulls++
					}
				}
			}
			r.vpos = vp
		}
		r.pos += k
		o += k
	}
	return nulls, nil
}

func (r *fixedReader[T]) read(mem memory.Allocator, n int, p *pending) (arrow.Array, error) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	vbuf := p.buffer(mem, n*size)
	var out []T
	if n > 0 {
		out = unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(vbuf.Bytes()))), n)
	}
	bitmap, bits := newBitmap(mem, n, r.maxDef > 0, p)
	nulls, err := r.fill(out, bits)
	if err != nil {
		return nil, err
	}
	return makeArray(r.dt, n, nulls, bitmap, vbuf, nil), nil
}

func newBitmap(mem memory.Allocator, n int, optional bool, p *pending) (*memory.Buffer, []byte) {
	if !optional {
		return nil, nil
	}
	b := p.buffer(mem, int(bitutil.BytesForBits(int64(n))))
	bits := b.Bytes()
	clear(bits)
	return b, bits
}

// makeArray takes ownership of the buffers; a bitmap with no nulls is dropped.
func makeArray(dt arrow.DataType, n, nulls int, bitmap, a, b *memory.Buffer) arrow.Array {
	if nulls == 0 && bitmap != nil {
		bitmap.Release()
		bitmap = nil
	}
	bufs := []*memory.Buffer{bitmap, a}
	if b != nil {
		bufs = append(bufs, b)
	}
	data := array.NewData(dt, n, bufs, nil, nulls, 0)
	arr := array.MakeFromData(data)
	data.Release()
	for _, buf := range bufs {
		if buf != nil {
			buf.Release()
		}
	}
	return arr
}

type boolReader struct {
	fixedReader[bool]
	scratchOut []bool
}

func (r *boolReader) read(mem memory.Allocator, n int, p *pending) (arrow.Array, error) {
	if cap(r.scratchOut) < n {
		r.scratchOut = make([]bool, n)
	}
	out := r.scratchOut[:n]
	bitmap, bits := newBitmap(mem, n, r.maxDef > 0, p)
	nulls, err := r.fill(out, bits)
	if err != nil {
		return nil, err
	}
	vbuf, vbits := newBitmap(mem, n, true, p)
	for i, v := range out {
		if v {
			vbits[uint(i)/8] |= 1 << (uint(i) % 8)
		}
	}
	return makeArray(r.dt, n, nulls, bitmap, vbuf, nil), nil
}

func convertBool(v encoding.Values, nv int, scratch *[]bool) []bool {
	bits := v.Boolean()
	out := grow(scratch, nv)
	for i := range out {
		out[i] = bits[uint(i)/8]>>(uint(i)%8)&1 != 0
	}
	return out
}

func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	return (*s)[:n]
}

func narrow[T int8 | int16 | uint8 | uint16](v encoding.Values, nv int, scratch *[]T) []T {
	in := v.Int32()
	out := grow(scratch, len(in))
	for i, x := range in {
		out[i] = T(x)
	}
	return out
}

// convertInt96 decodes legacy INT96 timestamps by hand: nanoseconds of the
// day in the low 8 bytes, the Julian day in the high 4. Going through
// time.Time is what makes other readers show 1970.
func convertInt96(v encoding.Values, nv int, scratch *[]int64) []int64 {
	in := v.Int96()
	out := grow(scratch, len(in))
	for i, x := range in {
		nanos := int64(uint64(x[0]) | uint64(x[1])<<32)
		days := int64(int32(x[2])) - 2440588
		out[i] = days*86400*1e9 + nanos
	}
	return out
}

func convertDecInt32(v encoding.Values, nv int, scratch *[]decimal128.Num) []decimal128.Num {
	in := v.Int32()
	out := grow(scratch, len(in))
	for i, x := range in {
		out[i] = decimal128.FromI64(int64(x))
	}
	return out
}

func convertDecInt64(v encoding.Values, nv int, scratch *[]decimal128.Num) []decimal128.Num {
	in := v.Int64()
	out := grow(scratch, len(in))
	for i, x := range in {
		out[i] = decimal128.FromI64(x)
	}
	return out
}

func convertDecBytes(v encoding.Values, nv int, scratch *[]decimal128.Num) []decimal128.Num {
	if v.Kind() == encoding.FixedLenByteArray {
		data, size := v.FixedLenByteArray()
		if size <= 0 {
			return nil
		}
		n := len(data) / size
		out := grow(scratch, n)
		for i := range out {
			out[i] = decimalFromBigEndian(data[i*size : (i+1)*size])
		}
		return out
	}
	data, offs := v.ByteArray()
	if len(offs) == 0 {
		return nil
	}
	out := grow(scratch, len(offs)-1)
	for i := range out {
		out[i] = decimalFromBigEndian(data[offs[i]:offs[i+1]])
	}
	return out
}

// decimalFromBigEndian reads a big-endian two's complement integer of at most
// 16 bytes.
func decimalFromBigEndian(b []byte) decimal128.Num {
	if len(b) == 0 {
		return decimal128.Num{}
	}
	if len(b) > 16 {
		b = b[len(b)-16:]
	}
	var buf [16]byte
	if b[0]&0x80 != 0 {
		for i := range buf {
			buf[i] = 0xff
		}
	}
	copy(buf[16-len(b):], b)
	return decimal128.New(int64(binary.BigEndian.Uint64(buf[:8])), binary.BigEndian.Uint64(buf[8:]))
}

// bytesReader reads BYTE_ARRAY columns into string or binary arrays.
type bytesReader struct {
	pageCursor
	dt       arrow.DataType
	data     []byte
	offs     []uint32
	dictData []byte
	dictOffs []uint32
}

func (r *bytesReader) load() error {
	if err := r.next(); err != nil || r.nv == 0 {
		return err
	}
	if r.idx != nil {
		if r.newDict {
			r.newDict = false
			data := r.dict.Page().Data()
			r.dictData, r.dictOffs = data.ByteArray()
		}
		r.data, r.offs = r.dictData, r.dictOffs
		nd := len(r.offs) - 1
		for _, x := range r.idx[:r.nv] {
			if x < 0 || int(x) >= nd {
				return fmt.Errorf("column %q: %w: dictionary index %d out of %d", r.name, ErrCorrupt, x, max(nd, 0))
			}
		}
		return nil
	}
	data := r.page.Data()
	r.data, r.offs = data.ByteArray()
	if len(r.offs) < r.nv+1 {
		return fmt.Errorf("column %q: %w: page holds %d values, levels say %d", r.name, ErrCorrupt, max(len(r.offs)-1, 0), r.nv)
	}
	return nil
}

func (r *bytesReader) read(mem memory.Allocator, n int, p *pending) (arrow.Array, error) {
	obuf := p.buffer(mem, (n+1)*4)
	offsets := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(obuf.Bytes()))), n+1)
	dbuf := p.buffer(mem, 0)
	var dlen int
	bitmap, bits := newBitmap(mem, n, r.maxDef > 0, p)
	fail := func(err error) (arrow.Array, error) { return nil, err }
	appendValue := func(v []byte) error {
		if dlen+len(v) > len(dbuf.Bytes()) {
			want := max(2*len(dbuf.Bytes()), dlen+len(v), 4096)
			if want > math.MaxInt32 {
				want = dlen + len(v)
				if want > math.MaxInt32 {
					return fmt.Errorf("column %q: %d rows hold over 2 GiB of bytes; use a smaller batch", r.name, n)
				}
			}
			dbuf.Resize(want)
		}
		copy(dbuf.Bytes()[dlen:], v)
		dlen += len(v)
		return nil
	}
	nulls, o := 0, 0
	offsets[0] = 0
	for o < n {
		if r.page == nil || r.pos == r.n {
			if err := r.load(); err != nil {
				return fail(err)
			}
			continue
		}
		k := min(n-o, r.n-r.pos)
		data, offs := r.data, r.offs
		if r.def == nil && r.idx == nil {
			// One copy for the whole run: the page's bytes are contiguous.
			lo, hi := offs[r.vpos], offs[r.vpos+k]
			if err := appendValue(data[lo:hi]); err != nil {
				return fail(err)
			}
			base := int32(dlen) - int32(hi)
			for i := 1; i <= k; i++ {
				offsets[o+i] = base + int32(offs[r.vpos+i])
			}
			if bits != nil {
				bitutil.SetBitsTo(bits, int64(o), int64(k), true)
			}
			r.vpos += k
		} else {
			vp := r.vpos
			for i := 0; i < k; i++ {
				if r.def != nil && r.def[r.pos+i] != r.maxDef {
					nulls++
					offsets[o+i+1] = int32(dlen)
					continue
				}
				j := vp
				if r.idx != nil {
					j = int(r.idx[vp])
				}
				vp++
				if err := appendValue(data[offs[j]:offs[j+1]]); err != nil {
					return fail(err)
				}
				offsets[o+i+1] = int32(dlen)
				if bits != nil {
					bits[uint(o+i)/8] |= 1 << (uint(o+i) % 8)
				}
			}
			r.vpos = vp
		}
		r.pos += k
		o += k
	}
	dbuf.Resize(dlen)
	return makeArray(r.dt, n, nulls, bitmap, obuf, dbuf), nil
}

// fixedBytesReader reads FIXED_LEN_BYTE_ARRAY columns without a decimal
// annotation into fixed_size_binary arrays.
type fixedBytesReader struct {
	pageCursor
	dt       *arrow.FixedSizeBinaryType
	data     []byte
	dictData []byte
}

func (r *fixedBytesReader) load() error {
	if err := r.next(); err != nil || r.nv == 0 {
		return err
	}
	w := r.dt.ByteWidth
	if r.idx != nil {
		if r.newDict {
			r.newDict = false
			data := r.dict.Page().Data()
			r.dictData, _ = data.FixedLenByteArray()
		}
		r.data = r.dictData
		nd := len(r.data) / w
		for _, x := range r.idx[:r.nv] {
			if x < 0 || int(x) >= nd {
				return fmt.Errorf("column %q: %w: dictionary index %d out of %d", r.name, ErrCorrupt, x, nd)
			}
		}
		return nil
	}
	data := r.page.Data()
	r.data, _ = data.FixedLenByteArray()
	if len(r.data) < r.nv*w {
		return fmt.Errorf("column %q: %w: page holds %d values, levels say %d", r.name, ErrCorrupt, len(r.data)/w, r.nv)
	}
	return nil
}

func (r *fixedBytesReader) read(mem memory.Allocator, n int, p *pending) (arrow.Array, error) {
	w := r.dt.ByteWidth
	vbuf := p.buffer(mem, n*w)
	out := vbuf.Bytes()
	clear(out)
	bitmap, bits := newBitmap(mem, n, r.maxDef > 0, p)
	nulls, o := 0, 0
	for o < n {
		if r.page == nil || r.pos == r.n {
			if err := r.load(); err != nil {
				return nil, err
			}
			continue
		}
		k := min(n-o, r.n-r.pos)
		vp := r.vpos
		for i := 0; i < k; i++ {
			if r.def != nil && r.def[r.pos+i] != r.maxDef {
				nulls++
				continue
			}
			j := vp
			if r.idx != nil {
				j = int(r.idx[vp])
			}
			vp++
			copy(out[(o+i)*w:(o+i+1)*w], r.data[j*w:(j+1)*w])
			if bits != nil {
				bits[uint(o+i)/8] |= 1 << (uint(o+i) % 8)
			}
		}
		r.vpos = vp
		r.pos += k
		o += k
	}
	return makeArray(r.dt, n, nulls, bitmap, vbuf, nil), nil
}
