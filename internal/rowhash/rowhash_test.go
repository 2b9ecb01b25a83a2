package rowhash

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/cespare/xxhash/v2"
)

// One row over a column of every class hashes to XXH64 of the bytes doc.go
// writes out, built here by hand.
func TestColumnsFollowsTheDocumentedRecipe(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	le := binary.LittleEndian
	var cols []arrow.Array
	var want []byte
	add := func(dt arrow.DataType, appendValue func(b array.Builder), bytes ...byte) {
		b := array.NewBuilder(mem, dt)
		defer b.Release()
		appendValue(b)
		cols = append(cols, b.NewArray())
		want = append(want, bytes...)
	}
	add(arrow.FixedWidthTypes.Boolean, func(b array.Builder) { b.(*array.BooleanBuilder).Append(true) }, 1, 1)
	add(arrow.PrimitiveTypes.Int8, func(b array.Builder) { b.(*array.Int8Builder).Append(-2) }, le.AppendUint64([]byte{1}, uint64(math.MaxUint64-1))...)
	add(arrow.PrimitiveTypes.Uint16, func(b array.Builder) { b.(*array.Uint16Builder).Append(65535) }, le.AppendUint64([]byte{1}, 65535)...)
	add(arrow.PrimitiveTypes.Float32, func(b array.Builder) { b.(*array.Float32Builder).Append(float32(math.Copysign(0, -1))) }, le.AppendUint64([]byte{1}, 0)...)
	add(arrow.PrimitiveTypes.Float64, func(b array.Builder) { b.(*array.Float64Builder).Append(-math.NaN()) }, le.AppendUint64([]byte{1}, 0x7ff8000000000000)...)
	add(&arrow.Decimal128Type{Precision: 38, Scale: 3}, func(b array.Builder) { b.(*array.Decimal128Builder).Append(decimal128.FromI64(-3)) },
		le.AppendUint64(le.AppendUint64([]byte{1}, uint64(math.MaxUint64-2)), math.MaxUint64)...)
	add(arrow.BinaryTypes.LargeString, func(b array.Builder) { b.(*array.LargeStringBuilder).Append("héllo") }, append(le.AppendUint32([]byte{1}, 6), "héllo"...)...)
	add(arrow.FixedWidthTypes.Time32ms, func(b array.Builder) { b.(*array.Time32Builder).Append(5) }, le.AppendUint64([]byte{1}, 5)...)
	add(arrow.FixedWidthTypes.Timestamp_ns, func(b array.Builder) { b.AppendNull() }, 0)
	cols = append(cols, array.NewNull(1))
	want = append(want, 0)
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	out := make([]uint64, 1)
	if err := Columns(cols, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != xxhash.Sum64(want) {
		t.Fatalf("hash %016x, recipe gives %016x", out[0], xxhash.Sum64(want))
	}
}

func TestColumnsRefusesWhatItCannotHashNamingTheType(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, dt := range []arrow.DataType{
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String},
		arrow.ListOf(arrow.PrimitiveTypes.Int64),
		arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64}),
	} {
		if Supports(dt) {
			t.Errorf("Supports(%s) = true", dt)
		}
		b := array.NewBuilder(mem, dt)
		b.AppendNull()
		a := b.NewArray()
		b.Release()
		out := []uint64{42}
		err := Columns([]arrow.Array{a}, out)
		a.Release()
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), dt.String()) || out[0] != 42 {
			t.Errorf("%s: err %v, out %v; want ErrUnsupported naming the type and out untouched", dt, err, out)
		}
	}
}
