// Command fraud is card fraud detection as a streaming job: generated card
// transactions flow through three per-card rules kept with
// FlatMapGroupsWithState (rules.go: more than 3 transactions in a minute,
// two countries within 5 minutes, an amount over 10 times the card's
// average), and the alerts go to a sink. Cards idle for 30 minutes of event
// time leave state through an event-time timeout.
//
//	go run ./examples/fraud backfill --n 200000 --batch 10000
//
// Its main is jobcli's: `fraud -h` lists the commands, `fraud backfill -h`
// the settings (also FRAUD_N, FRAUD_BATCH, ... or a --config file).
package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// config is the job's command line (flags, FRAUD_* environment
// variables, --config FILE).
type config struct {
	N     int    `sluice:"n" help:"transactions to generate"`
	Seed  uint64 `help:"generator seed"`
	Cards int    `help:"distinct cards"`
	Batch int64  `help:"transactions per micro-batch"`
}

func (c *config) Validate() error {
	if c.N < 0 {
		return jobcli.Invalid("n", "%d: want 0 or more", c.N)
	}
	if c.Cards <= 0 {
		return jobcli.Invalid("cards", "%d: want at least 1", c.Cards)
	}
	if c.Batch <= 0 {
		return jobcli.Invalid("batch", "%d: want at least 1", c.Batch)
	}
	return nil
}

func main() {
	cfg := &config{N: 100_000, Seed: 1, Cards: 2000, Batch: 5_000}
	jobcli.Main(jobcli.Job{
		Name:    "fraud",
		Summary: "fraud streams generated card transactions through three per-card rules and prints the alerts (backfill: all of them, then exit).",
		Config:  cfg,
		Stream: func(ctx context.Context, env *jobcli.Env) error {
			return start(ctx, env, cfg)
		},
	})
}

// start is the job's Stream: the generated transactions in a memory
// source, the alerts query started through env (AvailableNow in backfill),
// and a summary once it has stopped.
func start(ctx context.Context, env *jobcli.Env, cfg *config) error {
	mem := memory.NewGoAllocator()
	src, sink, job, err := build(mem, Generator{Seed: cfg.Seed, Cards: cfg.Cards}.Txns(cfg.N), cfg.Batch)
	if err != nil {
		return err
	}
	env.Defer(src.Close)
	env.Defer(sink.Close)
	env.Expect(int64(cfg.N))
	q, err := env.Start(ctx, microbatch.WriteStream(job.WithConfig(dataset.Config{Allocator: mem}), sink).OutputMode(sinks.Append),
		jobcli.QueryOptions{Name: "alerts"})
	if err != nil || env.Role == "replay" { // a replay starts no query: no summary
		return err
	}
	env.Defer(func() error {
		alerts, state := collect(q, sink)
		byRule := map[string]int{}
		for _, a := range alerts {
			byRule[a.Rule]++
		}
		rules := make([]string, 0, len(byRule))
		for r := range byRule {
			rules = append(rules, r)
		}
		sort.Strings(rules)
		w := env.Stdout
		fmt.Fprintf(w, "%d transactions, %d alerts; cards in state at the end: %d\n", cfg.N, len(alerts), state)
		for _, r := range rules {
			fmt.Fprintf(w, "  %-8s %d\n", r, byRule[r])
		}
		for _, a := range alerts[:min(10, len(alerts))] {
			fmt.Fprintf(w, "  txn %d %s %s: %s\n", a.TxnID, a.Card, a.Rule, a.Detail)
		}
		return nil
	})
	return nil
}

// Alert is one row of the alerts sink.
type Alert struct {
	TxnID  int64
	Card   string
	Rule   string
	Detail string
}

// Run streams txns through Alerts in micro-batches of batch transactions
// (a memory source, the AvailableNow trigger, a memory sink) and returns
// the alerts in transaction order and the cards left in state.
func Run(ctx context.Context, mem memory.Allocator, txns []Txn, batch int64, checkpoint string) ([]Alert, int64, error) {
	src, sink, job, err := build(mem, txns, batch)
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()
	defer sink.Close()
	q, err := microbatch.WriteStream(job.WithConfig(dataset.Config{Allocator: mem}), sink).Checkpoint(checkpoint).OutputMode(sinks.Append).
		Trigger(microbatch.AvailableNow()).Start(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := q.AwaitTermination(); err != nil {
		return nil, 0, err
	}
	alerts, state := collect(q, sink)
	return alerts, state, nil
}

// build is the job: txns in a memory source of batch rows per
// micro-batch, through Alerts, into a memory sink.
func build(mem memory.Allocator, txns []Txn, batch int64) (*srcmem.Source, *sinkmem.Sink, *dataset.Dataset, error) {
	src, err := srcmem.New(srcmem.Config{Name: "transactions", Schema: TxnSchema, MaxRowsPerBatch: batch})
	if err != nil {
		return nil, nil, nil, err
	}
	for _, r := range Records(mem, txns, 4096) {
		err := src.Append(r)
		r.Release()
		if err != nil {
			src.Close()
			return nil, nil, nil, err
		}
	}
	sink, err := sinkmem.New(sinkmem.Config{Name: "alerts"})
	if err != nil {
		src.Close()
		return nil, nil, nil, err
	}
	return src, sink, Alerts(dataset.ReadStream(src)), nil
}

// collect is the alerts the sink holds, in transaction order, and the
// cards left in state after the query's last batch.
func collect(q *microbatch.Query, sink *sinkmem.Sink) ([]Alert, int64) {
	var state int64
	if lp := q.LastProgress(); lp != nil && len(lp.StateOperators) > 0 {
		state = lp.StateOperators[0].Rows
	}
	var out []Alert
	for _, r := range sink.Rows() {
		ids, cards := r.Column(0).(*array.Int64), r.Column(1).(*array.String)
		rules, details := r.Column(2).(*array.String), r.Column(4).(*array.String)
		for i := 0; i < int(r.NumRows()); i++ {
			out = append(out, Alert{TxnID: ids.Value(i), Card: cards.Value(i), Rule: rules.Value(i), Detail: details.Value(i)})
		}
		r.Release()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TxnID != out[j].TxnID {
			return out[i].TxnID < out[j].TxnID
		}
		return out[i].Rule < out[j].Rule
	})
	return out, state
}
