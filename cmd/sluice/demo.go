package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

// batchDemo is the demo job's Batch: demo with the job's settings, its
// Datasets on env's config (the cluster in cluster mode, the progress bar).
func batchDemo(ctx context.Context, env *jobcli.Env, cfg *demoConfig) error {
	return demo(ctx, env.Stdout, cfg.Orders, cfg.Dir, cfg.Rows, env.Dataset(map[string]string{"job": jobBatch}))
}

// demo writes generated orders as a day-partitioned Parquet dataset, then
// runs a batch job over it: revenue per region for the last three days,
// printing up to show rows.
func demo(ctx context.Context, w io.Writer, rows int64, dir string, show int, dcfg dataset.Config) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	orders := filepath.Join(dir, "orders")
	mem := memory.NewGoAllocator()
	gen := generate.Orders{Seed: 42, Interval: 4 * time.Second}
	const chunk = 50_000
	var recs []arrow.Record
	for from := int64(0); from < rows; from += chunk {
		recs = append(recs, gen.Record(mem, from, min(chunk, rows-from)))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	start := time.Now()
	err := dataset.FromRecords(generate.OrdersSchema, recs...).WithConfig(dcfg).
		WithColumn("day", dataset.Col("ts").Cast(dataset.Type(arrow.FixedWidthTypes.Date32))).
		Write(ctx, orders, dataset.WriteOptions{Mode: parquet.Overwrite, Options: parquet.Options{PartitionBy: []string{"day"}}})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %d orders to %s in %v\n\n", rows, orders, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	ds := dataset.Read(orders).WithConfig(dcfg)
	if ds.Err() != nil {
		return ds.Err()
	}
	lastDays := dataset.Col("day").Ge(dataset.Lit("2026-11-06"))
	report := ds.Filter(lastDays).
		GroupBy("region").
		Agg(
			dataset.CountAll().As("orders"),
			dataset.CountDistinct(dataset.Col("customer")).As("customers"),
			dataset.Sum(dataset.Col("amount")).As("revenue"),
			dataset.Avg(dataset.Col("amount")).As("avg_order"),
			dataset.Max(dataset.Col("ts")).As("last_order"),
		).
		OrderBy(dataset.Desc("revenue"))
	fmt.Fprintln(w, "revenue per region, orders on or after 2026-11-06:")
	if err := report.ShowTo(ctx, w, show); err != nil {
		return err
	}
	fmt.Fprintf(w, "query took %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}
