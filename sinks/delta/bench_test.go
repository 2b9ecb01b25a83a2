package delta_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkStreamSinks runs 50 batches of 64 Ki rows (int64, float64,
// string, date32; partitioned by a 4-value string in 4 runs) through the streaming
// Parquet sink and the Delta sink, two tasks a batch, and reports rows per
// CPU-second and the p50/p99 of Commit.
func BenchmarkStreamSinks(b *testing.B) {
	const batches, rows = 50, 1 << 16
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "region", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	mem := memory.NewGoAllocator()
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	for i := 0; i < rows; i++ {
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		rb.Field(1).(*array.Float64Builder).Append(float64(i%10000) / 100)
		rb.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("customer-%d", i%5000))
		rb.Field(3).(*array.Date32Builder).Append(arrow.Date32(19000 + i%365))
		rb.Field(4).(*array.StringBuilder).Append([]string{"emea", "amer", "apac", "anz"}[i*4/rows]) // runs: interleaved values make FileWriter gather rows with compute.Take, slow on strings in Arrow v17
	}
	rec := rb.NewRecord()
	defer rec.Release()
	opts := parquet.Options{PartitionBy: []string{"region"}, Compression: "snappy"}
	for _, kind := range []string{"parquet", "delta"} {
		b.Run(kind, func(b *testing.B) {
			var commits []float64
			cpu := cpuSeconds()
			for range b.N {
				dir := filepath.Join(b.TempDir(), "t")
				var s sinks.Sink
				var err error
				if kind == "delta" {
					s, err = delta.New(delta.Config{Dir: dir, AppID: "bench", Options: opts})
				} else {
					s, err = parquet.NewStream(parquet.StreamConfig{Dir: dir, Options: opts})
				}
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				for id := range int64(batches) {
					bt := sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema}
					var msgs []sinks.CommitMessage
					for task := range 2 {
						w, err := s.NewWriter(ctx, bt, task)
						if err != nil {
							b.Fatal(err)
						}
						if err := w.Write(rec); err != nil {
							b.Fatal(err)
						}
						m, err := w.Prepare()
						if err != nil {
							b.Fatal(err)
						}
						msgs = append(msgs, m)
					}
					t0 := time.Now()
					if err := s.Commit(ctx, bt, msgs); err != nil {
						b.Fatal(err)
					}
					commits = append(commits, float64(time.Since(t0).Microseconds())/1000)
				}
			}
			cpu = cpuSeconds() - cpu
			slices.Sort(commits)
			pct := func(p float64) float64 { return commits[min(len(commits)-1, int(p*float64(len(commits))))] }
			b.ReportMetric(float64(2*rows*batches*b.N)/cpu, "rows/cpu-s")
			b.ReportMetric(pct(0.5), "commit-p50-ms")
			b.ReportMetric(pct(0.99), "commit-p99-ms")
		})
	}
}
