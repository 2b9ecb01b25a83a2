// Command sluice is the sluice CLI: the demo jobs and Nexmark; later run,
// executor and checkpoint inspect.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: sluice <command> [flags]

commands:
  demo        the order analytics job as a stream: orders generated into Kafka (in-process
              by default), hourly totals per customer printed each batch, written to a Kafka
              topic and, per closed hour, to Parquet; Ctrl-C or --duration stops it
  demo-batch  the same kind of job as a batch: orders written as Parquet, aggregated, printed
  nexmark generate --events N --out DIR [--seed S] [--event-rate R]
              write events [0, N) of the Nexmark generator as Parquet: DIR/person,
              DIR/auction, DIR/bid (and DIR/nexmark.json)
  nexmark run --query qN --events N [--input DIR] [--out DIR] [--json] [--event-rate R]
              run a Nexmark query as a stream and report its throughput (it starts the
              benchmark runner, benchmarks/nexmark, with the Go toolchain)
`)
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage()
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		duration := fs.Duration("duration", 0, "stop by itself after this long (0: run until Ctrl-C)")
		rate := fs.Int("rate", 2000, "orders generated per second")
		dir := fs.String("dir", "", "directory for checkpoints and Parquet output (default: a temp dir, removed at exit)")
		brokers := fs.String("brokers", "", "a real Kafka cluster, host:port[,host:port] (default: an in-process one)")
		rows := fs.Int("rows", 8, "updated rows printed per batch")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var bs []string
		if *brokers != "" {
			bs = strings.Split(*brokers, ",")
		}
		return streamDemo(ctx, os.Stdout, streamOpts{duration: *duration, rate: *rate, dir: *dir, brokers: bs, maxRows: *rows})
	case "demo-batch":
		fs := flag.NewFlagSet("demo-batch", flag.ContinueOnError)
		rows := fs.Int64("rows", 200_000, "orders to generate")
		dir := fs.String("dir", "", "directory for the generated Parquet (default: a temp dir, removed at exit)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return demo(ctx, os.Stdout, *rows, *dir)
	case "nexmark":
		return nexmark(ctx, args[1:])
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}
