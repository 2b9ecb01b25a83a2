package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sources/generate"
)

// The job's hourly totals equal a plain Go computation over the same orders,
// whether it reads records in memory or the Parquet files written from them.
func TestHourlyTotalsMatchPlainGo(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	gen := generate.Orders{Seed: 3, Interval: 10 * time.Second, MaxDelay: 5 * time.Minute, Customers: 20}
	rec := gen.Record(mem, 0, 3000)
	defer rec.Release()

	type key struct {
		c string
		h int64
	}
	cents := map[key]int64{}
	counts := map[key]int64{}
	cust := rec.Column(1).(*array.String)
	amt := rec.Column(3).(*array.Decimal128)
	ts := rec.Column(4).(*array.Timestamp)
	for i := 0; i < int(rec.NumRows()); i++ {
		k := key{cust.Value(i), int64(ts.Value(i)) / 3_600_000 * 3_600_000}
		cents[k] += int64(amt.Value(i).LowBits())
		counts[k]++
	}
	var want []string
	for k, c := range cents {
		want = append(want, fmt.Sprintf("%s %d %d.%02d %d", k.c, k.h, c/100, c%100, counts[k]))
	}
	sort.Strings(want)

	dir := t.TempDir() + "/orders"
	if err := dataset.FromRecords(generate.OrdersSchema, rec).WithConfig(cfg).Write(context.Background(), dir, dataset.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*dataset.Dataset{
		"memory":  dataset.FromRecords(generate.OrdersSchema, rec).WithConfig(cfg),
		"parquet": dataset.Read(dir).WithConfig(cfg),
	} {
		tbl, err := HourlyTotals(in).Collect(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		tr := array.NewTableReader(tbl, 0)
		for tr.Next() {
			r := tr.Record()
			for i := 0; i < int(r.NumRows()); i++ {
				h := r.Column(1).(*array.Timestamp).Value(i)
				total := r.Column(2).(*array.Decimal128).Value(i)
				got = append(got, fmt.Sprintf("%s %d %s %d", r.Column(0).(*array.String).Value(i), int64(h),
					total.ToString(r.Column(2).DataType().(*arrow.Decimal128Type).Scale), r.Column(3).(*array.Int64).Value(i)))
			}
		}
		tr.Release()
		tbl.Release()
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d rows, want %d; first got %q want %q", name, len(got), len(want), got[:min(3, len(got))], want[:3])
		}
	}
}

// The job's binary writes the hourly totals of its generated orders with
// --out, through jobcli's batch role.
func TestTheBatchRoleWritesTheTotals(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hourly")
	var stdout, stderr strings.Builder
	if err := jobcli.Run(context.Background(), job(&config{}), []string{"batch", "--out", out, "--ui-addr", "", "--progress", "never"}, &stdout, &stderr); err != nil {
		t.Fatalf("orders batch: %v\n%s", err, stderr.String())
	}
	n, err := dataset.Read(out).Count(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("%s holds %d rows (%v)", out, n, err)
	}
}
