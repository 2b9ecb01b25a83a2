package expr_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	. "github.com/sluicedata/sluice/dataset/expr"
)

var N any // a null in a want list

type evalCase struct {
	name string
	e    *Expr
	want []any
}

func s(v ...string) []any {
	out := make([]any, len(v))
	for i, x := range v {
		if x != "N" {
			out[i] = x
		}
	}
	return out
}

func cast(e *Expr, t arrow.DataType) *Expr { return e.Cast(Type{t}) }

var evalCases = []evalCase{
	// arithmetic
	{"adding int64 and int32 widens to int64 and propagates nulls", Col("i64").Add(Col("i32")), s("11", "2", "N", "N", "15")},
	{"integer division truncates and a zero divisor gives null", Col("i64").Div(Col("i32")), s("0", "N", "N", "N", "2")},
	{"dividing by a literal zero is all null", Col("i64").Div(0), s("N", "N", "N", "N", "N")},
	{"modulo by zero is null", Col("i64").Mod(Col("i32")), s("1", "N", "N", "N", "0")},
	{"a negative dividend keeps its sign in modulo", Lit(-7).Mod(3), s("-1", "-1", "-1", "-1", "-1")},
	{"int times (1 - float) is float64", Col("i64").Mul(Lit(1).Sub(Col("f64"))), s("0.5", "-1.0", "N", "4.0", "20.0")},
	{"float division by zero is null", Col("f64").Div(Col("i32")), s("0.05", "N", "N", "N", "-0.2")},
	{"float modulo", Col("f64").Mod(1), s("0.5", "0.5", "N", "0.0", "-0.0")},
	{"int8 plus uint8 is computed in int64", Col("i8").Add(Col("u8")), s("2", "0", "6", "N", "N")},
	{"uint64 minus int64 is computed in int64", Col("u64").Sub(Col("i64")), s("0", "0", "N", "N", "-3")},
	{"int64 overflow wraps", Lit(int64(math.MaxInt64)).Add(Col("i64")), s("-9223372036854775808", "-9223372036854775807", "N", "9223372036854775803", "-9223372036854775799")},
	{"float32 plus float32 stays float32", Col("f32").Add(Col("f32")), s("1.0", "N", "6.0", "4.0", "-2.0")},
	{"negation", Col("i64").Neg(), s("-1", "-2", "N", "4", "-10")},
	{"negating a decimal", Col("d").Neg(), s("-12.34", "1.00", "N", "-0.05", "-100.00")},
	{"decimal plus int stays decimal", Col("d").Add(1), s("13.34", "0.00", "N", "1.05", "101.00")},
	{"decimal times decimal adds the scales", Col("d").Mul(Col("d")), s("152.2756", "1.0000", "N", "0.0025", "10000.0000")},
	{"decimal minus a decimal of another scale rescales", Col("d").Sub(TypedLit(&arrow.Decimal128Type{Precision: 5, Scale: 3}, dec("1.5", 5, 3))), s("10.840", "-2.500", "N", "-1.450", "98.500")},
	{"decimal division is float64", Col("d").Div(2), s("6.17", "-0.5", "N", "0.025", "50.0")},
	{"null literal arithmetic is null", Col("i64").Add(nil), s("N", "N", "N", "N", "N")},
	// comparisons
	{"int64 less than int32", Col("i64").Lt(Col("i32")), s("true", "false", "N", "N", "false")},
	{"column equals literal", Col("i64").Eq(2), s("false", "true", "N", "false", "false")},
	{"literal on the left is flipped", Lit(2).Lt(Col("i64")), s("false", "false", "N", "false", "true")},
	{"not equal", Col("i64").Ne(2), s("true", "false", "N", "true", "true")},
	{"float greater or equal", Col("f64").Ge(1.5), s("false", "true", "N", "true", "false")},
	{"int compared with float", Col("i64").Gt(Col("f64")), s("true", "true", "N", "false", "true")},
	{"uint64 compared with a negative literal", Col("u64").Gt(-1), s("true", "true", "true", "N", "true")},
	{"string equality", Col("s").Eq("banana"), s("false", "true", "N", "false", "false")},
	{"string ordering is bytewise", Col("s").Lt("b"), s("true", "false", "N", "true", "false")},
	{"large string equals string", Col("ls").Eq(Col("s")), s("true", "N", "N", "true", "true")},
	{"string greater than column", Col("s").Ge(Col("ls")), s("true", "N", "N", "true", "true")},
	{"bool equality", Col("b").Eq(true), s("true", "false", "N", "true", "false")},
	{"bool ordering puts false first", Col("b").Gt(false), s("true", "false", "N", "true", "false")},
	{"binary equality", Col("bin").Eq([]byte{1, 2}), s("true", "false", "N", "false", "true")},
	{"decimal compared with float", Col("d").Gt(1.5), s("true", "false", "N", "false", "true")},
	{"decimal compared with int", Col("d").Le(0), s("false", "true", "N", "false", "false")},
	{"date compared with a string literal", Col("dt").Lt("2024-02-01"), s("true", "false", "N", "true", "true")},
	{"string literal on the left of a date", Lit("2024-02-29").Eq(Col("dt")), s("false", "true", "N", "false", "false")},
	{"date compared with a timestamp", Col("dt").Le(Col("ts")), s("true", "true", "N", "true", "true")},
	{"timestamps of different units and zones compare as instants", Col("ts").Gt(Col("tsz")), s("true", "false", "N", "false", "false")},
	{"timestamp equals a string literal", Col("ts").Eq("2024-03-10 06:30:00"), s("false", "true", "N", "false", "false")},
	{"zoned timestamp literal without offset is read in the zone", Col("tsz").Eq("2024-03-10 01:30:00"), s("false", "true", "N", "false", "false")},
	{"comparing with null is null", Col("i64").Eq(nil), s("N", "N", "N", "N", "N")},
	// between, in, null tests, not
	{"between is inclusive", Col("i64").Between(1, 2), s("true", "true", "N", "false", "false")},
	{"between with a null bound is null unless the other bound fails", Col("i64").Between(nil, 5), s("N", "N", "N", "N", "false")},
	{"in matches any value", Col("i64").In(1, 10), s("true", "false", "N", "false", "true")},
	{"in with a null value is null when nothing matches", Col("i64").In(1, nil), s("true", "N", "N", "N", "N")},
	{"in over strings", Col("s").In("Apple", "x"), s("true", "false", "N", "false", "false")},
	{"is null", Col("i64").IsNull(), s("false", "false", "true", "false", "false")},
	{"is not null", Col("s").IsNotNull(), s("true", "true", "false", "true", "true")},
	{"null literal is null", Lit(nil).IsNull(), s("true", "true", "true", "true", "true")},
	{"not", Col("b").Not(), s("false", "true", "N", "false", "true")},
	{"not null is null", Not(Lit(nil)), s("N", "N", "N", "N", "N")},
	// case, coalesce
	{"case picks the first true branch", When(Col("i64").Gt(1), "big").When(Col("i64").IsNull(), "none").Else("small"), s("'small'", "'big'", "'none'", "'small'", "'big'")},
	{"case without else is null when nothing matches", When(Col("b"), Col("i64")).End(), s("1", "N", "N", "-4", "N")},
	{"case null branch adapts to the other branch", When(Col("b"), nil).Else(Col("f64")), s("N", "1.5", "N", "N", "-1.0")},
	{"case mixes int and float as float64", When(Col("b"), Col("i64")).Else(Col("f64")), s("1.0", "1.5", "N", "-4.0", "-1.0")},
	{"case over decimals", When(Col("b"), Col("d")).Else(Lit(0)), s("12.34", "0.00", "0.00", "0.05", "0.00")},
	{"case over dates", When(Col("b"), Col("dt")).End(), s("DATE '2024-01-31'", "N", "N", "DATE '1969-12-31'", "N")},
	{"case over bools", When(Col("i64").Lt(0), Col("b")).Else(false), s("false", "false", "false", "true", "false")},
	{"coalesce takes the first non-null", Coalesce(Col("i64"), Col("i32"), Lit(0)), s("1", "2", "3", "-4", "10")},
	{"coalesce of string and large string", Coalesce(Col("s"), Col("ls"), Lit("none")), s("'Apple'", "'banana'", "'x'", "'Cherry pie'", "'ünïcode'")},
	{"coalesce of nulls is null", Coalesce(Lit(nil), Col("i32")), s("10", "0", "3", "N", "5")},
	// casts
	{"int to string", cast(Col("i64"), arrow.BinaryTypes.String), s("'1'", "'2'", "N", "'-4'", "'10'")},
	{"float to int32 truncates", cast(Col("f64"), arrow.PrimitiveTypes.Int32), s("0", "1", "N", "2", "-1")},
	{"string to int64 trims spaces", cast(Col("snum"), arrow.PrimitiveTypes.Int64), s("12", "-3", "N", "7", "0")},
	{"string to int8", cast(Col("snum"), arrow.PrimitiveTypes.Int8), s("12", "-3", "N", "7", "0")},
	{"string to float", cast(Col("snum"), arrow.PrimitiveTypes.Float64), s("12.0", "-3.0", "N", "7.0", "0.0")},
	{"string to decimal", cast(Col("snum"), dec10), s("12.00", "-3.00", "N", "7.00", "0.00")},
	{"string to date", cast(Col("sdate"), arrow.FixedWidthTypes.Date32), s("DATE '2024-01-31'", "DATE '2024-02-29'", "N", "DATE '1969-12-31'", "DATE '2000-03-15'")},
	{"string to timestamp", cast(Lit("2024-01-31 12:00:00.25"), tsUS), s("TIMESTAMP '2024-01-31 12:00:00.25'", "TIMESTAMP '2024-01-31 12:00:00.25'", "TIMESTAMP '2024-01-31 12:00:00.25'", "TIMESTAMP '2024-01-31 12:00:00.25'", "TIMESTAMP '2024-01-31 12:00:00.25'")},
	{"RFC 3339 string to zoned timestamp", cast(Lit("2024-07-04T16:00:00Z"), tsNY), s("TIMESTAMP '2024-07-04 12:00:00 America/New_York'", "TIMESTAMP '2024-07-04 12:00:00 America/New_York'", "TIMESTAMP '2024-07-04 12:00:00 America/New_York'", "TIMESTAMP '2024-07-04 12:00:00 America/New_York'", "TIMESTAMP '2024-07-04 12:00:00 America/New_York'")},
	{"string to bool", cast(Lit("TRUE"), arrow.FixedWidthTypes.Boolean), s("true", "true", "true", "true", "true")},
	{"timestamp to date", cast(Col("ts"), arrow.FixedWidthTypes.Date32), s("DATE '2024-01-31'", "DATE '2024-03-10'", "N", "DATE '1969-12-31'", "DATE '2000-03-15'")},
	{"zoned timestamp to date uses the zone's calendar", cast(Col("tsz"), arrow.FixedWidthTypes.Date32), s("DATE '2023-12-31'", "DATE '2024-03-10'", "N", "DATE '2024-11-03'", "DATE '2024-07-04'")},
	{"date to timestamp is midnight", cast(Col("dt"), &arrow.TimestampType{Unit: arrow.Second}), s("TIMESTAMP '2024-01-31 00:00:00'", "TIMESTAMP '2024-02-29 00:00:00'", "N", "TIMESTAMP '1969-12-31 00:00:00'", "TIMESTAMP '2000-03-15 00:00:00'")},
	{"date to zoned timestamp is midnight in the zone", cast(Col("dt"), tsNY), s("TIMESTAMP '2024-01-31 00:00:00 America/New_York'", "TIMESTAMP '2024-02-29 00:00:00 America/New_York'", "N", "TIMESTAMP '1969-12-31 00:00:00 America/New_York'", "TIMESTAMP '2000-03-15 00:00:00 America/New_York'")},
	{"timestamp to a coarser unit floors", cast(Col("ts"), &arrow.TimestampType{Unit: arrow.Second}), s("TIMESTAMP '2024-01-31 23:59:59'", "TIMESTAMP '2024-03-10 06:30:00'", "N", "TIMESTAMP '1969-12-31 23:00:00'", "TIMESTAMP '2000-03-15 12:00:00'")},
	{"timestamp to a finer unit and another zone", cast(Col("ts"), &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}), s("TIMESTAMP '2024-01-31 23:59:59.5 UTC'", "TIMESTAMP '2024-03-10 06:30:00 UTC'", "N", "TIMESTAMP '1969-12-31 23:00:00 UTC'", "TIMESTAMP '2000-03-15 12:00:00 UTC'")},
	{"timestamp to string", cast(Col("tsz"), arrow.BinaryTypes.String), s("'2023-12-31 22:00:00'", "'2024-03-10 01:30:00'", "N", "'2024-11-03 01:30:00'", "'2024-07-04 12:00:00'")},
	{"date to string", cast(Col("dt"), arrow.BinaryTypes.LargeString), s("'2024-01-31'", "'2024-02-29'", "N", "'1969-12-31'", "'2000-03-15'")},
	{"decimal to int truncates", cast(Col("d"), arrow.PrimitiveTypes.Int64), s("12", "-1", "N", "0", "100")},
	{"decimal to float", cast(Col("d"), arrow.PrimitiveTypes.Float64), s("12.34", "-1.0", "N", "0.05", "100.0")},
	{"decimal rescale rounds half up", cast(Col("d"), &arrow.Decimal128Type{Precision: 5, Scale: 1}), s("12.3", "-1.0", "N", "0.1", "100.0")},
	{"decimal to string", cast(Col("d"), arrow.BinaryTypes.String), s("'12.34'", "'-1.00'", "N", "'0.05'", "'100.00'")},
	{"int to decimal", cast(Col("i32"), &arrow.Decimal128Type{Precision: 4, Scale: 2}), s("10.00", "0.00", "3.00", "N", "5.00")},
	{"float to decimal", cast(Col("f64"), &arrow.Decimal128Type{Precision: 6, Scale: 3}), s("0.500", "1.500", "N", "2.000", "-1.000")},
	{"bool to int", cast(Col("b"), arrow.PrimitiveTypes.Int32), s("1", "0", "N", "1", "0")},
	{"bool to string", cast(Col("b"), arrow.BinaryTypes.String), s("'true'", "'false'", "N", "'true'", "'false'")},
	{"int to bool", cast(Col("i64"), arrow.FixedWidthTypes.Boolean), s("true", "true", "N", "true", "true")},
	{"int narrowing that fits", cast(Col("i32"), arrow.PrimitiveTypes.Int8), s("10", "0", "3", "N", "5")},
	{"uint to float", cast(Col("u8"), arrow.PrimitiveTypes.Float32), s("1.0", "2.0", "3.0", "N", "250.0")},
	{"string to binary", cast(Col("s"), arrow.BinaryTypes.Binary), s("X'4170706c65'", "X'62616e616e61'", "N", "X'43686572727920706965'", "X'c3bc6ec3af636f6465'")},
	{"null to int", cast(Lit(nil), arrow.PrimitiveTypes.Int64), s("N", "N", "N", "N", "N")},
	// strings
	{"lower", Lower(Col("s")), s("'apple'", "'banana'", "N", "'cherry pie'", "'ünïcode'")},
	{"upper handles non-ASCII", Upper(Col("s")), s("'APPLE'", "'BANANA'", "N", "'CHERRY PIE'", "'ÜNÏCODE'")},
	{"upper of a large string", Upper(Col("ls")), s("'APPLE'", "N", "'X'", "'CHERRY PIE'", "'ÜNÏCODE'")},
	{"length counts runes", Length(Col("s")), s("5", "6", "N", "10", "7")},
	{"substr is 1-based in runes", Substr(Col("s"), 2, 3), s("'ppl'", "'ana'", "N", "'her'", "'nïc'")},
	{"substr with a negative start counts from the end", Substr(Col("s"), -3, -1), s("'ple'", "'ana'", "N", "'pie'", "'ode'")},
	{"substr start 0 acts as 1", Substr(Col("s"), 0, 2), s("'Ap'", "'ba'", "N", "'Ch'", "'ün'")},
	{"substr before the start is empty", Substr(Col("s"), -10, 3), s("''", "''", "N", "'Che'", "''")},
	{"substr past the end is empty", Substr(Col("s"), 20, 3), s("''", "''", "N", "''", "''")},
	{"concat is null if any part is null", Concat(Col("s"), Lit("-"), Col("ls")), s("'Apple-Apple'", "N", "N", "'Cherry pie-Cherry pie'", "'ünïcode-ünïcode'")},
	{"contains", Contains(Col("s"), "an"), s("false", "true", "N", "false", "false")},
	{"starts_with", StartsWith(Col("s"), "Ch"), s("false", "false", "N", "true", "false")},
	{"regexp_extract returns the group", RegexpExtract(Col("s"), `([a-z])([a-z]+)`, 2), s("'ple'", "'anana'", "N", "'erry'", "'ode'")},
	{"regexp_extract without a match is empty", RegexpExtract(Col("s"), `\d+`, 0), s("''", "''", "N", "''", "''")},
	{"split_part picks the 1-based part", SplitPart(Col("s"), "a", 2), s("''", "'n'", "N", "''", "''")},
	{"split_part counts negative parts from the end", SplitPart(Lit("a,b,c"), ",", -1), s("'c'", "'c'", "'c'", "'c'", "'c'")},
	{"split_part out of range is empty", SplitPart(Lit("a,b,c"), ",", 4), s("''", "''", "''", "''", "''")},
	// time
	{"extract year of a date", Extract("year", Col("dt")), s("2024", "2024", "N", "1969", "2000")},
	{"extract month of a date", Extract("month", Col("dt")), s("1", "2", "N", "12", "3")},
	{"extract quarter of a date", Extract("quarter", Col("dt")), s("1", "1", "N", "4", "1")},
	{"extract dayofweek is 1 for Sunday", Extract("dayofweek", Col("dt")), s("4", "5", "N", "4", "4")},
	{"extract dayofyear", Extract("dayofyear", Col("dt")), s("31", "60", "N", "365", "75")},
	{"extract epoch of a date", Extract("epoch", Col("dt")), s("1706659200", "1709164800", "N", "-86400", "953078400")},
	{"extract hour in the column's zone", Extract("hour", Col("tsz")), s("22", "1", "N", "1", "12")},
	{"extract day in the column's zone", Extract("day", Col("tsz")), s("31", "10", "N", "3", "4")},
	{"extract minute", Extract("minute", Col("ts")), s("59", "30", "N", "0", "0")},
	{"extract second", Extract("second", Col("ts")), s("59", "0", "N", "0", "0")},
	{"extract epoch floors", Extract("epoch", Col("ts")), s("1706745599", "1710052200", "N", "-3600", "953121600")},
	{"date_trunc month of a date", DateTrunc("month", Col("dt")), s("DATE '2024-01-01'", "DATE '2024-02-01'", "N", "DATE '1969-12-01'", "DATE '2000-03-01'")},
	{"date_trunc week starts on Monday", DateTrunc("week", Col("dt")), s("DATE '2024-01-29'", "DATE '2024-02-26'", "N", "DATE '1969-12-29'", "DATE '2000-03-13'")},
	{"date_trunc year of a date", DateTrunc("year", Col("dt")), s("DATE '2024-01-01'", "DATE '2024-01-01'", "N", "DATE '1969-01-01'", "DATE '2000-01-01'")},
	{"date_trunc day of a date is the date", DateTrunc("day", Col("dt")), s("DATE '2024-01-31'", "DATE '2024-02-29'", "N", "DATE '1969-12-31'", "DATE '2000-03-15'")},
	{"date_trunc hour of a timestamp", DateTrunc("hour", Col("ts")), s("TIMESTAMP '2024-01-31 23:00:00'", "TIMESTAMP '2024-03-10 06:00:00'", "N", "TIMESTAMP '1969-12-31 23:00:00'", "TIMESTAMP '2000-03-15 12:00:00'")},
	{"date_trunc quarter of a timestamp", DateTrunc("quarter", Col("ts")), s("TIMESTAMP '2024-01-01 00:00:00'", "TIMESTAMP '2024-01-01 00:00:00'", "N", "TIMESTAMP '1969-10-01 00:00:00'", "TIMESTAMP '2000-01-01 00:00:00'")},
	{"date_trunc day of a zoned timestamp uses local midnight", DateTrunc("day", Col("tsz")), s("TIMESTAMP '2023-12-31 00:00:00 America/New_York'", "TIMESTAMP '2024-03-10 00:00:00 America/New_York'", "N", "TIMESTAMP '2024-11-03 00:00:00 America/New_York'", "TIMESTAMP '2024-07-04 00:00:00 America/New_York'")},
	{"add_duration clamps to the month end", AddDuration(Col("dt"), 1, 0), s("DATE '2024-02-29'", "DATE '2024-03-29'", "N", "DATE '1970-01-31'", "DATE '2000-04-15'")},
	{"add_duration adds days to a date", AddDuration(Col("dt"), -12, int64(48*time.Hour)), s("DATE '2023-02-02'", "DATE '2023-03-02'", "N", "DATE '1969-01-02'", "DATE '1999-03-17'")},
	{"add_duration adds nanoseconds in the column's unit", AddDuration(Col("ts"), 0, int64(90*time.Minute)), s("TIMESTAMP '2024-02-01 01:29:59.5'", "TIMESTAMP '2024-03-10 08:00:00'", "N", "TIMESTAMP '1970-01-01 00:30:00'", "TIMESTAMP '2000-03-15 13:30:00'")},
	{"add_duration months keep the local wall time across DST", AddDuration(Col("tsz"), 1, 0), s("TIMESTAMP '2024-01-31 22:00:00 America/New_York'", "TIMESTAMP '2024-04-10 01:30:00 America/New_York'", "N", "TIMESTAMP '2024-12-03 01:30:00 America/New_York'", "TIMESTAMP '2024-08-04 12:00:00 America/New_York'")},
	// alias
	{"alias passes the value through", Col("i64").Add(1).As("x"), s("2", "3", "N", "-3", "11")},
}

func TestEval(t *testing.T) {
	for _, tc := range evalCases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := sample(mem)
			defer rec.Release()
			dt, err := tc.e.DataType(rec.Schema())
			if err != nil {
				t.Fatalf("DataType(%s): %v", tc.e, err)
			}
			got, err := Eval(mem, tc.e, rec)
			if err != nil {
				t.Fatalf("Eval(%s): %v", tc.e, err)
			}
			defer got.Release()
			if !arrow.TypeEqual(got.DataType(), dt) {
				t.Errorf("Eval(%s) type %s, DataType says %s", tc.e, got.DataType(), dt)
			}
			if got.Len() != int(rec.NumRows()) {
				t.Fatalf("Eval(%s) has %d rows, want %d", tc.e, got.Len(), rec.NumRows())
			}
			if r := render(got); !reflect.DeepEqual(r, tc.want) {
				t.Errorf("Eval(%s)\n got %q\nwant %q", tc.e, r, tc.want)
			}
		})
	}
}

func TestThreeValuedLogic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// every combination of true, false, null
	rec := buildRecord(mem,
		column{"a", arrow.FixedWidthTypes.Boolean, []any{true, true, true, false, false, false, nil, nil, nil}},
		column{"b", arrow.FixedWidthTypes.Boolean, []any{true, false, nil, true, false, nil, true, false, nil}},
	)
	defer rec.Release()
	cases := []struct {
		name string
		e    *Expr
		want []any
	}{
		{"AND is false when either side is false", Col("a").And(Col("b")), s("true", "false", "N", "false", "false", "false", "N", "false", "N")},
		{"OR is true when either side is true", Col("a").Or(Col("b")), s("true", "true", "true", "true", "false", "N", "true", "N", "N")},
		{"NOT of null is null", Col("a").Not(), s("false", "false", "false", "true", "true", "true", "N", "N", "N")},
		{"AND with a literal false is false", Col("a").And(Lit(false)), s("false", "false", "false", "false", "false", "false", "false", "false", "false")},
		{"OR with a null literal", Col("a").Or(Lit(nil)), s("true", "true", "true", "N", "N", "N", "N", "N", "N")},
		{"IN over bools with a null in the list", Col("a").In(true, nil), s("true", "true", "true", "N", "N", "N", "N", "N", "N")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Eval(mem, tc.e, rec)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			if r := render(got); !reflect.DeepEqual(r, tc.want) {
				t.Errorf("Eval(%s)\n got %q\nwant %q", tc.e, r, tc.want)
			}
		})
	}
}

func TestSlicedRecordsEvaluateWithTheirOffsets(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	full := sample(mem)
	defer full.Release()
	rec := full.NewSlice(1, 5)
	defer rec.Release()
	for _, tc := range []evalCase{
		{"arithmetic", Col("i64").Add(Col("i32")), s("2", "N", "N", "15")},
		{"kleene and", Col("b").And(Col("i64").Gt(0)), s("false", "N", "false", "false")},
		{"strings", Upper(Col("s")), s("'BANANA'", "N", "'CHERRY PIE'", "'ÜNÏCODE'")},
		{"is null", Col("i64").IsNull(), s("false", "true", "false", "false")},
		{"case", When(Col("b"), Col("s")).Else(Col("ls")), s("N", "'x'", "'Cherry pie'", "'ünïcode'")},
		{"hash of nulls is stable", Hash(Col("i64")).Eq(Hash(Col("i64"))), s("true", "true", "true", "true")},
	} {
		got, err := Eval(mem, tc.e, rec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r := render(got); !reflect.DeepEqual(r, tc.want) {
			t.Errorf("%s: Eval(%s)\n got %q\nwant %q", tc.name, tc.e, r, tc.want)
		}
		got.Release()
	}
}

func TestEvalOfAColumnReturnsTheColumnRetained(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := sample(mem)
	defer rec.Release()
	got, err := Eval(mem, Col("s"), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if got != rec.Column(7) {
		t.Errorf("Eval(col) did not return the record's column")
	}
}

func TestErrors(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "amount", Type: arrow.PrimitiveTypes.Float64}}, nil)
	_, err := Col("amt").Mul(2).DataType(schema)
	if !errors.Is(err, ErrUnknownColumn) || err.Error() != `expr: unknown column "amt" in (amt * 2); available: id, amount` {
		t.Errorf("unknown column error = %v", err)
	}

	cases := []struct {
		name     string
		e        *Expr
		sentinel error
		contains []string
	}{
		{"adding a string and a number is a type error", Col("s").Add(1), ErrType, []string{"(s + 1)", "string", "int64"}},
		{"adding to a timestamp is a type error", Col("ts").Add(1), ErrType, []string{"timestamp[us]"}},
		{"comparing a string column with a date column is a type error", Col("s").Eq(Col("dt")), ErrType, []string{"cannot compare"}},
		{"comparing a string with a number is a type error", Col("s").Lt(Col("i64")), ErrType, nil},
		{"AND of an integer is a type error", Col("i64").And(Col("b")), ErrType, []string{"bool"}},
		{"an unknown column deep in the tree names the whole expression", Col("i64").Add(Col("nope")).Gt(1), ErrUnknownColumn, []string{`"nope"`, "((i64 + nope) > 1)", "available: i64, i32"}},
		{"an unparseable string names the value and row", cast(Col("sbad"), arrow.PrimitiveTypes.Int64), ErrCast, []string{"'x1'", "row 1", "CAST(sbad AS int64)"}},
		{"an overflowing cast names the value and row", cast(Col("u8"), arrow.PrimitiveTypes.Int8), ErrCast, []string{"250", "row 4", "int8"}},
		{"an unparseable date names the value", cast(Col("s"), arrow.FixedWidthTypes.Date32), ErrCast, []string{"'Apple'", "row 0"}},
		{"a decimal that does not fit is an error", cast(Col("d"), &arrow.Decimal128Type{Precision: 3, Scale: 2}), ErrCast, []string{"12.34", "row 0"}},
		{"an int that does not fit a decimal is an error", cast(Col("i64"), &arrow.Decimal128Type{Precision: 2, Scale: 1}), ErrCast, []string{"row 4"}},
		{"a float out of int range is an error", cast(Lit(1e300), arrow.PrimitiveTypes.Int64), ErrCast, nil},
		{"a missing argument is a type error", &Expr{Op: OpAdd, Args: []*Expr{Col("i64")}}, ErrType, []string{"arguments"}},
		{"a nil argument is a type error", &Expr{Op: OpNot, Args: []*Expr{nil}}, ErrType, nil},
		{"an unknown operator is a type error", &Expr{Op: "frobnicate"}, ErrType, []string{"frobnicate"}},
		{"a literal without a value is a type error", &Expr{Op: OpLit}, ErrType, nil},
		{"a literal whose value does not fit its type is a type error", TypedLit(arrow.FixedWidthTypes.Boolean, int64(1)).And(Col("b")), ErrType, []string{"does not fit"}},
		{"a cast without a type is a type error", &Expr{Op: OpCast, Args: []*Expr{Col("i64")}}, ErrType, nil},
		{"substr with a column start is a type error", &Expr{Op: OpSubstr, Args: []*Expr{Col("s"), Col("i64")}}, ErrType, []string{"literal"}},
		{"a bad regexp is a type error", RegexpExtract(Col("s"), "(", 1), ErrType, []string{"regexp"}},
		{"a regexp group out of range is a type error", RegexpExtract(Col("s"), "(a)", 2), ErrType, []string{"group"}},
		{"split_part index 0 is an error", SplitPart(Col("s"), ",", 0), ErrType, nil},
		{"an unknown date_trunc unit is a type error", DateTrunc("fortnight", Col("ts")), ErrType, []string{"fortnight"}},
		{"extract of a string is a type error", Extract("year", Col("s")), ErrType, nil},
		{"lower of an int is a type error", Lower(Col("i64")), ErrType, nil},
		{"case without pairs is a type error", &Expr{Op: OpCase, Args: []*Expr{Col("b")}}, ErrType, nil},
		{"case with a non-bool condition is a type error", When(Col("i64"), 1).End(), ErrType, nil},
		{"case with incompatible branches is a type error", When(Col("b"), 1).Else("x"), ErrType, []string{"common type"}},
		{"an unsupported cast is a type error", cast(Col("dt"), arrow.PrimitiveTypes.Int64), ErrType, nil},
		{"between over incomparable types is a type error", Col("s").Between(1, 2), ErrType, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := sample(mem)
			defer rec.Release()
			bad := buildRecord(mem, column{"sbad", arrow.BinaryTypes.String, []any{"1", "x1", nil, "2", "3"}})
			defer bad.Release()
			cols := append(rec.Columns(), bad.Column(0))
			fields := append(rec.Schema().Fields(), bad.Schema().Field(0))
			all := arrowRecord(arrow.NewSchema(fields, nil), cols, rec.NumRows())
			defer all.Release()
			got, err := Eval(mem, tc.e, all)
			if err == nil {
				got.Release()
				t.Fatalf("Eval(%s) succeeded, want %v", tc.e, tc.sentinel)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("Eval(%s) error %v, want %v", tc.e, err, tc.sentinel)
			}
			for _, c := range tc.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not mention %q", err, c)
				}
			}
		})
	}
}

// everyOp is a tree using every operator, for the JSON round trip.
func everyOp() []*Expr {
	out := []*Expr{}
	for _, c := range evalCases {
		out = append(out, c.e)
	}
	return append(out,
		Hash(Col("i64"), Col("s"), Lit(nil)),
		Lit(uint64(math.MaxUint64)).Add(Lit(int64(math.MinInt64))),
		Lit(int64(math.MaxInt64)).Eq(Lit(int8(-3))).Or(Lit(float32(1.5)).Gt(Lit(math.Inf(-1)))),
		Lit(time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)).Le(Col("ts")),
		TypedLit(&arrow.DurationType{Unit: arrow.Millisecond}, int64(5)).IsNull(),
		TypedLit(arrow.FixedWidthTypes.Date32, int64(19000)).IsNotNull(),
		TypedLit(&arrow.Decimal128Type{Precision: 38, Scale: 10}, dec("-12345678901234567890.0123456789", 38, 10)).IsNull(),
		TypedLit(arrow.PrimitiveTypes.Int64, nil).IsNull(),
		Lit([]byte{0, 1, 255}).Eq(Col("bin")),
		Lit("it's").Eq(Col("s")),
		cast(Col("s"), arrow.BinaryTypes.LargeBinary),
	)
}

func TestJSONRoundTripKeepsTheTree(t *testing.T) {
	for _, e := range everyOp() {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal %s: %v", e, err)
		}
		var back Expr
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v\n%s", e, err, b)
		}
		if !reflect.DeepEqual(e, &back) {
			t.Errorf("round trip of %s differs:\n%s", e, b)
		}
		if e.String() != back.String() {
			t.Errorf("round trip String %q != %q", back.String(), e.String())
		}
	}
}

func TestLiteralJSONKeepsExactIntegers(t *testing.T) {
	for _, v := range []any{int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64), int64(1<<53 + 1), math.Inf(1), "x", true} {
		l := Lit(v).Lit
		b, _ := json.Marshal(l)
		var back Literal
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Value != l.Value {
			t.Errorf("%v came back as %v (%s)", l.Value, back.Value, b)
		}
	}
}

func TestLiteralJSONKeepsNaN(t *testing.T) {
	b, _ := json.Marshal(Lit(math.NaN()).Lit)
	var back Literal
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if f, ok := back.Value.(float64); !ok || !math.IsNaN(f) {
		t.Errorf("NaN came back as %v (%s)", back.Value, b)
	}
}

func TestTypeStringRoundTrips(t *testing.T) {
	types := []arrow.DataType{
		arrow.Null, arrow.FixedWidthTypes.Boolean,
		arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64,
		arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Uint16, arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Uint64,
		arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64,
		arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.Binary, arrow.FixedWidthTypes.Date32,
		&arrow.TimestampType{Unit: arrow.Second}, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"},
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "+05:30"},
		&arrow.Decimal128Type{Precision: 12, Scale: 2}, &arrow.Decimal128Type{Precision: 38, Scale: 0},
		&arrow.DurationType{Unit: arrow.Second}, &arrow.DurationType{Unit: arrow.Nanosecond},
	}
	for _, dt := range types {
		text := TypeString(dt)
		back, err := ParseType(text)
		if err != nil {
			t.Errorf("ParseType(%q): %v", text, err)
			continue
		}
		if !arrow.TypeEqual(dt, back) || TypeString(back) != text {
			t.Errorf("ParseType(%q) = %s", text, back)
		}
	}
	for _, want := range []string{"int64", "timestamp[ms, tz=UTC]", "decimal128(12, 2)", "large_string", "duration[us]"} {
		dt, err := ParseType(want)
		if err != nil || TypeString(dt) != want {
			t.Errorf("ParseType(%q) = %v, %v", want, dt, err)
		}
	}
	for _, bad := range []string{"", "int65", "timestamp[xs]", "decimal128(40, 2)", "decimal128(5)", "list<int64>"} {
		if _, err := ParseType(bad); !errors.Is(err, ErrType) {
			t.Errorf("ParseType(%q) error = %v, want ErrType", bad, err)
		}
	}
}

func TestLiteralString(t *testing.T) {
	for _, tc := range []struct {
		e    *Expr
		want string
	}{
		{Lit("it's"), "'it''s'"},
		{Lit(12), "12"},
		{Lit(1.5), "1.5"},
		{Lit(2.0), "2.0"},
		{Lit(true), "true"},
		{Lit(nil), "NULL"},
		{Lit(uint8(7)), "7"},
		{Lit([]byte{0x0a, 0xff}), "X'0aff'"},
		{Lit(time.Date(2024, 1, 2, 3, 4, 5, 500000000, time.UTC)), "TIMESTAMP '2024-01-02 03:04:05.5 UTC'"},
		{TypedLit(&arrow.TimestampType{Unit: arrow.Second}, int64(0)), "TIMESTAMP '1970-01-01 00:00:00'"},
		{TypedLit(arrow.FixedWidthTypes.Date32, int64(19724)), "DATE '2024-01-02'"},
		{TypedLit(dec10, dec("12.34", 10, 2)), "12.34"},
		{TypedLit(arrow.PrimitiveTypes.Int32, nil), "NULL"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
