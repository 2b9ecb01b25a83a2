package exec

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestTakeRecordEveryTypeMatchesSourceRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 10))
	d := newSortTestData(mem, rng, 300, 0.2)
	defer d.rec.Release()
	src := d.rec.NewSlice(17, 250) // a non-zero offset in every column
	defer src.Release()
	idx := make([]int, 500)
	for i := range idx {
		idx[i] = rng.IntN(int(src.NumRows()))
	}
	for _, indices := range [][]int{idx, {}, {0}} {
		out, err := TakeRecord(mem, src, indices)
		if err != nil {
			t.Fatal(err)
		}
		if out.NumRows() != int64(len(indices)) {
			t.Fatalf("%d rows, want %d", out.NumRows(), len(indices))
		}
		for c := 0; c < int(src.NumCols()); c++ {
			wantNulls := 0
			for j, i := range indices {
				if g, w := FormatValue(out.Column(c), j), FormatValue(src.Column(c), i); g != w {
					t.Fatalf("column %s row %d: %s, want %s", src.ColumnName(c), j, g, w)
				}
				if src.Column(c).IsNull(i) {
					wantNulls++
				}
			}
			if n := out.Column(c).NullN(); n != wantNulls {
				t.Fatalf("column %s: %d nulls, want %d", src.ColumnName(c), n, wantNulls)
			}
		}
		out.Release()
	}
}

func TestTakeRecordFallsBackForNestedTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	lb := b.Field(0).(*array.ListBuilder)
	sb := b.Field(1).(*array.StructBuilder)
	for i := 0; i < 4; i++ {
		if i == 2 {
			lb.AppendNull()
			sb.AppendNull()
			continue
		}
		lb.Append(true)
		for j := 0; j <= i; j++ {
			lb.ValueBuilder().(*array.Int64Builder).Append(int64(10*i + j))
		}
		sb.Append(true)
		sb.FieldBuilder(0).(*array.StringBuilder).Append(string(rune('a' + i)))
	}
	rec := b.NewRecord()
	defer rec.Release()
	out, err := TakeRecord(mem, rec, []int{3, 2, 0, 3})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	var got []string
	for c := 0; c < 2; c++ {
		for i := 0; i < 4; i++ {
			got = append(got, FormatValue(out.Column(c), i))
		}
	}
	want := []string{"[30,31,32,33]", "null", "[0]", "[30,31,32,33]", `{"x":"d"}`, "null", `{"x":"a"}`, `{"x":"d"}`}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestConcatRecordsKeepsRowsInOrder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(sortTestSeed(t), 11))
	d := newSortTestData(mem, rng, 200, 0.2)
	defer d.rec.Release()
	parts := d.split(rng)
	defer releaseAllForSortTest(parts)
	all, err := ConcatRecords(mem, d.schema, parts)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Release()
	if !array.RecordApproxEqual(all, d.rec, array.WithNaNsEqual(true), array.WithAbsTolerance(0)) {
		t.Fatal("concatenation differs from the source")
	}
	empty, err := ConcatRecords(mem, d.schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Release()
	if empty.NumRows() != 0 || empty.NumCols() != int64(d.schema.NumFields()) {
		t.Fatalf("empty concat: %d rows %d cols", empty.NumRows(), empty.NumCols())
	}
}

// Taking no rows of an empty record works for every column kind (an empty
// array built by a builder may have no data buffer).
func TestTakeRecordOfAnEmptyRecord(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	out, err := TakeRecord(mem, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if out.NumRows() != 0 || out.NumCols() != 3 {
		t.Fatalf("took %d rows, %d columns", out.NumRows(), out.NumCols())
	}
}
