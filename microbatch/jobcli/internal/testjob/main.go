// Command testjob is a tiny job built on package jobcli, for jobcli's
// end-to-end tests: its batch role counts generated rows per key; its
// stream and backfill roles read a rate source (RowsPerSecond rows per
// second of processing time; backfill: the rows due between --from and
// --to) and print each batch's row count and value range. With --parquet
// DIR a second, stateful query (counts) counts the rows and sums the
// values per key and second of event time, appending each closed window
// to a Parquet table in DIR: what the checkpoint tools' tests replay.
package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/console"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

type config struct {
	Rows          int64         `help:"rows the batch role generates"`
	Keys          int           `help:"distinct keys"`
	Rate          int64         `sluice:"rate" roles:"stream backfill" help:"rows per second of the rate source"`
	PerBatch      int64         `roles:"stream backfill" help:"rows per micro-batch at most"`
	Label         string        `help:"a label printed first"`
	Tags          []string      `help:"tags printed first"`
	Pause         time.Duration `roles:"batch" help:"how long the batch role waits before it runs (a window for a signal)"`
	Verbose       bool          `help:"print more (a boolean flag: --verbose alone sets it)"`
	MaxRowsPerKey int64         // no tag: the key is max-rows-per-key`
	Parquet       string        `roles:"stream backfill" help:"also run query counts (rows and value sum per key and second), appended to Parquet in this directory"`
}

func (c *config) Validate() error {
	if c.Keys <= 0 {
		return jobcli.Invalid("keys", "%d: want at least 1", c.Keys)
	}
	return nil
}

func main() {
	cfg := &config{Rows: 1000, Keys: 4, Rate: 1000, PerBatch: 500}
	jobcli.Main(jobcli.Job{
		Name:    "testjob",
		Summary: "testjob counts generated rows (batch) and reads a rate source (stream, backfill).",
		Config:  cfg,
		Batch: func(ctx context.Context, env *jobcli.Env) error {
			fmt.Fprintf(env.Stdout, "label=%s tags=%v\n", cfg.Label, cfg.Tags)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cfg.Pause):
			}
			type row struct {
				K string
				V int64
			}
			rows := make([]row, cfg.Rows)
			for i := range rows {
				rows[i] = row{K: "k" + strconv.Itoa(i%cfg.Keys), V: int64(i)}
			}
			n, err := dataset.FromStructs(rows).WithConfig(env.Dataset(map[string]string{"job": "batch"})).GroupBy("k").Agg(dataset.CountAll().As("n")).Count(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "rows=%d groups=%d\n", cfg.Rows, n)
			return nil
		},
		Stream: func(ctx context.Context, env *jobcli.Env) error {
			fmt.Fprintf(env.Stdout, "label=%s tags=%v\n", cfg.Label, cfg.Tags)
			params := map[string]string{"rate": strconv.FormatInt(cfg.Rate, 10), "keys": strconv.Itoa(cfg.Keys), "per_batch": strconv.FormatInt(cfg.PerBatch, 10)}
			if env.Role == "backfill" {
				from, err := time.Parse(time.RFC3339, env.Settings.From)
				if err != nil {
					return jobcli.Invalid("from", "%q: want an RFC 3339 time", env.Settings.From)
				}
				to, err := time.Parse(time.RFC3339, env.Settings.To)
				if err != nil || !to.After(from) {
					return jobcli.Invalid("to", "%q: want an RFC 3339 time after --from", env.Settings.To)
				}
				params["from"], params["to"] = env.Settings.From, env.Settings.To
				env.Expect(int64(to.Sub(from).Seconds() * float64(cfg.Rate)))
			}
			sink, ds, err := build(params, env.Stdout)
			if err != nil {
				return err
			}
			if _, err = env.Start(ctx, microbatch.WriteStream(ds.WithConfig(env.Dataset(params)), sink).OutputMode(sinks.Append),
				jobcli.QueryOptions{Name: "rate", Every: 200 * time.Millisecond}); err != nil || cfg.Parquet == "" {
				return err
			}
			params["query"], params["parquet"] = "counts", cfg.Parquet
			sink, ds, err = build(params, env.Stdout)
			if err != nil {
				return err
			}
			_, err = env.Start(ctx, microbatch.WriteStream(ds.WithConfig(env.Dataset(params)), sink).OutputMode(sinks.Append),
				jobcli.QueryOptions{Name: "counts", Every: 200 * time.Millisecond})
			return err
		},
		Tasks: func(env *jobcli.Env, params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
			if params["job"] == "batch" {
				return nil, nil, nil // its plan holds all it needs
			}
			sink, ds, err := build(params, io.Discard)
			if err != nil {
				return nil, nil, err
			}
			return []sinks.Sink{sink}, []*dataset.Dataset{ds}, nil
		},
	})
}

// build is the streaming job from its parameters, on the driver and on
// executors alike.
func build(params map[string]string, out io.Writer) (sinks.Sink, *dataset.Dataset, error) {
	rate, _ := strconv.ParseInt(params["rate"], 10, 64)
	keys, _ := strconv.Atoi(params["keys"])
	per, _ := strconv.ParseInt(params["per_batch"], 10, 64)
	rc := generate.RateConfig{RowsPerSecond: rate, Keys: keys, MaxRowsPerBatch: per}
	if params["from"] != "" {
		from, _ := time.Parse(time.RFC3339, params["from"])
		to, _ := time.Parse(time.RFC3339, params["to"])
		rc.StartTime, rc.Now = from, func() time.Time { return to }
	}
	src, err := generate.NewRate(rc)
	if err != nil {
		return nil, nil, err
	}
	if params["query"] == "counts" {
		sink, err := parquet.NewStream(parquet.StreamConfig{Dir: params["parquet"]})
		if err != nil {
			return nil, nil, err
		}
		// Each window once, when the watermark (the newest row's time)
		// passes its end: state lives across batches.
		return sink, dataset.ReadStream(src).
			WithWatermark("timestamp", 0).
			GroupBy(dataset.Window("timestamp", time.Second), "key").
			Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("value")).As("total")), nil
	}
	sink, err := console.New(console.Config{Out: out, Format: summary, MaxRows: 1 << 30})
	if err != nil {
		return nil, nil, err
	}
	return sink, dataset.ReadStream(src).Select("value", "key"), nil
}

// summary prints a batch as one line: its rows and value range.
func summary(w io.Writer, _ *arrow.Schema, recs []arrow.Record, _ int) error {
	var n, lo, hi int64 = 0, -1, -1
	for _, r := range recs {
		v := r.Column(0).(*array.Int64)
		for i := range v.Len() {
			x := v.Value(i)
			if lo < 0 || x < lo {
				lo = x
			}
			hi = max(hi, x)
			n++
		}
	}
	_, err := fmt.Fprintf(w, "rows=%d min=%d max=%d\n", n, lo, hi)
	return err
}
