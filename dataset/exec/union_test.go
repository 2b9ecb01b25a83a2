package exec

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// recordForUnionTest builds a one-row-per-value record with an int64 column
// "a" and a string column "b" in the order given by names.
func recordForUnionTest(mem memory.Allocator, names []string, as []int64, bs []string) (*arrow.Schema, arrow.Record) {
	var fields []arrow.Field
	var cols []arrow.Array
	for _, n := range names {
		switch n {
		case "a":
			b := array.NewInt64Builder(mem)
			b.AppendValues(as, nil)
			cols = append(cols, b.NewArray())
			b.Release()
			fields = append(fields, arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64})
		case "b":
			b := array.NewStringBuilder(mem)
			b.AppendValues(bs, nil)
			cols = append(cols, b.NewArray())
			b.Release()
			fields = append(fields, arrow.Field{Name: "b", Type: arrow.BinaryTypes.String})
		}
	}
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecord(schema, cols, int64(len(as)))
	for _, c := range cols {
		c.Release()
	}
	return schema, rec
}

func TestUnionMatchesColumnsByName(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s1, r1 := recordForUnionTest(mem, []string{"a", "b"}, []int64{1, 2}, []string{"x", "y"})
	s2, r2 := recordForUnionTest(mem, []string{"b", "a"}, []int64{3}, []string{"z"})
	s3, r3 := recordForUnionTest(mem, []string{"b", "a"}, nil, nil) // empty: skipped
	_, r4 := recordForUnionTest(mem, []string{"b", "a"}, []int64{4}, []string{"w"})
	r2.Retain() // kept past the union's Close to check for copies
	defer r2.Release()
	in1 := newRecordsOpForSortTest(s1, r1)
	in2 := newRecordsOpForSortTest(s2, r2)
	in3 := newRecordsOpForSortTest(s3, r3, r4)
	op, err := NewUnion(mem, s1, in1, in2, in3)
	if err != nil {
		t.Fatal(err)
	}
	out := drainForSortTest(t, op)
	defer releaseAllForSortTest(out)
	var b strings.Builder
	if err := FormatTable(&b, s1, out, 0); err != nil {
		t.Fatal(err)
	}
	want := `+---+---+
|  a|b  |
+---+---+
|  1|x  |
|  2|y  |
|  3|z  |
|  4|w  |
+---+---+
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	for _, r := range out {
		if !r.Schema().Equal(s1) {
			t.Fatalf("schema %s", r.Schema())
		}
	}
	// The union reuses the input's arrays: no copy.
	if out[1].Column(0) != r2.Column(1) {
		t.Fatal("union copied column data")
	}
	for i, in := range []*recordsOpForSortTest{in1, in2, in3} {
		if in.closed == 0 {
			t.Fatalf("input %d not closed", i)
		}
	}
}

func TestUnionRejectsMismatchedInputs(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	want := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int64},
		{Name: "b", Type: arrow.BinaryTypes.String},
	}, nil)
	for _, tc := range []struct {
		name   string
		fields []arrow.Field
		errHas []string
	}{
		{"missing column", []arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}},
			[]string{"input 1", `missing column "b"`, "utf8"}},
		{"different type", []arrow.Field{{Name: "b", Type: arrow.BinaryTypes.String}, {Name: "a", Type: arrow.PrimitiveTypes.Int32}},
			[]string{"input 1", `column "a"`, "int32", "int64"}},
		{"extra column", []arrow.Field{{Name: "b", Type: arrow.BinaryTypes.String}, {Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "c", Type: arrow.PrimitiveTypes.Int64}},
			[]string{"input 1", `extra column "c"`}},
		{"duplicate column", []arrow.Field{{Name: "b", Type: arrow.BinaryTypes.String}, {Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "a", Type: arrow.PrimitiveTypes.Int64}},
			[]string{"input 1", `ambiguous column "a"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := newRecordsOpForSortTest(want)
			bad := newRecordsOpForSortTest(arrow.NewSchema(tc.fields, nil))
			_, err := NewUnion(mem, want, good, bad)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			t.Log(err)
		})
	}
}
