package parquet

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// conv says how the values of one Parquet physical column become the values of
// its Arrow array. Conversions that keep the bits (int64 -> timestamp, int32 ->
// date32) alias the page buffer; the others convert once per page or once per
// dictionary.
type conv uint8

const (
	convBool       conv = iota + 1
	convInt32           // INT32 -> int32, uint32, date32, time32 (same bits)
	convInt32To8        // INT32 -> int8
	convInt32To16       // INT32 -> int16
	convInt32ToU8       // INT32 -> uint8
	convInt32ToU16      // INT32 -> uint16
	convInt64           // INT64 -> int64, uint64, timestamp, time64 (same bits)
	convFloat           // FLOAT -> float32
	convDouble          // DOUBLE -> float64
	convBytes           // BYTE_ARRAY -> string, binary
	convFixed           // FIXED_LEN_BYTE_ARRAY -> fixed_size_binary
	convInt96           // INT96 -> timestamp[ns]
	convDecInt32        // DECIMAL on INT32 -> decimal128
	convDecInt64        // DECIMAL on INT64 -> decimal128
	convDecBytes        // DECIMAL on BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY -> decimal128
)

// column is one top-level, flat column of a file's schema.
type column struct {
	name     string
	leaf     int // index of the leaf column in the file (column chunk index)
	physical format.Type
	optional bool
	nested   bool        // list, map or struct
	plan     *nestedPlan // how to read it, or
	planErr  error       // why it cannot be read
	dt       arrow.DataType
	conv     conv
}

// fileColumns maps a file's schema to Arrow, one column per top-level field.
// Nested fields (lists, maps, structs) get their Arrow type, so the schema is
// complete, but conv 0: ReadSplit refuses to read them (ErrUnsupportedType
// naming the column) while the flat columns beside them read as usual.
func fileColumns(schema []format.SchemaElement) ([]column, error) {
	if len(schema) == 0 {
		return nil, fmt.Errorf("%w: empty schema", ErrCorrupt)
	}
	i, leaf := 0, 0
	root, err := buildTree(schema, &i, &leaf, 0)
	if err != nil {
		return nil, err
	}
	if i != len(schema) {
		return nil, fmt.Errorf("%w: schema has %d elements, the tree uses %d", ErrCorrupt, len(schema), i)
	}
	cols := make([]column, 0, len(root.children))
	for _, n := range root.children {
		c := column{
			name:     n.el.Name,
			leaf:     n.firstLeaf,
			optional: n.el.RepetitionType.Valid && n.el.RepetitionType.V == format.Optional,
		}
		if len(n.children) == 0 && !isRepeated(n.el) {
			c.physical = n.el.Type.V
			c.dt, c.conv, err = arrowType(n.el)
		} else {
			c.nested = true
			c.dt, _, err = nodeType(n)
			if err == nil {
				c.plan, c.planErr = planNested(n)
				if lt, ok := c.dt.(*arrow.ListType); ok && c.planErr == nil && isNestedType(lt.Elem()) {
					c.plan, c.planErr = nil, fmt.Errorf("%w: lists of nested values are not readable yet", ErrUnsupportedType)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", n.el.Name, err)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// node is a schema element with its children, rebuilt from the flattened
// depth-first list of the footer.
type node struct {
	el        format.SchemaElement
	children  []*node
	firstLeaf int
}

func buildTree(schema []format.SchemaElement, i, leaf *int, depth int) (*node, error) {
	if *i >= len(schema) {
		return nil, fmt.Errorf("%w: schema ends inside a group", ErrCorrupt)
	}
	if depth > 64 {
		return nil, fmt.Errorf("%w: schema nests deeper than 64", ErrCorrupt)
	}
	n := &node{el: schema[*i], firstLeaf: *leaf}
	*i++
	k := int(n.el.NumChildren.V)
	if k < 0 || k > len(schema) {
		return nil, fmt.Errorf("%w: element %q claims %d children", ErrCorrupt, n.el.Name, k)
	}
	if k == 0 && depth > 0 {
		if !n.el.Type.Valid {
			return nil, fmt.Errorf("%w: leaf %q without a physical type", ErrCorrupt, n.el.Name)
		}
		*leaf++
		return n, nil
	}
	for range k {
		c, err := buildTree(schema, i, leaf, depth+1)
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, c)
	}
	return n, nil
}

func isRepeated(el format.SchemaElement) bool {
	return el.RepetitionType.Valid && el.RepetitionType.V == format.Repeated
}

func isOptional(el format.SchemaElement) bool {
	return el.RepetitionType.Valid && el.RepetitionType.V == format.Optional
}

// nodeType is the Arrow type of a (possibly nested) field, following the
// Parquet LIST and MAP conventions and their backward-compatibility rules.
// It returns whether the field is nullable.
func nodeType(n *node) (arrow.DataType, bool, error) {
	nullable := isOptional(n.el)
	if isRepeated(n.el) {
		// A repeated field outside a LIST group is a required list of
		// required elements.
		elem, _, err := bareType(n)
		if err != nil {
			return nil, false, err
		}
		return arrow.ListOfNonNullable(elem), false, nil
	}
	dt, _, err := bareType(n)
	return dt, nullable, err
}

// bareType is the type of n ignoring its own repetition.
func bareType(n *node) (arrow.DataType, bool, error) {
	if len(n.children) == 0 {
		dt, _, err := arrowType(n.el)
		return dt, isOptional(n.el), err
	}
	_, isList := n.el.LogicalType.Value.(*format.ListType)
	_, isMap := n.el.LogicalType.Value.(*format.MapType)
	if ct, ok := n.el.ConvertedType.Get(); ok && n.el.LogicalType.Value == nil {
		isList = ct == deprecated.List
		isMap = ct == deprecated.Map || ct == deprecated.MapKeyValue
	}
	switch {
	case isList:
		if len(n.children) != 1 || !isRepeated(n.children[0].el) {
			return nil, false, fmt.Errorf("%w: LIST group %q without one repeated child", ErrCorrupt, n.el.Name)
		}
		r := n.children[0]
		var elem arrow.DataType
		elemNullable := false
		var err error
		switch {
		case len(r.children) == 0:
			elem, _, err = arrowType(r.el)
		case len(r.children) > 1 || r.el.Name == "array" || r.el.Name == n.el.Name+"_tuple":
			elem, err = structType(r)
		default:
			elem, elemNullable, err = nodeType(r.children[0])
		}
		if err != nil {
			return nil, false, err
		}
		if elemNullable {
			return arrow.ListOf(elem), true, nil
		}
		return arrow.ListOfNonNullable(elem), true, nil
	case isMap:
		if len(n.children) != 1 || len(n.children[0].children) != 2 {
			return nil, false, fmt.Errorf("%w: MAP group %q without a key_value group of two fields", ErrCorrupt, n.el.Name)
		}
		kv := n.children[0]
		key, _, err := nodeType(kv.children[0])
		if err != nil {
			return nil, false, err
		}
		item, _, err := nodeType(kv.children[1])
		if err != nil {
			return nil, false, err
		}
		return arrow.MapOf(key, item), true, nil
	}
	dt, err := structType(n)
	return dt, true, err
}

func structType(n *node) (arrow.DataType, error) {
	fields := make([]arrow.Field, 0, len(n.children))
	for _, c := range n.children {
		dt, nullable, err := nodeType(c)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: c.el.Name, Type: dt, Nullable: nullable})
	}
	return arrow.StructOf(fields...), nil
}

func arrowType(el format.SchemaElement) (arrow.DataType, conv, error) {
	if !el.Type.Valid {
		return nil, 0, fmt.Errorf("%w: leaf without a physical type", ErrCorrupt)
	}
	lt := el.LogicalType.Value
	ct, hasCT := el.ConvertedType.Get()
	precision, scale := int32(0), int32(0)
	isDecimal := false
	if d, ok := lt.(*format.DecimalType); ok {
		isDecimal, precision, scale = true, d.Precision, d.Scale
	} else if lt == nil && hasCT && ct == deprecated.Decimal {
		isDecimal, precision, scale = true, el.Precision.V, el.Scale.V
	}
	if isDecimal && (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
		return nil, 0, fmt.Errorf("%w: decimal(%d, %d) does not fit decimal128", ErrUnsupportedType, precision, scale)
	}
	decimal := &arrow.Decimal128Type{Precision: precision, Scale: scale}

	switch el.Type.V {
	case format.Boolean:
		return arrow.FixedWidthTypes.Boolean, convBool, nil

	case format.Int32:
		if isDecimal {
			return decimal, convDecInt32, nil
		}
		switch t := lt.(type) {
		case *format.IntType:
			switch {
			case t.BitWidth == 8 && t.IsSigned:
				return arrow.PrimitiveTypes.Int8, convInt32To8, nil
			case t.BitWidth == 16 && t.IsSigned:
				return arrow.PrimitiveTypes.Int16, convInt32To16, nil
			case t.BitWidth == 32 && t.IsSigned:
				return arrow.PrimitiveTypes.Int32, convInt32, nil
			case t.BitWidth == 8:
				return arrow.PrimitiveTypes.Uint8, convInt32ToU8, nil
			case t.BitWidth == 16:
				return arrow.PrimitiveTypes.Uint16, convInt32ToU16, nil
			case t.BitWidth == 32:
				return arrow.PrimitiveTypes.Uint32, convInt32, nil
			}
		case *format.DateType:
			return arrow.FixedWidthTypes.Date32, convInt32, nil
		case *format.TimeType:
			if _, ok := t.Unit.Value.(*format.MilliSeconds); ok {
				return arrow.FixedWidthTypes.Time32ms, convInt32, nil
			}
		case nil:
			if hasCT {
				switch ct {
				case deprecated.Int8:
					return arrow.PrimitiveTypes.Int8, convInt32To8, nil
				case deprecated.Int16:
					return arrow.PrimitiveTypes.Int16, convInt32To16, nil
				case deprecated.Uint8:
					return arrow.PrimitiveTypes.Uint8, convInt32ToU8, nil
				case deprecated.Uint16:
					return arrow.PrimitiveTypes.Uint16, convInt32ToU16, nil
				case deprecated.Uint32:
					return arrow.PrimitiveTypes.Uint32, convInt32, nil
				case deprecated.Date:
					return arrow.FixedWidthTypes.Date32, convInt32, nil
				case deprecated.TimeMillis:
					return arrow.FixedWidthTypes.Time32ms, convInt32, nil
				}
			}
			return arrow.PrimitiveTypes.Int32, convInt32, nil
		}
		return nil, 0, fmt.Errorf("%w: INT32 annotated %s", ErrUnsupportedType, lt)

	case format.Int64:
		if isDecimal {
			return decimal, convDecInt64, nil
		}
		switch t := lt.(type) {
		case *format.IntType:
			if t.BitWidth == 64 {
				if t.IsSigned {
					return arrow.PrimitiveTypes.Int64, convInt64, nil
				}
				return arrow.PrimitiveTypes.Uint64, convInt64, nil
			}
		case *format.TimestampType:
			unit, ok := timeUnit(t.Unit)
			if ok {
				tz := ""
				if t.IsAdjustedToUTC {
					tz = "UTC"
				}
				return &arrow.TimestampType{Unit: unit, TimeZone: tz}, convInt64, nil
			}
		case *format.TimeType:
			switch t.Unit.Value.(type) {
			case *format.MicroSeconds:
				return arrow.FixedWidthTypes.Time64us, convInt64, nil
			case *format.NanoSeconds:
				return arrow.FixedWidthTypes.Time64ns, convInt64, nil
			}
		case nil:
			if hasCT {
				switch ct {
				case deprecated.Uint64:
					return arrow.PrimitiveTypes.Uint64, convInt64, nil
				case deprecated.TimestampMillis:
					return &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, convInt64, nil
				case deprecated.TimestampMicros:
					return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, convInt64, nil
				case deprecated.TimeMicros:
					return arrow.FixedWidthTypes.Time64us, convInt64, nil
				}
			}
			return arrow.PrimitiveTypes.Int64, convInt64, nil
		}
		return nil, 0, fmt.Errorf("%w: INT64 annotated %s", ErrUnsupportedType, lt)

	case format.Int96:
		return &arrow.TimestampType{Unit: arrow.Nanosecond}, convInt96, nil

	case format.Float:
		return arrow.PrimitiveTypes.Float32, convFloat, nil

	case format.Double:
		return arrow.PrimitiveTypes.Float64, convDouble, nil

	case format.ByteArray:
		if isDecimal {
			return decimal, convDecBytes, nil
		}
		switch lt.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return arrow.BinaryTypes.String, convBytes, nil
		case *format.BsonType:
			return arrow.BinaryTypes.Binary, convBytes, nil
		case nil:
			if hasCT && (ct == deprecated.UTF8 || ct == deprecated.Enum || ct == deprecated.Json) {
				return arrow.BinaryTypes.String, convBytes, nil
			}
			return arrow.BinaryTypes.Binary, convBytes, nil
		}
		return nil, 0, fmt.Errorf("%w: BYTE_ARRAY annotated %s", ErrUnsupportedType, lt)

	case format.FixedLenByteArray:
		if isDecimal {
			if el.TypeLength.V > 16 {
				return nil, 0, fmt.Errorf("%w: decimal stored in %d bytes", ErrUnsupportedType, el.TypeLength.V)
			}
			return decimal, convDecBytes, nil
		}
		switch lt.(type) {
		case nil, *format.UUIDType:
			if el.TypeLength.V <= 0 {
				return nil, 0, fmt.Errorf("%w: FIXED_LEN_BYTE_ARRAY of length %d", ErrCorrupt, el.TypeLength.V)
			}
			return &arrow.FixedSizeBinaryType{ByteWidth: int(el.TypeLength.V)}, convFixed, nil
		}
		return nil, 0, fmt.Errorf("%w: FIXED_LEN_BYTE_ARRAY annotated %s", ErrUnsupportedType, lt)
	}
	return nil, 0, fmt.Errorf("%w: physical type %s", ErrUnsupportedType, el.Type.V)
}

func timeUnit(u format.TimeUnit) (arrow.TimeUnit, bool) {
	switch u.Value.(type) {
	case *format.MilliSeconds:
		return arrow.Millisecond, true
	case *format.MicroSeconds:
		return arrow.Microsecond, true
	case *format.NanoSeconds:
		return arrow.Nanosecond, true
	}
	return 0, false
}

func isNestedType(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.STRUCT, arrow.MAP:
		return true
	}
	return false
}
