package exec

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/cespare/xxhash/v2"
)

// sliceOpForTest yields the given records (retained) in order.
type sliceOpForTest struct {
	schema *arrow.Schema
	recs   []arrow.Record
	closed bool
}

func newSliceOpForTest(schema *arrow.Schema, recs ...arrow.Record) *sliceOpForTest {
	for _, r := range recs {
		r.Retain()
	}
	return &sliceOpForTest{schema: schema, recs: recs}
}

func (s *sliceOpForTest) Schema() *arrow.Schema { return s.schema }
func (s *sliceOpForTest) Next(ctx context.Context) (arrow.Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	r := s.recs[0]
	s.recs = s.recs[1:]
	return r, nil
}
func (s *sliceOpForTest) Close() error {
	if !s.closed {
		s.closed = true
		for _, r := range s.recs {
			r.Release()
		}
		s.recs = nil
	}
	return nil
}

// drainForTest reads all records of op and closes it.
func drainForTest(t testing.TB, op Operator) []arrow.Record {
	t.Helper()
	defer op.Close()
	var out []arrow.Record
	for {
		r, err := op.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.NumRows() == 0 {
			t.Fatalf("operator returned an empty record")
		}
		if !r.Schema().Equal(op.Schema()) {
			t.Fatalf("record schema %s != operator schema %s", r.Schema(), op.Schema())
		}
		out = append(out, r)
	}
}

func releaseRecs(recs []arrow.Record) {
	for _, r := range recs {
		if r != nil {
			r.Release()
		}
	}
}

// testColumns is every type the engine groups and aggregates, with nulls.
var testFields = []arrow.Field{
	{Name: "bool", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
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
	{Name: "str", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
}

// randRecordForTest builds n rows of testFields; card bounds distinct values
// per column, nullPct the share of nulls.
func randRecordForTest(mem memory.Allocator, rng *rand.Rand, n, card, nullPct int) arrow.Record {
	schema := arrow.NewSchema(testFields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := 0; i < n; i++ {
		for c, f := range testFields {
			fb := b.Field(c)
			if rng.IntN(100) < nullPct {
				fb.AppendNull()
				continue
			}
			v := rng.IntN(card)
			switch x := fb.(type) {
			case *array.BooleanBuilder:
				x.Append(v%2 == 0)
			case *array.Int8Builder:
				x.Append(int8(v - card/2))
			case *array.Int16Builder:
				x.Append(int16(v*100 - 300))
			case *array.Int32Builder:
				x.Append(int32(v*1000 - 7))
			case *array.Int64Builder:
				x.Append(int64(v)*1_000_000_007 - 5)
			case *array.Uint8Builder:
				x.Append(uint8(v))
			case *array.Uint16Builder:
				x.Append(uint16(v * 3))
			case *array.Uint32Builder:
				x.Append(uint32(v) * 100_000)
			case *array.Uint64Builder:
				x.Append(uint64(v) << 40)
			case *array.Float32Builder:
				x.Append(float32(v)*0.5 - 1)
			case *array.Float64Builder:
				x.Append(float64(v)*1.25 - 3)
			case *array.StringBuilder:
				x.Append(strings.Repeat("s", v%3) + fmt.Sprint(v))
			case *array.BinaryBuilder:
				x.Append([]byte{byte(v), 0, byte(v * 7)})
			case *array.Date32Builder:
				x.Append(arrow.Date32(19000 + v))
			case *array.TimestampBuilder:
				x.Append(arrow.Timestamp(int64(v) * 3_600_000))
			case *array.Decimal128Builder:
				x.Append(decimal128.FromI64(int64(v*137 - 400)))
			default:
				panic(f.Type)
			}
		}
	}
	return b.NewRecord()
}

// goValueForTest is the Go value of arr[i] (nil for null), normalised so
// values of one kind compare with ==.
func goValueForTest(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return uint64(a.Value(i))
	case *array.Uint16:
		return uint64(a.Value(i))
	case *array.Uint32:
		return uint64(a.Value(i))
	case *array.Uint64:
		return a.Value(i)
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.Date32:
		return int64(a.Value(i))
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.Decimal128:
		return a.Value(i)
	case *array.List:
		s, e := a.ValueOffsets(i)
		var out []string
		for j := s; j < e; j++ {
			out = append(out, fmt.Sprintf("%#v", goValueForTest(a.ListValues(), int(j))))
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	panic(fmt.Sprintf("goValueForTest: %T", arr))
}

func lessForTest(a, b any) bool {
	switch x := a.(type) {
	case bool:
		return !x && b.(bool)
	case int64:
		return x < b.(int64)
	case uint64:
		return x < b.(uint64)
	case float64:
		return x < b.(float64)
	case string:
		return x < b.(string)
	case decimal128.Num:
		return x.Less(b.(decimal128.Num))
	}
	panic(fmt.Sprintf("lessForTest: %T", a))
}

func rowKeyForTest(cols []arrow.Array, i int) string {
	parts := make([]string, len(cols))
	for c, a := range cols {
		parts[c] = fmt.Sprintf("%#v", goValueForTest(a, i))
	}
	return strings.Join(parts, "|")
}

func TestKeyGrouperNullsAndMultiColumn(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	seed := uint64(42)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	recs := []arrow.Record{
		randRecordForTest(mem, rng, 500, 4, 20),
		randRecordForTest(mem, rng, 500, 40, 10),
	}
	defer releaseRecs(recs)
	for c := range testFields {
		for _, cols := range [][]int{{c}, {c, (c + 3) % len(testFields)}} {
			var types []arrow.DataType
			for _, k := range cols {
				types = append(types, testFields[k].Type)
			}
			g, err := newKeyGrouper(types)
			if err != nil {
				t.Fatal(err)
			}
			byKey := map[string]uint32{}
			for _, rec := range recs {
				arrs := make([]arrow.Array, len(cols))
				for i, k := range cols {
					arrs[i] = rec.Column(k)
				}
				ids := make([]uint32, rec.NumRows())
				g.assign(arrs, ids)
				found := make([]int32, rec.NumRows())
				g.find(arrs, found)
				for i, id := range ids {
					k := rowKeyForTest(arrs, i)
					if want, ok := byKey[k]; ok && want != id {
						t.Fatalf("cols %v: key %s got group %d, earlier %d", cols, k, id, want)
					} else if !ok {
						if int(id) != len(byKey) {
							t.Fatalf("cols %v: new key %s got id %d, want dense %d", cols, k, id, len(byKey))
						}
						byKey[k] = id
					}
					hasNull := strings.Contains(k, "<nil>")
					if hasNull && found[i] != -1 || !hasNull && found[i] != int32(id) {
						t.Fatalf("cols %v: find(%s) = %d, assign = %d", cols, k, found[i], id)
					}
				}
			}
			if g.n != len(byKey) {
				t.Fatalf("cols %v: %d groups, want %d", cols, g.n, len(byKey))
			}
		}
	}
}

func TestKeyGrouperFloatCanonical(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewFloat64Builder(mem)
	b.AppendValues([]float64{0, math.Copysign(0, -1), math.NaN(), -math.NaN(), 1, 1}, nil)
	a := b.NewArray()
	b.Release()
	defer a.Release()
	g, _ := newKeyGrouper([]arrow.DataType{arrow.PrimitiveTypes.Float64})
	ids := make([]uint32, a.Len())
	g.assign([]arrow.Array{a}, ids)
	if fmt.Sprint(ids) != "[0 0 1 1 2 2]" {
		t.Fatalf("ids %v: -0 must equal 0 and NaN equal NaN", ids)
	}
}

func TestKeyGrouperManyStrings(t *testing.T) {
	// Short (packed) and long (map) strings, the empty string and nulls.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewStringBuilder(mem)
	for i := 0; i < 200; i++ {
		if i%7 == 0 {
			b.AppendNull()
		} else {
			b.Append(strings.Repeat("long-", i%3) + fmt.Sprint(i%50))
		}
	}
	a := b.NewArray()
	b.Release()
	defer a.Release()
	g, _ := newKeyGrouper([]arrow.DataType{arrow.BinaryTypes.String})
	ids := make([]uint32, a.Len())
	g.assign([]arrow.Array{a}, ids)
	seen := map[string]uint32{}
	for i, id := range ids {
		k := fmt.Sprint(goValueForTest(a, i))
		if w, ok := seen[k]; ok && w != id {
			t.Fatalf("row %d key %s: id %d, earlier %d", i, k, id, w)
		}
		seen[k] = id
	}
	if g.n != len(seen) {
		t.Fatalf("%d groups, want %d", g.n, len(seen))
	}
}

// recipeHashForTest re-implements the documented HashColumns recipe for an
// int64 column and a string column.
func recipeHashForTest(i *int64, s *string) uint64 {
	var buf []byte
	if i == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(*i))
	}
	if s == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(*s)))
		buf = append(buf, *s...)
	}
	return xxhash.Sum64(buf)
}

func TestHashColumnsStable(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{1, -5, 0, 42}, []bool{true, true, false, true})
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"a", "", "x", "hello"}, []bool{true, true, true, false})
	ia, sa := ib.NewArray(), sb.NewArray()
	ib.Release()
	sb.Release()
	defer ia.Release()
	defer sa.Release()
	got := make([]uint64, 4)
	HashColumns([]arrow.Array{ia, sa}, got)
	p := func(v int64) *int64 { return &v }
	q := func(v string) *string { return &v }
	want := []uint64{
		recipeHashForTest(p(1), q("a")),
		recipeHashForTest(p(-5), q("")),
		recipeHashForTest(nil, q("x")),
		recipeHashForTest(p(42), nil),
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("row %d: hash %#x, recipe gives %#x", i, got[i], want[i])
		}
	}
	// Pinned: a change here breaks shuffles between old and new executors.
	golden := []uint64{0x3bfe4e3781cc118a, 0xd0bed3aa34683692, 0x5660c5f062ccebed, 0x4bdd6d3794e77834}
	for i := range got {
		if got[i] != golden[i] {
			t.Errorf("row %d: hash %#x, pinned %#x", i, got[i], golden[i])
		}
	}

	// Widening: int32 and int64 of equal value hash alike.
	i32 := array.NewInt32Builder(mem)
	i32.AppendValues([]int32{1, -5, 0, 42}, []bool{true, true, false, true})
	a32 := i32.NewArray()
	i32.Release()
	defer a32.Release()
	h32, h64 := make([]uint64, 4), make([]uint64, 4)
	HashColumns([]arrow.Array{a32}, h32)
	HashColumns([]arrow.Array{ia}, h64)
	if fmt.Sprint(h32) != fmt.Sprint(h64) {
		t.Errorf("int32 hashes %x differ from int64 %x", h32, h64)
	}
}

func TestKeyGrouperWideDecimals(t *testing.T) {
	// Values that fit in int64 take the integer table, others the map; both
	// must keep one id per value.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := &arrow.Decimal128Type{Precision: 38, Scale: 0}
	b := array.NewDecimal128Builder(mem, dt)
	vals := []decimal128.Num{
		decimal128.FromI64(-1), decimal128.New(1, 0), decimal128.New(-1, 5), decimal128.FromI64(-1),
		decimal128.New(1, 0), decimal128.New(0, math.MaxUint64), decimal128.New(-1, 5),
	}
	b.AppendValues(vals, nil)
	a := b.NewArray()
	b.Release()
	defer a.Release()
	g, _ := newKeyGrouper([]arrow.DataType{dt})
	ids := make([]uint32, a.Len())
	g.assign([]arrow.Array{a}, ids)
	if fmt.Sprint(ids) != "[0 1 2 0 1 3 2]" {
		t.Fatalf("ids %v", ids)
	}
	found := make([]int32, a.Len())
	g.find([]arrow.Array{a}, found)
	if fmt.Sprint(found) != "[0 1 2 0 1 3 2]" {
		t.Fatalf("find %v", found)
	}
}
