package parquet

import (
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// BenchmarkWrite5M writes 5 M rows of (int64, float64, string, date32)
// with zstd, in records of 64 Ki rows, and reports rows/s.
func BenchmarkWrite5M(b *testing.B) {
	const total, batch = 5_000_000, 1 << 16
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	}, nil)
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	for i := 0; i < batch; i++ {
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		rb.Field(1).(*array.Float64Builder).Append(float64(i%10000) / 100)
		rb.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("customer-%d", i%5000))
		rb.Field(3).(*array.Date32Builder).Append(arrow.Date32(19000 + i%365))
	}
	rec := rb.NewRecord()
	defer rec.Release()
	b.ResetTimer()
	for range b.N {
		w, err := NewFileWriter(mem, b.TempDir(), "part", schema, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < total; n += batch {
			r := rec
			if total-n < batch {
				r = rec.NewSlice(0, int64(total-n))
			}
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
			if r != rec {
				r.Release()
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
