// Command fraud is card fraud detection as a streaming job: generated card
// transactions flow through three per-card rules kept with
// FlatMapGroupsWithState (rules.go: more than 3 transactions in a minute,
// two countries within 5 minutes, an amount over 10 times the card's
// average), and the alerts go to a sink. Cards idle for 30 minutes of event
// time leave state through an event-time timeout.
//
//	go run ./examples/fraud -n 200000 -batch 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

func main() {
	n := flag.Int("n", 100_000, "transactions to generate")
	seed := flag.Uint64("seed", 1, "generator seed")
	cards := flag.Int("cards", 2000, "distinct cards")
	batch := flag.Int64("batch", 5_000, "transactions per micro-batch")
	checkpoint := flag.String("checkpoint", "", "checkpoint directory (default: a temp dir)")
	flag.Parse()
	if *checkpoint == "" {
		dir, err := os.MkdirTemp("", "sluice-fraud-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		*checkpoint = dir
	}
	alerts, state, err := Run(context.Background(), memory.NewGoAllocator(), Generator{Seed: *seed, Cards: *cards}.Txns(*n), *batch, *checkpoint)
	if err != nil {
		log.Fatal(err)
	}
	byRule := map[string]int{}
	for _, a := range alerts {
		byRule[a.Rule]++
	}
	rules := make([]string, 0, len(byRule))
	for r := range byRule {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	fmt.Printf("%d transactions, %d alerts; cards in state at the end: %d\n", *n, len(alerts), state)
	for _, r := range rules {
		fmt.Printf("  %-8s %d\n", r, byRule[r])
	}
	for _, a := range alerts[:min(10, len(alerts))] {
		fmt.Printf("  txn %d %s %s: %s\n", a.TxnID, a.Card, a.Rule, a.Detail)
	}
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
	src, err := srcmem.New(srcmem.Config{Name: "transactions", Schema: TxnSchema, MaxRowsPerBatch: batch})
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()
	for _, r := range Records(mem, txns, 4096) {
		err := src.Append(r)
		r.Release()
		if err != nil {
			return nil, 0, err
		}
	}
	sink, err := sinkmem.New(sinkmem.Config{Name: "alerts"})
	if err != nil {
		return nil, 0, err
	}
	defer sink.Close()
	job := Alerts(dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem}))
	q, err := microbatch.WriteStream(job, sink).Checkpoint(checkpoint).OutputMode(sinks.Append).
		Trigger(microbatch.AvailableNow()).Start(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := q.AwaitTermination(); err != nil {
		return nil, 0, err
	}
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
	return out, state, nil
}
