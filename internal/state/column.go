package state

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// column holds one value column for every slot in Go memory: fixed kinds as
// width bytes per slot (bool one byte), variable kinds as offset+length into
// a heap that is compacted when half of it is garbage. A validity bitmap
// (bit set = valid) covers every slot; free slots are null.
type column struct {
	t     colType
	n     int // slots
	valid []byte
	data  []byte
	off   []int64
	ln    []uint32
	heap  []byte
	// garbage is the heap bytes no slot refers to any more.
	garbage int
}

// resize makes room for n slots; new slots are null.
func (c *column) resize(n int) {
	if n <= c.n {
		return
	}
	c.valid = growTo(c.valid, int(bitutil.BytesForBits(int64(n))))
	if c.t.fixed() {
		c.data = growTo(c.data, n*c.t.width)
	} else {
		c.off = growTo(c.off, n)
		c.ln = growTo(c.ln, n)
	}
	c.n = n
}

// reserve makes room for n rows without changing the column's length, so
// growing it row by row up to n does not reallocate.
func (c *column) reserve(n int) {
	c.valid = growCap(c.valid, int(bitutil.BytesForBits(int64(n))))
	if c.t.fixed() {
		c.data = growCap(c.data, n*c.t.width)
	} else {
		c.off = growCap(c.off, n)
		c.ln = growCap(c.ln, n)
	}
}

// growCap returns s with capacity for at least n elements, amortising
// reallocation as growTo does.
func growCap[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s
	}
	ns := make([]T, len(s), max(n, cap(s)*5/4))
	copy(ns, s)
	return ns
}

// growTo extends s with zero values to length n, amortising reallocation.
func growTo[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		old := len(s)
		s = s[:n]
		clear(s[old:])
		return s
	}
	c := cap(s) * 5 / 4
	if c < n {
		c = n
	}
	if c < 64 {
		c = 64
	}
	ns := make([]T, n, c)
	copy(ns, s)
	return ns
}

// set writes row rows[k] of a (or row k when rows is nil) into slots[k], in
// order, so the last write to a slot wins.
func (c *column) set(a arrow.Array, rows []int32, slots []int32) {
	bm, bo := validity(a)
	row := func(k int) int {
		if rows == nil {
			return k
		}
		return int(rows[k])
	}
	w := c.t.width
	switch c.t.kind {
	case kBool:
		d := a.Data()
		bits := d.Buffers()[1].Bytes()
		for k, s := range slots {
			i := row(k)
			if bm != nil && !bitutil.BitIsSet(bm, bo+i) {
				bitutil.ClearBit(c.valid, int(s))
				c.data[s] = 0
				continue
			}
			bitutil.SetBit(c.valid, int(s))
			if bitutil.BitIsSet(bits, d.Offset()+i) {
				c.data[s] = 1
			} else {
				c.data[s] = 0
			}
		}
	case kVar32, kVar64:
		var (
			o32 []int32
			o64 []int64
			src []byte
		)
		if c.t.kind == kVar32 {
			o32, src = var32(a)
		} else {
			o64, src = var64(a)
		}
		for k, s := range slots {
			i := row(k)
			c.garbage += int(c.ln[s])
			if bm != nil && !bitutil.BitIsSet(bm, bo+i) {
				bitutil.ClearBit(c.valid, int(s))
				c.ln[s] = 0
				continue
			}
			bitutil.SetBit(c.valid, int(s))
			var v []byte
			if o32 != nil {
				v = src[o32[i]:o32[i+1]]
			} else {
				v = src[o64[i]:o64[i+1]]
			}
			c.off[s] = int64(len(c.heap))
			c.ln[s] = uint32(len(v))
			c.heap = append(c.heap, v...)
		}
		c.maybeCompact()
	default:
		src := fixedData(a, w)
		for k, s := range slots {
			i := row(k)
			dst := c.data[int(s)*w : int(s)*w+w]
			if bm != nil && !bitutil.BitIsSet(bm, bo+i) {
				bitutil.ClearBit(c.valid, int(s))
				clear(dst)
				continue
			}
			bitutil.SetBit(c.valid, int(s))
			copy(dst, src[i*w:i*w+w])
		}
	}
}

// value returns slot s's value as stored (fixed kinds: width bytes,
// little-endian numbers; variable kinds: the bytes), or false when null.
func (c *column) value(s int32) ([]byte, bool) {
	if !bitutil.BitIsSet(c.valid, int(s)) {
		return nil, false
	}
	if w := c.t.width; c.t.fixed() {
		return c.data[int(s)*w : int(s)*w+w], true
	}
	return c.heap[c.off[s] : c.off[s]+int64(c.ln[s])], true
}

// free makes slot s null and drops its variable bytes.
func (c *column) free(s int32) {
	bitutil.ClearBit(c.valid, int(s))
	if c.t.fixed() {
		clear(c.data[int(s)*c.t.width : int(s)*c.t.width+c.t.width])
		return
	}
	c.garbage += int(c.ln[s])
	c.ln[s] = 0
}

func (c *column) maybeCompact() {
	if c.garbage < 64<<10 || c.garbage < len(c.heap)/2 {
		return
	}
	heap := make([]byte, 0, len(c.heap)-c.garbage)
	for s := 0; s < c.n; s++ {
		// Empty values move too: an offset into the old heap may lie
		// beyond the end of the new one.
		o, l := c.off[s], int64(c.ln[s])
		c.off[s] = int64(len(heap))
		heap = append(heap, c.heap[o:o+l]...)
	}
	c.heap, c.garbage = heap, 0
}

// gather returns the values of slots as one array (slot -1 = null row); the
// caller releases it.
func (c *column) gather(mem memory.Allocator, slots []int32) arrow.Array {
	b := newColBuilder(mem, c.t, len(slots))
	w := c.t.width
	if c.t.fixed() {
		for i, s := range slots {
			if s < 0 || !bitutil.BitIsSet(c.valid, int(s)) {
				b.setNull(i)
				continue
			}
			b.setFixedRaw(i, c.data[int(s)*w:int(s)*w+w])
		}
		return b.finish()
	}
	for _, s := range slots {
		if s < 0 || !bitutil.BitIsSet(c.valid, int(s)) {
			b.appendNull()
			continue
		}
		b.appendVar(c.heap[c.off[s] : c.off[s]+int64(c.ln[s])])
	}
	return b.finish()
}

func (c *column) sizeBytes() int64 {
	return int64(cap(c.valid) + cap(c.data) + cap(c.off)*8 + cap(c.ln)*4 + cap(c.heap))
}
