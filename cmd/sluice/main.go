// Command sluice is the sluice CLI, a job binary built on package
// microbatch/jobcli: the demo job's roles (stream: the order analytics
// stream; batch: revenue per region over generated Parquet; backfill: the
// stream's queries over a fixed number of orders; executor: its tasks on
// a cluster), with the demo's older names (demo, demo-batch), the cluster's
// key material (certs) and Nexmark.
package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks"
)

func main() { jobcli.Main(sluiceJob(&demoConfig{})) }

// demoConfig is the demo job's own configuration (jobcli fills it from
// flags, SLUICE_* environment variables and --config). Its names are part
// of deploy/kubernetes (TestTheDeployManifestsParse).
type demoConfig struct {
	Duration time.Duration `sluice:"duration" roles:"stream backfill" help:"stop by itself after this long (0: run until SIGINT or SIGTERM)"`
	Rate     int           `sluice:"rate" roles:"stream" help:"orders generated per second"`
	Dir      string        `sluice:"dir" roles:"batch backfill stream" help:"directory for checkpoints (DIR/checkpoints), Parquet output (DIR/hourly) and the batch job's input (DIR/orders) (default: a new temp dir; the stream roles keep it, the batch removes it)"`
	Brokers  []string      `sluice:"brokers" roles:"backfill stream" help:"a real Kafka cluster, host:port[,host:port] (default: an in-process one)"`
	Rows     int           `sluice:"rows" roles:"batch backfill stream" help:"rows printed: the top customers table's (stream, backfill), the result's (batch)"`
	Every    time.Duration `sluice:"every" roles:"stream" help:"how often the top customers table prints (0: only at the end)"`
	Orders   int64         `sluice:"orders" roles:"batch backfill" help:"orders to generate: the batch job's input, or the backfill's (into the in-process Kafka)"`
}

func (c *demoConfig) Validate() error {
	if c.Rate <= 0 {
		return jobcli.Invalid("rate", "%d: want at least 1 order per second", c.Rate)
	}
	if c.Orders <= 0 {
		return jobcli.Invalid("orders", "%d: want at least 1", c.Orders)
	}
	if c.Rows < 0 {
		return jobcli.Invalid("rows", "%d: want 0 or more", c.Rows)
	}
	if c.Every < 0 {
		return jobcli.Invalid("every", "%v: want 0 or more", c.Every)
	}
	return nil
}

// sluiceJob is the sluice binary as a job; cfg receives its settings.
func sluiceJob(cfg *demoConfig) jobcli.Job {
	*cfg = demoConfig{Rate: 2000, Rows: 8, Orders: 200_000, Every: 5 * time.Second}
	return jobcli.Job{
		Name:    "sluice",
		Summary: "sluice runs its demo job (order analytics on generated orders) in any role, and the cluster's and Nexmark's tools.",
		Config:  cfg,
		Batch:   func(ctx context.Context, env *jobcli.Env) error { return batchDemo(ctx, env, cfg) },
		Stream:  func(ctx context.Context, env *jobcli.Env) error { return streamDemo(ctx, env, cfg) },
		Tasks: func(env *jobcli.Env, params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
			// The totals' rows go to the driver in the task's result, for
			// its board.
			j, err := buildJob(params, nil)
			if err != nil {
				return nil, nil, err
			}
			env.Defer(j.close)
			return j.sinks, j.ds, nil
		},
		Commands: []jobcli.Command{
			// The demo prints a line per batch on stdout: its log says only
			// what goes wrong (--log-level info shows the engine's log).
			{Name: "demo", Role: "stream", Defaults: map[string]string{"log-level": "warn"}, Summary: "the stream role under the demo's old name (make demo): orders generated into Kafka (in-process by default), hourly totals per customer written to a topic and, per closed hour, to Parquet; a line per batch and the top customers every --every"},
			{Name: "demo-batch", Role: "batch", Summary: "the batch role under its old name: orders written as Parquet, aggregated, printed"},
			{Name: "certs", Summary: "a cluster CA, a certificate and key per node name, and a gossip key, in --dir (certs -h)",
				Run: func(_ context.Context, args []string, stdout, _ io.Writer) error { return certs(args, stdout) }},
			{Name: "nexmark", Summary: "nexmark generate|run: write Nexmark events as Parquet, or run a Nexmark query as a stream", Run: nexmarkCommand},
		},
	}
}

// run runs the sluice command line args (the tests' entry point).
func run(ctx context.Context, args []string) error {
	return jobcli.Run(ctx, sluiceJob(&demoConfig{}), args, os.Stdout, os.Stderr)
}

// nexmarkCommand is `sluice nexmark`.
func nexmarkCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return nexmarkTo(ctx, args, stdout, stderr)
}
