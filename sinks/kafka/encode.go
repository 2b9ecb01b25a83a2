package kafka

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// appendFunc appends the JSON text of row i of the array it was made for.
// It is built once per column per record, so the type switch runs per
// column and only the value formatting runs per row.
type appendFunc func(dst []byte, i int) []byte

// checkJSONType reports whether dt can be rendered as JSON, naming the
// offending (nested) type otherwise.
func checkJSONType(dt arrow.DataType) error {
	switch t := dt.(type) {
	case arrow.ListLikeType:
		return checkJSONType(t.Elem())
	case *arrow.StructType:
		for _, f := range t.Fields() {
			if err := checkJSONType(f.Type); err != nil {
				return err
			}
		}
		return nil
	case *arrow.DictionaryType:
		return checkJSONType(t.ValueType)
	case *arrow.RunEndEncodedType:
		return checkJSONType(t.Encoded())
	case arrow.ExtensionType:
		return checkJSONType(t.StorageType())
	}
	switch dt.ID() {
	case arrow.NULL, arrow.BOOL,
		arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW,
		arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION,
		arrow.INTERVAL_MONTHS, arrow.INTERVAL_DAY_TIME, arrow.INTERVAL_MONTH_DAY_NANO,
		arrow.DECIMAL128, arrow.DECIMAL256,
		arrow.SPARSE_UNION, arrow.DENSE_UNION:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnsupportedType, dt)
}

// newAppender returns the JSON renderer of arr. Types render as:
//
//	null                       null (any null value)
//	bool, ints, floats         JSON numbers and booleans; NaN and ±Inf as the
//	                           strings "NaN", "Infinity", "-Infinity"
//	strings                    JSON strings (invalid UTF-8 becomes U+FFFD)
//	binary                     base64 (standard, padded) strings
//	decimal128/256             strings with the type's scale ("12.30"), so no
//	                           precision is lost to float64
//	timestamp                  RFC 3339 strings with nanoseconds as needed, in
//	                           the type's time zone (UTC, "Z", when none)
//	date32/64                  "2006-01-02"; time32/64 "15:04:05.999999999"
//	duration                   Go duration strings ("1h2m3.5s")
//	intervals                  objects {"months","days","nanoseconds"} (the
//	                           fields the interval type has)
//	lists                      arrays; structs objects; maps objects when the
//	                           key type is a string, else arrays of
//	                           {"key","value"}
//	dictionary, run-end        the decoded value; extensions their storage
//	unions                     arrow's own JSON form of the value
func newAppender(arr arrow.Array) (appendFunc, error) {
	if err := checkJSONType(arr.DataType()); err != nil {
		return nil, err
	}
	return appender(arr), nil
}

func appender(arr arrow.Array) appendFunc {
	null := func(f appendFunc) appendFunc {
		if arr.NullN() == 0 {
			return f
		}
		return func(dst []byte, i int) []byte {
			if arr.IsNull(i) {
				return append(dst, "null"...)
			}
			return f(dst, i)
		}
	}
	switch a := arr.(type) {
	case *array.Null:
		return func(dst []byte, _ int) []byte { return append(dst, "null"...) }
	case *array.Boolean:
		return null(func(dst []byte, i int) []byte { return strconv.AppendBool(dst, a.Value(i)) })
	case *array.Int8:
		return null(func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) })
	case *array.Int16:
		return null(func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) })
	case *array.Int32:
		return null(func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) })
	case *array.Int64:
		vs := a.Int64Values()
		return null(func(dst []byte, i int) []byte { return strconv.AppendInt(dst, vs[i], 10) })
	case *array.Uint8:
		return null(func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) })
	case *array.Uint16:
		return null(func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) })
	case *array.Uint32:
		return null(func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) })
	case *array.Uint64:
		return null(func(dst []byte, i int) []byte { return strconv.AppendUint(dst, a.Value(i), 10) })
	case *array.Float16:
		return null(func(dst []byte, i int) []byte { return appendFloat(dst, float64(a.Value(i).Float32()), 32) })
	case *array.Float32:
		return null(func(dst []byte, i int) []byte { return appendFloat(dst, float64(a.Value(i)), 32) })
	case *array.Float64:
		vs := a.Float64Values()
		return null(func(dst []byte, i int) []byte { return appendFloat(dst, vs[i], 64) })
	case *array.String:
		return null(func(dst []byte, i int) []byte { return appendString(dst, a.Value(i)) })
	case *array.LargeString:
		return null(func(dst []byte, i int) []byte { return appendString(dst, a.Value(i)) })
	case *array.StringView:
		return null(func(dst []byte, i int) []byte { return appendString(dst, a.Value(i)) })
	case *array.Binary:
		return null(func(dst []byte, i int) []byte { return appendBase64(dst, a.Value(i)) })
	case *array.LargeBinary:
		return null(func(dst []byte, i int) []byte { return appendBase64(dst, a.Value(i)) })
	case *array.BinaryView:
		return null(func(dst []byte, i int) []byte { return appendBase64(dst, a.Value(i)) })
	case *array.FixedSizeBinary:
		return null(func(dst []byte, i int) []byte { return appendBase64(dst, a.Value(i)) })
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		return null(func(dst []byte, i int) []byte { return strconv.AppendQuote(dst, a.Value(i).ToString(scale)) })
	case *array.Decimal256:
		scale := a.DataType().(*arrow.Decimal256Type).Scale
		return null(func(dst []byte, i int) []byte { return strconv.AppendQuote(dst, a.Value(i).ToString(scale)) })
	case *array.Timestamp:
		dt := a.DataType().(*arrow.TimestampType)
		toTime, err := dt.GetToTimeFunc()
		if err != nil { // an unknown zone name: render in UTC rather than fail a batch
			toTime = func(v arrow.Timestamp) time.Time { return v.ToTime(dt.Unit).UTC() }
		}
		return null(func(dst []byte, i int) []byte { return appendTime(dst, toTime(a.Value(i)), time.RFC3339Nano) })
	case *array.Date32:
		return null(func(dst []byte, i int) []byte { return appendTime(dst, a.Value(i).ToTime(), time.DateOnly) })
	case *array.Date64:
		return null(func(dst []byte, i int) []byte { return appendTime(dst, a.Value(i).ToTime(), time.DateOnly) })
	case *array.Time32:
		unit := a.DataType().(*arrow.Time32Type).Unit
		return null(func(dst []byte, i int) []byte {
			return appendTime(dst, a.Value(i).ToTime(unit), "15:04:05.999999999")
		})
	case *array.Time64:
		unit := a.DataType().(*arrow.Time64Type).Unit
		return null(func(dst []byte, i int) []byte {
			return appendTime(dst, a.Value(i).ToTime(unit), "15:04:05.999999999")
		})
	case *array.Duration:
		unit := a.DataType().(*arrow.DurationType).Unit
		return null(func(dst []byte, i int) []byte { return appendDuration(dst, int64(a.Value(i)), unit) })
	case *array.MonthInterval:
		return null(func(dst []byte, i int) []byte {
			dst = append(dst, `{"months":`...)
			return append(strconv.AppendInt(dst, int64(a.Value(i)), 10), '}')
		})
	case *array.DayTimeInterval:
		return null(func(dst []byte, i int) []byte {
			v := a.Value(i)
			dst = append(dst, `{"days":`...)
			dst = strconv.AppendInt(dst, int64(v.Days), 10)
			dst = append(dst, `,"milliseconds":`...)
			return append(strconv.AppendInt(dst, int64(v.Milliseconds), 10), '}')
		})
	case *array.MonthDayNanoInterval:
		return null(func(dst []byte, i int) []byte {
			v := a.Value(i)
			dst = append(dst, `{"months":`...)
			dst = strconv.AppendInt(dst, int64(v.Months), 10)
			dst = append(dst, `,"days":`...)
			dst = strconv.AppendInt(dst, int64(v.Days), 10)
			dst = append(dst, `,"nanoseconds":`...)
			return append(strconv.AppendInt(dst, v.Nanoseconds, 10), '}')
		})
	case *array.Map:
		return null(mapAppender(a))
	case array.ListLike: // list, large list, fixed-size list, list views
		elem := appender(a.ListValues())
		return null(func(dst []byte, i int) []byte {
			start, end := a.ValueOffsets(i)
			dst = append(dst, '[')
			for j := start; j < end; j++ {
				if j > start {
					dst = append(dst, ',')
				}
				dst = elem(dst, int(j))
			}
			return append(dst, ']')
		})
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		names := make([][]byte, a.NumField())
		fields := make([]appendFunc, a.NumField())
		for j := range fields {
			names[j] = append(appendString(nil, st.Field(j).Name), ':')
			fields[j] = appender(a.Field(j))
		}
		return null(func(dst []byte, i int) []byte {
			dst = append(dst, '{')
			for j, f := range fields {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, names[j]...)
				dst = f(dst, i)
			}
			return append(dst, '}')
		})
	case *array.Dictionary:
		values := appender(a.Dictionary())
		return null(func(dst []byte, i int) []byte { return values(dst, a.GetValueIndex(i)) })
	case *array.RunEndEncoded:
		values := appender(a.Values())
		return func(dst []byte, i int) []byte { return values(dst, a.GetPhysicalIndex(i)) }
	case array.ExtensionArray:
		return appender(a.Storage())
	}
	// Unions: rare in query output; arrow's marshaller knows their layout.
	return null(func(dst []byte, i int) []byte {
		b, err := json.Marshal(arr.GetOneForMarshal(i))
		if err != nil {
			return strconv.AppendQuote(dst, arr.ValueStr(i))
		}
		return append(dst, b...)
	})
}

// mapAppender renders a map as an object when its keys are strings (the
// common case: attributes, labels) and as [{"key":k,"value":v}] otherwise,
// since JSON object keys must be strings.
func mapAppender(a *array.Map) appendFunc {
	keys, items := a.Keys(), a.Items()
	key, item := appender(keys), appender(items)
	stringKeys := false
	switch keys.DataType().ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		stringKeys = true
	}
	return func(dst []byte, i int) []byte {
		start, end := a.ValueOffsets(i)
		if stringKeys {
			dst = append(dst, '{')
		} else {
			dst = append(dst, '[')
		}
		for j := int(start); j < int(end); j++ {
			if j > int(start) {
				dst = append(dst, ',')
			}
			if stringKeys {
				dst = key(dst, j)
				dst = append(dst, ':')
				dst = item(dst, j)
				continue
			}
			dst = append(dst, `{"key":`...)
			dst = key(dst, j)
			dst = append(dst, `,"value":`...)
			dst = append(item(dst, j), '}')
		}
		if stringKeys {
			return append(dst, '}')
		}
		return append(dst, ']')
	}
}

func appendFloat(dst []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(dst, `"-Infinity"`...)
	}
	// Like encoding/json: plain notation for ordinary magnitudes.
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, v, format, -1, bits)
}

func appendTime(dst []byte, t time.Time, layout string) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, layout)
	return append(dst, '"')
}

func appendDuration(dst []byte, v int64, unit arrow.TimeUnit) []byte {
	mult := int64(unit.Multiplier())
	if v > math.MaxInt64/mult || v < math.MinInt64/mult { // beyond ±292 years in ns
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, v, 10)
		dst = append(dst, unit.String()...)
		return append(dst, '"')
	}
	return strconv.AppendQuote(dst, time.Duration(v*mult).String())
}

func appendBase64(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// (without its HTML escaping) and replacing invalid UTF-8 with U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// rawBytes returns how a key or value column's row goes on the wire:
// strings and binaries as their bytes, anything else as its JSON text
// (strings of that text unquoted, so a timestamp key is 2024-01-02T..., not
// "2024-01-02T..."). Null is nil.
type rawFunc func(dst []byte, i int) (out []byte, null bool)

func newRawFunc(arr arrow.Array) (rawFunc, error) {
	switch a := arr.(type) {
	case *array.String:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	case *array.LargeString:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	case *array.StringView:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	case *array.Binary:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	case *array.LargeBinary:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	case *array.BinaryView:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	case *array.FixedSizeBinary:
		return func(dst []byte, i int) ([]byte, bool) { return append(dst, a.Value(i)...), a.IsNull(i) }, nil
	}
	js, err := newAppender(arr)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, i int) ([]byte, bool) {
		if arr.IsNull(i) {
			return dst, true
		}
		n := len(dst)
		dst = js(dst, i)
		if dst[n] == '"' {
			var s string
			if json.Unmarshal(dst[n:], &s) == nil {
				dst = append(dst[:n], s...)
			}
		}
		return dst, false
	}, nil
}
