package expr_test

import (
	"encoding/json"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	. "github.com/sluicedata/sluice/dataset/expr"
)

// FuzzEval decodes arbitrary JSON as an expression tree (the form plans are
// shipped in) and evaluates it over the sample record: it must type-check and
// evaluate, or fail with an error, never panic or leak, and a result must
// have the type DataType reported.
func FuzzEval(f *testing.F) {
	seeds := []*Expr{
		Col("i64").Add(Col("f64")).Mul(2).Gt(Col("i32")),
		When(Col("s").IsNull(), Lit("none")).When(Col("b"), Col("s")).Else(Upper(Col("ls"))),
		Col("d").Mul(Col("d")).Sub(Lit(1)).Between(Lit(0), Lit(100)),
		Extract("year", Col("tsz")).Eq(DateTrunc("month", Col("dt")).Cast(Type{DataType: arrow.PrimitiveTypes.Int32})),
		RegexpExtract(Col("s"), "([a-z]+)", 1).In("pple", nil, "anana"),
		Hash(Col("bin"), Col("u64"), Col("snum").Cast(Type{DataType: arrow.PrimitiveTypes.Int64})),
		AddDuration(Col("ts"), 1, 3_600_000_000_000).Lt(Col("tsz")).And(Not(Col("b"))).Or(Col("i8").Mod(0).IsNull()),
		SplitPart(Concat(Col("s"), Lit(","), Col("sdate")), ",", 2).Cast(Type{DataType: arrow.FixedWidthTypes.Date32}),
	}
	for _, e := range seeds {
		b, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Expr
		if json.Unmarshal(data, &e) != nil {
			return
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		rec := sample(mem)
		defer rec.Release()
		dt, err := e.DataType(rec.Schema())
		if err != nil {
			return
		}
		out, err := Eval(mem, &e, rec)
		if err != nil {
			return
		}
		defer out.Release()
		if !arrow.TypeEqual(out.DataType(), dt) {
			t.Fatalf("%s: Eval gave %s, DataType said %s", &e, out.DataType(), dt)
		}
		if out.Len() != int(rec.NumRows()) {
			t.Fatalf("%s: %d values for %d rows", &e, out.Len(), rec.NumRows())
		}
	})
}
