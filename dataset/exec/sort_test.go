package exec

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

var sortSeedFlag = flag.Uint64("sortseed", 0, "seed for the randomised sort tests (0: from the clock)")

func sortTestSeed(t testing.TB) uint64 {
	s := *sortSeedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -sortseed=%d)", s, s)
	return s
}

// recordsOpForSortTest is an Operator over fixed records. It owns recs: Next
// hands out a new reference, Close releases its own.
type recordsOpForSortTest struct {
	schema *arrow.Schema
	recs   []arrow.Record
	pos    int
	pulls  int
	closed int
}

func newRecordsOpForSortTest(schema *arrow.Schema, recs ...arrow.Record) *recordsOpForSortTest {
	return &recordsOpForSortTest{schema: schema, recs: recs}
}

func (o *recordsOpForSortTest) Schema() *arrow.Schema { return o.schema }

func (o *recordsOpForSortTest) Next(ctx context.Context) (arrow.Record, error) {
	o.pulls++
	if o.closed > 0 {
		return nil, errors.New("recordsOpForSortTest: next after close")
	}
	if o.pos >= len(o.recs) {
		return nil, io.EOF
	}
	r := o.recs[o.pos]
	o.pos++
	r.Retain()
	return r, nil
}

func (o *recordsOpForSortTest) Close() error {
	if o.closed == 0 {
		for _, r := range o.recs {
			r.Release()
		}
	}
	o.closed++
	return nil
}

// drainForSortTest pulls every record of op and closes it.
func drainForSortTest(t testing.TB, op Operator) []arrow.Record {
	t.Helper()
	var out []arrow.Record
	for {
		r, err := op.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.NumRows() == 0 {
			t.Fatal("operator returned an empty record")
		}
		out = append(out, r)
	}
	if _, err := op.Next(context.Background()); err != io.EOF {
		t.Fatalf("Next after EOF: %v", err)
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if err := op.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	return out
}

func releaseAllForSortTest(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

// sortTestData is random data of every sortable type, kept twice: as an Arrow
// record and as plain Go values (nil = null) for the reference sort.
type sortTestData struct {
	schema *arrow.Schema
	rec    arrow.Record
	vals   [][]any // [column][row]; int64, uint64, float64, string, bool, *big.Int
}

var sortTestSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
	{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "d32", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 38, Scale: 2}, Nullable: true},
}, nil)

func newSortTestData(mem memory.Allocator, rng *rand.Rand, n int, nullRate float64) *sortTestData {
	b := array.NewRecordBuilder(mem, sortTestSchema)
	defer b.Release()
	d := &sortTestData{schema: sortTestSchema, vals: make([][]any, sortTestSchema.NumFields())}
	strs := []string{"", "a", "ab", "b", "ba", "\xff", "zz", "é", "a\x00"}
	floats := []float64{math.NaN(), math.Inf(-1), math.Inf(1), -1.5, 0, math.Copysign(0, -1), 2.25, 1e300, -3}
	for row := 0; row < n; row++ {
		for c := 0; c < sortTestSchema.NumFields(); c++ {
			fb := b.Field(c)
			if c > 0 && rng.Float64() < nullRate {
				fb.AppendNull()
				d.vals[c] = append(d.vals[c], nil)
				continue
			}
			var v any
			small := rng.Int64N(7) - 3 // a small domain makes ties likely
			switch fb := fb.(type) {
			case *array.Int64Builder:
				if c == 0 {
					fb.Append(int64(row))
					v = int64(row)
				} else {
					x := small
					if rng.IntN(4) == 0 {
						x = []int64{math.MinInt64, math.MaxInt64, 1 << 40}[rng.IntN(3)]
					}
					fb.Append(x)
					v = x
				}
			case *array.Int8Builder:
				fb.Append(int8(small))
				v = small
			case *array.Int16Builder:
				fb.Append(int16(small * 1000))
				v = small * 1000
			case *array.Int32Builder:
				fb.Append(int32(small))
				v = small
			case *array.Uint8Builder:
				x := uint64(rng.IntN(4)) * 80
				fb.Append(uint8(x))
				v = x
			case *array.Uint16Builder:
				x := uint64(rng.IntN(4)) * 20000
				fb.Append(uint16(x))
				v = x
			case *array.Uint32Builder:
				x := uint64(rng.IntN(4)) << 30
				fb.Append(uint32(x))
				v = x
			case *array.Uint64Builder:
				x := []uint64{0, 1, 1 << 63, math.MaxUint64}[rng.IntN(4)]
				fb.Append(x)
				v = x
			case *array.Float32Builder:
				x := floats[rng.IntN(len(floats)-1)] // 1e300 overflows float32
				fb.Append(float32(x))
				v = float64(float32(x))
			case *array.Float64Builder:
				x := floats[rng.IntN(len(floats))]
				fb.Append(x)
				v = x
			case *array.StringBuilder:
				x := strs[rng.IntN(len(strs))]
				fb.Append(x)
				v = x
			case *array.BinaryBuilder:
				x := strs[rng.IntN(len(strs))]
				fb.Append([]byte(x))
				v = x
			case *array.BooleanBuilder:
				x := rng.IntN(2) == 0
				fb.Append(x)
				v = x
			case *array.Date32Builder:
				fb.Append(arrow.Date32(small * 365))
				v = small * 365
			case *array.TimestampBuilder:
				x := small * 1_000_001
				fb.Append(arrow.Timestamp(x))
				v = x
			case *array.Decimal128Builder:
				hi := small
				lo := uint64(rng.IntN(3)) << 62
				fb.Append(decimal128.New(hi, lo))
				bi := new(big.Int).Lsh(big.NewInt(hi), 64)
				v = bi.Add(bi, new(big.Int).SetUint64(lo))
			default:
				panic(fmt.Sprintf("no generator for %T", fb))
			}
			d.vals[c] = append(d.vals[c], v)
		}
	}
	d.rec = b.NewRecord()
	return d
}

// split cuts d.rec into slices of random sizes (zero-copy, non-zero offsets).
func (d *sortTestData) split(rng *rand.Rand) []arrow.Record {
	var out []arrow.Record
	n := d.rec.NumRows()
	for i := int64(0); i < n; {
		j := min(n, i+rng.Int64N(50)+1)
		if rng.IntN(10) == 0 {
			j = i // an empty record now and then
		}
		out = append(out, d.rec.NewSlice(i, j))
		i = j
	}
	return out
}

// refCompare is the reference order on plain Go values, written apart from the
// operator: nulls handled by the caller.
func refCompare(a, b any) int {
	switch x := a.(type) {
	case int64:
		y := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case uint64:
		y := b.(uint64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case float64:
		y := b.(float64)
		xn, yn := math.IsNaN(x), math.IsNaN(y)
		switch {
		case xn && yn:
			return 0
		case xn:
			return 1
		case yn:
			return -1
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		y := b.(string)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case *big.Int:
		return x.Cmp(b.(*big.Int))
	}
	panic(fmt.Sprintf("refCompare %T", a))
}

func refSort(d *sortTestData, cols []int, keys []SortKey, limit int) []int64 {
	n := len(d.vals[0])
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	sort.SliceStable(rows, func(i, j int) bool {
		ra, rb := rows[i], rows[j]
		for k, c := range cols {
			a, b := d.vals[c][ra], d.vals[c][rb]
			if a == nil || b == nil {
				if a == nil && b == nil {
					continue
				}
				return (a == nil) == keys[k].NullsFirst
			}
			r := refCompare(a, b)
			if keys[k].Desc {
				r = -r
			}
			if r != 0 {
				return r < 0
			}
		}
		return false
	})
	if limit > 0 && limit < n {
		rows = rows[:limit]
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = d.vals[0][r].(int64)
	}
	return ids
}

// runSortForTest sorts d (fed in random slices) and checks the output ids
// against the reference, every cell against its input row, and batch sizes.
func runSortForTest(t *testing.T, mem memory.Allocator, rng *rand.Rand, d *sortTestData, cols []int, keys []SortKey, limit int64, batchRows int) {
	t.Helper()
	want := refSort(d, cols, keys, int(limit))
	in := newRecordsOpForSortTest(d.schema, d.split(rng)...)
	op, err := NewSort(mem, in, keys, limit, batchRows)
	if err != nil {
		t.Fatal(err)
	}
	out := drainForSortTest(t, op)
	defer releaseAllForSortTest(out)
	if in.closed == 0 {
		t.Fatal("sort did not close its input")
	}
	var got []int64
	for _, r := range out {
		if r.NumRows() > int64(batchRows) {
			t.Fatalf("record of %d rows, batchRows %d", r.NumRows(), batchRows)
		}
		if !r.Schema().Equal(d.schema) {
			t.Fatalf("schema %s", r.Schema())
		}
		ids := r.Column(0).(*array.Int64)
		for i := 0; i < int(r.NumRows()); i++ {
			id := ids.Value(i)
			got = append(got, id)
			for c := 1; c < int(r.NumCols()); c++ {
				if g, w := FormatValue(r.Column(c), i), FormatValue(d.rec.Column(c), int(id)); g != w {
					t.Fatalf("row id %d column %s: got %s, want %s", id, d.schema.Field(c).Name, g, w)
				}
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("keys %v limit %d: row %d has id %d, want %d\ngot  %v\nwant %v", describeKeys(keys), limit, i, got[i], want[i], head(got), head(want))
		}
	}
}

func describeKeys(keys []SortKey) string {
	s := ""
	for _, k := range keys {
		dir := "asc"
		if k.Desc {
			dir = "desc"
		}
		nulls := "nulls last"
		if k.NullsFirst {
			nulls = "nulls first"
		}
		s += fmt.Sprintf("[%s %s %s]", k.Expr, dir, nulls)
	}
	return s
}

func head(s []int64) []int64 { return s[:min(len(s), 30)] }

func TestSortSingleKeyEveryTypeMatchesReference(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 1))
	d := newSortTestData(mem, rng, 700, 0.15)
	defer d.rec.Release()
	for c := 1; c < d.schema.NumFields(); c++ {
		for _, desc := range []bool{false, true} {
			for _, nf := range []bool{false, true} {
				name := d.schema.Field(c).Name
				t.Run(fmt.Sprintf("%s desc=%v nullsFirst=%v", name, desc, nf), func(t *testing.T) {
					keys := []SortKey{{Expr: expr.Col(name), Desc: desc, NullsFirst: nf}}
					runSortForTest(t, mem, rng, d, []int{c}, keys, 0, 97)
				})
			}
		}
	}
}

func TestSortWithoutNullsUsesEveryPath(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 2))
	d := newSortTestData(mem, rng, 500, 0)
	defer d.rec.Release()
	for c := 1; c < d.schema.NumFields(); c++ {
		name := d.schema.Field(c).Name
		keys := []SortKey{{Expr: expr.Col(name), Desc: c%2 == 0}}
		runSortForTest(t, mem, rng, d, []int{c}, keys, 0, 1000)
		// Two keys force the general comparator for the same column.
		keys = append(keys, SortKey{Expr: expr.Col("id"), Desc: true})
		runSortForTest(t, mem, rng, d, []int{c, 0}, keys, 0, 1000)
	}
}

func TestSortMultiKeyMixedDirectionsAndNulls(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 3))
	d := newSortTestData(mem, rng, 600, 0.2)
	defer d.rec.Release()
	for iter := 0; iter < 60; iter++ {
		nk := 1 + rng.IntN(3)
		var cols []int
		var keys []SortKey
		for k := 0; k < nk; k++ {
			c := 1 + rng.IntN(d.schema.NumFields()-1)
			cols = append(cols, c)
			keys = append(keys, SortKey{
				Expr:       expr.Col(d.schema.Field(c).Name).As(fmt.Sprintf("k%d", k)),
				Desc:       rng.IntN(2) == 0,
				NullsFirst: rng.IntN(2) == 0,
			})
		}
		runSortForTest(t, mem, rng, d, cols, keys, 0, 1+rng.IntN(300))
	}
}

func TestSortTopKEqualsFullSortThenLimit(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 4))
	d := newSortTestData(mem, rng, 800, 0.1)
	defer d.rec.Release()
	for _, limit := range []int64{1, 2, 7, 33, 100, 799, 800, 5000} {
		for iter := 0; iter < 6; iter++ {
			var cols []int
			var keys []SortKey
			for k := 0; k < 1+iter%3; k++ {
				c := 1 + rng.IntN(d.schema.NumFields()-1)
				cols = append(cols, c)
				keys = append(keys, SortKey{Expr: expr.Col(d.schema.Field(c).Name), Desc: rng.IntN(2) == 0, NullsFirst: rng.IntN(2) == 0})
			}
			runSortForTest(t, mem, rng, d, cols, keys, limit, 64)
		}
	}
}

func TestSortEmptyInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	op, err := NewSort(mem, newRecordsOpForSortTest(sortTestSchema), []SortKey{{Expr: expr.Col("s")}}, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out := drainForSortTest(t, op); len(out) != 0 {
		t.Fatalf("%d records from empty input", len(out))
	}
}

func TestSortRejectsBadKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
	for name, keys := range map[string][]SortKey{
		"no keys":        nil,
		"unknown column": {{Expr: expr.Col("nope")}},
		"list key":       {{Expr: expr.Col("l")}},
	} {
		in := newRecordsOpForSortTest(schema)
		if _, err := NewSort(mem, in, keys, 0, 10); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		in.Close()
	}
}

func TestSortClosedEarlyReleasesEverything(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 5))
	d := newSortTestData(mem, rng, 300, 0.1)
	defer d.rec.Release()
	op, err := NewSort(mem, newRecordsOpForSortTest(d.schema, d.split(rng)...), []SortKey{{Expr: expr.Col("s")}}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := op.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Next(context.Background()); err == nil || err == io.EOF {
		t.Fatalf("Next after Close: %v", err)
	}
}

// benchSortInput builds n rows: an int64 key, a string key of 10k distinct
// values and a float64 key.
func benchSortInput(mem memory.Allocator, n int) (*arrow.Schema, []arrow.Record) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []arrow.Record
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for done := 0; done < n; {
		m := min(64*1024, n-done)
		for i := 0; i < m; i++ {
			b.Field(0).(*array.Int64Builder).Append(rng.Int64())
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("user-%05d", rng.IntN(10000)))
			b.Field(2).(*array.Float64Builder).Append(rng.Float64())
		}
		recs = append(recs, b.NewRecord())
		done += m
	}
	return schema, recs
}

func benchmarkSort(b *testing.B, keys []SortKey, limit int64) {
	mem := memory.NewGoAllocator()
	const n = 1 << 20
	schema, recs := benchSortInput(mem, n)
	defer releaseAllForSortTest(recs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range recs {
			r.Retain()
		}
		op, err := NewSort(mem, newRecordsOpForSortTest(schema, recs...), keys, limit, 0)
		if err != nil {
			b.Fatal(err)
		}
		for {
			r, err := op.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
		op.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkSortInt64Key1M(b *testing.B) {
	benchmarkSort(b, []SortKey{{Expr: expr.Col("k")}}, 0)
}

func BenchmarkSortStringFloat64Keys1M(b *testing.B) {
	benchmarkSort(b, []SortKey{{Expr: expr.Col("s")}, {Expr: expr.Col("f"), Desc: true}}, 0)
}

func BenchmarkSortTopK100Int64Key1M(b *testing.B) {
	benchmarkSort(b, []SortKey{{Expr: expr.Col("k")}}, 100)
}

func TestSortLongStringsSharingPrefixes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 6))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "g", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	sb := b.Field(0).(*array.StringBuilder)
	gb := b.Field(1).(*array.Int64Builder)
	const n = 5000
	vals := make([]*string, n)
	gs := make([]int64, n)
	prefixes := []string{"", "user-0000", "user-0000-session-", "\x00\x00\x00\x00\x00\x00\x00\x00"}
	for i := range vals {
		gs[i] = rng.Int64N(3)
		gb.Append(gs[i])
		if rng.IntN(20) == 0 {
			sb.AppendNull()
			continue
		}
		s := prefixes[rng.IntN(len(prefixes))]
		for l := rng.IntN(20); l > 0; l-- {
			s += string("ab\x00"[rng.IntN(3)])
		}
		vals[i] = &s
		sb.Append(s)
	}
	rec := b.NewRecord()
	defer rec.Release()
	for _, desc := range []bool{false, true} {
		for _, second := range []bool{false, true} {
			keys := []SortKey{{Expr: expr.Col("s"), Desc: desc, NullsFirst: desc}}
			if second {
				keys = append(keys, SortKey{Expr: expr.Col("g"), Desc: true})
			}
			perm, err := SortIndices(mem, rec, keys, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			sort.SliceStable(want, func(i, j int) bool {
				a, b := vals[want[i]], vals[want[j]]
				if a == nil || b == nil {
					if a == nil && b == nil {
						return second && gs[want[i]] > gs[want[j]]
					}
					return a == nil && desc || b == nil && !desc
				}
				if *a != *b {
					return (*a < *b) != desc
				}
				return second && gs[want[i]] > gs[want[j]]
			})
			for i := range want {
				if perm[i] != want[i] {
					t.Fatalf("desc=%v second key=%v: position %d has row %d, want %d", desc, second, i, perm[i], want[i])
				}
			}
		}
	}
}
