package microbatch_test

import (
	"context"
	"log"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/files"
)

// The README's streaming job: Parquet files arriving in a directory,
// revenue per region per minute, each window written once when the
// watermark passes its end. (Compiled, not run: it waits for files.)
func Example_windowedStream() {
	ctx := context.Background()
	src, err := files.New(files.Config{Dir: "incoming/", LogDir: "ckpt/sources/files"})
	if err != nil {
		log.Fatal(err)
	}
	counts := dataset.ReadStream(src).
		WithWatermark("ts", 10*time.Second).
		GroupBy(dataset.Window("ts", time.Minute), "region").
		Agg(dataset.Sum(dataset.Col("amount")).As("revenue"))
	sink, err := parquet.NewStream(parquet.StreamConfig{Dir: "out/revenue"})
	if err != nil {
		log.Fatal(err)
	}
	q, err := microbatch.WriteStream(counts, sink).
		Checkpoint("ckpt").
		OutputMode(sinks.Append).
		Trigger(microbatch.ProcessingTime(5 * time.Second)).
		Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		log.Fatal(err)
	}
}
