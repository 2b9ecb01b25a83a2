package expr_test

import (
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	. "github.com/sluicedata/sluice/dataset/expr"
)

// TestEveryOpOverEveryColumnNeverPanics evaluates every operator over every
// pair of sample columns: each either succeeds with the type DataType reports
// or fails with an error, and nothing leaks.
func TestEveryOpOverEveryColumnNeverPanics(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	full := sample(mem)
	defer full.Release()
	for _, rec := range []arrow.Record{full, full.NewSlice(2, 2), full.NewSlice(1, 4)} {
		if rec != full {
			defer rec.Release()
		}
		sweep(t, mem, rec)
	}
}

func sweep(t *testing.T, mem memory.Allocator, rec arrow.Record) {
	var exprs []*Expr
	names := []string{}
	for _, f := range rec.Schema().Fields() {
		names = append(names, f.Name)
	}
	operands := []*Expr{Lit(nil), Lit(3), Lit("2024-01-31"), Lit(1.5), Lit(true)}
	for _, n := range names {
		operands = append(operands, Col(n))
	}
	for _, a := range operands {
		exprs = append(exprs, a.Neg(), a.Not(), a.IsNull(), Lower(a), Length(a), Substr(a, 2, 1),
			Extract("year", a), DateTrunc("month", a), AddDuration(a, 1, 1), Hash(a), Coalesce(a, Lit(nil)),
			a.In(1, "x"), a.Between(Lit(1), Lit(nil)), Contains(a, "a"), SplitPart(a, "a", 1), RegexpExtract(a, "a", 0),
			When(a, a).Else(a), Concat(a, a))
		for _, t := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Float32,
			arrow.BinaryTypes.String, arrow.FixedWidthTypes.Boolean, arrow.FixedWidthTypes.Date32, tsNY, dec10, arrow.BinaryTypes.Binary} {
			exprs = append(exprs, a.Cast(Type{t}))
		}
		for _, b := range operands {
			exprs = append(exprs, a.Add(b), a.Sub(b), a.Mul(b), a.Div(b), a.Mod(b), a.Eq(b), a.Ne(b), a.Lt(b), a.Le(b),
				a.Gt(b), a.Ge(b), a.And(b), a.Or(b), When(a.IsNull(), a).Else(b), Coalesce(a, b))
		}
	}
	ok, failed := 0, 0
	for _, e := range exprs {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Eval(%s) panicked: %v", e, r)
				}
			}()
			dt, derr := e.DataType(rec.Schema())
			got, err := Eval(mem, e, rec)
			if err != nil {
				failed++
				if derr == nil && fmt.Sprint(err) == "" {
					t.Errorf("empty error")
				}
				return
			}
			ok++
			defer got.Release()
			if derr != nil {
				t.Errorf("DataType(%s) failed (%v) but Eval succeeded", e, derr)
				return
			}
			if !arrow.TypeEqual(dt, got.DataType()) || got.Len() != int(rec.NumRows()) {
				t.Errorf("Eval(%s) = %s[%d], DataType says %s", e, got.DataType(), got.Len(), dt)
			}
		}()
	}
	t.Logf("%d expressions evaluated, %d rejected", ok, failed)
}
