package expr

import (
	"fmt"
	"strings"
)

// Op names an expression node. The set is closed: Bind rejects unknown ops, so a
// plan built by a newer binary fails clearly on an older executor.
type Op string

// Expression operators. Arguments are in Args unless noted.
const (
	OpCol      Op = "col"     // Name = column name
	OpLit      Op = "lit"     // Lit holds the value
	OpAlias    Op = "alias"   // Name = output name; Args[0]
	OpNeg      Op = "neg"     // -Args[0]
	OpAdd      Op = "add"     // Args[0] + Args[1]
	OpSub      Op = "sub"     //
	OpMul      Op = "mul"     //
	OpDiv      Op = "div"     // SQL: integer / integer is integer division; x / 0 is null
	OpMod      Op = "mod"     // x % 0 is null
	OpEq       Op = "eq"      //
	OpNe       Op = "ne"      //
	OpLt       Op = "lt"      //
	OpLe       Op = "le"      //
	OpGt       Op = "gt"      //
	OpGe       Op = "ge"      //
	OpAnd      Op = "and"     // three-valued (Kleene) logic
	OpOr       Op = "or"      //
	OpNot      Op = "not"     //
	OpIsNull   Op = "is_null" //
	OpNotNull  Op = "is_not_null"
	OpIn       Op = "in"      // Args[0] IN (Args[1:]...) ; Args[1:] are literals
	OpBetween  Op = "between" // Args[0] BETWEEN Args[1] AND Args[2] (inclusive)
	OpCase     Op = "case"    // CASE WHEN Args[0] THEN Args[1] [WHEN Args[2] THEN Args[3]]... [ELSE Args[n-1]] ; HasElse says whether the last arg is ELSE
	OpCast     Op = "cast"    // Type = target type
	OpCoalesce Op = "coalesce"

	OpLower         Op = "lower"
	OpUpper         Op = "upper"
	OpLength        Op = "length"         // characters (runes), not bytes
	OpSubstr        Op = "substr"         // Args[0], Args[1] = 1-based start (literal int), Args[2] = length (literal int, optional)
	OpConcat        Op = "concat"         // any number of string args; null if any is null
	OpContains      Op = "contains"       // Args[1] literal string
	OpStartsWith    Op = "starts_with"    // Args[1] literal string
	OpRegexpExtract Op = "regexp_extract" // Args[1] literal pattern, Args[2] literal group index; "" when no match (Spark)
	OpSplitPart     Op = "split_part"     // Args[1] literal delimiter, Args[2] literal 1-based part; "" when out of range

	OpDateTrunc   Op = "date_trunc"   // Name = unit: year, quarter, month, week, day, hour, minute, second
	OpExtract     Op = "extract"      // Name = field: year, quarter, month, day, dayofweek, dayofyear, hour, minute, second, epoch
	OpAddDuration Op = "add_duration" // Args[0] timestamp or date32; Dur = duration in nanoseconds (months in Months)

	OpHash Op = "hash" // xxhash64-style 64-bit hash of all args, as int64; stable across runs and machines
)

// Expr is one node of an expression tree. It is plain data (JSON-serializable) so
// plans can be shipped to executors; evaluation lives in Eval.
type Expr struct {
	Op      Op       `json:"op"`
	Name    string   `json:"name,omitempty"`
	Args    []*Expr  `json:"args,omitempty"`
	Lit     *Literal `json:"lit,omitempty"`
	Type    *Type    `json:"type,omitempty"`
	HasElse bool     `json:"has_else,omitempty"`
	Dur     int64    `json:"dur,omitempty"`    // nanoseconds, for add_duration
	Months  int32    `json:"months,omitempty"` // calendar months, for add_duration
}

// Col references a column of the input by name.
func Col(name string) *Expr { return &Expr{Op: OpCol, Name: name} }

func node(op Op, args ...*Expr) *Expr { return &Expr{Op: op, Args: args} }

// As names the expression's output column.
func (e *Expr) As(name string) *Expr { return &Expr{Op: OpAlias, Name: name, Args: []*Expr{e}} }

func (e *Expr) Add(o any) *Expr   { return node(OpAdd, e, toExpr(o)) }
func (e *Expr) Sub(o any) *Expr   { return node(OpSub, e, toExpr(o)) }
func (e *Expr) Mul(o any) *Expr   { return node(OpMul, e, toExpr(o)) }
func (e *Expr) Div(o any) *Expr   { return node(OpDiv, e, toExpr(o)) }
func (e *Expr) Mod(o any) *Expr   { return node(OpMod, e, toExpr(o)) }
func (e *Expr) Neg() *Expr        { return node(OpNeg, e) }
func (e *Expr) Eq(o any) *Expr    { return node(OpEq, e, toExpr(o)) }
func (e *Expr) Ne(o any) *Expr    { return node(OpNe, e, toExpr(o)) }
func (e *Expr) Lt(o any) *Expr    { return node(OpLt, e, toExpr(o)) }
func (e *Expr) Le(o any) *Expr    { return node(OpLe, e, toExpr(o)) }
func (e *Expr) Gt(o any) *Expr    { return node(OpGt, e, toExpr(o)) }
func (e *Expr) Ge(o any) *Expr    { return node(OpGe, e, toExpr(o)) }
func (e *Expr) And(o *Expr) *Expr { return node(OpAnd, e, o) }
func (e *Expr) Or(o *Expr) *Expr  { return node(OpOr, e, o) }
func (e *Expr) Not() *Expr        { return node(OpNot, e) }
func (e *Expr) IsNull() *Expr     { return node(OpIsNull, e) }
func (e *Expr) IsNotNull() *Expr  { return node(OpNotNull, e) }
func (e *Expr) Cast(t Type) *Expr { return &Expr{Op: OpCast, Args: []*Expr{e}, Type: &t} }
func (e *Expr) Between(lo, hi any) *Expr {
	return node(OpBetween, e, toExpr(lo), toExpr(hi))
}

// In is true when e equals one of the values (literals). SQL semantics: null if e
// is null, or if no value matches and one of the values is null.
func (e *Expr) In(values ...any) *Expr {
	args := []*Expr{e}
	for _, v := range values {
		args = append(args, toExpr(v))
	}
	return node(OpIn, args...)
}

func Not(e *Expr) *Expr                  { return e.Not() }
func And(es ...*Expr) *Expr              { return fold(OpAnd, es) }
func Or(es ...*Expr) *Expr               { return fold(OpOr, es) }
func Coalesce(es ...*Expr) *Expr         { return node(OpCoalesce, es...) }
func Lower(e *Expr) *Expr                { return node(OpLower, e) }
func Upper(e *Expr) *Expr                { return node(OpUpper, e) }
func Length(e *Expr) *Expr               { return node(OpLength, e) }
func Concat(es ...*Expr) *Expr           { return node(OpConcat, es...) }
func Contains(e *Expr, s string) *Expr   { return node(OpContains, e, Lit(s)) }
func StartsWith(e *Expr, s string) *Expr { return node(OpStartsWith, e, Lit(s)) }
func Hash(es ...*Expr) *Expr             { return node(OpHash, es...) }

// Substr is SQL substring with a 1-based start; length < 0 means to the end.
func Substr(e *Expr, start, length int) *Expr {
	if length < 0 {
		return node(OpSubstr, e, Lit(int64(start)))
	}
	return node(OpSubstr, e, Lit(int64(start)), Lit(int64(length)))
}

func RegexpExtract(e *Expr, pattern string, group int) *Expr {
	return node(OpRegexpExtract, e, Lit(pattern), Lit(int64(group)))
}

func SplitPart(e *Expr, delim string, part int) *Expr {
	return node(OpSplitPart, e, Lit(delim), Lit(int64(part)))
}

func DateTrunc(unit string, e *Expr) *Expr {
	return &Expr{Op: OpDateTrunc, Name: unit, Args: []*Expr{e}}
}
func Extract(field string, e *Expr) *Expr { return &Expr{Op: OpExtract, Name: field, Args: []*Expr{e}} }

// AddDuration adds a fixed duration (nanoseconds) and a number of calendar months.
func AddDuration(e *Expr, months int32, nanos int64) *Expr {
	return &Expr{Op: OpAddDuration, Args: []*Expr{e}, Months: months, Dur: nanos}
}

// When starts a CASE expression: When(c1, v1).When(c2, v2).Else(v3).
func When(cond *Expr, then any) *CaseBuilder {
	return &CaseBuilder{args: []*Expr{cond, toExpr(then)}}
}

type CaseBuilder struct{ args []*Expr }

func (b *CaseBuilder) When(cond *Expr, then any) *CaseBuilder {
	return &CaseBuilder{args: append(append([]*Expr(nil), b.args...), cond, toExpr(then))}
}
func (b *CaseBuilder) Else(v any) *Expr {
	return &Expr{Op: OpCase, Args: append(append([]*Expr(nil), b.args...), toExpr(v)), HasElse: true}
}
func (b *CaseBuilder) End() *Expr {
	return &Expr{Op: OpCase, Args: append([]*Expr(nil), b.args...)}
}

func fold(op Op, es []*Expr) *Expr {
	if len(es) == 0 {
		return Lit(op == OpAnd)
	}
	out := es[0]
	for _, e := range es[1:] {
		out = node(op, out, e)
	}
	return out
}

func toExpr(v any) *Expr {
	if e, ok := v.(*Expr); ok {
		return e
	}
	return Lit(v)
}

// OutputName is the column name an expression produces in Select/WithColumn:
// the alias, the column name, or its SQL text.
func (e *Expr) OutputName() string {
	switch e.Op {
	case OpAlias, OpCol:
		return e.Name
	}
	return e.String()
}

// Columns returns the distinct input column names the expression reads, in
// first-seen order.
func (e *Expr) Columns() []string {
	var out []string
	seen := map[string]bool{}
	var walk func(*Expr)
	walk = func(x *Expr) {
		if x == nil {
			return
		}
		if x.Op == OpCol && !seen[x.Name] {
			seen[x.Name] = true
			out = append(out, x.Name)
		}
		for _, a := range x.Args {
			walk(a)
		}
	}
	walk(e)
	return out
}

var infix = map[Op]string{
	OpAdd: "+", OpSub: "-", OpMul: "*", OpDiv: "/", OpMod: "%",
	OpEq: "=", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=",
	OpAnd: "AND", OpOr: "OR",
}

// String renders the expression as SQL-like text; EXPLAIN output and error
// messages use it, so golden files pin its shape.
func (e *Expr) String() string {
	if e == nil {
		return "<nil>"
	}
	switch e.Op {
	case OpCol:
		return e.Name
	case OpLit:
		return e.Lit.String()
	case OpAlias:
		return e.Args[0].String() + " AS " + e.Name
	case OpNeg:
		return "-" + e.Args[0].String()
	case OpNot:
		return "NOT " + e.Args[0].String()
	case OpIsNull:
		return e.Args[0].String() + " IS NULL"
	case OpNotNull:
		return e.Args[0].String() + " IS NOT NULL"
	case OpBetween:
		return fmt.Sprintf("%s BETWEEN %s AND %s", e.Args[0], e.Args[1], e.Args[2])
	case OpIn:
		return fmt.Sprintf("%s IN (%s)", e.Args[0], joinExprs(e.Args[1:]))
	case OpCast:
		return fmt.Sprintf("CAST(%s AS %s)", e.Args[0], e.Type)
	case OpCase:
		var b strings.Builder
		b.WriteString("CASE")
		n := len(e.Args)
		if e.HasElse {
			n--
		}
		for i := 0; i+1 < n; i += 2 {
			fmt.Fprintf(&b, " WHEN %s THEN %s", e.Args[i], e.Args[i+1])
		}
		if e.HasElse {
			fmt.Fprintf(&b, " ELSE %s", e.Args[len(e.Args)-1])
		}
		b.WriteString(" END")
		return b.String()
	case OpDateTrunc, OpExtract:
		return fmt.Sprintf("%s('%s', %s)", e.Op, e.Name, e.Args[0])
	case OpAddDuration:
		return fmt.Sprintf("add_duration(%s, %dmo, %dns)", e.Args[0], e.Months, e.Dur)
	}
	if sym, ok := infix[e.Op]; ok && len(e.Args) == 2 {
		return "(" + e.Args[0].String() + " " + sym + " " + e.Args[1].String() + ")"
	}
	return string(e.Op) + "(" + joinExprs(e.Args) + ")"
}

func joinExprs(es []*Expr) string {
	s := make([]string, len(es))
	for i, a := range es {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
