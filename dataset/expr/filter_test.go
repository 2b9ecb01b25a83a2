package expr_test

import (
	"encoding/binary"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/cespare/xxhash/v2"
	. "github.com/sluicedata/sluice/dataset/expr"
)

// everyType is a 10-row record with a column of every type FilterRecord
// handles, each with nulls, plus a list column for the fallback path.
func everyType(mem memory.Allocator) arrow.Record {
	ints := []any{1, nil, 3, 4, nil, 6, 7, 8, 9, 10}
	floats := []any{1.5, nil, 3.5, 4.5, nil, 6.5, 7.5, 8.5, 9.5, 10.5}
	strs := []any{"a", nil, "ccc", "", nil, "ffffff", "g", "hh", "iii", "j"}
	rec := buildRecord(mem,
		column{"bool", arrow.FixedWidthTypes.Boolean, []any{true, nil, false, true, nil, false, true, true, false, true}},
		column{"int8", arrow.PrimitiveTypes.Int8, ints},
		column{"int16", arrow.PrimitiveTypes.Int16, ints},
		column{"int32", arrow.PrimitiveTypes.Int32, ints},
		column{"int64", arrow.PrimitiveTypes.Int64, ints},
		column{"uint8", arrow.PrimitiveTypes.Uint8, ints},
		column{"uint16", arrow.PrimitiveTypes.Uint16, ints},
		column{"uint32", arrow.PrimitiveTypes.Uint32, ints},
		column{"uint64", arrow.PrimitiveTypes.Uint64, ints},
		column{"float32", arrow.PrimitiveTypes.Float32, floats},
		column{"float64", arrow.PrimitiveTypes.Float64, floats},
		column{"date32", arrow.FixedWidthTypes.Date32, []any{"2024-01-01", nil, "2024-01-03", "2024-01-04", nil, "2024-01-06", "2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10"}},
		column{"ts", tsNY, ints},
		column{"dec", dec10, []any{"1.00", nil, "3.00", "4.25", nil, "6.00", "-7.00", "8.00", "9.99", "10.00"}},
		column{"string", arrow.BinaryTypes.String, strs},
		column{"large_string", arrow.BinaryTypes.LargeString, strs},
		column{"binary", arrow.BinaryTypes.Binary, []any{[]byte("a"), nil, []byte("ccc"), []byte{}, nil, []byte("f"), []byte("g"), []byte("h"), []byte("i"), []byte("j")}},
	)
	defer rec.Release()
	lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int64)
	defer lb.Release()
	vb := lb.ValueBuilder().(*array.Int64Builder)
	for i := 0; i < 10; i++ {
		if i%4 == 1 {
			lb.AppendNull()
			continue
		}
		lb.Append(true)
		for j := 0; j < i%3; j++ {
			vb.Append(int64(i*10 + j))
		}
	}
	list := lb.NewArray()
	defer list.Release()
	fields := append(rec.Schema().Fields(), arrow.Field{Name: "list", Type: list.DataType(), Nullable: true})
	return array.NewRecord(arrow.NewSchema(fields, nil), append(rec.Columns(), list), 10)
}

func boolArray(mem memory.Allocator, vals ...any) *array.Boolean {
	return buildArray(mem, arrow.FixedWidthTypes.Boolean, vals).(*array.Boolean)
}

// checkFiltered compares got with the rows of rec where keep is true.
func checkFiltered(t *testing.T, rec, got arrow.Record, keep []bool) {
	t.Helper()
	var rows []int
	for i, k := range keep {
		if k {
			rows = append(rows, i)
		}
	}
	if int(got.NumRows()) != len(rows) {
		t.Fatalf("got %d rows, want %d", got.NumRows(), len(rows))
	}
	for c := 0; c < int(rec.NumCols()); c++ {
		in, out := rec.Column(c), got.Column(c)
		if out.Len() != len(rows) || !arrow.TypeEqual(in.DataType(), out.DataType()) {
			t.Fatalf("column %s: len %d type %s", rec.ColumnName(c), out.Len(), out.DataType())
		}
		for j, i := range rows {
			if in.IsNull(i) != out.IsNull(j) || (!in.IsNull(i) && in.ValueStr(i) != out.ValueStr(j)) {
				t.Errorf("column %s row %d: got %q (null %v), want row %d %q (null %v)", rec.ColumnName(c), j, out.ValueStr(j), out.IsNull(j), i, in.ValueStr(i), in.IsNull(i))
			}
		}
	}
}

func TestFilterRecord(t *testing.T) {
	cases := []struct {
		name  string
		mask  []any
		slice [2]int64 // slice of the record (and mask) to filter; zero = whole
	}{
		{"a mixed mask keeps true rows and drops false and null", []any{true, false, nil, true, true, false, nil, true, false, true}, [2]int64{}},
		{"an all-true mask keeps every row", []any{true, true, true, true, true, true, true, true, true, true}, [2]int64{}},
		{"an all-false mask keeps nothing", []any{false, false, nil, false, false, false, false, false, false, false}, [2]int64{}},
		{"a single row passes", []any{false, false, false, false, false, false, false, false, false, true}, [2]int64{}},
		{"a sliced record and mask respect their offsets", []any{true, false, nil, true, true, false, nil, true, false, true}, [2]int64{3, 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := everyType(mem)
			defer rec.Release()
			mask := boolArray(mem, tc.mask...)
			defer mask.Release()
			if tc.slice != [2]int64{} {
				r := rec.NewSlice(tc.slice[0], tc.slice[1])
				defer r.Release()
				rec = r
				m := array.NewSlice(mask, tc.slice[0], tc.slice[1]).(*array.Boolean)
				defer m.Release()
				mask = m
			}
			keep := make([]bool, mask.Len())
			n := 0
			for i := range keep {
				keep[i] = mask.IsValid(i) && mask.Value(i)
				if keep[i] {
					n++
				}
			}
			if got := CountTrue(mask); got != n {
				t.Errorf("CountTrue = %d, want %d", got, n)
			}
			got, err := FilterRecord(mem, rec, mask)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			if n == mask.Len() && got != rec {
				t.Errorf("an all-true mask should return the record itself")
			}
			checkFiltered(t, rec, got, keep)
		})
	}
}

func TestFilterRecordRejectsAMaskOfTheWrongLength(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := everyType(mem)
	defer rec.Release()
	mask := boolArray(mem, true, false)
	defer mask.Release()
	if got, err := FilterRecord(mem, rec, mask); err == nil {
		got.Release()
		t.Fatal("FilterRecord accepted a 2-row mask for 10 rows")
	}
}

func TestFilterWithAnEvaluatedPredicate(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := everyType(mem)
	defer rec.Release()
	m, err := Eval(mem, Col("date32").Le("2024-01-06").And(Col("string").Ne("")), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	got, err := FilterRecord(mem, rec, m.(*array.Boolean))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	checkFiltered(t, rec, got, []bool{true, false, true, false, false, true, false, false, false, false})
}

func TestHashFollowsTheDocumentedRecipe(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := sample(mem)
	defer rec.Release()
	le := binary.LittleEndian
	i64 := func(v int64) []byte { return le.AppendUint64([]byte{1}, uint64(v)) }
	str := func(s string) []byte { return append(le.AppendUint32([]byte{1}, uint32(len(s))), s...) }
	h := func(parts ...[]byte) string {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return LiteralAt(mustArray(mem, int64(xxhash.Sum64(b))), 0).String()
	}
	got, err := Eval(mem, Hash(Col("i64"), Col("s")), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	want := []any{h(i64(1), str("Apple")), h(i64(2), str("banana")), h([]byte{0}, []byte{0}), h(i64(-4), str("Cherry pie")), h(i64(10), str("ünïcode"))}
	if r := render(got); r[0] != want[0] || r[1] != want[1] || r[2] != want[2] || r[3] != want[3] || r[4] != want[4] {
		t.Errorf("hash\n got %q\nwant %q", r, want)
	}
	// int32 and int64 keys hash alike; so do float -0 and +0.
	a, _ := Eval(mem, Hash(Col("i32")), rec)
	defer a.Release()
	b, _ := Eval(mem, Hash(cast(Col("i32"), arrow.PrimitiveTypes.Int64)), rec)
	defer b.Release()
	if !array.Equal(a, b) {
		t.Errorf("int32 and int64 hashes differ: %v vs %v", a, b)
	}
	z, _ := Eval(mem, Hash(Lit(0.0)).Eq(Hash(Lit(0.0).Neg())), rec)
	defer z.Release()
	if render(z)[0] != "true" {
		t.Errorf("hash(-0.0) != hash(0.0)")
	}
}

func mustArray(mem memory.Allocator, v int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.Append(v)
	return b.NewArray()
}
