package dataset

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
)

// Expr is a column expression; see package expr for the operators.
type Expr = expr.Expr

// Expression constructors, re-exported so a job needs one import.
var (
	Col           = expr.Col
	Lit           = expr.Lit
	TypedLit      = expr.TypedLit
	When          = expr.When
	And           = expr.And
	Or            = expr.Or
	Not           = expr.Not
	Coalesce      = expr.Coalesce
	Lower         = expr.Lower
	Upper         = expr.Upper
	Length        = expr.Length
	Substr        = expr.Substr
	Concat        = expr.Concat
	Contains      = expr.Contains
	StartsWith    = expr.StartsWith
	RegexpExtract = expr.RegexpExtract
	SplitPart     = expr.SplitPart
	DateTrunc     = expr.DateTrunc
	Extract       = expr.Extract
	AddDuration   = expr.AddDuration
	Hash          = expr.Hash
)

// AggExpr is an aggregate for GroupBy(...).Agg.
type AggExpr struct{ a exec.Agg }

func newAgg(fn exec.AggFunc, arg *Expr) AggExpr {
	name := string(fn) + "(*)"
	if arg != nil {
		name = fmt.Sprintf("%s(%s)", fn, arg.OutputName())
	}
	return AggExpr{exec.Agg{Func: fn, Arg: arg, Name: name}}
}

// As names the aggregate's output column (default "sum(x)" style).
func (a AggExpr) As(name string) AggExpr { a.a.Name = name; return a }

func Count(e *Expr) AggExpr         { return newAgg("count", e) }
func CountAll() AggExpr             { return newAgg("count", nil) }
func CountDistinct(e *Expr) AggExpr { return newAgg("count_distinct", e) }
func Sum(e *Expr) AggExpr           { return newAgg("sum", e) }
func Min(e *Expr) AggExpr           { return newAgg("min", e) }
func Max(e *Expr) AggExpr           { return newAgg("max", e) }
func Avg(e *Expr) AggExpr           { return newAgg("avg", e) }
func First(e *Expr) AggExpr         { return newAgg("first", e) }
func Last(e *Expr) AggExpr          { return newAgg("last", e) }

// SortKey orders rows in OrderBy. Ascending sorts put nulls first and
// descending ones nulls last, as Spark does, unless changed.
type SortKey struct{ k exec.SortKey }

func Asc(e any) SortKey  { return SortKey{exec.SortKey{Expr: toExpr(e), NullsFirst: true}} }
func Desc(e any) SortKey { return SortKey{exec.SortKey{Expr: toExpr(e), Desc: true}} }

func (s SortKey) NullsFirst() SortKey { s.k.NullsFirst = true; return s }
func (s SortKey) NullsLast() SortKey  { s.k.NullsFirst = false; return s }

// toExpr accepts a column name or an expression.
func toExpr(v any) *Expr {
	switch x := v.(type) {
	case string:
		return expr.Col(x)
	case *Expr:
		return x
	}
	panic(fmt.Sprintf("dataset: want a column name or *Expr, got %T", v))
}

// Type wraps an Arrow type for Cast: Col("ts").Cast(Type(arrow.FixedWidthTypes.Date32)).
func Type(t arrow.DataType) expr.Type { return expr.Type{DataType: t} }
