package kafka

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var allTypes = arrow.NewSchema([]arrow.Field{
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 6, Scale: 2}, Nullable: true},
	{Name: "big", Type: &arrow.Decimal128Type{Precision: 38, Scale: 4}, Nullable: true},
}, nil)

// decodeAll decodes each value into one record and renders its rows.
func decodeAll(t *testing.T, values ...string) ([]string, []string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rb := array.NewRecordBuilder(mem, allTypes)
	defer rb.Release()
	d := newJSONDecoder(allTypes)
	d.builders = rb.Fields()
	var errs []string
	for _, v := range values {
		if err := d.decode([]byte(v)); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		d.append()
	}
	rec := rb.NewRecord()
	defer rec.Release()
	var rows []string
	for i := 0; i < int(rec.NumRows()); i++ {
		var cells []string
		for j := range rec.Columns() {
			cells = append(cells, rec.Column(j).ValueStr(i))
		}
		rows = append(rows, strings.Join(cells, "|"))
	}
	return rows, errs
}

func TestDecodeEveryType(t *testing.T) {
	rows, errs := decodeAll(t,
		` { "i64": -9223372036854775808, "i32": 2147483647, "f64": 1.5e3, "s": "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "b": false,
		   "ts": "2026-11-01T01:02:03.000004+01:00", "d": "2026-11-01", "dec": "-1234.5", "big": 12345678901234567890.1234 } `,
		`{"ts": 1000, "d": 3, "dec": 0.01, "unknown": [{"x": "}"}, null, true, -1.5e-3], "s": ""}`,
		`{}`,
		`{"i64":null,"i32":null,"f64":null,"s":null,"b":null,"ts":null,"d":null,"dec":null,"big":null}`,
		`{"i64":1,"i64":2}`,
	)
	want := []string{
		"-9223372036854775808|2147483647|1500|a\"\\/\b\f\n\r\té😀|false|2026-11-01 00:02:03.000004Z|2026-11-01|-1234.5|12345678901234567890.1234",
		"(null)|(null)|(null)||(null)|1970-01-01 00:00:01Z|1970-01-04|0.01|(null)",
		"(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)",
		"(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)",
		"2|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)",
	}
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i := range want {
		if i >= len(rows) || rows[i] != want[i] {
			t.Errorf("row %d:\ngot  %q\nwant %q", i, rows[min(i, len(rows)-1)], want[i])
		}
	}
}

func TestDecodeRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ value, err string }{
		{`[1]`, "not a JSON object"},
		{``, "not a JSON object"},
		{`{"i64":1} x`, "want end of value"},
		{`{"i64":1,}`, "want a string"},
		{`{"i64" 1}`, "want ':'"},
		{`{"i64":1.5}`, `"1.5" is not a int64`},
		{`{"i64":"1"}`, "want an integer"},
		{`{"i64":01}`, "want an integer"},
		{`{"i32":2147483648}`, "is not a int32"},
		{`{"f64":"x"}`, "want a number"},
		{`{"s":1}`, "want a string"},
		{`{"s":"a` + "\x01" + `"}`, "control character"},
		{`{"s":"` + "\xff" + `"}`, "not valid UTF-8"},
		{`{"s":"\x"}`, "escape character"},
		{`{"b":"true"}`, "want true or false"},
		{`{"b":tru}`, "want true"},
		{`{"ts":"yesterday"}`, "not an RFC 3339 time"},
		{`{"ts":1.5}`, "not epoch milliseconds"},
		{`{"d":"2026-13-01"}`, "not a date"},
		{`{"dec":"12345.6"}`, "exceeds the precision"},
		{`{"dec":"1.234"}`, "more than 2 decimal places"},
		{`{"dec":"abc"}`, "not a decimal"},
		{`{"x":[1,}`, "want a value"},
		{`{"x":{"a" 1}}`, "want ':'"},
		{`{"s":"unterminated`, `want '"'`},
		{`{"x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, "nested too deep"},
	} {
		_, errs := decodeAll(t, tc.value)
		if len(errs) != 1 || !strings.Contains(errs[0], tc.err) {
			t.Errorf("%q: errors %q, want one containing %q", tc.value, errs, tc.err)
		}
	}
}

func TestSpreadIsProportionalAndExact(t *testing.T) {
	for _, tc := range []struct {
		lags  []int64
		limit int64
		want  []int64
	}{
		{[]int64{60, 30, 10}, 10, []int64{6, 3, 1}},
		{[]int64{1, 1, 1}, 2, []int64{1, 1, 0}}, // ties go in partition order
		{[]int64{5, 0, 5}, 3, []int64{2, 0, 1}}, // remainders .5 and .5
		{[]int64{100, 1}, 10, []int64{10, 0}},   // 9.9 and .099
		{[]int64{7, 3}, 0, []int64{7, 3}},       // no cap
		{[]int64{7, 3}, 20, []int64{7, 3}},      // cap above the lag
		{[]int64{1 << 60, 1 << 60}, 1 << 61, []int64{1 << 60, 1 << 60}},
		{[]int64{1 << 61, 1 << 60}, 3, []int64{2, 1}}, // no overflow
	} {
		rs := make([]span, len(tc.lags))
		for i, l := range tc.lags {
			rs[i] = span{partition: int32(i), from: 100, to: 100 + l}
		}
		spread(rs, tc.limit)
		for i := range rs {
			if got := rs[i].to - rs[i].from; got != tc.want[i] {
				t.Errorf("lags %v limit %d: partition %d gets %d, want %d", tc.lags, tc.limit, i, got, tc.want[i])
			}
		}
	}
}

func TestOffsetEncodingIsCanonical(t *testing.T) {
	ps := partitions{}
	ps.set("b", 10, 5)
	ps.set("b", 2, 7)
	ps.set("a\"x", 0, 1)
	got := string(encode(offset{T: ps, New: partitions{"b": {10: 0}}}))
	want := `{"t":{"a\"x":{"0":1},"b":{"2":7,"10":5}},"new":{"b":{"10":0}}}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	s := &Source{cfg: Config{Name: "k"}}
	back, err := s.parse([]byte(got))
	if err != nil || string(encode(back)) != want {
		t.Errorf("round trip: %s, %v", encode(back), err)
	}
	if got := string(encode(offset{T: partitions{}})); got != `{"t":{}}` {
		t.Errorf("empty: %s", got)
	}
}
