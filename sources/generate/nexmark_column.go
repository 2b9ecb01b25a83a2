package generate

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Column writers for the Nexmark generator. They fill Arrow buffers in
// place: array builders zero every byte of capacity they reserve and take
// strings through a copy, which cost a fifth of the generator's time.
// Columns have no null bitmap (nothing is null).

// intCol is an int64 or timestamp[ms] column of a known length.
type intCol struct {
	buf *memory.Buffer
	v   []int64
}

func newIntCol(mem memory.Allocator, n int) intCol {
	buf := memory.NewResizableBuffer(mem)
	buf.ResizeNoShrink(n * 8)
	return intCol{buf: buf, v: arrow.Int64Traits.CastFromBytes(buf.Bytes())}
}

func (c *intCol) array(typ arrow.DataType) arrow.Array {
	d := array.NewData(typ, len(c.v), []*memory.Buffer{nil, c.buf}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func (c *intCol) release() {
	if c.buf != nil {
		c.buf.Release()
		c.buf = nil
	}
}

// strCol is a string column of a known length; values are written straight
// into its data buffer.
type strCol struct {
	offs *memory.Buffer
	data *memory.Buffer
	o    []int32 // offsets, len n+1
	i    int     // values written
	d    []byte  // data written so far; cap is the buffer's capacity
}

func newStrCol(mem memory.Allocator, n, avgLen int) strCol {
	offs := memory.NewResizableBuffer(mem)
	offs.ResizeNoShrink((n + 1) * 4)
	data := memory.NewResizableBuffer(mem)
	data.Reserve(n*avgLen + 64)
	c := strCol{offs: offs, data: data, o: arrow.Int32Traits.CastFromBytes(offs.Bytes())}
	c.o[0] = 0
	c.d = data.Buf()[:0]
	return c
}

// open returns the data written so far with room for k more bytes: append
// at most k bytes to it and pass the result to commit.
func (c *strCol) open(k int) []byte {
	if len(c.d)+k > cap(c.d) {
		used := len(c.d)
		c.data.Reserve(max(2*cap(c.d), used+k))
		c.d = c.data.Buf()[:used]
	}
	return c.d
}

// commit ends a value opened with open.
func (c *strCol) commit(b []byte) {
	if len(b) > cap(c.d) || len(b) > 0 && &b[0] != &c.d[:1][0] {
		panic("generate: nexmark string value outgrew what was opened")
	}
	c.d = b
	c.i++
	c.o[c.i] = int32(len(b))
}

func (c *strCol) add(s string) { c.commit(append(c.open(len(s)), s...)) }

func (c *strCol) addBytes(s []byte) { c.commit(append(c.open(len(s)), s...)) }

func (c *strCol) array() arrow.Array {
	c.data.ResizeNoShrink(len(c.d))
	d := array.NewData(arrow.BinaryTypes.String, c.i, []*memory.Buffer{nil, c.offs, c.data}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func (c *strCol) release() {
	if c.offs != nil {
		c.offs.Release()
		c.data.Release()
		c.offs, c.data = nil, nil
	}
}

// newNexmarkRecord makes a record of n rows from cols and releases them.
func newNexmarkRecord(schema *arrow.Schema, n int, cols ...arrow.Array) arrow.Record {
	rec := array.NewRecord(schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}
