package exec

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

var update = flag.Bool("update", false, "rewrite golden files")

// hashCase is a set of rows over one or more columns whose hashes are pinned.
type hashCase struct {
	name string
	cols []arrow.Array
}

func fixedArray[T any](mem memory.Allocator, dt arrow.DataType, vals []T, valid []bool) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	b.(interface{ AppendValues([]T, []bool) }).AppendValues(vals, valid)
	return b.NewArray()
}

func hashBoolArray(mem memory.Allocator, vals []bool, valid []bool) arrow.Array {
	return fixedArray(mem, arrow.FixedWidthTypes.Boolean, vals, valid)
}

// hashCases builds one case per type the shuffle hash accepts, each with a
// null and the values where encodings go wrong (zero, negatives, extremes,
// -0, NaNs of several payloads, empty and long strings), plus sliced arrays
// and multi-column keys. The caller releases every column.
func hashCases(mem memory.Allocator) []hashCase {
	all3 := []bool{true, true, true}
	withNull := func(n int) []bool {
		v := make([]bool, n)
		for i := range v {
			v[i] = i != 1
		}
		return v
	}
	ints := []int64{0, 7, -1, 1, math.MinInt64, math.MaxInt64, -7}
	strs := []string{"", "", "a", "hello, world", "ünïcode", "exactly8", "a string longer than seven bytes", "\x00"}
	floats := []float64{0, 0, math.Copysign(0, -1), 1.5, -2.25, math.NaN(), math.Float64frombits(0x7ff0000000000001),
		math.Float64frombits(0xfff8000000000000), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, 7}
	f32 := make([]float32, len(floats))
	for i, f := range floats {
		f32[i] = float32(f)
	}
	f32[6] = math.Float32frombits(0x7f800001) // a float32 NaN with another payload
	decs := []decimal128.Num{decimal128.FromI64(0), decimal128.FromI64(0), decimal128.FromI64(1), decimal128.FromI64(-1),
		decimal128.FromI64(12345), decimal128.New(1, 0), decimal128.New(-1, 5), decimal128.FromI64(math.MinInt64), decimal128.FromI64(7)}

	var cs []hashCase
	add := func(name string, cols ...arrow.Array) { cs = append(cs, hashCase{name, cols}) }
	add("bool", hashBoolArray(mem, []bool{false, false, true}, withNull(3)))
	add("int8", fixedArray(mem, arrow.PrimitiveTypes.Int8, []int8{0, 0, -1, 1, math.MinInt8, math.MaxInt8, 7}, withNull(7)))
	add("int16", fixedArray(mem, arrow.PrimitiveTypes.Int16, []int16{0, 0, -1, 1, math.MinInt16, math.MaxInt16, 7}, withNull(7)))
	add("int32", fixedArray(mem, arrow.PrimitiveTypes.Int32, []int32{0, 0, -1, 1, math.MinInt32, math.MaxInt32, 7}, withNull(7)))
	add("int64", fixedArray(mem, arrow.PrimitiveTypes.Int64, ints, withNull(7)))
	add("uint8", fixedArray(mem, arrow.PrimitiveTypes.Uint8, []uint8{0, 0, 1, math.MaxUint8, 7}, withNull(5)))
	add("uint16", fixedArray(mem, arrow.PrimitiveTypes.Uint16, []uint16{0, 0, 1, math.MaxUint16, 7}, withNull(5)))
	add("uint32", fixedArray(mem, arrow.PrimitiveTypes.Uint32, []uint32{0, 0, 1, math.MaxUint32, 7}, withNull(5)))
	add("uint64", fixedArray(mem, arrow.PrimitiveTypes.Uint64, []uint64{0, 0, 1, math.MaxUint64, 1 << 63, 7}, withNull(6)))
	add("float32", fixedArray(mem, arrow.PrimitiveTypes.Float32, f32, withNull(len(f32))))
	add("float64", fixedArray(mem, arrow.PrimitiveTypes.Float64, floats, withNull(len(floats))))
	add("decimal128(38,2)", fixedArray(mem, &arrow.Decimal128Type{Precision: 38, Scale: 2}, decs, withNull(len(decs))))
	add("decimal128(10,0)", fixedArray(mem, &arrow.Decimal128Type{Precision: 10, Scale: 0}, decs[:5], withNull(5)))
	add("string", fixedArray(mem, arrow.BinaryTypes.String, strs, withNull(len(strs))))
	add("large_string", fixedArray(mem, arrow.BinaryTypes.LargeString, strs, withNull(len(strs))))
	bins := make([][]byte, len(strs))
	for i, s := range strs {
		bins[i] = []byte(s)
	}
	bins = append(bins, []byte{0xff, 0x00, 0x01})
	add("binary", fixedArray(mem, arrow.BinaryTypes.Binary, bins, withNull(len(bins))))
	add("large_binary", fixedArray(mem, arrow.BinaryTypes.LargeBinary, bins, withNull(len(bins))))
	add("date32", fixedArray(mem, arrow.FixedWidthTypes.Date32, []arrow.Date32{0, 0, 19000, -1, 7}, withNull(5)))
	add("date64", fixedArray(mem, arrow.FixedWidthTypes.Date64, []arrow.Date64{0, 0, 1641600000000, -86400000, 7}, withNull(5)))
	add("time32[s]", fixedArray(mem, arrow.FixedWidthTypes.Time32s, []arrow.Time32{0, 0, 86399, 7}, withNull(4)))
	add("time32[ms]", fixedArray(mem, arrow.FixedWidthTypes.Time32ms, []arrow.Time32{0, 0, 86399999, 7}, withNull(4)))
	add("time64[us]", fixedArray(mem, arrow.FixedWidthTypes.Time64us, []arrow.Time64{0, 0, 86399999999, 7}, withNull(4)))
	add("time64[ns]", fixedArray(mem, arrow.FixedWidthTypes.Time64ns, []arrow.Time64{0, 0, 86399999999999, 7}, withNull(4)))
	tss := []arrow.Timestamp{0, 0, -1, 1700000000000000, math.MinInt64, 7}
	for _, dt := range []arrow.DataType{arrow.FixedWidthTypes.Timestamp_s, arrow.FixedWidthTypes.Timestamp_ms,
		arrow.FixedWidthTypes.Timestamp_us, arrow.FixedWidthTypes.Timestamp_ns, &arrow.TimestampType{Unit: arrow.Microsecond}} {
		add(dt.String(), fixedArray(mem, dt, tss, withNull(len(tss))))
	}
	durs := []arrow.Duration{0, 0, -1, 3600, math.MaxInt64, 7}
	for _, dt := range []arrow.DataType{arrow.FixedWidthTypes.Duration_s, arrow.FixedWidthTypes.Duration_ms,
		arrow.FixedWidthTypes.Duration_us, arrow.FixedWidthTypes.Duration_ns} {
		add(dt.String(), fixedArray(mem, dt, durs, withNull(len(durs))))
	}
	add("null", array.NewNull(3))

	// Several columns: the bytes of each column follow in order.
	add("int64,string",
		fixedArray(mem, arrow.PrimitiveTypes.Int64, []int64{1, -5, 0, 42, 0}, []bool{true, true, false, true, false}),
		fixedArray(mem, arrow.BinaryTypes.String, []string{"a", "", "x", "hello", ""}, []bool{true, true, true, false, false}))
	add("bool,decimal128(20,4),float64,null",
		hashBoolArray(mem, []bool{true, false, false}, []bool{true, true, false}),
		fixedArray(mem, &arrow.Decimal128Type{Precision: 20, Scale: 4}, decs[:3], []bool{true, false, true}),
		fixedArray(mem, arrow.PrimitiveTypes.Float64, []float64{math.NaN(), 0, -1}, all3),
		array.NewNull(3))
	add("string,string (boundaries between columns count)",
		fixedArray(mem, arrow.BinaryTypes.String, []string{"ab", "a", ""}, all3),
		fixedArray(mem, arrow.BinaryTypes.String, []string{"", "b", "ab"}, all3))

	// Slices start at an offset into their buffers (and validity bitmaps).
	slice := func(name string, a arrow.Array, i, j int64) {
		add(name+" sliced", array.NewSlice(a, i, j))
		a.Release() // the slice holds its own reference to the buffers
	}
	slice("bool", hashBoolArray(mem, []bool{true, false, true, true, false, true, false, false, true, true, false}, []bool{true, true, true, false, true, true, true, true, true, false, true}), 3, 11)
	slice("int32", fixedArray(mem, arrow.PrimitiveTypes.Int32, []int32{9, 8, 0, -1, 7}, []bool{true, true, false, true, true}), 2, 5)
	slice("string", fixedArray(mem, arrow.BinaryTypes.String, strs, withNull(len(strs))), 3, 7)
	slice("large_binary", fixedArray(mem, arrow.BinaryTypes.LargeBinary, bins, withNull(len(bins))), 1, 5)
	slice("decimal128(38,2)", fixedArray(mem, &arrow.Decimal128Type{Precision: 38, Scale: 2}, decs, withNull(len(decs))), 4, 9)
	return cs
}

func releaseCases(cs []hashCase) {
	for _, c := range cs {
		for _, a := range c.cols {
			a.Release()
		}
	}
}

// The shuffle hash of fixed values of every accepted type is pinned: state
// in existing checkpoints sits in key groups by this hash, and executors of
// one job must route rows alike. Rewrite with -update only for a deliberate
// format change (which needs a checkpoint format version bump).
func TestShuffleHashGolden(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cs := hashCases(mem)
	defer releaseCases(cs)
	var b bytes.Buffer
	b.WriteString("# HashColumns: the hash of each row; shuffles and key groups depend on it (do not change)\n")
	for _, c := range cs {
		n := c.cols[0].Len()
		h := make([]uint64, n)
		HashColumns(c.cols, h)
		for i := 0; i < n; i++ {
			vals := make([]string, len(c.cols))
			for k, a := range c.cols {
				vals[k] = hashValueString(a, i)
			}
			fmt.Fprintf(&b, "%s\t%s\t%016x\n", c.name, strings.Join(vals, ", "), h[i])
		}
	}
	path := filepath.Join("testdata", "hash.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("%s:%d\n got %q\nwant %q", path, i+1, g, w)
			}
		}
	}
}

// hashValueString renders row i unambiguously (floats by their bits too, so
// -0 and the NaN payloads show).
func hashValueString(a arrow.Array, i int) string {
	if a.DataType().ID() == arrow.NULL || a.IsNull(i) {
		return "null"
	}
	switch a := a.(type) {
	case *array.Float32:
		return fmt.Sprintf("%v(%08x)", a.Value(i), math.Float32bits(a.Value(i)))
	case *array.Float64:
		return fmt.Sprintf("%v(%016x)", a.Value(i), math.Float64bits(a.Value(i)))
	case *array.String:
		return fmt.Sprintf("%q", a.Value(i))
	case *array.LargeString:
		return fmt.Sprintf("%q", a.Value(i))
	case *array.Binary:
		return fmt.Sprintf("%x", a.Value(i))
	case *array.LargeBinary:
		return fmt.Sprintf("%x", a.Value(i))
	case *array.Decimal128:
		v := a.Value(i)
		return fmt.Sprintf("%d:%d", v.HighBits(), v.LowBits())
	}
	return a.ValueStr(i)
}

// The hash expression and the exchanges are one hash: for every type and
// row, hash(cols...) is HashColumns(cols) as an int64.
func TestHashExpressionAgreesWithTheShuffleHash(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cs := hashCases(mem)
	defer releaseCases(cs)
	seed := uint64(9)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	random := randRecordForTest(mem, rng, 300, 50, 15)
	defer random.Release()
	cs = append(cs, hashCase{"random record, every column", random.Columns()})
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			n := c.cols[0].Len()
			fields := make([]arrow.Field, len(c.cols))
			args := make([]*expr.Expr, len(c.cols))
			for k, a := range c.cols {
				fields[k] = arrow.Field{Name: fmt.Sprintf("c%d", k), Type: a.DataType(), Nullable: true}
				args[k] = expr.Col(fields[k].Name)
			}
			rec := array.NewRecord(arrow.NewSchema(fields, nil), c.cols, int64(n))
			defer rec.Release()
			got, err := expr.Eval(mem, expr.Hash(args...), rec)
			if err != nil {
				t.Fatalf("hash expression: %v", err)
			}
			defer got.Release()
			want := make([]uint64, n)
			HashColumns(c.cols, want)
			vals := got.(*array.Int64)
			for i := 0; i < n; i++ {
				if vals.IsNull(i) || uint64(vals.Value(i)) != want[i] {
					t.Errorf("row %d: hash expression %s, exchange hash %016x", i, FormatValue(vals, i), want[i])
				}
			}
		})
	}
}

// benchKeys is 64Ki rows of typical shuffle keys: an int64 of 10k distinct
// values, a short string, a long string and a decimal, with 1% nulls.
func benchKeys(mem memory.Allocator) arrow.Record {
	const n = 1 << 16
	rng := rand.New(rand.NewPCG(1, 2))
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "short", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "long", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 15, Scale: 2}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for i := 0; i < n; i++ {
		if rng.IntN(100) == 0 {
			for c := range sch.Fields() {
				b.Field(c).AppendNull()
			}
			continue
		}
		v := rng.IntN(10000)
		b.Field(0).(*array.Int64Builder).Append(int64(v) * 7919)
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("R%d", v%7))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("customer#%09d", v))
		b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(v) * 101))
	}
	return b.NewRecord()
}

func BenchmarkHashColumns(b *testing.B) {
	rec := benchKeys(memory.DefaultAllocator)
	defer rec.Release()
	out := make([]uint64, rec.NumRows())
	for _, c := range []struct {
		name string
		cols []int
	}{{"int64", []int{0}}, {"short_string", []int{1}}, {"long_string", []int{2}}, {"decimal", []int{3}}, {"int64+short+long", []int{0, 1, 2}}} {
		cols := make([]arrow.Array, len(c.cols))
		for i, k := range c.cols {
			cols[i] = rec.Column(k)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				HashColumns(cols, out)
			}
		})
	}
}

func BenchmarkPartitionRecord(b *testing.B) {
	mem := memory.DefaultAllocator
	rec := benchKeys(mem)
	defer rec.Release()
	b.Run("hash_8", func(b *testing.B) {
		for b.Loop() {
			parts, err := PartitionRecord(mem, rec, []int{0, 1}, 8)
			if err != nil {
				b.Fatal(err)
			}
			releaseRecs(parts)
		}
	})
	b.Run("keygroups_128_8", func(b *testing.B) {
		for b.Loop() {
			parts, err := PartitionByKeyGroup(mem, rec, []int{0, 1}, 128, 8)
			if err != nil {
				b.Fatal(err)
			}
			releaseRecs(parts)
		}
	})
}
