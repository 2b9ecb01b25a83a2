package exec

// Group keys: turning the key columns of a batch into dense group ids.
//
// Each key column has a dictionary (colDict) that maps its values to dense
// per-column ids (0, 1, 2, ... in first-seen order; null gets an id of its own
// the first time it is seen, so null == null for grouping). One key column's ids
// are the group ids. With several key columns the ids are combined left to
// right: group_k = pairs_k[(group_{k-1} << 32) | id_k], each pairs table also
// numbering its entries densely in first-seen order. All tables are
// open-addressing uint64 -> uint32 maps, so one row costs a few integer probes
// and no allocation:
//
//	for each key column k:  colIDs_k = dict_k.assign(column_k)      // typed loop per column
//	ids = colIDs_0
//	for k >= 1:             ids[i] = pairs_k.insert(ids[i]<<32 | colIDs_k[i])
//
// Strings of at most 7 bytes (TPC-H style flags, codes) are packed with their
// length into a uint64 and take the same integer table, as do decimals whose
// unscaled value fits in an int64; longer strings and wider decimals use a Go
// map keyed by the bytes. Because ids
// are handed out in row order, group ids are deterministic for identical input,
// and the rows that open new groups are exactly the rows whose id equals the
// running group count.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/rowhash"
)

// keyKind is the physical class of a key column: values of the same kind are
// comparable, so int32 and int64 keys can meet in a join.
type keyKind int

const (
	kindBool    keyKind = iota
	kindInt             // signed integers and int-backed temporals, widened to int64
	kindUint            // unsigned integers, widened to uint64
	kindFloat           // float32/float64, compared as float64 (-0 == 0, NaN == NaN)
	kindBytes           // string, binary, large variants
	kindDecimal         // decimal128
)

func keyKindOf(dt arrow.DataType) (keyKind, error) {
	switch dt.ID() {
	case arrow.BOOL:
		return kindBool, nil
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.DATE32, arrow.DATE64,
		arrow.TIMESTAMP, arrow.DURATION, arrow.TIME32, arrow.TIME64:
		return kindInt, nil
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return kindUint, nil
	case arrow.FLOAT32, arrow.FLOAT64:
		return kindFloat, nil
	case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return kindBytes, nil
	case arrow.DECIMAL128:
		return kindDecimal, nil
	}
	return 0, fmt.Errorf("unsupported key type %s", dt)
}

// canonFloat maps -0 to 0 and every NaN to one NaN, so grouping treats
// them as equal (Spark semantics), with the codes the shuffle hash uses.
func canonFloat(f float64) uint64 { return rowhash.CanonFloat(f) }

// u64Table is an open-addressing map from uint64 to uint32 with linear
// probing and Fibonacci hashing, kept at most half full. Key and value share
// a slot so a probe touches one cache line.
type u64Table struct {
	slots []u64Slot
	shift uint
	n     int
}

type u64Slot struct {
	key uint64
	val uint32 // value+1; 0 marks an empty slot
}

func newU64Table() *u64Table {
	t := &u64Table{}
	t.alloc(64)
	return t
}

func (t *u64Table) alloc(size int) {
	t.slots = make([]u64Slot, size)
	t.shift = uint(64 - bitsLen(size-1))
}

func bitsLen(x int) int {
	n := 0
	for x > 0 {
		n++
		x >>= 1
	}
	return n
}

func (t *u64Table) grow() {
	old := t.slots
	t.alloc(len(old) * 2)
	mask := uint64(len(t.slots) - 1)
	for _, sl := range old {
		if sl.val == 0 {
			continue
		}
		h := (sl.key * 0x9E3779B97F4A7C15) >> t.shift
		for t.slots[h].val != 0 {
			h = (h + 1) & mask
		}
		t.slots[h] = sl
	}
}

// insert returns the value stored for k, storing next if k is absent.
func (t *u64Table) insert(k uint64, next uint32) uint32 {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	slots := t.slots
	mask := uint64(len(slots) - 1)
	h := (k * 0x9E3779B97F4A7C15) >> t.shift
	for {
		sl := &slots[h&mask]
		if sl.val == 0 {
			sl.key, sl.val = k, next+1
			t.n++
			return next
		}
		if sl.key == k {
			return sl.val - 1
		}
		h++
	}
}

// find returns the value for k or -1.
func (t *u64Table) find(k uint64) int32 {
	slots := t.slots
	mask := uint64(len(slots) - 1)
	h := (k * 0x9E3779B97F4A7C15) >> t.shift
	for {
		sl := &slots[h&mask]
		if sl.val == 0 {
			return -1
		}
		if sl.key == k {
			return int32(sl.val - 1)
		}
		h++
	}
}

// colDict numbers the distinct values of one key column densely.
type colDict struct {
	kind   keyKind
	n      uint32            // ids handed out so far (values and null)
	nullID int32             // -1 until a null is seen
	ints   *u64Table         // integer codes, and bytes values of <= 7 bytes (shortCode)
	big    map[string]uint32 // longer bytes values
}

func newColDict(kind keyKind) *colDict {
	return &colDict{kind: kind, nullID: -1, ints: newU64Table(), big: map[string]uint32{}}
}

func (d *colDict) nullAssign() uint32 {
	if d.nullID < 0 {
		d.nullID = int32(d.n)
		d.n++
	}
	return uint32(d.nullID)
}

func (d *colDict) codeAssign(k uint64) uint32 {
	id := d.ints.insert(k, d.n)
	if id == d.n {
		d.n++
	}
	return id
}

func (d *colDict) bytesAssign(b []byte) uint32 {
	if len(b) <= 7 {
		return d.codeAssign(shortCode(b))
	}
	if id, ok := d.big[string(b)]; ok {
		return id
	}
	id := d.n
	d.big[string(b)] = id
	d.n++
	return id
}

func (d *colDict) bytesFind(b []byte) int32 {
	if len(b) <= 7 {
		return d.ints.find(shortCode(b))
	}
	if id, ok := d.big[string(b)]; ok {
		return int32(id)
	}
	return -1
}

// shortCode packs a value of at most 7 bytes and its length into a uint64,
// so short strings (flags, codes, country names) take the integer table.
func shortCode(b []byte) uint64 {
	var v uint64
	for j := len(b) - 1; j >= 0; j-- {
		v = v<<8 | uint64(b[j])
	}
	return v | uint64(len(b))<<56
}

// assignBytes is the string/binary loop of assign, without a per-row call
// for short values: it loads 8 bytes at once when the buffer allows.
func assignBytes[O int32 | int64](d *colDict, offs []O, buf []byte, arr arrow.Array, out []uint32) {
	nulls := arr.NullN() > 0
	for i := range out {
		if nulls && arr.IsNull(i) {
			out[i] = d.nullAssign()
			continue
		}
		s, e := int(offs[i]), int(offs[i+1])
		n := e - s
		if n > 7 {
			out[i] = d.bytesAssign(buf[s:e])
			continue
		}
		var code uint64
		if s+8 <= len(buf) {
			code = binary.LittleEndian.Uint64(buf[s:]) & (1<<(8*uint(n)) - 1)
			code |= uint64(n) << 56
		} else {
			code = shortCode(buf[s:e])
		}
		out[i] = d.codeAssign(code)
	}
}

// assign writes the id of every row of arr to out, adding unseen values.
func (d *colDict) assign(arr arrow.Array, out []uint32) {
	nulls := arr.NullN() > 0
	switch d.kind {
	case kindBool:
		a := arr.(*array.Boolean)
		for i := range out {
			if nulls && a.IsNull(i) {
				out[i] = d.nullAssign()
				continue
			}
			var k uint64
			if a.Value(i) {
				k = 1
			}
			out[i] = d.codeAssign(k)
		}
	case kindBytes:
		if arr.Len() == 0 {
			return
		}
		data := arr.Data()
		var buf []byte
		if bb := data.Buffers()[2]; bb != nil {
			buf = bb.Bytes()
		}
		switch arr.DataType().ID() {
		case arrow.LARGE_STRING, arrow.LARGE_BINARY:
			assignBytes(d, arrow.GetOffsets[int64](data, 1), buf, arr, out)
		default:
			assignBytes(d, arrow.GetOffsets[int32](data, 1), buf, arr, out)
		}
	case kindDecimal:
		vals := arrow.GetValues[decimal128.Num](arr.Data(), 1)
		for i := range out {
			if nulls && arr.IsNull(i) {
				out[i] = d.nullAssign()
				continue
			}
			if v := vals[i]; v.HighBits() == int64(v.LowBits())>>63 {
				out[i] = d.codeAssign(v.LowBits()) // fits in an int64: the integer table
			} else {
				out[i] = d.bytesAssign(arrow.GetBytes(vals[i : i+1]))
			}
		}
	default:
		assignCodes(d, arr, out, nulls)
	}
}

func assignCodes(d *colDict, arr arrow.Array, out []uint32, nulls bool) {
	data := arr.Data()
	switch arr.DataType().(arrow.FixedWidthDataType).BitWidth() {
	case 8:
		if d.kind == kindUint {
			assignT(d, arrow.GetValues[uint8](data, 1), arr, out, nulls, func(v uint8) uint64 { return uint64(v) })
		} else {
			assignT(d, arrow.GetValues[int8](data, 1), arr, out, nulls, func(v int8) uint64 { return uint64(int64(v)) })
		}
	case 16:
		if d.kind == kindUint {
			assignT(d, arrow.GetValues[uint16](data, 1), arr, out, nulls, func(v uint16) uint64 { return uint64(v) })
		} else {
			assignT(d, arrow.GetValues[int16](data, 1), arr, out, nulls, func(v int16) uint64 { return uint64(int64(v)) })
		}
	case 32:
		switch d.kind {
		case kindUint:
			assignT(d, arrow.GetValues[uint32](data, 1), arr, out, nulls, func(v uint32) uint64 { return uint64(v) })
		case kindFloat:
			assignT(d, arrow.GetValues[float32](data, 1), arr, out, nulls, func(v float32) uint64 { return canonFloat(float64(v)) })
		default:
			assignT(d, arrow.GetValues[int32](data, 1), arr, out, nulls, func(v int32) uint64 { return uint64(int64(v)) })
		}
	default:
		switch d.kind {
		case kindUint:
			assignT(d, arrow.GetValues[uint64](data, 1), arr, out, nulls, func(v uint64) uint64 { return v })
		case kindFloat:
			assignT(d, arrow.GetValues[float64](data, 1), arr, out, nulls, canonFloat)
		default:
			assignT(d, arrow.GetValues[int64](data, 1), arr, out, nulls, func(v int64) uint64 { return uint64(v) })
		}
	}
}

func assignT[T any](d *colDict, vals []T, arr arrow.Array, out []uint32, nulls bool, code func(T) uint64) {
	for i := range out {
		if nulls && arr.IsNull(i) {
			out[i] = d.nullAssign()
			continue
		}
		out[i] = d.codeAssign(code(vals[i]))
	}
}

// find writes the id of every row of arr to out, or -1 for nulls and unseen
// values. arr may be of any type of the dictionary's kind (int32 against an
// int64 dictionary), which is how join keys of different widths meet.
func (d *colDict) find(arr arrow.Array, out []int32) {
	switch d.kind {
	case kindBytes:
		forEachBytes(arr, func(i int, b []byte, valid bool) {
			if !valid {
				out[i] = -1
			} else {
				out[i] = d.bytesFind(b)
			}
		})
	case kindDecimal:
		vals := arrow.GetValues[decimal128.Num](arr.Data(), 1)
		for i := range out {
			if arr.IsNull(i) {
				out[i] = -1
				continue
			}
			if v := vals[i]; v.HighBits() == int64(v.LowBits())>>63 {
				out[i] = d.ints.find(v.LowBits())
			} else {
				out[i] = d.bytesFind(arrow.GetBytes(vals[i : i+1]))
			}
		}
	default:
		codes := make([]uint64, len(out))
		rowhash.RowCodes(arr, codes)
		nulls := arr.NullN() > 0
		for i := range out {
			if nulls && arr.IsNull(i) {
				out[i] = -1
				continue
			}
			out[i] = d.ints.find(codes[i])
		}
	}
}

// forEachBytes calls fn for every row of a string/binary array with the value
// bytes (valid only during the call) and its validity.
func forEachBytes(arr arrow.Array, fn func(i int, b []byte, valid bool)) {
	data := arr.Data()
	var buf []byte
	if bb := data.Buffers()[2]; bb != nil {
		buf = bb.Bytes()
	}
	nulls := arr.NullN() > 0
	n := arr.Len()
	switch arr.DataType().ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		offs := arrow.GetOffsets[int64](data, 1)
		for i := 0; i < n; i++ {
			fn(i, buf[offs[i]:offs[i+1]], !nulls || arr.IsValid(i))
		}
	default:
		if n == 0 {
			return
		}
		offs := arrow.GetOffsets[int32](data, 1)
		for i := 0; i < n; i++ {
			fn(i, buf[offs[i]:offs[i+1]], !nulls || arr.IsValid(i))
		}
	}
}

// keyGrouper assigns dense group ids to rows by the values of their key
// columns (see the file comment).
type keyGrouper struct {
	dicts  []*colDict
	pairs  []*u64Table
	counts []uint32 // entries of each pairs table
	n      int      // groups so far
	colIDs []uint32 // scratch of assign
}

func newKeyGrouper(types []arrow.DataType) (*keyGrouper, error) {
	g := &keyGrouper{}
	for i, t := range types {
		k, err := keyKindOf(t)
		if err != nil {
			return nil, err
		}
		g.dicts = append(g.dicts, newColDict(k))
		if i > 0 {
			g.pairs = append(g.pairs, newU64Table())
			g.counts = append(g.counts, 0)
		}
	}
	return g, nil
}

// assign fills ids (len = rows) with group ids, creating groups as needed.
// With no key columns every row is in group 0.
func (g *keyGrouper) assign(cols []arrow.Array, ids []uint32) {
	if len(cols) == 0 {
		clear(ids)
		if len(ids) > 0 && g.n == 0 {
			g.n = 1
		}
		return
	}
	g.dicts[0].assign(cols[0], ids)
	if len(cols) == 1 {
		g.n = int(g.dicts[0].n)
		return
	}
	if cap(g.colIDs) < len(ids) {
		g.colIDs = make([]uint32, len(ids))
	}
	tmp := g.colIDs[:len(ids)]
	for k := 1; k < len(cols); k++ {
		g.dicts[k].assign(cols[k], tmp)
		t, next := g.pairs[k-1], g.counts[k-1]
		for i, c := range tmp {
			id := t.insert(uint64(ids[i])<<32|uint64(c), next)
			if id == next {
				next++
			}
			ids[i] = id
		}
		g.counts[k-1] = next
	}
	g.n = int(g.counts[len(g.counts)-1])
}

// find fills ids with existing group ids, or -1 where a key is null or the
// combination was never assigned. Join probes use it.
func (g *keyGrouper) find(cols []arrow.Array, ids []int32) {
	g.dicts[0].find(cols[0], ids)
	if len(cols) == 1 {
		return
	}
	// No scratch kept in g: a built join table is probed by several tasks
	// at once, and find must only read it.
	tmp := make([]int32, len(ids))
	for k := 1; k < len(cols); k++ {
		g.dicts[k].find(cols[k], tmp)
		t := g.pairs[k-1]
		for i, c := range tmp {
			if ids[i] < 0 || c < 0 {
				ids[i] = -1
				continue
			}
			ids[i] = t.find(uint64(ids[i])<<32 | uint64(c))
		}
	}
}

// HashColumns writes the shuffle hash of every row of cols to out
// (len(out) = rows): rowhash.Columns, the one row hash of sluice, which the
// hash expression uses too. Shuffles route rows and key groups place state
// by it, so its recipe (in package rowhash) never changes; testdata/
// hash.golden pins it for every accepted type. It panics on a type
// rowhash.Supports rejects; callers validate types at plan time.
func HashColumns(cols []arrow.Array, out []uint64) {
	if err := rowhash.Columns(cols, out); err != nil {
		panic("exec: HashColumns: " + err.Error())
	}
}

// appendRows appends arr[rows[i]] for each i to b (a builder of arr's type);
// a negative row appends null. It is the typed gather behind join output,
// partitioning and group-key output.
func appendRows(b array.Builder, arr arrow.Array, rows []int32) {
	data := arr.Data()
	switch b := b.(type) {
	case *array.BooleanBuilder:
		a := arr.(*array.Boolean)
		b.Reserve(len(rows))
		for _, r := range rows {
			if r < 0 || a.IsNull(int(r)) {
				b.AppendNull()
			} else {
				b.UnsafeAppend(a.Value(int(r)))
			}
		}
	case *array.Int8Builder:
		appendFixed(b, arrow.GetValues[int8](data, 1), arr, rows)
	case *array.Int16Builder:
		appendFixed(b, arrow.GetValues[int16](data, 1), arr, rows)
	case *array.Int32Builder:
		appendFixed(b, arrow.GetValues[int32](data, 1), arr, rows)
	case *array.Int64Builder:
		appendFixed(b, arrow.GetValues[int64](data, 1), arr, rows)
	case *array.Uint8Builder:
		appendFixed(b, arrow.GetValues[uint8](data, 1), arr, rows)
	case *array.Uint16Builder:
		appendFixed(b, arrow.GetValues[uint16](data, 1), arr, rows)
	case *array.Uint32Builder:
		appendFixed(b, arrow.GetValues[uint32](data, 1), arr, rows)
	case *array.Uint64Builder:
		appendFixed(b, arrow.GetValues[uint64](data, 1), arr, rows)
	case *array.Float32Builder:
		appendFixed(b, arrow.GetValues[float32](data, 1), arr, rows)
	case *array.Float64Builder:
		appendFixed(b, arrow.GetValues[float64](data, 1), arr, rows)
	case *array.Date32Builder:
		appendFixed(b, arrow.GetValues[arrow.Date32](data, 1), arr, rows)
	case *array.Date64Builder:
		appendFixed(b, arrow.GetValues[arrow.Date64](data, 1), arr, rows)
	case *array.Time32Builder:
		appendFixed(b, arrow.GetValues[arrow.Time32](data, 1), arr, rows)
	case *array.Time64Builder:
		appendFixed(b, arrow.GetValues[arrow.Time64](data, 1), arr, rows)
	case *array.TimestampBuilder:
		appendFixed(b, arrow.GetValues[arrow.Timestamp](data, 1), arr, rows)
	case *array.DurationBuilder:
		appendFixed(b, arrow.GetValues[arrow.Duration](data, 1), arr, rows)
	case *array.Decimal128Builder:
		appendFixed(b, arrow.GetValues[decimal128.Num](data, 1), arr, rows)
	case *array.StringBuilder:
		appendBytes(b.BinaryBuilder, arr, rows)
	case *array.LargeStringBuilder:
		appendBytes(b.BinaryBuilder, arr, rows)
	case *array.BinaryBuilder:
		appendBytes(b, arr, rows)
	case *array.ListBuilder:
		// Partial count_distinct state is a list column and crosses shuffles.
		l := arr.(*array.List)
		vb, child := b.ValueBuilder(), l.ListValues()
		var idx []int32
		b.Reserve(len(rows))
		for _, r := range rows {
			if r < 0 || l.IsNull(int(r)) {
				b.AppendNull()
				continue
			}
			b.Append(true)
			s, e := l.ValueOffsets(int(r))
			idx = idx[:0]
			for j := s; j < e; j++ {
				idx = append(idx, int32(j))
			}
			appendRows(vb, child, idx)
		}
	default:
		panic(fmt.Sprintf("exec: appendRows: unsupported type %s", arr.DataType()))
	}
}

// appendKeyRows is appendRows for group keys: a float group holds -0.0 and
// 0.0, or NaNs of any payload, as one key, and Spark emits it normalized
// (0.0, the one NaN), whichever row came first.
func appendKeyRows(b array.Builder, arr arrow.Array, rows []int32) {
	switch b := b.(type) {
	case *array.Float32Builder:
		appendCanonFloat(b, arrow.GetValues[float32](arr.Data(), 1), arr, rows)
	case *array.Float64Builder:
		appendCanonFloat(b, arrow.GetValues[float64](arr.Data(), 1), arr, rows)
	default:
		appendRows(b, arr, rows)
	}
}

func appendCanonFloat[T float32 | float64, B fixedBuilder[T]](b B, vals []T, arr arrow.Array, rows []int32) {
	b.Reserve(len(rows))
	for _, r := range rows {
		if r < 0 || arr.IsNull(int(r)) {
			b.AppendNull()
			continue
		}
		// One NaN, and 0.0 for -0.0: the values grouping and joins compare.
		b.UnsafeAppend(T(math.Float64frombits(canonFloat(float64(vals[r])))))
	}
}

// appendable reports whether appendRows handles dt.
func appendable(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64,
		arrow.DATE32, arrow.DATE64, arrow.TIME32, arrow.TIME64, arrow.TIMESTAMP, arrow.DURATION,
		arrow.DECIMAL128, arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		return true
	case arrow.LIST:
		return appendable(dt.(*arrow.ListType).Elem())
	}
	return false
}

type fixedBuilder[T any] interface {
	Reserve(int)
	UnsafeAppend(T)
	AppendNull()
}

func appendFixed[T any, B fixedBuilder[T]](b B, vals []T, arr arrow.Array, rows []int32) {
	b.Reserve(len(rows))
	if arr.NullN() == 0 {
		for _, r := range rows {
			if r < 0 {
				b.AppendNull()
			} else {
				b.UnsafeAppend(vals[r])
			}
		}
		return
	}
	for _, r := range rows {
		if r < 0 || arr.IsNull(int(r)) {
			b.AppendNull()
		} else {
			b.UnsafeAppend(vals[r])
		}
	}
}

func appendBytes(b *array.BinaryBuilder, arr arrow.Array, rows []int32) {
	data := arr.Data()
	var buf []byte
	if bb := data.Buffers()[2]; bb != nil {
		buf = bb.Bytes()
	}
	large := arr.DataType().ID() == arrow.LARGE_STRING || arr.DataType().ID() == arrow.LARGE_BINARY
	var o32 []int32
	var o64 []int64
	if large {
		o64 = arrow.GetOffsets[int64](data, 1)
	} else if arr.Len() > 0 {
		o32 = arrow.GetOffsets[int32](data, 1)
	}
	b.Reserve(len(rows))
	for _, r := range rows {
		if r < 0 || arr.IsNull(int(r)) {
			b.AppendNull()
			continue
		}
		if large {
			b.Append(buf[o64[r]:o64[r+1]])
		} else {
			b.Append(buf[o32[r]:o32[r+1]])
		}
	}
}

// takeColumns gathers rows (negative = null) from each column into new arrays
// of the given types. The caller releases the result.
func takeColumns(mem memory.Allocator, cols []arrow.Array, types []arrow.DataType, rows []int32) []arrow.Array {
	out := make([]arrow.Array, len(cols))
	var idx arrow.Array
	defer func() {
		if idx != nil {
			idx.Release()
		}
	}()
	for i, c := range cols {
		if !appendable(types[i]) {
			// Other types (structs, maps, ...) go through Arrow's take kernel.
			if idx == nil {
				ib := array.NewInt32Builder(mem)
				for _, r := range rows {
					if r < 0 {
						ib.AppendNull()
					} else {
						ib.Append(r)
					}
				}
				idx = ib.NewArray()
				ib.Release()
			}
			a, err := compute.TakeArray(compute.WithAllocator(context.Background(), mem), c, idx)
			if err != nil {
				panic(fmt.Sprintf("exec: take %s: %v", types[i], err))
			}
			out[i] = a
			continue
		}
		b := array.NewBuilder(mem, types[i])
		appendRows(b, c, rows)
		out[i] = b.NewArray()
		b.Release()
	}
	return out
}

// newNullArray builds n nulls of type dt.
func newNullArray(mem memory.Allocator, dt arrow.DataType, n int) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	b.AppendNulls(n)
	return b.NewArray()
}
