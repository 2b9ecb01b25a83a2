package dataset

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Struct mapping for FromStructs and CollectStructs. Exported fields map to
// columns named by the `sluice:"name"` tag or else the snake_case field name
// (OrderID -> order_id). Pointer fields are nullable. time.Time is
// timestamp[us, tz=UTC], or date32 with the tag option `sluice:"day,date"`.
// Reflection runs per value: these are for small data and tests, not hot paths.

type structField struct {
	index []int
	name  string
	date  bool
}

func structFields(t reflect.Type) ([]structField, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("dataset: %s is not a struct", t)
	}
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		sf := structField{index: f.Index, name: snake(f.Name)}
		if tag, ok := f.Tag.Lookup("sluice"); ok {
			parts := strings.Split(tag, ",")
			if parts[0] == "-" {
				continue
			}
			if parts[0] != "" {
				sf.name = parts[0]
			}
			for _, o := range parts[1:] {
				sf.date = sf.date || o == "date"
			}
		}
		out = append(out, sf)
	}
	return out, nil
}

func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
			(i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

var timeType = reflect.TypeOf(time.Time{})

func arrowTypeOf(t reflect.Type, date bool) (arrow.DataType, error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		if date {
			return arrow.FixedWidthTypes.Date32, nil
		}
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return arrow.FixedWidthTypes.Boolean, nil
	case reflect.Int8:
		return arrow.PrimitiveTypes.Int8, nil
	case reflect.Int16:
		return arrow.PrimitiveTypes.Int16, nil
	case reflect.Int32:
		return arrow.PrimitiveTypes.Int32, nil
	case reflect.Int, reflect.Int64:
		return arrow.PrimitiveTypes.Int64, nil
	case reflect.Uint8:
		return arrow.PrimitiveTypes.Uint8, nil
	case reflect.Uint16:
		return arrow.PrimitiveTypes.Uint16, nil
	case reflect.Uint32:
		return arrow.PrimitiveTypes.Uint32, nil
	case reflect.Uint, reflect.Uint64:
		return arrow.PrimitiveTypes.Uint64, nil
	case reflect.Float32:
		return arrow.PrimitiveTypes.Float32, nil
	case reflect.Float64:
		return arrow.PrimitiveTypes.Float64, nil
	case reflect.String:
		return arrow.BinaryTypes.String, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return arrow.BinaryTypes.Binary, nil
		}
	}
	return nil, fmt.Errorf("dataset: unsupported field type %s", t)
}

// FromStructs makes a Dataset of the given rows. Its records live on the Go
// heap (not the Config allocator), so nothing needs releasing.
func FromStructs[T any](rows []T) *Dataset {
	rt := reflect.TypeOf((*T)(nil)).Elem()
	fields, err := structFields(rt)
	if err != nil {
		return errDataset(err)
	}
	afs := make([]arrow.Field, len(fields))
	for i, f := range fields {
		t, err := arrowTypeOf(rt.FieldByIndex(f.index).Type, f.date)
		if err != nil {
			return errDataset(fmt.Errorf("from structs: field %s: %w", rt.FieldByIndex(f.index).Name, err))
		}
		afs[i] = arrow.Field{Name: f.name, Type: t, Nullable: true}
	}
	schema := arrow.NewSchema(afs, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for _, row := range rows {
		v := reflect.ValueOf(row)
		for i, f := range fields {
			appendValue(b.Field(i), v.FieldByIndex(f.index))
		}
	}
	rec := b.NewRecord()
	return FromRecords(schema, rec)
}

func appendValue(b array.Builder, v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			b.AppendNull()
			return
		}
		v = v.Elem()
	}
	switch bb := b.(type) {
	case *array.BooleanBuilder:
		bb.Append(v.Bool())
	case *array.Int8Builder:
		bb.Append(int8(v.Int()))
	case *array.Int16Builder:
		bb.Append(int16(v.Int()))
	case *array.Int32Builder:
		bb.Append(int32(v.Int()))
	case *array.Int64Builder:
		bb.Append(v.Int())
	case *array.Uint8Builder:
		bb.Append(uint8(v.Uint()))
	case *array.Uint16Builder:
		bb.Append(uint16(v.Uint()))
	case *array.Uint32Builder:
		bb.Append(uint32(v.Uint()))
	case *array.Uint64Builder:
		bb.Append(v.Uint())
	case *array.Float32Builder:
		bb.Append(float32(v.Float()))
	case *array.Float64Builder:
		bb.Append(v.Float())
	case *array.StringBuilder:
		bb.Append(v.String())
	case *array.BinaryBuilder:
		bb.Append(v.Bytes())
	case *array.Date32Builder:
		bb.Append(arrow.Date32FromTime(v.Interface().(time.Time)))
	case *array.TimestampBuilder:
		bb.Append(arrow.Timestamp(v.Interface().(time.Time).UnixMicro()))
	}
}

// CollectStructs runs d and converts each row into a T, matching columns to
// fields by name (see FromStructs). A null into a non-pointer field, or a
// column type that does not fit the field, is an error naming both.
func CollectStructs[T any](ctx context.Context, d *Dataset) ([]T, error) {
	rt := reflect.TypeOf((*T)(nil)).Elem()
	fields, err := structFields(rt)
	if err != nil {
		return nil, err
	}
	recs, err := d.collect(ctx)
	if err != nil {
		return nil, err
	}
	defer releaseAll(recs)
	cols := make([]int, len(fields))
	for i, f := range fields {
		idx := d.node.Schema.FieldIndices(f.name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("collect structs: field %s wants column %q; columns are %s", rt.FieldByIndex(f.index).Name, f.name, names(d.node.Schema))
		}
		cols[i] = idx[0]
	}
	var out []T
	for _, rec := range recs {
		for r := 0; r < int(rec.NumRows()); r++ {
			var row T
			v := reflect.ValueOf(&row).Elem()
			for i, f := range fields {
				if err := setValue(v.FieldByIndex(f.index), rec.Column(cols[i]), r); err != nil {
					return nil, fmt.Errorf("collect structs: column %q into field %s: %w", f.name, rt.FieldByIndex(f.index).Name, err)
				}
			}
			out = append(out, row)
		}
	}
	return out, nil
}

func setValue(fv reflect.Value, arr arrow.Array, i int) error {
	if arr.IsNull(i) {
		if fv.Kind() != reflect.Pointer {
			return fmt.Errorf("row %d is null and the field is not a pointer", i)
		}
		fv.SetZero()
		return nil
	}
	if fv.Kind() == reflect.Pointer {
		fv.Set(reflect.New(fv.Type().Elem()))
		fv = fv.Elem()
	}
	bad := func() error { return fmt.Errorf("cannot store %s in %s", arr.DataType(), fv.Type()) }
	switch a := arr.(type) {
	case *array.Boolean:
		if fv.Kind() != reflect.Bool {
			return bad()
		}
		fv.SetBool(a.Value(i))
	case *array.Int8, *array.Int16, *array.Int32, *array.Int64:
		var x int64
		switch a := a.(type) {
		case *array.Int8:
			x = int64(a.Value(i))
		case *array.Int16:
			x = int64(a.Value(i))
		case *array.Int32:
			x = int64(a.Value(i))
		case *array.Int64:
			x = a.Value(i)
		}
		switch fv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if fv.OverflowInt(x) {
				return fmt.Errorf("row %d: %d overflows %s", i, x, fv.Type())
			}
			fv.SetInt(x)
		case reflect.Float32, reflect.Float64:
			fv.SetFloat(float64(x))
		default:
			return bad()
		}
	case *array.Uint8, *array.Uint16, *array.Uint32, *array.Uint64:
		var x uint64
		switch a := a.(type) {
		case *array.Uint8:
			x = uint64(a.Value(i))
		case *array.Uint16:
			x = uint64(a.Value(i))
		case *array.Uint32:
			x = uint64(a.Value(i))
		case *array.Uint64:
			x = a.Value(i)
		}
		switch fv.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if fv.OverflowUint(x) {
				return fmt.Errorf("row %d: %d overflows %s", i, x, fv.Type())
			}
			fv.SetUint(x)
		default:
			return bad()
		}
	case *array.Float32:
		if fv.Kind() != reflect.Float32 && fv.Kind() != reflect.Float64 {
			return bad()
		}
		fv.SetFloat(float64(a.Value(i)))
	case *array.Float64:
		if fv.Kind() != reflect.Float32 && fv.Kind() != reflect.Float64 {
			return bad()
		}
		fv.SetFloat(a.Value(i))
	case *array.String:
		if fv.Kind() != reflect.String {
			return bad()
		}
		fv.SetString(a.Value(i))
	case *array.Binary:
		if fv.Kind() != reflect.Slice || fv.Type().Elem().Kind() != reflect.Uint8 {
			return bad()
		}
		fv.SetBytes(append([]byte(nil), a.Value(i)...))
	case *array.Date32:
		if fv.Type() != timeType {
			return bad()
		}
		fv.Set(reflect.ValueOf(a.Value(i).ToTime().UTC()))
	case *array.Timestamp:
		if fv.Type() != timeType {
			return bad()
		}
		unit := a.DataType().(*arrow.TimestampType).Unit
		fv.Set(reflect.ValueOf(a.Value(i).ToTime(unit).UTC()))
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		switch fv.Kind() {
		case reflect.Float64, reflect.Float32:
			fv.SetFloat(a.Value(i).ToFloat64(scale))
		case reflect.String:
			fv.SetString(decimalString(a.Value(i), scale))
		default:
			return bad()
		}
	default:
		return bad()
	}
	return nil
}

func decimalString(n decimal128.Num, scale int32) string {
	return n.ToString(scale)
}
