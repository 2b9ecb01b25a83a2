package delta

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// Field is one field of a Delta schema (schemaString): Type is a primitive
// type name ("long", "decimal(10,2)") or a nested type as a JSON object.
type Field struct {
	Name     string          `json:"name"`
	Type     json.RawMessage `json:"type"`
	Nullable bool            `json:"nullable"`
	Metadata map[string]any  `json:"metadata"`
}

type structType struct {
	Type   string  `json:"type"`
	Fields []Field `json:"fields"`
}

type arrayType struct {
	Type         string          `json:"type"`
	ElementType  json.RawMessage `json:"elementType"`
	ContainsNull bool            `json:"containsNull"`
}

// SchemaString is the Delta schema of an Arrow schema. Types without a
// Delta equal (unsigned integers, timestamps without a time zone or not in
// microseconds, maps, ...) are an error naming the column.
func SchemaString(s *arrow.Schema) (string, error) {
	st, err := structOf(s.Fields(), "")
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(st)
	return string(b), err
}

func structOf(fields []arrow.Field, prefix string) (structType, error) {
	st := structType{Type: "struct", Fields: []Field{}}
	for _, f := range fields {
		t, err := typeOf(f.Type, prefix+f.Name)
		if err != nil {
			return st, err
		}
		st.Fields = append(st.Fields, Field{Name: f.Name, Type: t, Nullable: true, Metadata: map[string]any{}})
	}
	return st, nil
}

func typeOf(dt arrow.DataType, col string) (json.RawMessage, error) {
	prim := func(s string) (json.RawMessage, error) { return json.Marshal(s) }
	switch t := dt.(type) {
	case *arrow.BooleanType:
		return prim("boolean")
	case *arrow.Int8Type:
		return prim("byte")
	case *arrow.Int16Type:
		return prim("short")
	case *arrow.Int32Type:
		return prim("integer")
	case *arrow.Int64Type:
		return prim("long")
	case *arrow.Float32Type:
		return prim("float")
	case *arrow.Float64Type:
		return prim("double")
	case *arrow.StringType, *arrow.LargeStringType:
		return prim("string")
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		return prim("binary")
	case *arrow.Date32Type:
		return prim("date")
	case *arrow.TimestampType:
		if t.Unit == arrow.Nanosecond || t.TimeZone == "" {
			return nil, fmt.Errorf("%w: column %q has type %s: Delta stores timestamp[us, tz] (timestamp_ntz needs a table feature not written here); cast the column", ErrUnsupported, col, dt)
		}
		return prim("timestamp")
	case *arrow.Decimal128Type:
		return prim(fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale))
	case *arrow.StructType:
		st, err := structOf(t.Fields(), col+".")
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	case *arrow.ListType, *arrow.LargeListType:
		et, err := typeOf(t.(arrow.ListLikeType).Elem(), col+".element")
		if err != nil {
			return nil, err
		}
		return json.Marshal(arrayType{Type: "array", ElementType: et, ContainsNull: true})
	}
	return nil, fmt.Errorf("%w: column %q has type %s, which has no Delta type here", ErrUnsupported, col, dt)
}

// SchemaFields parses a schemaString into its top-level fields.
func SchemaFields(schemaString string) ([]Field, error) {
	var st structType
	if err := json.Unmarshal([]byte(schemaString), &st); err != nil {
		return nil, fmt.Errorf("%w: schemaString: %v", ErrCorrupt, err)
	}
	if st.Type != "struct" {
		return nil, fmt.Errorf("%w: schemaString is a %q, not a struct", ErrCorrupt, st.Type)
	}
	return st.Fields, nil
}

// SameSchema reports how two schemaStrings differ in field names and
// types (nullability and field metadata aside): "" when they do not.
func SameSchema(a, b string) (string, error) {
	fa, err := SchemaFields(a)
	if err != nil {
		return "", err
	}
	fb, err := SchemaFields(b)
	if err != nil {
		return "", err
	}
	desc := func(fs []Field) string {
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = f.Name + " " + compactType(f.Type)
		}
		return strings.Join(parts, ", ")
	}
	if da, db := desc(fa), desc(fb); da != db {
		return fmt.Sprintf("(%s) vs (%s)", da, db), nil
	}
	return "", nil
}

// compactType drops nullability and metadata from a nested type so two
// writers' spellings compare equal.
func compactType(t json.RawMessage) string {
	var s string
	if json.Unmarshal(t, &s) == nil {
		return s
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) != nil {
		return string(t)
	}
	var kind string
	json.Unmarshal(obj["type"], &kind)
	switch kind {
	case "struct":
		var st structType
		json.Unmarshal(t, &st)
		parts := make([]string, len(st.Fields))
		for i, f := range st.Fields {
			parts[i] = f.Name + ":" + compactType(f.Type)
		}
		return "struct<" + strings.Join(parts, ",") + ">"
	case "array":
		return "array<" + compactType(obj["elementType"]) + ">"
	case "map":
		return "map<" + compactType(obj["keyType"]) + "," + compactType(obj["valueType"]) + ">"
	}
	return string(t)
}
