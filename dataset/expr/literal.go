package expr

import (
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

// Type is a serializable Arrow data type. It marshals to its canonical text
// (ParseType's input), e.g. "int64", "timestamp[ms, tz=UTC]", "decimal128(12, 2)".
type Type struct{ arrow.DataType }

func (t *Type) String() string { return TypeString(t.DataType) }

// Literal is a constant of an Arrow type. Value holds the Go representation of
// the type's physical value: bool, int64 (all signed ints, date32, timestamps in
// the type's unit, durations), uint64 (unsigned ints), float64 (floats), string,
// []byte, decimal128.Num. A null literal has Null set and Value nil.
type Literal struct {
	Type  Type
	Null  bool
	Value any
}

// Lit builds a literal from a Go value: bool, int, int8..int64, uint..uint64,
// float32/64, string, []byte, time.Time (timestamp[us, tz=UTC]), nil (null of
// type null), or a *Literal. It panics on other types: that is a programming
// error at plan-construction time, not bad data.
func Lit(v any) *Expr { return &Expr{Op: OpLit, Lit: literalOf(v)} }

// TypedLit builds a literal of an explicit type from its physical Go value
// (see Literal), e.g. TypedLit(arrow.FixedWidthTypes.Date32, int64(20000)).
func TypedLit(t arrow.DataType, v any) *Expr {
	return &Expr{Op: OpLit, Lit: &Literal{Type: Type{t}, Null: v == nil, Value: v}}
}

func literalOf(v any) *Literal {
	switch x := v.(type) {
	case *Literal:
		return x
	case nil:
		return &Literal{Type: Type{arrow.Null}, Null: true}
	case bool:
		return &Literal{Type: Type{arrow.FixedWidthTypes.Boolean}, Value: x}
	case int:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Int64}, Value: int64(x)}
	case int8:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Int8}, Value: int64(x)}
	case int16:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Int16}, Value: int64(x)}
	case int32:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Int32}, Value: int64(x)}
	case int64:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Int64}, Value: x}
	case uint:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Uint64}, Value: uint64(x)}
	case uint8:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Uint8}, Value: uint64(x)}
	case uint16:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Uint16}, Value: uint64(x)}
	case uint32:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Uint32}, Value: uint64(x)}
	case uint64:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Uint64}, Value: x}
	case float32:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Float32}, Value: float64(x)}
	case float64:
		return &Literal{Type: Type{arrow.PrimitiveTypes.Float64}, Value: x}
	case string:
		return &Literal{Type: Type{arrow.BinaryTypes.String}, Value: x}
	case []byte:
		return &Literal{Type: Type{arrow.BinaryTypes.Binary}, Value: x}
	case time.Time:
		return &Literal{Type: Type{&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}}, Value: x.UnixMicro()}
	}
	panic(fmt.Sprintf("expr: unsupported literal type %T", v))
}
