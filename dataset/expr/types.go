package expr

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
)

var simpleTypes = map[string]arrow.DataType{
	"null":         arrow.Null,
	"bool":         arrow.FixedWidthTypes.Boolean,
	"int8":         arrow.PrimitiveTypes.Int8,
	"int16":        arrow.PrimitiveTypes.Int16,
	"int32":        arrow.PrimitiveTypes.Int32,
	"int64":        arrow.PrimitiveTypes.Int64,
	"uint8":        arrow.PrimitiveTypes.Uint8,
	"uint16":       arrow.PrimitiveTypes.Uint16,
	"uint32":       arrow.PrimitiveTypes.Uint32,
	"uint64":       arrow.PrimitiveTypes.Uint64,
	"float32":      arrow.PrimitiveTypes.Float32,
	"float64":      arrow.PrimitiveTypes.Float64,
	"string":       arrow.BinaryTypes.String,
	"large_string": arrow.BinaryTypes.LargeString,
	"binary":       arrow.BinaryTypes.Binary,
	"large_binary": arrow.BinaryTypes.LargeBinary,
	"date32":       arrow.FixedWidthTypes.Date32,
	"date64":       arrow.FixedWidthTypes.Date64,
}

var unitNames = map[arrow.TimeUnit]string{arrow.Second: "s", arrow.Millisecond: "ms", arrow.Microsecond: "us", arrow.Nanosecond: "ns"}

// TypeString is the canonical text of a data type (ParseType's input):
// "int64", "string", "timestamp[ms]", "timestamp[us, tz=Europe/Paris]",
// "decimal128(12, 2)", "duration[ns]". Types ParseType does not know (lists,
// structs) use Arrow's own String.
func TypeString(t arrow.DataType) string {
	if t == nil {
		return "<nil>"
	}
	switch t := t.(type) {
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return fmt.Sprintf("timestamp[%s, tz=%s]", unitNames[t.Unit], t.TimeZone)
		}
		return fmt.Sprintf("timestamp[%s]", unitNames[t.Unit])
	case *arrow.DurationType:
		return fmt.Sprintf("duration[%s]", unitNames[t.Unit])
	case *arrow.Decimal128Type:
		return fmt.Sprintf("decimal128(%d, %d)", t.Precision, t.Scale)
	}
	for name, st := range simpleTypes {
		if arrow.TypeEqual(st, t) {
			return name
		}
	}
	return t.String()
}

// ParseType parses TypeString's output.
func ParseType(s string) (arrow.DataType, error) {
	s = strings.TrimSpace(s)
	if t, ok := simpleTypes[s]; ok {
		return t, nil
	}
	bad := fmt.Errorf("%w: cannot parse type %q", ErrType, s)
	unit := func(u string) (arrow.TimeUnit, bool) {
		for k, v := range unitNames {
			if v == strings.TrimSpace(u) {
				return k, true
			}
		}
		return 0, false
	}
	switch {
	case strings.HasPrefix(s, "timestamp[") && strings.HasSuffix(s, "]"):
		body := s[len("timestamp[") : len(s)-1]
		u, tz, hasTZ := strings.Cut(body, ",")
		unit, ok := unit(u)
		if !ok {
			return nil, bad
		}
		t := &arrow.TimestampType{Unit: unit}
		if hasTZ {
			tz = strings.TrimSpace(tz)
			if !strings.HasPrefix(tz, "tz=") {
				return nil, bad
			}
			t.TimeZone = tz[3:]
		}
		return t, nil
	case strings.HasPrefix(s, "duration[") && strings.HasSuffix(s, "]"):
		unit, ok := unit(s[len("duration[") : len(s)-1])
		if !ok {
			return nil, bad
		}
		return &arrow.DurationType{Unit: unit}, nil
	case strings.HasPrefix(s, "decimal128(") && strings.HasSuffix(s, ")"):
		p, sc, ok := strings.Cut(s[len("decimal128("):len(s)-1], ",")
		if !ok {
			return nil, bad
		}
		pi, err1 := strconv.Atoi(strings.TrimSpace(p))
		si, err2 := strconv.Atoi(strings.TrimSpace(sc))
		if err1 != nil || err2 != nil || pi < 1 || pi > 38 || si < 0 || si > pi {
			return nil, bad
		}
		return &arrow.Decimal128Type{Precision: int32(pi), Scale: int32(si)}, nil
	}
	return nil, bad
}

// MarshalJSON writes the canonical text (TypeString).
func (t Type) MarshalJSON() ([]byte, error) {
	if t.DataType == nil {
		return []byte("null"), nil
	}
	return json.Marshal(TypeString(t.DataType))
}

// UnmarshalJSON reads ParseType's input.
func (t *Type) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.DataType = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	dt, err := ParseType(s)
	if err != nil {
		return err
	}
	t.DataType = dt
	return nil
}

// literalJSON is the wire form of a Literal. Integers travel as JSON strings so
// int64/uint64 values survive decoders that go through float64; decimals as
// their decimal text; binary as base64; floats as numbers (or "NaN", "+Inf",
// "-Inf").
type literalJSON struct {
	Type  Type            `json:"type"`
	Null  bool            `json:"null,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

func (l Literal) MarshalJSON() ([]byte, error) {
	out := literalJSON{Type: l.Type, Null: l.Null}
	if !l.Null {
		var v any
		switch x := l.Value.(type) {
		case bool, string:
			v = x
		case int64:
			v = strconv.FormatInt(x, 10)
		case uint64:
			v = strconv.FormatUint(x, 10)
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				v = strconv.FormatFloat(x, 'g', -1, 64)
			} else {
				v = x
			}
		case []byte:
			v = base64.StdEncoding.EncodeToString(x)
		case decimal128.Num:
			dt, ok := l.Type.DataType.(*arrow.Decimal128Type)
			if !ok {
				return nil, fmt.Errorf("%w: decimal literal of type %s", ErrType, TypeString(l.Type.DataType))
			}
			v = x.ToString(dt.Scale)
		default:
			return nil, fmt.Errorf("%w: cannot marshal literal value %T", ErrType, l.Value)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out.Value = b
	}
	return json.Marshal(out)
}

func (l *Literal) UnmarshalJSON(b []byte) error {
	var in literalJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	l.Type, l.Null, l.Value = in.Type, in.Null, nil
	if in.Type.DataType == nil {
		return fmt.Errorf("%w: literal %s has no type", ErrType, b)
	}
	if in.Null || len(in.Value) == 0 {
		l.Null = true
		return nil
	}
	bad := func(err error) error {
		return fmt.Errorf("%w: literal %s of type %s: %v", ErrType, in.Value, TypeString(in.Type.DataType), err)
	}
	var s string
	switch dt := in.Type.DataType.(type) {
	case *arrow.BooleanType:
		var v bool
		if err := json.Unmarshal(in.Value, &v); err != nil {
			return bad(err)
		}
		l.Value = v
	case *arrow.Float32Type, *arrow.Float64Type:
		var v float64
		if err := json.Unmarshal(in.Value, &v); err != nil {
			if err2 := json.Unmarshal(in.Value, &s); err2 != nil {
				return bad(err)
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return bad(err)
			}
			v = f
		}
		l.Value = v
	default:
		if err := json.Unmarshal(in.Value, &s); err != nil {
			return bad(err)
		}
		switch {
		case isString(dt):
			l.Value = s
		case isBinary(dt):
			v, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return bad(err)
			}
			l.Value = v
		case isUnsigned(dt):
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return bad(err)
			}
			l.Value = v
		case dt.ID() == arrow.DECIMAL128:
			d := dt.(*arrow.Decimal128Type)
			v, err := decimal128.FromString(s, d.Precision, d.Scale)
			if err != nil {
				return bad(err)
			}
			l.Value = v
		default:
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return bad(err)
			}
			l.Value = v
		}
	}
	return nil
}

// String renders the literal as SQL: 'it”s', 12, 1.5, true, NULL,
// DATE '2024-01-31', TIMESTAMP '2024-01-31 12:00:00.5' (in the type's zone, the
// zone name appended), 12.34 for decimals, X'0aff' for binary.
func (l *Literal) String() string {
	if l == nil || l.Null {
		return "NULL"
	}
	switch x := l.Value.(type) {
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case []byte:
		return "X'" + hex.EncodeToString(x) + "'"
	case bool:
		return strconv.FormatBool(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEIN") {
			s += ".0"
		}
		return s
	case decimal128.Num:
		if dt, ok := l.Type.DataType.(*arrow.Decimal128Type); ok {
			return x.ToString(dt.Scale)
		}
	case int64:
		switch dt := l.Type.DataType.(type) {
		case *arrow.Date32Type:
			return "DATE '" + time.Unix(x*86400, 0).UTC().Format("2006-01-02") + "'"
		case *arrow.TimestampType:
			t := tsToTime(x, dt.Unit).UTC()
			zone := ""
			if dt.TimeZone != "" {
				if loc, err := loadLocation(dt.TimeZone); err == nil {
					t = t.In(loc)
				}
				zone = " " + dt.TimeZone
			}
			return "TIMESTAMP '" + t.Format("2006-01-02 15:04:05.999999999") + zone + "'"
		case *arrow.DurationType:
			return fmt.Sprintf("INTERVAL '%d' %s", x, unitNames[dt.Unit])
		}
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(l.Value)
}

func tsToTime(v int64, u arrow.TimeUnit) time.Time {
	switch u {
	case arrow.Second:
		return time.Unix(v, 0)
	case arrow.Millisecond:
		return time.UnixMilli(v)
	case arrow.Microsecond:
		return time.UnixMicro(v)
	}
	return time.Unix(0, v)
}
