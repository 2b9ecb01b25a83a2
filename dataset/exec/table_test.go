package exec

import (
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Expected text written from the cells by hand (padding by a script), not by
// running FormatTable.
const tableEveryTypeWant = `+----+-------------+--------------------+-----+-----+--------------------+----+-----+----------+--------------------------+-------------------+-----+
|  i8|          i64|                 u64|  f32|  f64|s                   |bin |b    |d32       |ts                        |tsz                |  dec|
+----+-------------+--------------------+-----+-----+--------------------+----+-----+----------+--------------------------+-------------------+-----+
|  -5|1234567890123|18446744073709551615|  1.5|  0.1|hello               |01ab|true |2024-02-29|2024-02-29 13:45:06.5     |1970-01-01 05:30:00|12.30|
|null|         null|                null| null| null|null                |null|null |null      |null                      |null               | null|
| 127|           -1|                   0|-0.25|1e+21|a string that is ...|    |false|1969-12-31|1969-12-31 23:59:59.999999|2001-09-09 07:16:40|-0.05|
+----+-------------+--------------------+-----+-----+--------------------+----+-----+----------+--------------------------+-------------------+-----+
only showing top 3 rows
`

func TestFormatTableEveryTypeWithNulls(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "d32", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "tsz", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "+05:30"}, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Int8Builder).AppendValues([]int8{-5, 0, 127, 1}, []bool{true, false, true, true})
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{1234567890123, 0, -1, 1}, []bool{true, false, true, true})
	b.Field(2).(*array.Uint64Builder).AppendValues([]uint64{math.MaxUint64, 0, 0, 1}, []bool{true, false, true, true})
	b.Field(3).(*array.Float32Builder).AppendValues([]float32{1.5, 0, -0.25, 1}, []bool{true, false, true, true})
	b.Field(4).(*array.Float64Builder).AppendValues([]float64{0.1, 0, 1e21, 1}, []bool{true, false, true, true})
	b.Field(5).(*array.StringBuilder).AppendValues([]string{"hello", "", "a string that is longer than twenty chars", "x"}, []bool{true, false, true, true})
	b.Field(6).(*array.BinaryBuilder).AppendValues([][]byte{{0x01, 0xab}, nil, {}, {1}}, []bool{true, false, true, true})
	b.Field(7).(*array.BooleanBuilder).AppendValues([]bool{true, false, false, true}, []bool{true, false, true, true})
	b.Field(8).(*array.Date32Builder).AppendValues([]arrow.Date32{19782, 0, -1, 1}, []bool{true, false, true, true})
	b.Field(9).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1709214306500000, 0, -1, 1}, []bool{true, false, true, true})
	b.Field(10).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{0, 0, 1e9, 1}, []bool{true, false, true, true})
	b.Field(11).(*array.Decimal128Builder).AppendValues([]decimal128.Num{decimal128.FromI64(1230), {}, decimal128.FromI64(-5), decimal128.FromI64(1)}, []bool{true, false, true, true})
	rec := b.NewRecord()
	defer rec.Release()
	// Cut in two records so the row cap spans a record boundary.
	r1, r2 := rec.NewSlice(0, 2), rec.NewSlice(2, 4)
	defer r1.Release()
	defer r2.Release()
	var out strings.Builder
	if err := FormatTable(&out, schema, []arrow.Record{r1, r2}, 3); err != nil {
		t.Fatal(err)
	}
	if out.String() != tableEveryTypeWant {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), tableEveryTypeWant)
	}
}

func TestFormatTableOptions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"héllo wörld", "ab"}, nil)
	rec := b.NewRecord()
	defer rec.Release()
	for _, tc := range []struct {
		name string
		opts TableOptions
		want string
	}{
		{"no cut, counts runes not bytes", TableOptions{}, "+-----------+\n|name       |\n+-----------+\n|héllo wörld|\n|ab         |\n+-----------+\n"},
		{"truncate to 8", TableOptions{Truncate: 8}, "+--------+\n|name    |\n+--------+\n|héllo...|\n|ab      |\n+--------+\n"},
		{"truncate below 4 cuts without dots", TableOptions{Truncate: 3}, "+---+\n|nam|\n+---+\n|hél|\n|ab |\n+---+\n"},
		{"one row", TableOptions{MaxRows: 1}, "+-----------+\n|name       |\n+-----------+\n|héllo wörld|\n+-----------+\nonly showing top 1 row\n"},
		{"max rows above count", TableOptions{MaxRows: 5, Truncate: 20}, "+-----------+\n|name       |\n+-----------+\n|héllo wörld|\n|ab         |\n+-----------+\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := FormatTableOpts(&out, schema, []arrow.Record{rec}, tc.opts); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
	var out strings.Builder
	if err := FormatTable(&out, schema, nil, 20); err != nil {
		t.Fatal(err)
	}
	if want := "+----+\n|name|\n+----+\n+----+\n"; out.String() != want {
		t.Fatalf("empty table:\n%s", out.String())
	}
}

func TestFormatValue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fb := array.NewFloat64Builder(mem)
	defer fb.Release()
	floats := []float64{1e-5, 1e-4, 100, 123456789.125, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1.0 / 3, 2.5e-300}
	fb.AppendValues(floats, nil)
	fa := fb.NewArray()
	defer fa.Release()
	wantF := []string{"1e-05", "0.0001", "100", "123456789.125", "NaN", "Infinity", "-Infinity", "-0", "0.3333333333333333", "2.5e-300"}
	for i, w := range wantF {
		if g := FormatValue(fa, i); g != w {
			t.Errorf("float %v: %q, want %q", floats[i], g, w)
		}
	}

	for _, tc := range []struct {
		scale int32
		v     int64
		want  string
	}{{2, 1230, "12.30"}, {2, -5, "-0.05"}, {0, -42, "-42"}, {3, 7, "0.007"}, {1, 0, "0.0"}, {4, -123456789, "-12345.6789"}} {
		db := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 20, Scale: tc.scale})
		db.Append(decimal128.FromI64(tc.v))
		da := db.NewArray()
		if g := FormatValue(da, 0); g != tc.want {
			t.Errorf("decimal %d scale %d: %q, want %q", tc.v, tc.scale, g, tc.want)
		}
		da.Release()
		db.Release()
	}

	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "-08:00"})
	defer tb.Release()
	tb.Append(1_000_000_007)
	ta := tb.NewArray()
	defer ta.Release()
	if g, w := FormatValue(ta, 0), "1969-12-31 16:00:01.000000007"; g != w {
		t.Errorf("timestamp: %q, want %q", g, w)
	}
}
