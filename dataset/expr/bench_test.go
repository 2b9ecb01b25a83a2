package expr_test

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	. "github.com/sluicedata/sluice/dataset/expr"
)

const benchRows = 1 << 20

// lineitem is a TPC-H-shaped record: quantity int64, discount float64,
// shipdate date32, flag string.
func lineitem(mem memory.Allocator) arrow.Record {
	q := array.NewInt64Builder(mem)
	d := array.NewFloat64Builder(mem)
	sd := array.NewDate32Builder(mem)
	fl := array.NewStringBuilder(mem)
	defer q.Release()
	defer d.Release()
	defer sd.Release()
	defer fl.Release()
	for i := 0; i < benchRows; i++ {
		q.Append(int64(i%50 + 1))
		d.Append(float64(i%11) / 100)
		sd.Append(arrow.Date32(8036 + i%2526)) // 1992-01-02 .. 1998-12-01
		fl.Append([]string{"A", "N", "R"}[i%3])
	}
	cols := []arrow.Array{q.NewArray(), d.NewArray(), sd.NewArray(), fl.NewArray()}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "quantity", Type: arrow.PrimitiveTypes.Int64},
		{Name: "discount", Type: arrow.PrimitiveTypes.Float64},
		{Name: "shipdate", Type: arrow.FixedWidthTypes.Date32},
		{Name: "flag", Type: arrow.BinaryTypes.String},
	}, nil)
	rec := array.NewRecord(schema, cols, benchRows)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func reportPerRow(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRows, "ns/row")
}

func BenchmarkArithmeticIntTimesOneMinusFloat(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := lineitem(mem)
	defer rec.Release()
	e := Col("quantity").Mul(Lit(1).Sub(Col("discount")))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := Eval(mem, e, rec)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	reportPerRow(b)
}

func BenchmarkDateFilter(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := lineitem(mem)
	defer rec.Release()
	e := Col("shipdate").Le(TypedLit(arrow.FixedWidthTypes.Date32, int64(10471))) // 1998-09-02: ~97% pass
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mask, err := Eval(mem, e, rec)
		if err != nil {
			b.Fatal(err)
		}
		out, err := FilterRecord(mem, rec, mask.(*array.Boolean))
		if err != nil {
			b.Fatal(err)
		}
		mask.Release()
		out.Release()
	}
	reportPerRow(b)
}

func BenchmarkHashInt64AndString(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := lineitem(mem)
	defer rec.Release()
	e := Hash(Col("quantity"), Col("flag"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := Eval(mem, e, rec)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	reportPerRow(b)
}

func benchEval(b *testing.B, e *Expr) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := lineitem(mem)
	defer rec.Release()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := Eval(mem, e, rec)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	reportPerRow(b)
}

func BenchmarkCompareDateToLiteral(b *testing.B) {
	benchEval(b, Col("shipdate").Le(TypedLit(arrow.FixedWidthTypes.Date32, int64(10471))))
}

func BenchmarkExtractYearOfDate(b *testing.B) { benchEval(b, Extract("year", Col("shipdate"))) }

func BenchmarkStringEqualsLiteral(b *testing.B) { benchEval(b, Col("flag").Eq("R")) }

// BenchmarkDecimalRevenue is TPC-H Q1's price * (1 - discount) * (1 + tax)
// on decimal(15, 2) columns.
func BenchmarkDecimalRevenue(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := lineitem(mem)
	defer rec.Release()
	d := &arrow.Decimal128Type{Precision: 15, Scale: 2}
	cast := func(e *Expr) *Expr { return e.Cast(Type{d}) }
	prep := []*Expr{cast(Col("quantity").Mul(100)), cast(Col("discount")), cast(Col("discount").Div(2))}
	cols := make([]arrow.Array, len(prep))
	for i, e := range prep {
		a, err := Eval(mem, e, rec)
		if err != nil {
			b.Fatal(err)
		}
		defer a.Release()
		cols[i] = a
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "price", Type: d}, {Name: "discount", Type: d}, {Name: "tax", Type: d}}, nil)
	drec := array.NewRecord(schema, cols, benchRows)
	defer drec.Release()
	e := Col("price").Mul(Lit(1).Sub(Col("discount"))).Mul(Lit(1).Add(Col("tax")))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := Eval(mem, e, drec)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	reportPerRow(b)
}

// The float comparison benchmarks pin the cost of Spark's NaN ordering
// (NaN greatest, equal to itself) on columns without NaN, the common case.
func BenchmarkFloatGtLiteral(b *testing.B) { benchEval(b, Col("discount").Gt(0.05)) }

func BenchmarkFloatGeColumns(b *testing.B) {
	benchEval(b, Col("discount").Ge(Col("discount").Mul(0.5)))
}

func BenchmarkFloatEqColumns(b *testing.B) {
	benchEval(b, Col("discount").Eq(Col("discount").Mul(0.5)))
}

// BenchmarkFloatBetweenFilter is TPC-H Q6's discount filter, evaluated and
// applied.
func BenchmarkFloatBetweenFilter(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := lineitem(mem)
	defer rec.Release()
	e := Col("discount").Between(0.05, 0.07)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mask, err := Eval(mem, e, rec)
		if err != nil {
			b.Fatal(err)
		}
		out, err := FilterRecord(mem, rec, mask.(*array.Boolean))
		if err != nil {
			b.Fatal(err)
		}
		mask.Release()
		out.Release()
	}
	reportPerRow(b)
}
