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
	dt       arrow.DataType
	conv     conv
}

// fileColumns maps a file's flat schema to Arrow. Nested columns (groups,
// repeated fields) are refused with ErrUnsupportedType naming the column.
func fileColumns(schema []format.SchemaElement) ([]column, error) {
	if len(schema) == 0 {
		return nil, fmt.Errorf("%w: empty schema", ErrCorrupt)
	}
	root := schema[0]
	n := int(root.NumChildren.V)
	var cols []column
	leaf := 0
	i := 1
	for c := 0; c < n; c++ {
		if i >= len(schema) {
			return nil, fmt.Errorf("%w: schema has %d elements, root claims %d children", ErrCorrupt, len(schema), n)
		}
		el := schema[i]
		if el.NumChildren.V > 0 || (el.RepetitionType.Valid && el.RepetitionType.V == format.Repeated) {
			return nil, fmt.Errorf("%w: column %q is nested (list, map or struct); nested types are unsupported", ErrUnsupportedType, el.Name)
		}
		dt, cv, err := arrowType(el)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", el.Name, err)
		}
		cols = append(cols, column{
			name:     el.Name,
			leaf:     leaf,
			physical: el.Type.V,
			optional: el.RepetitionType.Valid && el.RepetitionType.V == format.Optional,
			dt:       dt,
			conv:     cv,
		})
		leaf++
		i++
	}
	return cols, nil
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
