package state

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// rewriteMetadata returns the state file data with schema metadata key set
// (or added) to val, everything else unchanged.
func rewriteMetadata(t *testing.T, mem memory.Allocator, data []byte, key, val string) []byte {
	t.Helper()
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	md := r.Schema().Metadata()
	keys, vals := slices.Clone(md.Keys()), slices.Clone(md.Values())
	if i := md.FindKey(key); i >= 0 {
		vals[i] = val
	} else {
		keys, vals = append(keys, key), append(vals, val)
	}
	nmd := arrow.NewMetadata(keys, vals)
	sch := arrow.NewSchema(r.Schema().Fields(), &nmd)
	var out seekBuffer
	w, err := ipc.NewFileWriter(&out, ipc.WithSchema(sch), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordAt(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.b
}

var allTypes = arrow.NewSchema([]arrow.Field{
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
	{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	{Name: "d32", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 20, Scale: 2}, Nullable: true},
	{Name: "fsb", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}, Nullable: true},
}, nil)

// allTypesRecord has row i with value i (negative for odd i) in every
// column, and nulls in column i%len(fields) of every fifth row.
func allTypesRecord(mem memory.Allocator, n int) arrow.Record {
	b := array.NewRecordBuilder(mem, allTypes)
	defer b.Release()
	for i := 0; i < n; i++ {
		v := int64(i)
		if i%2 == 1 {
			v = -v
		}
		for j, f := range b.Fields() {
			if i%5 == 0 && j == (i/5)%len(b.Fields()) {
				f.AppendNull()
				continue
			}
			switch f := f.(type) {
			case *array.Int8Builder:
				f.Append(int8(v))
			case *array.Int16Builder:
				f.Append(int16(v))
			case *array.Int32Builder:
				f.Append(int32(v))
			case *array.Int64Builder:
				f.Append(v << 40)
			case *array.Uint8Builder:
				f.Append(uint8(i))
			case *array.Uint16Builder:
				f.Append(uint16(i))
			case *array.Uint32Builder:
				f.Append(uint32(i))
			case *array.Uint64Builder:
				f.Append(uint64(i) << 60)
			case *array.Float32Builder:
				f.Append(float32(v) / 3)
			case *array.Float64Builder:
				f.Append(float64(v) / 7)
			case *array.BooleanBuilder:
				f.Append(i%3 == 0)
			case *array.StringBuilder:
				f.Append(string(rune('a' + i%26)))
			case *array.BinaryBuilder:
				f.Append([]byte{byte(i), 0, byte(i >> 8)})
			case *array.LargeStringBuilder:
				f.Append(string(rune('A' + i%26)))
			case *array.Date32Builder:
				f.Append(arrow.Date32(v))
			case *array.TimestampBuilder:
				f.Append(arrow.Timestamp(v * 1e6))
			case *array.Decimal128Builder:
				f.Append(decimal128.FromI64(v * 12345))
			case *array.FixedSizeBinaryBuilder:
				f.Append([]byte{byte(i), byte(i >> 8), 7})
			default:
				panic(f)
			}
		}
	}
	return b.NewRecord()
}

// TestEveryKeyTypeRoundTrips puts keys of every supported type (with
// nulls), commits, reopens, and checks that scanning gives the same rows
// in key-byte order and that every key is found again.
func TestEveryKeyTypeRoundTrips(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := Config{FS: fs, Dir: "/st", StoreSpec: StoreSpec{Operator: "op", KeyGroups: 4, Lo: 0, Hi: 4,
		KeySchema: allTypes, ValueSchema: allTypes.WithEndianness(allTypes.Endianness()), Allocator: mem}}
	// Values reuse the types under other names.
	var vf []arrow.Field
	for _, f := range allTypes.Fields() {
		f.Name = "v_" + f.Name
		vf = append(vf, f)
	}
	cfg.ValueSchema = arrow.NewSchema(vf, nil)
	const n = 500
	keys := allTypesRecord(mem, n)
	defer keys.Release()
	vals := array.NewRecord(cfg.ValueSchema, keys.Columns(), keys.NumRows())
	defer vals.Release()
	s, err := testOpen(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(keys, vals, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = testOpen(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != n {
		t.Fatalf("Len %d, want %d distinct keys", s.Len(), n)
	}
	buf, offs := keyCodec(t, keys).encode(keys.Columns(), n, nil, nil)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	slices.SortFunc(perm, func(a, b int) int { return bytes.Compare(buf[offs[a]:offs[a+1]], buf[offs[b]:offs[b+1]]) })
	row := 0
	err = s.Scan(func(k, v arrow.Record) error {
		for i := 0; i < int(k.NumRows()); i++ {
			src := perm[row]
			for j := 0; j < int(k.NumCols()); j++ {
				if g, w := k.Column(j).ValueStr(i), keys.Column(j).ValueStr(src); g != w {
					t.Errorf("key row %d column %s: %s, want %s", row, allTypes.Field(j).Name, g, w)
				}
				if g, w := v.Column(j).ValueStr(i), keys.Column(j).ValueStr(src); g != w {
					t.Errorf("value row %d column %s: %s, want %s", row, allTypes.Field(j).Name, g, w)
				}
			}
			row++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slots := make([]int32, n)
	if err := s.Lookup(keys, slots); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(slots, -1) {
		t.Fatalf("a key was not found again: %v", slots)
	}
}

// TestIntegerKeysSortNumerically: canonical bytes order signed integers,
// timestamps and floats by value, so scans come out in that order.
func TestIntegerKeysSortNumerically(t *testing.T) {
	mem := checked(t)
	sch := arrow.NewSchema([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int64}, {Name: "f", Type: arrow.PrimitiveTypes.Float64}}, nil)
	s, err := testOpen(Config{FS: vfs.NewMem(), Dir: "/st", StoreSpec: StoreSpec{Operator: "op", KeyGroups: 1, Lo: 0, Hi: 1,
		KeySchema: sch, ValueSchema: arrow.NewSchema(nil, nil), Allocator: mem}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := array.NewRecordBuilder(mem, sch)
	ints := []int64{5, -1, math.MinInt64, 0, math.MaxInt64, -300}
	floats := []float64{2.5, -1, math.Inf(-1), 0, math.Inf(1), -0.001}
	for i := range ints {
		b.Field(0).(*array.Int64Builder).Append(ints[i])
		b.Field(1).(*array.Float64Builder).Append(floats[i])
	}
	// -0 and +0, and two NaNs with different payloads, are one key each.
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{0, 7, 7}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{math.Copysign(0, -1), math.NaN(), math.Float64frombits(0x7ff8000000000abc)}, nil)
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	if err := s.Put(rec, array.NewRecord(arrow.NewSchema(nil, nil), nil, rec.NumRows()), nil); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 7 {
		t.Fatalf("Len %d, want 7 (-0 = +0, NaN = NaN)", s.Len())
	}
	var got []int64
	s.Scan(func(k, _ arrow.Record) error {
		got = append(got, k.Column(0).(*array.Int64).Int64Values()...)
		return nil
	})
	want := []int64{math.MinInt64, -300, -1, 0, 5, 7, math.MaxInt64}
	if !slices.Equal(got, want) {
		t.Fatalf("scan order %v, want %v", got, want)
	}
}

// seekBuffer is the io.WriteSeeker ipc.FileWriter needs, in memory.
type seekBuffer struct{ b []byte }

func (w *seekBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *seekBuffer) Seek(off int64, whence int) (int64, error) {
	if off == 0 && (whence == io.SeekCurrent || whence == io.SeekEnd) {
		return int64(len(w.b)), nil
	}
	return 0, fmt.Errorf("seekBuffer cannot seek to %d from %d", off, whence)
}

// TestCanonicalFixedWidthBytes checks the canonical bytes of integer
// columns of every width, with nulls and a sliced input, against format.md's
// recipe written out byte by byte here: a null bitmap, then each non-null
// value big-endian with a signed value's sign bit flipped.
func TestCanonicalFixedWidthBytes(t *testing.T) {
	mem := checked(t)
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	vals := []int64{0, -1, 1, math.MinInt64, math.MaxInt64, -300, 70000, 5}
	for i, v := range vals {
		null := i%3 == 2
		for j, f := range b.Fields() {
			if null && j%2 == i%2 {
				f.AppendNull()
				continue
			}
			switch f := f.(type) {
			case *array.Int8Builder:
				f.Append(int8(v))
			case *array.Int16Builder:
				f.Append(int16(v))
			case *array.Int32Builder:
				f.Append(int32(v))
			case *array.Int64Builder:
				f.Append(v)
			case *array.Uint32Builder:
				f.Append(uint32(v))
			case *array.Uint64Builder:
				f.Append(uint64(v))
			case *array.TimestampBuilder:
				f.Append(arrow.Timestamp(v))
			}
		}
	}
	whole := b.NewRecord()
	defer whole.Release()
	rec := whole.NewSlice(1, whole.NumRows()) // a non-zero offset
	defer rec.Release()
	want := func(row int) []byte {
		out := make([]byte, 1)
		for j := 0; j < int(rec.NumCols()); j++ {
			c := rec.Column(j)
			if c.IsNull(row) {
				out[0] |= 1 << j
				continue
			}
			var u uint64
			var w int
			signed := true
			switch c := c.(type) {
			case *array.Int8:
				u, w = uint64(uint8(c.Value(row))), 1
			case *array.Int16:
				u, w = uint64(uint16(c.Value(row))), 2
			case *array.Int32:
				u, w = uint64(uint32(c.Value(row))), 4
			case *array.Int64:
				u, w = uint64(c.Value(row)), 8
			case *array.Uint32:
				u, w, signed = uint64(c.Value(row)), 4, false
			case *array.Uint64:
				u, w, signed = c.Value(row), 8, false
			case *array.Timestamp:
				u, w = uint64(c.Value(row)), 8
			}
			for k := w - 1; k >= 0; k-- {
				by := byte(u >> (8 * k))
				if signed && k == w-1 {
					by ^= 0x80
				}
				out = append(out, by)
			}
		}
		return out
	}
	n := int(rec.NumRows())
	buf, offs := keyCodec(t, rec).encode(rec.Columns(), n, nil, nil)
	for i := 0; i < n; i++ {
		if g, w := buf[offs[i]:offs[i+1]], want(i); !bytes.Equal(g, w) {
			t.Errorf("row %d: canonical bytes %x, want %x", i, g, w)
		}
	}
}
