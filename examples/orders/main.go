// Command orders is the order analytics job as a batch job: total order value
// per customer per hour, over a Parquet history of orders. The streaming
// version of the same job function comes with the streaming engine.
//
//	go run ./examples/orders batch --input data/orders --out out/hourly
//
// Its main is jobcli's: batch is its one role (with a progress bar of the
// tasks on a terminal), and it has version, config print and -h.
package main

import (
	"context"
	"os"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

// HourlyTotals is the job: order value and count per customer per
// event-time hour. The same function runs as a batch job over a Parquet
// history, as a backfill over a directory stream, and on a Kafka stream.
func HourlyTotals(orders *dataset.Dataset) *dataset.Dataset {
	return orders.
		WithColumn("hour", dataset.DateTrunc("hour", dataset.Col("ts"))).
		GroupBy("customer", "hour").
		Agg(
			dataset.Sum(dataset.Col("amount")).As("total"),
			dataset.CountAll().As("orders"),
		)
}

// config is the job's settings (flags, ORDERS_* environment variables,
// --config FILE).
type config struct {
	Input string `help:"Parquet directory of orders (default: generate 100k orders into a temp dir)"`
	Out   string `help:"write the result here as Parquet (default: print the first rows)"`
}

func main() { jobcli.Main(job(&config{})) }

// job is the binary's job; cfg receives its settings.
func job(cfg *config) jobcli.Job {
	return jobcli.Job{
		Name:    "orders",
		Summary: "orders totals order value per customer per hour over a Parquet history of orders.",
		Config:  cfg,
		Batch:   func(ctx context.Context, env *jobcli.Env) error { return run(ctx, env, cfg) },
	}
}

// run is the job's batch role.
func run(ctx context.Context, env *jobcli.Env, cfg *config) error {
	input := cfg.Input
	if input == "" {
		dir, err := os.MkdirTemp("", "sluice-orders-")
		if err != nil {
			return err
		}
		env.Defer(func() error { return os.RemoveAll(dir) })
		input = dir + "/orders"
		rec := generate.Orders{Seed: 1, Interval: 2 * time.Second, MaxDelay: time.Minute}.Record(memory.NewGoAllocator(), 0, 100_000)
		defer rec.Release()
		if err := dataset.FromRecords(generate.OrdersSchema, rec).Write(ctx, input, dataset.WriteOptions{}); err != nil {
			return err
		}
	}
	job := HourlyTotals(dataset.Read(input).WithConfig(env.Dataset(nil))).OrderBy("hour", "customer")
	if cfg.Out != "" {
		return job.Write(ctx, cfg.Out, dataset.WriteOptions{Mode: parquet.Overwrite})
	}
	return job.ShowTo(ctx, env.Stdout, 20)
}
