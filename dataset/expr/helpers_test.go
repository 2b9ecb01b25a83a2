package expr_test

import (
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/dataset/expr"
)

type column struct {
	name string
	dt   arrow.DataType
	vals []any // nil = null
}

func dec(s string, p, sc int32) decimal128.Num {
	n, err := decimal128.FromString(s, p, sc)
	if err != nil {
		panic(err)
	}
	return n
}

func day(s string) int64 {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t.Unix() / 86400
}

func buildArray(mem memory.Allocator, dt arrow.DataType, vals []any) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.BooleanBuilder:
			b.Append(v.(bool))
		case *array.Int8Builder:
			b.Append(int8(v.(int)))
		case *array.Int16Builder:
			b.Append(int16(v.(int)))
		case *array.Int32Builder:
			b.Append(int32(v.(int)))
		case *array.Int64Builder:
			b.Append(int64(v.(int)))
		case *array.Uint8Builder:
			b.Append(uint8(v.(int)))
		case *array.Uint16Builder:
			b.Append(uint16(v.(int)))
		case *array.Uint32Builder:
			b.Append(uint32(v.(int)))
		case *array.Uint64Builder:
			switch x := v.(type) {
			case int:
				b.Append(uint64(x))
			case uint64:
				b.Append(x)
			}
		case *array.Float32Builder:
			b.Append(float32(v.(float64)))
		case *array.Float64Builder:
			b.Append(v.(float64))
		case *array.StringBuilder:
			b.Append(v.(string))
		case *array.LargeStringBuilder:
			b.Append(v.(string))
		case *array.BinaryBuilder:
			b.Append(v.([]byte))
		case *array.Date32Builder:
			b.Append(arrow.Date32(day(v.(string))))
		case *array.TimestampBuilder:
			unit := dt.(*arrow.TimestampType).Unit
			switch x := v.(type) {
			case string:
				t, err := time.Parse(time.RFC3339Nano, x)
				if err != nil {
					panic(err)
				}
				var iv int64
				switch unit {
				case arrow.Second:
					iv = t.Unix()
				case arrow.Millisecond:
					iv = t.UnixMilli()
				case arrow.Microsecond:
					iv = t.UnixMicro()
				default:
					iv = t.UnixNano()
				}
				b.Append(arrow.Timestamp(iv))
			case int:
				b.Append(arrow.Timestamp(x))
			}
		case *array.Decimal128Builder:
			d := dt.(*arrow.Decimal128Type)
			b.Append(dec(v.(string), d.Precision, d.Scale))
		default:
			panic("unsupported builder " + dt.String())
		}
	}
	return b.NewArray()
}

func buildRecord(mem memory.Allocator, cols ...column) arrow.Record {
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.dt, Nullable: true}
		arrs[i] = buildArray(mem, c.dt, c.vals)
	}
	n := int64(0)
	if len(cols) > 0 {
		n = int64(len(cols[0].vals))
	}
	rec := array.NewRecord(arrow.NewSchema(fields, nil), arrs, n)
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// render turns an array into comparable Go values: nil for null, otherwise
// the literal text (ints as "12", strings as "'x'", dates as DATE '...').
func render(a arrow.Array) []any {
	out := make([]any, a.Len())
	for i := range out {
		if a.IsNull(i) {
			continue
		}
		out[i] = expr.LiteralAt(a, i).String()
	}
	return out
}

var (
	tsUS  = &arrow.TimestampType{Unit: arrow.Microsecond}
	tsNY  = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "America/New_York"}
	dec10 = &arrow.Decimal128Type{Precision: 10, Scale: 2}
)

// sample is the record most tests evaluate over: five rows, a null in every
// column.
func sample(mem memory.Allocator) arrow.Record {
	return buildRecord(mem,
		column{"i64", arrow.PrimitiveTypes.Int64, []any{1, 2, nil, -4, 10}},
		column{"i32", arrow.PrimitiveTypes.Int32, []any{10, 0, 3, nil, 5}},
		column{"i8", arrow.PrimitiveTypes.Int8, []any{1, -2, 3, 4, nil}},
		column{"u8", arrow.PrimitiveTypes.Uint8, []any{1, 2, 3, nil, 250}},
		column{"u64", arrow.PrimitiveTypes.Uint64, []any{1, 2, 3, nil, 7}},
		column{"f64", arrow.PrimitiveTypes.Float64, []any{0.5, 1.5, nil, 2.0, -1.0}},
		column{"f32", arrow.PrimitiveTypes.Float32, []any{0.5, nil, 3.0, 2.0, -1.0}},
		column{"s", arrow.BinaryTypes.String, []any{"Apple", "banana", nil, "Cherry pie", "ünïcode"}},
		column{"ls", arrow.BinaryTypes.LargeString, []any{"Apple", nil, "x", "Cherry pie", "ünïcode"}},
		column{"b", arrow.FixedWidthTypes.Boolean, []any{true, false, nil, true, false}},
		column{"d", dec10, []any{"12.34", "-1.00", nil, "0.05", "100.00"}},
		column{"dt", arrow.FixedWidthTypes.Date32, []any{"2024-01-31", "2024-02-29", nil, "1969-12-31", "2000-03-15"}},
		column{"ts", tsUS, []any{"2024-01-31T23:59:59.5Z", "2024-03-10T06:30:00Z", nil, "1969-12-31T23:00:00Z", "2000-03-15T12:00:00Z"}},
		column{"tsz", tsNY, []any{"2024-01-01T03:00:00Z", "2024-03-10T06:30:00Z", nil, "2024-11-03T05:30:00Z", "2024-07-04T16:00:00Z"}},
		column{"bin", arrow.BinaryTypes.Binary, []any{[]byte{1, 2}, []byte{}, nil, []byte{0xff}, []byte{1, 2}}},
		column{"sdate", arrow.BinaryTypes.String, []any{"2024-01-31", " 2024-02-29 ", nil, "1969-12-31", "2000-03-15"}},
		column{"snum", arrow.BinaryTypes.String, []any{"12", "-3", nil, " 7 ", "0"}},
	)
}

func arrowRecord(schema *arrow.Schema, cols []arrow.Array, n int64) arrow.Record {
	return array.NewRecord(schema, cols, n)
}
