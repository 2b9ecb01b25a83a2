package kafka

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/float16"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// column is one typed column of the rendering table: two rows, the second
// null unless the type says otherwise, and how row 0 renders.
type column struct {
	name  string
	typ   arrow.DataType
	input string // JSON for array.FromJSON, or "" when build is set
	build func(mem memory.Allocator) arrow.Array
	want  string // row 0 as JSON
}

func renderColumns() []column {
	return []column{
		{"null", arrow.Null, `[null, null]`, nil, `null`},
		{"bool", arrow.FixedWidthTypes.Boolean, `[true, null]`, nil, `true`},
		{"int8", arrow.PrimitiveTypes.Int8, `[-8, null]`, nil, `-8`},
		{"int16", arrow.PrimitiveTypes.Int16, `[-16, null]`, nil, `-16`},
		{"int32", arrow.PrimitiveTypes.Int32, `[-32, null]`, nil, `-32`},
		{"int64", arrow.PrimitiveTypes.Int64, "", func(mem memory.Allocator) arrow.Array {
			b := array.NewInt64Builder(mem) // FromJSON goes through float64
			defer b.Release()
			b.Append(-9007199254740993)
			b.AppendNull()
			return b.NewArray()
		}, `-9007199254740993`},
		{"uint8", arrow.PrimitiveTypes.Uint8, `[8, null]`, nil, `8`},
		{"uint16", arrow.PrimitiveTypes.Uint16, `[16, null]`, nil, `16`},
		{"uint32", arrow.PrimitiveTypes.Uint32, `[32, null]`, nil, `32`},
		{"uint64", arrow.PrimitiveTypes.Uint64, "", func(mem memory.Allocator) arrow.Array {
			b := array.NewUint64Builder(mem)
			defer b.Release()
			b.Append(18446744073709551615)
			b.AppendNull()
			return b.NewArray()
		}, `18446744073709551615`},
		{"float16", arrow.FixedWidthTypes.Float16, "", func(mem memory.Allocator) arrow.Array {
			b := array.NewFloat16Builder(mem)
			defer b.Release()
			b.Append(float16.New(1.5))
			b.AppendNull()
			return b.NewArray()
		}, `1.5`},
		{"float32", arrow.PrimitiveTypes.Float32, `[0.1, null]`, nil, `0.1`},
		{"float64", arrow.PrimitiveTypes.Float64, `[1e300, null]`, nil, `1e+300`},
		{"float64_nan", arrow.PrimitiveTypes.Float64, "", func(mem memory.Allocator) arrow.Array {
			b := array.NewFloat64Builder(mem)
			defer b.Release()
			b.AppendValues([]float64{nan(), -2.5}, nil)
			return b.NewArray()
		}, `"NaN"`},
		{"string", arrow.BinaryTypes.String, "", func(mem memory.Allocator) arrow.Array {
			b := array.NewStringBuilder(mem)
			defer b.Release()
			b.Append("a \"quoted\"\n\t\\ é \x01 \xff")
			b.AppendNull()
			return b.NewArray()
		}, `"a \"quoted\"\n\t\\ é \u0001 \ufffd"`},
		{"large_string", arrow.BinaryTypes.LargeString, `["big", null]`, nil, `"big"`},
		{"string_view", arrow.BinaryTypes.StringView, `["a view longer than twelve bytes", null]`, nil, `"a view longer than twelve bytes"`},
		{"binary", arrow.BinaryTypes.Binary, `["AAEC/w==", null]`, nil, `"AAEC/w=="`},
		{"large_binary", arrow.BinaryTypes.LargeBinary, `["aGk=", null]`, nil, `"aGk="`},
		{"fixed_binary", &arrow.FixedSizeBinaryType{ByteWidth: 2}, `["aGk=", null]`, nil, `"aGk="`},
		{"date32", arrow.FixedWidthTypes.Date32, `["2024-02-29", null]`, nil, `"2024-02-29"`},
		{"date64", arrow.FixedWidthTypes.Date64, `["2024-02-29", null]`, nil, `"2024-02-29"`},
		{"ts_s", &arrow.TimestampType{Unit: arrow.Second}, `["2024-02-29T13:14:15", null]`, nil, `"2024-02-29T13:14:15Z"`},
		{"ts_ns_utc", &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, `["2024-02-29T13:14:15.123456789Z", null]`, nil, `"2024-02-29T13:14:15.123456789Z"`},
		{"ts_ms_offset", &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "+02:00"}, `["2024-02-29T13:14:15.5Z", null]`, nil, `"2024-02-29T15:14:15.5+02:00"`},
		{"time32", arrow.FixedWidthTypes.Time32ms, `["13:14:15.25", null]`, nil, `"13:14:15.25"`},
		{"time64", arrow.FixedWidthTypes.Time64ns, `["13:14:15.000000001", null]`, nil, `"13:14:15.000000001"`},
		{"duration", arrow.FixedWidthTypes.Duration_ms, `[3723500, null]`, nil, `"1h2m3.5s"`},
		{"months", arrow.FixedWidthTypes.MonthInterval, `[{"months": 14}, null]`, nil, `{"months":14}`},
		{"day_time", arrow.FixedWidthTypes.DayTimeInterval, `[{"days": 2, "milliseconds": 30}, null]`, nil, `{"days":2,"milliseconds":30}`},
		{"month_day_nano", arrow.FixedWidthTypes.MonthDayNanoInterval, `[{"months": 1, "days": 2, "nanoseconds": 3}, null]`, nil, `{"months":1,"days":2,"nanoseconds":3}`},
		{"decimal128", &arrow.Decimal128Type{Precision: 10, Scale: 2}, `["-12345678.90", null]`, nil, `"-12345678.90"`},
		{"decimal256", &arrow.Decimal256Type{Precision: 40, Scale: 3}, `["123456789012345678901234567890.125", null]`, nil, `"123456789012345678901234567890.125"`},
		{"list", arrow.ListOf(arrow.PrimitiveTypes.Int64), `[[1, null, 3], null]`, nil, `[1,null,3]`},
		{"large_list", arrow.LargeListOf(arrow.BinaryTypes.String), `[["a"], null]`, nil, `["a"]`},
		{"fixed_list", arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int32), `[[1, 2], null]`, nil, `[1,2]`},
		{"struct", arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "b\"", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		), `[{"a": 1, "b\"": ["x", null]}, null]`, nil, `{"a":1,"b\"":["x",null]}`},
		{"map_string", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), `[[{"key": "x", "value": 1}, {"key": "y", "value": null}], null]`, nil, `{"x":1,"y":null}`},
		{"map_int", arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String), `[[{"key": 7, "value": "seven"}], null]`, nil, `[{"key":7,"value":"seven"}]`},
		{"dictionary", &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}, "", func(mem memory.Allocator) arrow.Array {
			b := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
			defer b.Release()
			_ = b.AppendString("red")
			b.AppendNull()
			return b.NewArray()
		}, `"red"`},
		{"run_end", arrow.RunEndEncodedOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String), "", func(mem memory.Allocator) arrow.Array {
			b := array.NewRunEndEncodedBuilder(mem, arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String)
			defer b.Release()
			b.Append(1)
			b.ValueBuilder().(*array.StringBuilder).Append("run")
			b.AppendNull()
			return b.NewArray()
		}, `"run"`},
	}
}

func nan() float64 { var z float64; return z / z }

func TestJSONRendersEveryType(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cols := renderColumns()
	var fields []arrow.Field
	var arrs []arrow.Array
	for _, c := range cols {
		var a arrow.Array
		if c.build != nil {
			a = c.build(mem)
		} else {
			var err error
			a, _, err = array.FromJSON(mem, c.typ, strings.NewReader(c.input))
			if err != nil {
				t.Fatalf("column %s: FromJSON: %v", c.name, err)
			}
		}
		fields = append(fields, arrow.Field{Name: c.name, Type: a.DataType(), Nullable: true})
		arrs = append(arrs, a)
	}
	rec := array.NewRecord(arrow.NewSchema(fields, nil), arrs, 2)
	for _, a := range arrs {
		a.Release()
	}
	defer rec.Release()

	l, err := newLayout(Config{}, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := l.encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	for row, r := range recs {
		if !json.Valid(r.Value) {
			t.Fatalf("row %d is not valid JSON: %s", row, r.Value)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r.Value, &obj); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			want := c.want
			if row == 1 {
				want = "null"
				if c.name == "float64_nan" {
					want = "-2.5"
				}
			}
			if got := string(obj[c.name]); got != want {
				t.Errorf("row %d column %s (%s): got %s, want %s", row, c.name, c.typ, got, want)
			}
		}
	}
	// Keys are the order of the schema.
	if !strings.HasPrefix(string(recs[0].Value), `{"null":null,"bool":true,"int8":-8,`) {
		t.Errorf("row 0 = %s", recs[0].Value)
	}
}

func TestJSONOfSlicedNestedArrays(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	typ := arrow.StructOf(arrow.Field{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true})
	a, _, err := array.FromJSON(mem, typ, strings.NewReader(`[{"l":[1]}, {"l":[2,3]}, {"l":null}, {"l":[4]}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	s := array.NewSlice(a, 1, 4)
	defer s.Release()
	f := appender(s)
	var got []string
	for i := range s.Len() {
		got = append(got, string(f(nil, i)))
	}
	if want := []string{`{"l":[2,3]}`, `{"l":null}`, `{"l":[4]}`}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sliced struct renders %v, want %v", got, want)
	}
}

func TestKeyOfNonStringColumnsIsItsText(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		typ   arrow.DataType
		input string
		want  string
	}{
		{arrow.PrimitiveTypes.Int64, `[42]`, `42`},
		{&arrow.TimestampType{Unit: arrow.Second}, `["2024-01-02T03:04:05"]`, `2024-01-02T03:04:05Z`},
		{arrow.BinaryTypes.String, `["plain"]`, `plain`},
		{arrow.ListOf(arrow.PrimitiveTypes.Int8), `[[1,2]]`, `[1,2]`},
	} {
		a, _, err := array.FromJSON(mem, c.typ, strings.NewReader(c.input))
		if err != nil {
			t.Fatal(err)
		}
		f, err := newRawFunc(a)
		if err != nil {
			t.Fatal(err)
		}
		if got, null := f(nil, 0); string(got) != c.want || null {
			t.Errorf("%s key = %q (null %v), want %q", c.typ, got, null, c.want)
		}
		a.Release()
	}
}

func TestUnsupportedTypeIsNamed(t *testing.T) {
	// Arrow v17 has no other unencodable type a user can build by accident
	// than a dictionary of one; checkJSONType is the gate, so test it.
	err := checkJSONType(arrow.ListOf(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}))
	if err != nil {
		t.Errorf("list<dictionary<string>>: %v", err)
	}
	if err := checkJSONType(fakeType{}); !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), "fake") {
		t.Errorf("checkJSONType(fake) = %v", err)
	}
}

type fakeType struct{ arrow.DataType }

func (fakeType) ID() arrow.Type      { return arrow.Type(200) }
func (fakeType) Name() string        { return "fake" }
func (fakeType) String() string      { return "fake" }
func (fakeType) Fingerprint() string { return "fake" }
