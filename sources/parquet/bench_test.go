package parquet

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

// benchScript writes 10 M rows of (int64, float64 with 5% nulls, string of
// 50 000 distinct values, date32) with pyarrow's defaults (dictionary,
// snappy, 1 Mi-row row groups).
const benchScript = `
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
n = 10_000_000
rng = np.random.default_rng(1)
ids = np.arange(n, dtype=np.int64)
vals = rng.normal(size=n)
mask = rng.random(n) < 0.05
users = pc.binary_join_element_wise("user-", pc.cast(pa.array(rng.integers(0, 50_000, n)), pa.string()), "")
days = pa.array((rng.integers(0, 3650, n) + 18000).astype(np.int32)).cast(pa.date32())
t = pa.table({"id": ids, "v": pa.array(vals, mask=mask), "user": users, "day": days})
pq.write_table(t, sys.argv[1])
`

var benchFile = sync.OnceValue(func() string {
	return filepath.Join(os.TempDir(), "sluice-parquet-bench-10m-v1.parquet")
})

func benchTable(b *testing.B) *Table {
	p := benchFile()
	if _, err := os.Stat(p); err != nil {
		tmp := p + ".tmp"
		testenv.RunPython(b, benchScript, tmp)
		if err := os.Rename(tmp, p); err != nil {
			b.Fatal(err)
		}
	}
	tab, err := Open(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	if tab.Files[0].NumRows != 10_000_000 {
		b.Fatalf("bench file has %d rows", tab.Files[0].NumRows)
	}
	return tab
}

// BenchmarkReadSplit10M reads the 10 M-row file split by split on one
// goroutine; "parallel" reads the splits on GOMAXPROCS goroutines.
func BenchmarkReadSplit10M(b *testing.B) {
	tab := benchTable(b)
	splits, _ := tab.Splits(nil)
	read := func(b *testing.B, mem memory.Allocator, s Split) int64 {
		var rows int64
		err := ReadSplit(context.Background(), mem, s, tab.Schema, nil, 64<<10, func(r arrow.Record) error {
			rows += r.NumRows()
			r.Release()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return rows
	}
	b.Run("serial", func(b *testing.B) {
		mem := memory.NewGoAllocator()
		start := time.Now()
		var rows int64
		for i := 0; i < b.N; i++ {
			for _, s := range splits {
				rows += read(b, mem, s)
			}
		}
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
	})
	b.Run("parallel", func(b *testing.B) {
		mem := memory.NewGoAllocator()
		start := time.Now()
		var rows int64
		var mu sync.Mutex
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			for _, s := range splits {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := read(b, mem, s)
					mu.Lock()
					rows += n
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
	})
}
