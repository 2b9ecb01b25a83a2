// Command orders is the order analytics job as a batch job: total order value
// per customer per hour, over a Parquet history of orders. The streaming
// version of the same job function comes with the streaming engine.
//
//	go run ./examples/orders -input data/orders -out out/hourly
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
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

func main() {
	input := flag.String("input", "", "Parquet directory of orders (default: generate 100k orders into a temp dir)")
	out := flag.String("out", "", "write the result here as Parquet (default: print the first rows)")
	flag.Parse()
	ctx := context.Background()
	if *input == "" {
		dir, err := os.MkdirTemp("", "sluice-orders-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		*input = dir + "/orders"
		rec := generate.Orders{Seed: 1, Interval: 2 * time.Second, MaxDelay: time.Minute}.Record(memory.NewGoAllocator(), 0, 100_000)
		defer rec.Release()
		if err := dataset.FromRecords(generate.OrdersSchema, rec).Write(ctx, *input, dataset.WriteOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	job := HourlyTotals(dataset.Read(*input)).OrderBy("hour", "customer")
	if *out != "" {
		if err := job.Write(ctx, *out, dataset.WriteOptions{Mode: parquet.Overwrite}); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := job.Show(ctx, 20); err != nil {
		log.Fatal(err)
	}
}
