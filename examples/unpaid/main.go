// Command unpaid reports orders nobody paid for within 15 minutes: two
// streams, orders and payments, joined with a left outer join on order_id
// where the payment's time lies within 15 minutes of the order's. An order
// comes out of the join once, null-padded, when the watermark has passed
// its 15 minutes without a matching payment; the job keeps those rows (the
// payment column is null) and drops the paid ones.
//
//	go run ./examples/unpaid backfill            # generated data, backfilled, then it exits
//	go run ./examples/unpaid stream --orders in/orders --payments in/payments --checkpoint-dir ckpt --trigger-interval 1s
//
// Its main is jobcli's (unpaid -h). backfill without directories generates
// six hours of orders and payments as Parquet files in a temp dir (ten
// minutes of a stream per file, as an upstream job would drop them), reads
// both directories as streams with the AvailableNow trigger (one file of
// each per micro-batch) and prints the unpaid orders as the batches find
// them. stream keeps watching the directories, a micro-batch every
// --trigger-interval, until SIGINT or SIGTERM.
//
// Data path:
//
//	files "orders"   (order_id, customer, amount, ordered_at) -> WithWatermark(ordered_at, 1m)
//	files "payments" (payment_id, order_id, paid, paid_at)     -> WithWatermark(paid_at, 1m)
//	  -> JoinWhere(on order_id, left, paid_at BETWEEN ordered_at AND ordered_at + 15m)
//	  -> Where(payment_id IS NULL) -> Select(order_id, customer, amount, ordered_at)
//	  -> foreachBatch: print
//
// What to expect. The join keeps each order in state until the watermark
// (the slower stream's latest event time minus a minute) is 15 minutes past
// it, so state holds about 16 minutes of orders however long the stream
// runs. An order is reported unpaid at that moment, a payment 15m01s after
// the order, or one stamped before it, does not count. When the input ends,
// orders of its last 16 minutes are still open: a stream cannot know yet
// whether they will be paid, so they are not reported (the summary says how
// many). The same Unpaid function run as a batch job over the directories
// (dataset.Read) reports every unpaid order, those included.
package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources/files"
)

const (
	// Window is how long after an order its payment still counts (inclusive).
	Window = 15 * time.Minute
	// Lateness is both streams' watermark delay: how far behind the newest
	// event time a row may arrive and still be joined.
	Lateness = time.Minute
)

// Unpaid is the job: orders with no payment within Window of the order.
// The time range bounds the join's state; the watermarks let it evict (and
// emit, null-padded) orders whose window has passed.
func Unpaid(orders, payments *dataset.Dataset) *dataset.Dataset {
	inTime := dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(Window)))
	return orders.WithWatermark("ordered_at", Lateness).
		JoinWhere(payments.WithWatermark("paid_at", Lateness), []string{"order_id"}, dataset.Left, inTime).
		Where(dataset.Col("payment_id").IsNull()).
		Select("order_id", "customer", "amount", "ordered_at")
}

// UnpaidOrder is one output row.
type UnpaidOrder struct {
	OrderID   int64
	Customer  string
	Amount    int64
	OrderedAt time.Time
}

func (o UnpaidOrder) String() string {
	return fmt.Sprintf("order %d  %s  %d.%02d  ordered %s", o.OrderID, o.Customer, o.Amount/100, o.Amount%100, o.OrderedAt.Format(time.DateTime))
}

// options are the command line.
type options struct {
	orders, payments string // directories of Parquet files
	checkpoint       string
	filesPerBatch    int
	follow           bool // keep running, a batch every interval
	interval         time.Duration
	mem              memory.Allocator // nil: the default allocator (tests inject a checked one)
}

// summary is what a run saw.
type summary struct {
	batches   int
	unpaid    int
	watermark time.Time // of the last batch
	stateRows int64     // the join's state after the last batch
	peakState int64     // the join's largest state after a batch
}

// writer is the job's query, writing the unpaid orders of o's
// directories to emit and counting into sum; its trigger and checkpoint
// are the caller's.
func writer(o options, emit func(batch int64, u UnpaidOrder), sum *summary) (*microbatch.StreamWriter, error) {
	cfg := dataset.Config{Allocator: o.mem}
	stream := func(name, dir string, schema *arrow.Schema) (*dataset.Dataset, error) {
		src, err := files.New(files.Config{Name: name, Dir: dir, LogDir: vfs.Join(o.checkpoint, "sources", name),
			MaxFilesPerBatch: o.filesPerBatch, Schema: schema})
		if err != nil {
			return nil, err
		}
		return dataset.ReadStream(src).WithConfig(cfg), nil
	}
	orders, err := stream("orders", o.orders, schemaOf[Order]())
	if err != nil {
		return nil, err
	}
	payments, err := stream("payments", o.payments, schemaOf[Payment]())
	if err != nil {
		return nil, err
	}
	out := microbatch.ForeachBatch(func(ctx context.Context, batch int64, ds *dataset.Dataset) error {
		rows, err := dataset.CollectStructs[UnpaidOrder](ctx, ds)
		if err != nil {
			return err
		}
		slices.SortFunc(rows, func(a, b UnpaidOrder) int {
			return cmp.Or(a.OrderedAt.Compare(b.OrderedAt), cmp.Compare(a.OrderID, b.OrderID))
		})
		for _, u := range rows {
			emit(batch, u)
		}
		sum.unpaid += len(rows)
		return nil
	})
	return microbatch.WriteStream(Unpaid(orders, payments), out).OutputMode(sinks.Append), nil
}

// observe is the query's progress listener: it keeps sum's batch,
// watermark and state figures.
func (sum *summary) observe(p microbatch.Progress) {
	sum.batches++
	sum.watermark = p.Watermark
	sum.stateRows = 0
	for _, s := range p.StateOperators {
		sum.stateRows += s.Rows
	}
	sum.peakState = max(sum.peakState, sum.stateRows)
}

// run streams the unpaid orders of o's directories to emit, batch by batch,
// until the input ends (or, with follow, until ctx is done).
func run(ctx context.Context, o options, emit func(batch int64, u UnpaidOrder)) (summary, error) {
	var sum summary
	w, err := writer(o, emit, &sum)
	if err != nil {
		return sum, err
	}
	trigger := microbatch.AvailableNow()
	if o.follow {
		trigger = microbatch.ProcessingTime(o.interval)
	}
	q, err := w.Checkpoint(o.checkpoint).Trigger(trigger).OnProgress(sum.observe).Start(ctx)
	if err != nil {
		return sum, err
	}
	return sum, q.AwaitTermination()
}

// config is the job's command line (flags, UNPAID_* environment
// variables, --config FILE).
type config struct {
	Orders        string `help:"directory of orders Parquet files (default: generate into a temp dir)"`
	Payments      string `help:"directory of payments Parquet files (default: generate into a temp dir)"`
	FilesPerBatch int    `help:"files of each stream a micro-batch takes at most (0 = all)"`
	Hours         int    `help:"hours of orders to generate (without --orders)"`
	Seed          uint64 `help:"generator seed"`
	Show          int    `help:"unpaid orders to print (the rest are counted)"`
}

func (c *config) Validate() error {
	if (c.Orders == "") != (c.Payments == "") {
		return jobcli.Invalid("orders", "give both --orders and --payments, or neither")
	}
	return nil
}

func main() {
	cfg := &config{FilesPerBatch: 1, Hours: 6, Seed: 1, Show: 20}
	jobcli.Main(jobcli.Job{
		Name:    "unpaid",
		Summary: "unpaid reports orders nobody paid for within 15 minutes (backfill: the files there are, then exit; stream: keep watching the directories).",
		Config:  cfg,
		Stream:  func(ctx context.Context, env *jobcli.Env) error { return start(ctx, env, cfg) },
	})
}

// start is the job's Stream: the generated history when no directories
// are given, the query started through env, a summary when it stopped.
func start(ctx context.Context, env *jobcli.Env, cfg *config) error {
	w := env.Stdout
	o := options{orders: cfg.Orders, payments: cfg.Payments, filesPerBatch: cfg.FilesPerBatch}
	var total int
	if o.orders == "" {
		tmp, err := os.MkdirTemp("", "sluice-unpaid-")
		if err != nil {
			return err
		}
		env.Defer(func() error { return os.RemoveAll(tmp) })
		o.orders, o.payments = filepath.Join(tmp, "orders"), filepath.Join(tmp, "payments")
		// About 1,800 orders an hour (one every 2 s on average).
		h := Generate(cfg.Seed, cfg.Hours*1800, time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC))
		if err := h.WriteFiles(ctx, memory.DefaultAllocator, o.orders, o.payments); err != nil {
			return err
		}
		total = len(h.Orders)
		env.Expect(int64(len(h.Orders) + len(h.Payments)))
		fmt.Fprintf(w, "generated %d orders and %d payments into %s\n", len(h.Orders), len(h.Payments), tmp)
	}
	// The files sources keep their logs beside the query's checkpoint.
	dir, err := env.Checkpoint("unpaid")
	if err != nil {
		return err
	}
	o.checkpoint = dir
	printed := 0
	sum := &summary{}
	qw, err := writer(o, func(batch int64, u UnpaidOrder) {
		if printed < cfg.Show {
			fmt.Fprintf(w, "batch %3d  unpaid %s\n", batch, u)
		} else if printed == cfg.Show {
			fmt.Fprintln(w, "...")
		}
		printed++
	}, sum)
	if err != nil {
		return err
	}
	if _, err := env.Start(ctx, qw, jobcli.QueryOptions{Name: "unpaid", Every: time.Second, OnProgress: sum.observe}); err != nil {
		return err
	}
	env.Defer(func() error {
		fmt.Fprintf(w, "%d unpaid orders in %d batches", sum.unpaid, sum.batches)
		if total > 0 {
			fmt.Fprintf(w, " (%.1f%% of %d orders)", 100*float64(sum.unpaid)/float64(total), total)
		}
		fmt.Fprintf(w, "; watermark %s: orders from %s on are still open (%d rows in join state)\n",
			sum.watermark.UTC().Format(time.DateTime), sum.watermark.Add(-Window).UTC().Format(time.DateTime), sum.stateRows)
		return nil
	})
	return nil
}
