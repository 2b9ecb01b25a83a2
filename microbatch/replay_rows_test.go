package microbatch

import (
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestCompareRowsIsAMultisetComparisonByValue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	// The sink's copy: other column order, int32 for n, microseconds for ts.
	sinkSchema := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	type row struct {
		k    *string
		n    *int64
		f    *float64
		tsMs *int64
	}
	str := func(s string) *string { return &s }
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	build := func(sch *arrow.Schema, rows []row) arrow.Record {
		b := array.NewRecordBuilder(mem, sch)
		defer b.Release()
		for _, r := range rows {
			for i, fld := range sch.Fields() {
				fb := b.Field(i)
				switch fld.Name {
				case "k":
					if r.k == nil {
						fb.AppendNull()
					} else {
						fb.(*array.StringBuilder).Append(*r.k)
					}
				case "n":
					switch {
					case r.n == nil:
						fb.AppendNull()
					case fld.Type.ID() == arrow.INT32:
						fb.(*array.Int32Builder).Append(int32(*r.n))
					default:
						fb.(*array.Int64Builder).Append(*r.n)
					}
				case "f":
					if r.f == nil {
						fb.AppendNull()
					} else {
						fb.(*array.Float64Builder).Append(*r.f)
					}
				case "ts":
					switch {
					case r.tsMs == nil:
						fb.AppendNull()
					case fld.Type.(*arrow.TimestampType).Unit == arrow.Microsecond:
						fb.(*array.TimestampBuilder).Append(arrow.Timestamp(*r.tsMs * 1000))
					default:
						fb.(*array.TimestampBuilder).Append(arrow.Timestamp(*r.tsMs))
					}
				}
			}
		}
		return b.NewRecord()
	}
	base := []row{
		{str("a"), i64(1), f64(math.NaN()), i64(1000)},
		{str("a"), i64(1), f64(math.NaN()), i64(1000)}, // twice
		{str("null"), nil, f64(math.Copysign(0, -1)), nil},
		{nil, i64(2), f64(2.5), i64(2000)},
	}
	cases := []struct {
		name      string
		sink      []row
		identical bool
		want      string
	}{
		{name: "the same rows in another order, types and column order are identical",
			sink: []row{base[3], {str("a"), i64(1), f64(math.Float64frombits(0x7ff8000000000001)), i64(1000)}, {str("null"), nil, f64(0), nil}, base[0]}, identical: true},
		{name: "a row once instead of twice differs",
			sink: []row{base[0], base[2], base[3]},
			want: `row {k="a", n=1, f=NaN, ts=1970-01-01T00:00:01Z} is 2 times in the replay and once in the sink`},
		{name: "the string null is not a null",
			sink: []row{base[0], base[1], {nil, nil, f64(0), nil}, base[3]},
			want: `row {k=null, n=null, f=0, ts=null} is absent in the replay and once in the sink`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := build(schema, base), build(sinkSchema, tc.sink)
			defer a.Release()
			defer b.Release()
			r := &ReplayReport{}
			if err := compareRows(r, schema, []arrow.Record{a}, []arrow.Record{b}); err != nil {
				t.Fatal(err)
			}
			if r.Identical != tc.identical || !strings.Contains(r.FirstOnlyInReplay+"\n"+r.FirstOnlyInSink, tc.want) || r.ReplayedRows != 4 {
				t.Fatalf("report %+v, want identical=%v and %q", r, tc.identical, tc.want)
			}
		})
	}
}
