package expr

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
)

// Errors. Each is wrapped with the expression text (and for unknown columns
// the available columns); test with errors.Is.
var (
	ErrUnknownColumn = errors.New("expr: unknown column")
	ErrType          = errors.New("expr: type error")
	ErrCast          = errors.New("expr: invalid cast")
)

// DataType type-checks the whole tree against s and returns its result type.
// The rules (Spark-like, decimal-free where Spark would need more precision
// than 38):
//
//   - integers widen: same signedness -> the wider type; signed with unsigned
//     (including uint64) -> int64, and uint64 values above MaxInt64 wrap.
//   - integer with float -> float64 (float32 with float32 stays float32).
//   - decimal with integer -> decimal, the integer as decimal(3|5|10|19|20, 0).
//     +,-: scale max(s1,s2), precision min(38, max(p1-s1,p2-s2)+scale+1);
//     *: precision min(38, p1+p2+1), scale s1+s2; / and %: float64.
//     decimal with float -> float64.
//   - integer / integer is truncating integer division; x/0 and x%0 are null.
//   - comparisons need comparable types: numbers via their common type,
//     strings, binaries, bools, date32 with date32 or timestamps (a date is
//     midnight in the timestamp's zone, UTC without one), timestamps of any
//     unit and zone (compared as instants, in the finer unit);
//     a string literal compared with a date or timestamp is cast to it.
//   - arithmetic on dates and timestamps is an error: use add_duration.
//   - string functions take string or large_string and return string;
//     length -> int32; extract -> int32 (epoch -> int64); date_trunc and
//     add_duration keep the input type; hash -> int64; case and coalesce -> the
//     common type of their values (null literals adapt).
func (e *Expr) DataType(s *arrow.Schema) (arrow.DataType, error) {
	b := binder{schema: s, root: e}
	return b.typeOf(e)
}

type binder struct {
	schema *arrow.Schema
	root   *Expr
	types  map[*Expr]arrow.DataType // filled when non-nil (Eval)
}

func (b *binder) errf(e *Expr, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if e != nil && e != b.root {
		return fmt.Errorf("%w: %s in %s (in %s)", ErrType, msg, e, b.root)
	}
	return fmt.Errorf("%w: %s in %s", ErrType, msg, b.root)
}

func (b *binder) typeOf(e *Expr) (arrow.DataType, error) {
	if e == nil {
		return nil, b.errf(nil, "nil expression")
	}
	t, err := b.compute(e)
	if err != nil {
		return nil, err
	}
	if b.types != nil {
		b.types[e] = t
	}
	return t, nil
}

var arity = map[Op][2]int{ // min, max (-1 = unbounded)
	OpAlias: {1, 1}, OpNeg: {1, 1}, OpNot: {1, 1}, OpIsNull: {1, 1}, OpNotNull: {1, 1},
	OpAdd: {2, 2}, OpSub: {2, 2}, OpMul: {2, 2}, OpDiv: {2, 2}, OpMod: {2, 2},
	OpEq: {2, 2}, OpNe: {2, 2}, OpLt: {2, 2}, OpLe: {2, 2}, OpGt: {2, 2}, OpGe: {2, 2},
	OpAnd: {2, 2}, OpOr: {2, 2}, OpIn: {1, -1}, OpBetween: {3, 3}, OpCase: {1, -1},
	OpCast: {1, 1}, OpCoalesce: {1, -1}, OpLower: {1, 1}, OpUpper: {1, 1}, OpLength: {1, 1},
	OpSubstr: {2, 3}, OpConcat: {1, -1}, OpContains: {2, 2}, OpStartsWith: {2, 2},
	OpRegexpExtract: {3, 3}, OpSplitPart: {3, 3}, OpDateTrunc: {1, 1}, OpExtract: {1, 1},
	OpAddDuration: {1, 1}, OpHash: {1, -1},
}

func (b *binder) compute(e *Expr) (arrow.DataType, error) {
	switch e.Op {
	case OpCol:
		idx := b.schema.FieldIndices(e.Name)
		if len(idx) == 0 {
			names := make([]string, b.schema.NumFields())
			for i, f := range b.schema.Fields() {
				names[i] = f.Name
			}
			return nil, fmt.Errorf("%w %q in %s; available: %s", ErrUnknownColumn, e.Name, b.root, strings.Join(names, ", "))
		}
		return b.schema.Field(idx[0]).Type, nil
	case OpLit:
		if e.Lit == nil || e.Lit.Type.DataType == nil {
			return nil, b.errf(e, "literal without a type")
		}
		if err := checkLiteral(e.Lit); err != nil {
			return nil, b.errf(e, "%v", err)
		}
		return e.Lit.Type.DataType, nil
	}
	ar, ok := arity[e.Op]
	if !ok {
		return nil, b.errf(e, "unknown operator %q", e.Op)
	}
	if len(e.Args) < ar[0] || (ar[1] >= 0 && len(e.Args) > ar[1]) {
		return nil, b.errf(e, "%s takes %d..%d arguments, got %d", e.Op, ar[0], ar[1], len(e.Args))
	}
	ts := make([]arrow.DataType, len(e.Args))
	for i, a := range e.Args {
		t, err := b.typeOf(a)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	switch e.Op {
	case OpAlias:
		return ts[0], nil
	case OpNeg:
		if !isNumeric(ts[0]) && ts[0].ID() != arrow.NULL {
			return nil, b.errf(e, "cannot negate %s", TypeString(ts[0]))
		}
		return ts[0], nil
	case OpAdd, OpSub, OpMul, OpDiv, OpMod:
		_, _, out, err := arithTypes(e.Op, ts[0], ts[1])
		if err != nil {
			return nil, b.errf(e, "%v", err)
		}
		return out, nil
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		if _, err := compareType(e.Args[0], e.Args[1], ts[0], ts[1]); err != nil {
			return nil, b.errf(e, "%v", err)
		}
		return arrow.FixedWidthTypes.Boolean, nil
	case OpIn, OpBetween:
		for i := 1; i < len(ts); i++ {
			if _, err := compareType(e.Args[0], e.Args[i], ts[0], ts[i]); err != nil {
				return nil, b.errf(e, "%v", err)
			}
		}
		return arrow.FixedWidthTypes.Boolean, nil
	case OpAnd, OpOr, OpNot:
		for _, t := range ts {
			if !isBoolish(t) {
				return nil, b.errf(e, "%s needs bool arguments, got %s", e.Op, TypeString(t))
			}
		}
		return arrow.FixedWidthTypes.Boolean, nil
	case OpIsNull, OpNotNull:
		return arrow.FixedWidthTypes.Boolean, nil
	case OpCase:
		n := len(e.Args)
		if e.HasElse {
			n--
		}
		if n < 2 || n%2 != 0 {
			return nil, b.errf(e, "case needs WHEN/THEN pairs")
		}
		var vals []arrow.DataType
		for i := 0; i < n; i += 2 {
			if !isBoolish(ts[i]) {
				return nil, b.errf(e, "case condition %s is %s, not bool", e.Args[i], TypeString(ts[i]))
			}
			vals = append(vals, ts[i+1])
		}
		if e.HasElse {
			vals = append(vals, ts[len(ts)-1])
		}
		t, err := commonType(vals...)
		if err != nil {
			return nil, b.errf(e, "%v", err)
		}
		return t, nil
	case OpCoalesce:
		t, err := commonType(ts...)
		if err != nil {
			return nil, b.errf(e, "%v", err)
		}
		return t, nil
	case OpCast:
		if e.Type == nil || e.Type.DataType == nil {
			return nil, b.errf(e, "cast without a target type")
		}
		if !canCast(ts[0], e.Type.DataType) {
			return nil, b.errf(e, "cannot cast %s to %s", TypeString(ts[0]), TypeString(e.Type.DataType))
		}
		return e.Type.DataType, nil
	case OpLower, OpUpper, OpLength:
		if !isStringish(ts[0]) {
			return nil, b.errf(e, "%s needs a string, got %s", e.Op, TypeString(ts[0]))
		}
		if e.Op == OpLength {
			return arrow.PrimitiveTypes.Int32, nil
		}
		return arrow.BinaryTypes.String, nil
	case OpConcat:
		for _, t := range ts {
			if !isStringish(t) {
				return nil, b.errf(e, "concat needs strings, got %s", TypeString(t))
			}
		}
		return arrow.BinaryTypes.String, nil
	case OpSubstr, OpContains, OpStartsWith, OpRegexpExtract, OpSplitPart:
		if !isStringish(ts[0]) {
			return nil, b.errf(e, "%s needs a string, got %s", e.Op, TypeString(ts[0]))
		}
		for i := 1; i < len(e.Args); i++ {
			wantStr := (e.Op != OpSubstr && i == 1)
			lit := e.Args[i].Lit
			if e.Args[i].Op != OpLit || lit == nil || lit.Null {
				return nil, b.errf(e, "argument %d of %s must be a non-null literal", i+1, e.Op)
			}
			if wantStr && !isString(ts[i]) || !wantStr && !isInteger(ts[i]) {
				return nil, b.errf(e, "argument %d of %s has type %s", i+1, e.Op, TypeString(ts[i]))
			}
		}
		if e.Op == OpContains || e.Op == OpStartsWith {
			return arrow.FixedWidthTypes.Boolean, nil
		}
		return arrow.BinaryTypes.String, nil
	case OpDateTrunc, OpExtract, OpAddDuration:
		if !isTemporal(ts[0]) {
			return nil, b.errf(e, "%s needs a date or timestamp, got %s", e.Op, TypeString(ts[0]))
		}
		switch e.Op {
		case OpDateTrunc:
			if !truncUnits[e.Name] {
				return nil, b.errf(e, "unknown date_trunc unit %q", e.Name)
			}
			return ts[0], nil
		case OpExtract:
			if !extractFields[e.Name] {
				return nil, b.errf(e, "unknown extract field %q", e.Name)
			}
			if e.Name == "epoch" {
				return arrow.PrimitiveTypes.Int64, nil
			}
			return arrow.PrimitiveTypes.Int32, nil
		}
		return ts[0], nil
	case OpHash:
		for _, t := range ts {
			if !hashable(t) {
				return nil, b.errf(e, "cannot hash %s", TypeString(t))
			}
		}
		return arrow.PrimitiveTypes.Int64, nil
	}
	return nil, b.errf(e, "unknown operator %q", e.Op)
}

var truncUnits = map[string]bool{"year": true, "quarter": true, "month": true, "week": true, "day": true, "hour": true, "minute": true, "second": true}
var extractFields = map[string]bool{"year": true, "quarter": true, "month": true, "day": true, "dayofweek": true, "dayofyear": true, "hour": true, "minute": true, "second": true, "epoch": true}

// ---- type predicates ----

func isSigned(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		return true
	}
	return false
}

func isUnsigned(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}

func isInteger(t arrow.DataType) bool { return isSigned(t) || isUnsigned(t) }
func isFloat(t arrow.DataType) bool {
	return t.ID() == arrow.FLOAT32 || t.ID() == arrow.FLOAT64
}
func isDecimal(t arrow.DataType) bool { return t.ID() == arrow.DECIMAL128 }
func isNumeric(t arrow.DataType) bool { return isInteger(t) || isFloat(t) || isDecimal(t) }
func isString(t arrow.DataType) bool {
	return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING
}
func isBinary(t arrow.DataType) bool {
	return t.ID() == arrow.BINARY || t.ID() == arrow.LARGE_BINARY
}
func isStringish(t arrow.DataType) bool { return isString(t) || t.ID() == arrow.NULL }
func isBoolish(t arrow.DataType) bool {
	return t.ID() == arrow.BOOL || t.ID() == arrow.NULL
}
func isTemporal(t arrow.DataType) bool {
	return t.ID() == arrow.DATE32 || t.ID() == arrow.TIMESTAMP
}

func intBits(t arrow.DataType) int { return t.(arrow.FixedWidthDataType).BitWidth() }

// intDecimal is the decimal type that holds every value of integer type t.
func intDecimal(t arrow.DataType) *arrow.Decimal128Type {
	p := map[arrow.Type]int32{arrow.INT8: 3, arrow.UINT8: 3, arrow.INT16: 5, arrow.UINT16: 5,
		arrow.INT32: 10, arrow.UINT32: 10, arrow.INT64: 19, arrow.UINT64: 20}[t.ID()]
	return &arrow.Decimal128Type{Precision: p, Scale: 0}
}

var signedOf = map[int]arrow.DataType{8: arrow.PrimitiveTypes.Int8, 16: arrow.PrimitiveTypes.Int16, 32: arrow.PrimitiveTypes.Int32, 64: arrow.PrimitiveTypes.Int64}
var unsignedOf = map[int]arrow.DataType{8: arrow.PrimitiveTypes.Uint8, 16: arrow.PrimitiveTypes.Uint16, 32: arrow.PrimitiveTypes.Uint32, 64: arrow.PrimitiveTypes.Uint64}

// commonNumeric is the type both numbers are converted to before a
// comparison, +, - or coalesce.
func commonNumeric(a, b arrow.DataType) (arrow.DataType, bool) {
	switch {
	case a.ID() == arrow.NULL:
		return b, isNumeric(b) || b.ID() == arrow.NULL
	case b.ID() == arrow.NULL:
		return a, isNumeric(a)
	case !isNumeric(a) || !isNumeric(b):
		return nil, false
	case isInteger(a) && isInteger(b):
		w := max(intBits(a), intBits(b))
		switch {
		case isSigned(a) && isSigned(b):
			return signedOf[w], true
		case isUnsigned(a) && isUnsigned(b):
			return unsignedOf[w], true
		}
		return arrow.PrimitiveTypes.Int64, true
	case isFloat(a) || isFloat(b):
		if a.ID() == arrow.FLOAT32 && b.ID() == arrow.FLOAT32 {
			return a, true
		}
		return arrow.PrimitiveTypes.Float64, true
	}
	da, db := asDecimal(a), asDecimal(b)
	s := max(da.Scale, db.Scale)
	p := min(38, max(da.Precision-da.Scale, db.Precision-db.Scale)+s)
	return &arrow.Decimal128Type{Precision: p, Scale: s}, true
}

func asDecimal(t arrow.DataType) *arrow.Decimal128Type {
	if d, ok := t.(*arrow.Decimal128Type); ok {
		return d
	}
	return intDecimal(t)
}

// arithTypes returns the types the operands are converted to and the result.
func arithTypes(op Op, a, b arrow.DataType) (lt, rt, out arrow.DataType, err error) {
	if a.ID() == arrow.NULL && b.ID() == arrow.NULL {
		return a, b, arrow.Null, nil
	}
	if !(isNumeric(a) || a.ID() == arrow.NULL) || !(isNumeric(b) || b.ID() == arrow.NULL) {
		return nil, nil, nil, fmt.Errorf("cannot apply %s to %s and %s", infix[op], TypeString(a), TypeString(b))
	}
	c, _ := commonNumeric(a, b)
	if !isDecimal(c) {
		return c, c, c, nil
	}
	if a.ID() == arrow.NULL {
		a = c
	}
	if b.ID() == arrow.NULL {
		b = c
	}
	da, db := asDecimal(a), asDecimal(b)
	switch op {
	case OpAdd, OpSub:
		s := max(da.Scale, db.Scale)
		p := min(38, max(da.Precision-da.Scale, db.Precision-db.Scale)+s+1)
		t := &arrow.Decimal128Type{Precision: p, Scale: s}
		return t, t, t, nil
	case OpMul:
		s := da.Scale + db.Scale
		p := min(38, da.Precision+db.Precision+1)
		if s > p {
			return nil, nil, nil, fmt.Errorf("decimal product scale %d exceeds 38", s)
		}
		return da, db, &arrow.Decimal128Type{Precision: p, Scale: s}, nil
	}
	f := arrow.PrimitiveTypes.Float64
	return f, f, f, nil
}

// compareType is the type both sides of a comparison are converted to.
func compareType(ea, eb *Expr, a, b arrow.DataType) (arrow.DataType, error) {
	if a.ID() == arrow.NULL {
		return b, nil
	}
	if b.ID() == arrow.NULL {
		return a, nil
	}
	if t, ok := commonNumeric(a, b); ok {
		return t, nil
	}
	isStrLit := func(e *Expr, t arrow.DataType) bool { return e != nil && e.Op == OpLit && isString(t) }
	switch {
	case isString(a) && isString(b):
		if a.ID() == b.ID() {
			return a, nil
		}
		return arrow.BinaryTypes.LargeString, nil
	case isBinary(a) && isBinary(b):
		if a.ID() == b.ID() {
			return a, nil
		}
		return arrow.BinaryTypes.LargeBinary, nil
	case a.ID() == arrow.BOOL && b.ID() == arrow.BOOL:
		return a, nil
	case isTemporal(a) && isTemporal(b):
		return commonTemporal(a, b), nil
	case isTemporal(a) && isStrLit(eb, b):
		return a, nil
	case isTemporal(b) && isStrLit(ea, a):
		return b, nil
	}
	return nil, fmt.Errorf("cannot compare %s with %s", TypeString(a), TypeString(b))
}

func commonTemporal(a, b arrow.DataType) arrow.DataType {
	ta, aok := a.(*arrow.TimestampType)
	tb, bok := b.(*arrow.TimestampType)
	switch {
	case aok && bok:
		if tb.Unit > ta.Unit {
			return &arrow.TimestampType{Unit: tb.Unit, TimeZone: ta.TimeZone}
		}
		return ta
	case aok:
		return ta
	case bok:
		return tb
	}
	return a
}

// commonType is the type CASE branches and COALESCE arguments share.
func commonType(ts ...arrow.DataType) (arrow.DataType, error) {
	out := arrow.DataType(arrow.Null)
	for _, t := range ts {
		switch {
		case out.ID() == arrow.NULL:
			out = t
		case t.ID() == arrow.NULL || arrow.TypeEqual(out, t):
		case isNumeric(out) && isNumeric(t):
			out, _ = commonNumeric(out, t)
		case isString(out) && isString(t):
			out = arrow.BinaryTypes.LargeString
		case isBinary(out) && isBinary(t):
			out = arrow.BinaryTypes.LargeBinary
		case isTemporal(out) && isTemporal(t):
			out = commonTemporal(out, t)
		default:
			return nil, fmt.Errorf("no common type for %s and %s", TypeString(out), TypeString(t))
		}
	}
	return out, nil
}

// canCast says whether CAST(from AS to) is supported.
func canCast(from, to arrow.DataType) bool {
	if arrow.TypeEqual(from, to) || from.ID() == arrow.NULL {
		return true
	}
	num := func(t arrow.DataType) bool { return isNumeric(t) }
	switch {
	case num(from) && (num(to) || isString(to)):
		return true
	case isString(from) && (num(to) || isString(to) || isTemporal(to) || to.ID() == arrow.BOOL || isBinary(to)):
		return true
	case from.ID() == arrow.BOOL && (isInteger(to) || isString(to) || isFloat(to)):
		return true
	case isInteger(from) && to.ID() == arrow.BOOL:
		return true
	case isTemporal(from) && (isTemporal(to) || isString(to)):
		return true
	case isBinary(from) && (isBinary(to) || isString(to)):
		return true
	}
	return false
}

// checkLiteral verifies that a literal's Go value is the physical
// representation its type needs (see Literal), so kernels can assert it.
func checkLiteral(l *Literal) error {
	if l.Null {
		return nil
	}
	t := l.Type.DataType
	var ok bool
	switch v := l.Value.(type) {
	case bool:
		ok = t.ID() == arrow.BOOL
	case int64:
		ok = isSigned(t) || t.ID() == arrow.DATE32 || t.ID() == arrow.TIMESTAMP || t.ID() == arrow.DURATION || t.ID() == arrow.DATE64
	case uint64:
		ok = isUnsigned(t)
	case float64:
		ok = isFloat(t)
	case string:
		ok = isString(t) || isBinary(t)
	case []byte:
		ok = isBinary(t) || isString(t)
	case decimal128.Num:
		ok = isDecimal(t)
	default:
		_ = v
	}
	if t.ID() == arrow.NULL {
		ok = l.Value == nil
	}
	if !ok {
		return fmt.Errorf("literal value %v (%T) does not fit type %s", l.Value, l.Value, TypeString(t))
	}
	return nil
}
