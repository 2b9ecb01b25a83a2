// Command sluice is the sluice CLI: the demo jobs, cluster mode (certs,
// executor, demo --cluster-join) and Nexmark; later run and checkpoint
// inspect.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/cluster"
)

func main() {
	// SIGTERM is how Kubernetes (and most supervisors) stop a process: the
	// demo stops its queries and an executor leaves the cluster, as on Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: sluice <command> [flags]

commands:
  demo        the order analytics job as a stream: orders generated into Kafka (in-process
              by default), hourly totals per customer printed each batch, written to a Kafka
              topic and, per closed hour, to Parquet; Ctrl-C or --duration stops it;
              with --cluster-join its tasks run on executors (docs/cluster.md)
  demo-batch  the same kind of job as a batch: orders written as Parquet, aggregated, printed
  certs --dir DIR [--nodes driver,executor] [--hosts 127.0.0.1,localhost] [--valid 8760h]
              a cluster CA, a certificate and key per node name, and a gossip key, in DIR
  executor --join host:port --gossip-key-file F --tls-ca F --tls-cert F --tls-key F
              [--bind ip:port] [--flight ip:port] [--advertise host] [--slots N] [--work-dir DIR]
              run the built-in jobs' tasks for a driver (sluice demo --cluster-join) until
              SIGINT or SIGTERM
  nexmark generate --events N --out DIR [--seed S] [--event-rate R]
              write events [0, N) of the Nexmark generator as Parquet: DIR/person,
              DIR/auction, DIR/bid (and DIR/nexmark.json)
  nexmark run --query qN --events N [--input DIR] [--out DIR] [--json] [--event-rate R] [--cluster N]
              run a Nexmark query as a stream and report its throughput (sluice nexmark -h
              lists the queries; --cluster N runs it on N executor processes of this binary)
`)
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage()
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "demo":
		return demoCommand(ctx, args[1:])
	case "demo-batch":
		fs := flag.NewFlagSet("demo-batch", flag.ContinueOnError)
		rows := fs.Int64("rows", 200_000, "orders to generate")
		dir := fs.String("dir", "", "directory for the generated Parquet (default: a temp dir, removed at exit)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return demo(ctx, os.Stdout, *rows, *dir)
	case "certs":
		return certs(args[1:], os.Stdout)
	case "executor":
		return executor(ctx, args[1:], os.Stderr)
	case "nexmark":
		return nexmark(ctx, args[1:])
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}

// demoCommand runs `sluice demo`, locally or, with --cluster-join, as the
// driver of a cluster.
func demoCommand(ctx context.Context, args []string) error {
	fs, f := demoFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo: unexpected argument %q (flags only)", fs.Arg(0))
	}
	cf := &f.cluster
	o := streamOpts{duration: f.duration, rate: f.rate, dir: f.dir, checkpoint: f.checkpoint, brokers: split(f.brokers), maxRows: f.rows}
	if cf.join == "" {
		var stray []string
		fs.Visit(func(fl *flag.Flag) {
			if cf.isClusterFlag(fl.Name) {
				stray = append(stray, "--"+fl.Name)
			}
		})
		if len(stray) > 0 {
			return fmt.Errorf("demo: %s: cluster flags need --cluster-join (without it the demo runs in this process)", strings.Join(stray, ", "))
		}
		return streamDemo(ctx, os.Stdout, o)
	}
	log, err := newLogger(os.Stderr, f.logLevel)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfg, err := cf.config(log)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d, err := cluster.StartDriver(ctx, cfg)
	if err != nil {
		return fmt.Errorf("demo: %w", cf.startError(err))
	}
	defer d.Close()
	o.cluster, o.log = d, log
	return streamDemo(ctx, os.Stdout, o)
}

// demoOpts are the flags of `sluice demo`. Their names are part of
// deploy/kubernetes (TestTheDeployManifestsParse).
type demoOpts struct {
	duration   time.Duration
	rate       int
	dir        string
	checkpoint string
	brokers    string
	rows       int
	logLevel   string
	cluster    clusterFlags
}

func demoFlags() (*flag.FlagSet, *demoOpts) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := &demoOpts{}
	fs.DurationVar(&o.duration, "duration", 0, "stop by itself after this long (0: run until Ctrl-C)")
	fs.IntVar(&o.rate, "rate", 2000, "orders generated per second")
	fs.StringVar(&o.dir, "dir", "", "directory for checkpoints (DIR/checkpoints) and Parquet output (DIR/hourly) (default: a temp dir, removed at exit)")
	fs.StringVar(&o.checkpoint, "checkpoint", "", "directory for the queries' checkpoints, instead of DIR/checkpoints; without --dir the Parquet output goes to CHECKPOINT/parquet/hourly")
	fs.StringVar(&o.brokers, "brokers", "", "a real Kafka cluster, host:port[,host:port] (default: an in-process one)")
	fs.IntVar(&o.rows, "rows", 8, "updated rows printed per batch")
	fs.StringVar(&o.logLevel, "log-level", "info", "cluster mode: log level on stderr (debug, info, warn or error)")
	// A driver's ports are chosen at run time: nobody joins through it.
	o.cluster.register(fs, "cluster-join", "run the tasks on a cluster: gossip seeds of its executors, host:port[,host:port]",
		"127.0.0.1:0", "127.0.0.1:0")
	return fs, o
}
