package dataset_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

var update = flag.Bool("update", false, "rewrite golden files")

// writeOrders writes n generated orders partitioned by day and returns the dir.
func writeOrders(t *testing.T, mem memory.Allocator, cfg dataset.Config, n int64) string {
	t.Helper()
	gen := generate.Orders{Seed: 7, Interval: 30 * time.Second}
	var recs []arrow.Record
	for from := int64(0); from < n; from += 1000 {
		recs = append(recs, gen.Record(mem, from, min(1000, n-from)))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	dir := filepath.Join(t.TempDir(), "orders")
	err := dataset.FromRecords(generate.OrdersSchema, recs...).WithConfig(cfg).
		WithColumn("day", dataset.Col("ts").Cast(dataset.Type(arrow.FixedWidthTypes.Date32))).
		Write(context.Background(), dir, dataset.WriteOptions{Options: parquet.Options{PartitionBy: []string{"day"}, RowGroupRows: 500}})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return dir
}

func TestWriteThenReadGivesTheSameRowsAndPrunesPartitions(t *testing.T) {
	mem, cfg := checked(t)
	cfg.BatchRows = 1000
	dir := writeOrders(t, mem, cfg, 5000) // 5000 orders * 30 s = ~1.7 days
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		t.Fatalf("no _SUCCESS marker: %v", err)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "day=*"))
	if len(parts) != 2 {
		t.Fatalf("want 2 day partitions, got %v", parts)
	}
	gen := generate.Orders{Seed: 7, Interval: 30 * time.Second}
	src := gen.Record(mem, 0, 5000)
	defer src.Release()
	want := rows(t, dataset.FromRecords(generate.OrdersSchema, src).WithConfig(cfg).
		WithColumn("day", dataset.Col("ts").Cast(dataset.Type(arrow.FixedWidthTypes.Date32))).OrderBy("order_id"))
	got := rows(t, dataset.Read(dir).WithConfig(cfg).
		Select("order_id", "customer", "region", "amount", "ts", "day").OrderBy("order_id"))
	if !slices.Equal(got, want) {
		t.Fatalf("read back differs: first got %q, first want %q (of %d/%d rows)", first(got), first(want), len(got), len(want))
	}
	one := dataset.Read(dir).WithConfig(cfg).Filter(dataset.Col("day").Eq(dataset.Lit("2026-11-02")))
	plan, err := one.Explain()
	if err != nil {
		t.Fatal(err)
	}
	// Each of the 5 write tasks wrote one file per day it saw: 3 files per day.
	if !strings.Contains(plan, "files_pruned=3/6") {
		t.Fatalf("partition filter did not prune a file:\n%s", plan)
	}
	n, err := one.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wantN int
	for _, r := range want {
		if strings.HasSuffix(r, "|2026-11-02") {
			wantN++
		}
	}
	if n != int64(wantN) {
		t.Fatalf("count of one day = %d, want %d", n, wantN)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func TestAFailedWriteLeavesNothingBehind(t *testing.T) {
	_, cfg := checked(t)
	parent := t.TempDir()
	target := filepath.Join(parent, "out")
	// Two tasks: the first writes its file, the second fails.
	ds := dataset.FromStructs(orders()[:4]).WithConfig(cfg).Union(dataset.FromStructs(orders()[4:]).WithConfig(cfg)).
		MapBatches("fail-late", nil, func(mem memory.Allocator, in arrow.Record) (arrow.Record, error) {
			if in.Column(0).(*array.Int64).Value(0) >= 5 {
				return nil, os.ErrDeadlineExceeded
			}
			in.Retain()
			return in, nil
		})
	err := ds.Write(context.Background(), target, dataset.WriteOptions{})
	if err == nil {
		t.Fatal("write succeeded; want the task's error")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 0 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("failed write left %v in %s", names, parent)
	}
	// ErrorIfExists refuses to touch existing output.
	good := dataset.FromStructs(orders()).WithConfig(cfg)
	if err := good.Write(context.Background(), target, dataset.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := good.Write(context.Background(), target, dataset.WriteOptions{}); err == nil || !strings.Contains(err.Error(), target) {
		t.Fatalf("second write to %s: want an error naming it, got %v", target, err)
	}
}

func TestExplainGolden(t *testing.T) {
	mem, cfg := checked(t)
	cfg.Parallelism, cfg.ShufflePartitions = 2, 2
	dir := writeOrders(t, mem, cfg, 3000)
	orders := dataset.Read(dir).WithConfig(cfg)
	customers := dataset.FromStructs([]struct {
		Customer string
		Tier     string
	}{{"c-0001", "gold"}}).WithConfig(cfg)
	cases := map[string]*dataset.Dataset{
		"filter_aggregate_sort": orders.
			Filter(dataset.Col("day").Eq(dataset.Lit("2026-11-01")).And(dataset.Col("amount").Gt(10))).
			GroupBy("region").Agg(dataset.Sum(dataset.Col("amount")).As("revenue"), dataset.CountAll().As("n")).
			OrderBy(dataset.Desc("revenue")),
		"join_project_limit": orders.Join(customers, []string{"customer"}, dataset.Left).
			Filter(dataset.Col("region").Eq("emea")).
			Select("order_id", "tier").Limit(10),
		"union_distinct": orders.Select("region").Union(orders.Select("region")).Distinct(),
	}
	for name, ds := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ds.Explain()
			if err != nil {
				t.Fatal(err)
			}
			got = strings.ReplaceAll(got, dir, "$DIR")
			spec, err := ds.Compile()
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, spec)
			path := filepath.Join("testdata", "explain", name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Fatalf("plan changed (run with -update if intended):\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A high-cardinality column outgrows the 1 MiB dictionary and falls back to
// PLAIN pages mid-chunk; sluice and pyarrow must both read every value back.
func TestDictionaryFallbackRoundTripsThroughSluiceAndPyarrow(t *testing.T) {
	mem, cfg := checked(t)
	cfg.BatchRows = 1 << 14
	const n = 200_000
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "uniq", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "flag", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	for i := 0; i < n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%97 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("value-%09d-%x", i, i*7919))
		}
		b.Field(2).(*array.StringBuilder).Append([]string{"A", "N", "R"}[i%3])
	}
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	dir := filepath.Join(t.TempDir(), "dict")
	if err := dataset.FromRecords(schema, rec).WithConfig(cfg).Write(context.Background(), dir, dataset.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := rows(t, dataset.FromRecords(schema, rec).WithConfig(cfg))
	got := rows(t, dataset.Read(dir).WithConfig(cfg).OrderBy("id"))
	if !slices.Equal(got, want) {
		t.Fatalf("sluice read back %d rows, first differing from %d written", len(got), len(want))
	}
	out := testenv.RunPython(t, `
import sys, glob, pyarrow.parquet as pq
f = glob.glob(sys.argv[1] + "/*.parquet")[0]
md = pq.ParquetFile(f).metadata
encs = set()
for rg in range(md.num_row_groups):
    encs |= set(md.row_group(rg).column(1).encodings)
t = pq.read_table(sys.argv[1]).sort_by("id")
u = t.column("uniq").to_pylist()
ok = all((v is None) == (i % 97 == 0) and (v is None or v == "value-%09d-%x" % (i, i*7919)) for i, v in enumerate(u))
print(t.num_rows, ok, "PLAIN" in encs and "RLE_DICTIONARY" in encs)
`, dir)
	if strings.TrimSpace(out) != fmt.Sprintf("%d True True", n) {
		t.Fatalf("pyarrow: %q, want %d rows, all values equal, and both dictionary and plain pages", out, n)
	}
}
