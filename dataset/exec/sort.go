package exec

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

// SortKey is one ORDER BY term. Spark's default is ascending with nulls first
// and descending with nulls last; the API layer fills NullsFirst, the operator
// only obeys it.
type SortKey struct {
	Expr       *expr.Expr
	Desc       bool
	NullsFirst bool
}

// DefaultBatchRows is the output batch size NewSort uses when given batchRows <= 0.
const DefaultBatchRows = 64 * 1024

// NewSort returns an operator that fully sorts its input by keys and emits the
// result in records of at most batchRows rows.
//
// Invariants:
//  1. The sort is stable: rows with equal keys keep their input order.
//  2. Numbers compare numerically; float NaN is greater than every number and
//     equal to NaN, -0.0 equals 0.0 (Spark). Strings and binary compare
//     bytewise, false < true, dates, timestamps and decimals by value.
//  3. limit > 0 keeps only the first limit rows (top-k). Each input record
//     is first cut to its own top limit rows (a bounded heap, O(n log limit)),
//     and whenever the buffer passes 2*limit rows it is sorted and cut back to
//     limit rows, so memory stays about 3*limit rows plus one input record.
//
// Main loop (first Next):
//
//	for rec := range in {
//		if limit > 0 { rec = top(rec, limit) }
//		buffer(rec)
//		if limit > 0 && buffered > 2*limit { buffer = top(concat(buffer), limit) }
//	}
//	sorted = take(concat(buffer), permutation(keys)) cut to limit
//	then emit sorted[i:i+batchRows] slices
//
// The whole input is held in memory; spilling is not implemented.
func NewSort(mem memory.Allocator, in Operator, keys []SortKey, limit int64, batchRows int) (Operator, error) {
	if len(keys) == 0 {
		return nil, errors.New("sort: no sort keys")
	}
	for _, k := range keys {
		if k.Expr == nil {
			return nil, errors.New("sort: nil sort key")
		}
		dt, err := k.Expr.DataType(in.Schema())
		if err != nil {
			return nil, fmt.Errorf("sort key %s: %w", k.Expr, err)
		}
		if !sortableType(dt) {
			return nil, fmt.Errorf("sort key %s: cannot sort by type %s", k.Expr, dt)
		}
	}
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	return &sortOp{mem: mem, in: in, keys: keys, limit: limit, batchRows: batchRows}, nil
}

type sortOp struct {
	mem       memory.Allocator
	in        Operator
	keys      []SortKey
	limit     int64
	batchRows int

	sorted bool
	out    arrow.Record // the sorted result, sliced on the way out
	pos    int64
	err    error
	closed bool
}

func (s *sortOp) Schema() *arrow.Schema { return s.in.Schema() }

func (s *sortOp) Next(ctx context.Context) (arrow.Record, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.sorted {
		if err := s.run(ctx); err != nil {
			s.err = err
			return nil, err
		}
		s.sorted = true
	}
	if s.out == nil || s.pos >= s.out.NumRows() {
		s.err = io.EOF
		if s.out != nil {
			s.out.Release()
			s.out = nil
		}
		return nil, io.EOF
	}
	end := min(s.pos+int64(s.batchRows), s.out.NumRows())
	if s.pos == 0 && end == s.out.NumRows() {
		rec := s.out
		s.out = nil
		s.err = io.EOF // the next call ends the stream
		return rec, nil
	}
	rec := s.out.NewSlice(s.pos, end)
	s.pos = end
	return rec, nil
}

func (s *sortOp) run(ctx context.Context) error {
	var buf []arrow.Record
	var rows int64
	defer func() {
		for _, r := range buf {
			r.Release()
		}
	}()
	// compact sorts buf and keeps its first keep rows (keep <= 0: all).
	compact := func(keep int64) error {
		if len(buf) == 0 {
			return nil
		}
		all, err := ConcatRecords(s.mem, s.in.Schema(), buf)
		if err != nil {
			return fmt.Errorf("sort: %w", err)
		}
		for _, r := range buf {
			r.Release()
		}
		buf = buf[:0]
		sorted, err := SortRecord(s.mem, all, s.keys, keep)
		all.Release()
		if err != nil {
			return err
		}
		buf = append(buf, sorted)
		rows = sorted.NumRows()
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := s.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		if s.limit > 0 && rec.NumRows() > s.limit {
			// Only this record's own top limit rows can make the result.
			top, err := SortRecord(s.mem, rec, s.keys, s.limit)
			rec.Release()
			if err != nil {
				return err
			}
			rec = top
		}
		buf = append(buf, rec)
		rows += rec.NumRows()
		if s.limit > 0 && rows > 2*s.limit {
			if err := compact(s.limit); err != nil {
				return err
			}
		}
	}
	if err := compact(s.limit); err != nil {
		return err
	}
	if len(buf) == 1 {
		s.out = buf[0]
		buf = nil
	}
	return nil
}

func (s *sortOp) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.out != nil {
		s.out.Release()
		s.out = nil
	}
	if s.err == nil {
		s.err = errors.New("sort: closed")
	}
	return s.in.Close()
}

// SortRecord returns rec's rows sorted by keys (stably), cut to the first limit
// rows when limit > 0. The caller owns the result and keeps ownership of rec.
func SortRecord(mem memory.Allocator, rec arrow.Record, keys []SortKey, limit int64) (arrow.Record, error) {
	perm, err := SortIndices(mem, rec, keys, limit)
	if err != nil {
		return nil, err
	}
	out, err := TakeRecord(mem, rec, perm)
	if err != nil {
		return nil, fmt.Errorf("sort: %w", err)
	}
	return out, nil
}

// SortIndices evaluates keys over rec and returns the stable sorting
// permutation of its rows, only its first limit entries when limit > 0.
//
// With limit small against the row count it selects with a bounded heap
// (O(n log limit)). Otherwise it sorts (value, row) pairs of the first key
// with the comparison inlined, then sorts each run of equal first keys by the
// remaining keys; bool and decimal first keys use the general comparator.
func SortIndices(mem memory.Allocator, rec arrow.Record, keys []SortKey, limit int64) ([]int, error) {
	n := int(rec.NumRows())
	arrs := make([]arrow.Array, 0, len(keys))
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	for _, k := range keys {
		a, err := expr.Eval(mem, k.Expr, rec)
		if err != nil {
			return nil, fmt.Errorf("sort key %s: %w", k.Expr, err)
		}
		arrs = append(arrs, a)
		if a.Len() != n {
			return nil, fmt.Errorf("sort key %s: %d values for %d rows", k.Expr, a.Len(), n)
		}
		if !sortableType(a.DataType()) {
			return nil, fmt.Errorf("sort key %s: cannot sort by type %s", k.Expr, a.DataType())
		}
	}
	cols := make([]keyCol, len(keys))
	for i, a := range arrs {
		cols[i] = newKeyCol(a, keys[i])
	}
	if limit > 0 && limit*8 < int64(n) {
		return topK(n, int(limit), rowCompare(cols)), nil
	}
	var perm []int
	var rest func(a, b int) int // nil: no key after the first
	if len(cols) > 1 {
		rest = rowCompare(cols[1:])
	}
	if p, ok := sortFirstKey(arrs[0], keys[0], rest); ok {
		perm = p
	} else {
		perm = make([]int, n)
		for i := range perm {
			perm[i] = i
		}
		// Ties break on the row index, so the unstable pdqsort gives the stable order.
		slices.SortFunc(perm, rowCompare(cols))
	}
	if limit > 0 && int64(len(perm)) > limit {
		perm = perm[:limit]
	}
	return perm, nil
}

// rowCompare is the total order of rows under cols, ties broken by row index.
func rowCompare(cols []keyCol) func(a, b int) int {
	return func(a, b int) int {
		for k := range cols {
			c := &cols[k]
			if c.valid != nil {
				an := !bitutil.BitIsSet(c.valid, c.off+a)
				bn := !bitutil.BitIsSet(c.valid, c.off+b)
				if an || bn {
					if an && bn {
						continue
					}
					if an == c.nullsFirst {
						return -1
					}
					return 1
				}
			}
			if r := c.cmp(a, b); r != 0 {
				if c.desc {
					return -r
				}
				return r
			}
		}
		return a - b
	}
}

// topK returns the first k rows of [0, n) under the total order cmp, sorted,
// using a max-heap of the k best rows seen so far.
func topK(n, k int, cmp func(a, b int) int) []int {
	if k > n {
		k = n
	}
	h := make([]int, 0, k)
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && cmp(h[r], h[l]) > 0 {
				m = r
			}
			if cmp(h[m], h[i]) <= 0 {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for row := 0; row < n; row++ {
		if len(h) < k {
			h = append(h, row)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if cmp(h[i], h[p]) <= 0 {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			continue
		}
		if cmp(row, h[0]) < 0 {
			h[0] = row
			down(0)
		}
	}
	slices.SortFunc(h, cmp)
	return h
}

func sortableType(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.NULL, arrow.BOOL,
		arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.BINARY,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION,
		arrow.DECIMAL128:
		return true
	}
	return false
}

// keyCol is one key's typed accessor for the general comparator. valid is nil
// when the column has no nulls; cmp compares two non-null rows ascending.
type keyCol struct {
	valid      []byte
	off        int
	desc       bool
	nullsFirst bool
	cmp        func(a, b int) int
}

func newKeyCol(arr arrow.Array, k SortKey) keyCol {
	data := arr.Data()
	c := keyCol{desc: k.Desc, nullsFirst: k.NullsFirst, off: data.Offset()}
	if arr.NullN() > 0 && data.Buffers()[0] != nil {
		c.valid = data.Buffers()[0].Bytes()
	}
	switch arr.DataType().ID() {
	case arrow.NULL:
		c.valid = nil
		c.cmp = func(a, b int) int { return 0 }
	case arrow.BOOL:
		v := boolBytes(data)
		c.cmp = func(a, b int) int { return int(v[a]) - int(v[b]) }
	case arrow.INT8:
		c.cmp = orderedCmp(rawValues[int8](data))
	case arrow.INT16:
		c.cmp = orderedCmp(rawValues[int16](data))
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		c.cmp = orderedCmp(rawValues[int32](data))
	case arrow.INT64, arrow.DATE64, arrow.TIME64, arrow.TIMESTAMP, arrow.DURATION:
		c.cmp = orderedCmp(rawValues[int64](data))
	case arrow.UINT8:
		c.cmp = orderedCmp(rawValues[uint8](data))
	case arrow.UINT16:
		c.cmp = orderedCmp(rawValues[uint16](data))
	case arrow.UINT32:
		c.cmp = orderedCmp(rawValues[uint32](data))
	case arrow.UINT64:
		c.cmp = orderedCmp(rawValues[uint64](data))
	case arrow.FLOAT32:
		v := rawValues[float32](data)
		c.cmp = func(a, b int) int { return cmpFloat(v[a], v[b]) }
	case arrow.FLOAT64:
		v := rawValues[float64](data)
		c.cmp = func(a, b int) int { return cmpFloat(v[a], v[b]) }
	case arrow.STRING, arrow.BINARY:
		v := stringViews(data)
		c.cmp = func(a, b int) int { return strings.Compare(v[a], v[b]) }
	case arrow.DECIMAL128:
		v := rawValues[decimal128.Num](data)
		c.cmp = func(a, b int) int { return cmpDecimal(v[a], v[b]) }
	default:
		panic(fmt.Sprintf("sort: unsortable type %s passed the type check", arr.DataType()))
	}
	return c
}

func orderedCmp[T cmp.Ordered](v []T) func(a, b int) int {
	return func(a, b int) int {
		x, y := v[a], v[b]
		if x < y {
			return -1
		}
		if x > y {
			return 1
		}
		return 0
	}
}

// cmpFloat orders as Spark: NaN above every number and equal to itself,
// -0.0 equal to 0.0.
func cmpFloat[T float32 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	case x == y:
		return 0
	}
	xn, yn := x != x, y != y
	switch {
	case xn && yn:
		return 0
	case xn:
		return 1
	default:
		return -1
	}
}

func cmpDecimal(x, y decimal128.Num) int {
	if c := cmp.Compare(x.HighBits(), y.HighBits()); c != 0 {
		return c
	}
	return cmp.Compare(x.LowBits(), y.LowBits())
}

// boolBytes unpacks a boolean array's values to one byte per row.
func boolBytes(data arrow.ArrayData) []uint8 {
	out := make([]uint8, data.Len())
	if b := data.Buffers()[1]; b != nil {
		bits := b.Bytes()
		for i := range out {
			if bitutil.BitIsSet(bits, data.Offset()+i) {
				out[i] = 1
			}
		}
	}
	return out
}

// stringViews returns the values of a string or binary array as strings that
// alias the array's buffer: valid only while the array is alive.
func stringViews(data arrow.ArrayData) []string {
	out := make([]string, data.Len())
	b := data.Buffers()[1]
	if b == nil || b.Len() == 0 {
		return out
	}
	offs := arrow.Int32Traits.CastFromBytes(b.Bytes())[data.Offset():]
	var vals []byte
	if vb := data.Buffers()[2]; vb != nil {
		vals = vb.Bytes()
	}
	for i := range out {
		s, e := offs[i], offs[i+1]
		if e > s {
			out[i] = unsafe.String(&vals[s], int(e-s))
		}
	}
	return out
}

// sortFirstKey is the fast path: nulls (and float NaNs) of the first key are
// split off in row order and the rest sorted by value alone - numbers by an
// LSD radix sort over order-preserving uint64 keys (stable by construction),
// strings as (value, row) pairs with the comparison inlined. Then every run of
// equal first keys is sorted by rest (the remaining keys, ties by row index).
func sortFirstKey(arr arrow.Array, k SortKey, rest func(a, b int) int) ([]int, bool) {
	data := arr.Data()
	switch arr.DataType().ID() {
	case arrow.INT8:
		return sortRadix(arr, rawValues[int8](data), false, k, rest, signedKey), true
	case arrow.INT16:
		return sortRadix(arr, rawValues[int16](data), false, k, rest, signedKey), true
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		return sortRadix(arr, rawValues[int32](data), false, k, rest, signedKey), true
	case arrow.INT64, arrow.TIMESTAMP, arrow.DATE64, arrow.DURATION, arrow.TIME64:
		return sortRadix(arr, rawValues[int64](data), false, k, rest, signedKey), true
	case arrow.UINT8:
		return sortRadix(arr, rawValues[uint8](data), false, k, rest, unsignedKey), true
	case arrow.UINT16:
		return sortRadix(arr, rawValues[uint16](data), false, k, rest, unsignedKey), true
	case arrow.UINT32:
		return sortRadix(arr, rawValues[uint32](data), false, k, rest, unsignedKey), true
	case arrow.UINT64:
		return sortRadix(arr, rawValues[uint64](data), false, k, rest, unsignedKey), true
	case arrow.FLOAT64:
		return sortRadix(arr, rawValues[float64](data), true, k, rest, floatKey), true
	case arrow.FLOAT32:
		return sortRadix(arr, rawValues[float32](data), true, k, rest, floatKey), true
	case arrow.STRING, arrow.BINARY:
		return sortStrings(arr, stringViews(data), k, rest), true
	}
	return nil, false
}

func signedKey[T int8 | int16 | int32 | int64](v T) uint64 { return uint64(int64(v)) ^ (1 << 63) }

func unsignedKey[T uint8 | uint16 | uint32 | uint64](v T) uint64 { return uint64(v) }

// floatKey maps non-NaN floats to uint64s in the same order, -0.0 equal to 0.0.
func floatKey[T float32 | float64](v T) uint64 {
	f := float64(v)
	if f == 0 {
		f = 0
	}
	b := math.Float64bits(f)
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

// splitNulls returns the null rows and, for floats, the NaN rows of arr, and
// calls keep for every other row in order.
func splitNulls[T comparable](arr arrow.Array, vals []T, float bool, keep func(i int, v T)) (nulls, nans []int) {
	data := arr.Data()
	var valid []byte
	// arr.NullN, not data.NullN: the latter may be -1 (not yet counted).
	if arr.NullN() > 0 && data.Buffers()[0] != nil {
		valid = data.Buffers()[0].Bytes()
	}
	for i := 0; i < data.Len(); i++ {
		if valid != nil && !bitutil.BitIsSet(valid, data.Offset()+i) {
			nulls = append(nulls, i)
			continue
		}
		v := vals[i]
		if float && v != v {
			nans = append(nans, i)
			continue
		}
		keep(i, v)
	}
	return nulls, nans
}

type radixItem struct {
	k uint64
	i int
}

func sortRadix[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64](
	arr arrow.Array, vals []T, float bool, k SortKey, rest func(a, b int) int, key func(T) uint64) []int {
	var flip uint64
	if k.Desc {
		flip = ^uint64(0)
	}
	items := make([]radixItem, 0, arr.Len()-arr.NullN())
	nulls, nans := splitNulls(arr, vals, float, func(i int, v T) {
		items = append(items, radixItem{key(v) ^ flip, i})
	})
	items = radixSort(items)
	return assemblePerm(arr.Len(), k, nulls, nans, rest, len(items),
		func(j int) int { return items[j].i },
		func(j int) bool { return items[j].k == items[j-1].k })
}

// radixSort sorts items by k with an LSD radix sort on bytes, skipping the
// bytes where all keys agree. Stable: equal keys keep their order.
func radixSort(items []radixItem) []radixItem {
	if len(items) < 256 {
		slices.SortStableFunc(items, func(a, b radixItem) int { return cmp.Compare(a.k, b.k) })
		return items
	}
	var counts [8][256]int
	for _, it := range items {
		k := it.k
		for b := 0; b < 8; b++ {
			counts[b][byte(k>>(8*b))]++
		}
	}
	tmp := make([]radixItem, len(items))
	for b := 0; b < 8; b++ {
		c := &counts[b]
		if c[byte(items[0].k>>(8*b))] == len(items) {
			continue
		}
		sum := 0
		for d := range c {
			n := c[d]
			c[d] = sum
			sum += n
		}
		shift := uint(8 * b)
		for _, it := range items {
			d := byte(it.k >> shift)
			tmp[c[d]] = it
			c[d]++
		}
		items, tmp = tmp, items
	}
	return items
}

// sortStrings is an MSD radix sort on 8-byte chunks: rows are radix-sorted
// by bytes [0,8) (big-endian, zero-padded), each run of equal chunks by bytes
// [8,16), and so on; a run whose strings all end inside the chunk is ordered
// by length, a small run by whole-string comparison. Stable throughout.
func sortStrings(arr arrow.Array, vals []string, k SortKey, rest func(a, b int) int) []int {
	rows := make([]int, 0, arr.Len()-arr.NullN())
	nulls, _ := splitNulls(arr, vals, false, func(i int, _ string) { rows = append(rows, i) })
	var newVal []bool // newVal[j]: rows[j] differs from rows[j-1]
	if rest != nil {
		newVal = make([]bool, len(rows))
	}
	sortStringRun(vals, rows, newVal, 0, k.Desc)
	return assemblePerm(arr.Len(), k, nulls, nil, rest, len(rows),
		func(j int) int { return rows[j] },
		func(j int) bool { return !newVal[j] })
}

func stringChunk(v string, depth int) uint64 {
	if len(v) >= depth+8 {
		v = v[depth : depth+8]
		return uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
			uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])
	}
	var p uint64
	for j := depth; j < depth+8; j++ {
		p <<= 8
		if j < len(v) {
			p |= uint64(v[j])
		}
	}
	return p
}

// sortStringRun sorts rows, whose strings agree on their first depth bytes,
// by the rest of their bytes, equal strings by row index. When newVal is not
// nil it marks each position (but the first) whose string differs from the
// one before.
func sortStringRun(vals []string, rows []int, newVal []bool, depth int, desc bool) {
	if len(rows) < 64 {
		if desc {
			slices.SortFunc(rows, func(a, b int) int {
				if c := strings.Compare(vals[b], vals[a]); c != 0 {
					return c
				}
				return a - b
			})
		} else {
			slices.SortFunc(rows, func(a, b int) int {
				if c := strings.Compare(vals[a], vals[b]); c != 0 {
					return c
				}
				return a - b
			})
		}
		if newVal != nil {
			for j := 1; j < len(rows); j++ {
				newVal[j] = vals[rows[j]] != vals[rows[j-1]]
			}
		}
		return
	}
	var flip uint64
	if desc {
		flip = ^uint64(0)
	}
	// Rows arrive in row order or radix (stable) order, so the radix sort
	// keeps equal strings in row order.
	items := make([]radixItem, len(rows))
	for j, r := range rows {
		items[j] = radixItem{stringChunk(vals[r], depth) ^ flip, r}
	}
	items = radixSort(items)
	for j := range items {
		rows[j] = items[j].i
	}
	for j := 0; j < len(items); {
		e := j + 1
		for e < len(items) && items[e].k == items[j].k {
			e++
		}
		if newVal != nil && j > 0 {
			newVal[j] = true
		}
		if e-j > 1 {
			run := rows[j:e]
			var runNew []bool
			if newVal != nil {
				runNew = newVal[j:e]
			}
			longer := false
			for _, r := range run {
				if len(vals[r]) > depth+8 {
					longer = true
					break
				}
			}
			if longer {
				sortStringRun(vals, run, runNew, depth+8, desc)
			} else {
				// Equal when zero-padded: the longer string is greater.
				if desc {
					slices.SortStableFunc(run, func(a, b int) int { return len(vals[b]) - len(vals[a]) })
				} else {
					slices.SortStableFunc(run, func(a, b int) int { return len(vals[a]) - len(vals[b]) })
				}
				for x := 1; x < len(runNew); x++ {
					runNew[x] = len(vals[run[x]]) != len(vals[run[x-1]])
				}
			}
		}
		j = e
	}
}

// assemblePerm lays out the permutation: nulls and NaNs where k puts them,
// and the m sorted values (row(j), same(j): equal to the value before) with
// every run of equal first keys sorted by rest (nil: runs stay in row order).
func assemblePerm(n int, k SortKey, nulls, nans []int, rest func(a, b int) int, m int, row func(j int) int, same func(j int) bool) []int {
	perm := make([]int, 0, n)
	appendRun := func(rows []int) {
		start := len(perm)
		perm = append(perm, rows...)
		if len(rows) > 1 && rest != nil {
			slices.SortFunc(perm[start:], rest)
		}
	}
	if k.NullsFirst {
		appendRun(nulls)
	}
	if k.Desc {
		appendRun(nans) // NaN is the greatest value
	}
	start := len(perm)
	for j := 0; j < m; j++ {
		if rest != nil && j > 0 && !same(j) {
			if len(perm)-start > 1 {
				slices.SortFunc(perm[start:], rest)
			}
			start = len(perm)
		}
		perm = append(perm, row(j))
	}
	if rest != nil && len(perm)-start > 1 {
		slices.SortFunc(perm[start:], rest)
	}
	if !k.Desc {
		appendRun(nans)
	}
	if !k.NullsFirst {
		appendRun(nulls)
	}
	return perm
}
