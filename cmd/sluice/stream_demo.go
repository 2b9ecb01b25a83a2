package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/console"
	kafkasink "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
	"github.com/sluicedata/sluice/sources/kafka"
)

// streamOpts configures the streaming demo.
type streamOpts struct {
	duration time.Duration // 0: until Ctrl-C
	rate     int           // orders produced per second
	dir      string        // checkpoints and Parquet output; "" = a temp dir, removed at exit
	brokers  []string      // a real Kafka; empty = an in-process one (kfake)
	maxRows  int           // rows printed per batch
}

const (
	ordersTopic = "orders"
	totalsTopic = "order-totals"
)

// hourlyTotals is the demo's job, the same function a batch job runs over
// a Parquet history: total order value per customer per event-time hour.
func hourlyTotals(orders *dataset.Dataset) *dataset.Dataset {
	return orders.
		WithWatermark("ts", 10*time.Minute).
		GroupBy(dataset.Window("ts", time.Hour), "customer").
		Agg(dataset.Sum(dataset.Col("amount")).As("total"), dataset.CountAll().As("orders"))
}

// streamDemo runs the order analytics job on embedded defaults: orders are
// generated into a Kafka topic; one query prints each batch's updated
// hourly totals and writes them to the order-totals topic (exactly once),
// another appends each closed hour to a Parquet directory.
func streamDemo(ctx context.Context, w io.Writer, o streamOpts) error {
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.dir = tmp
	}
	brokers := o.brokers
	if len(brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, ordersTopic, totalsTopic))
		if err != nil {
			return fmt.Errorf("start in-process kafka: %w", err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
		fmt.Fprintf(w, "in-process Kafka (kfake) on %s\n", strings.Join(brokers, ","))
	} else if err := ensureTopics(ctx, brokers, ordersTopic, totalsTopic); err != nil {
		return err
	}

	produced := make(chan error, 1)
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	go func() { produced <- produceOrders(pctx, brokers, o.rate) }()

	source := func() (*kafka.Source, error) {
		return kafka.New(kafka.Config{Name: ordersTopic, Brokers: brokers, Topics: []string{ordersTopic},
			ValueSchema: generate.OrdersSchema, MaxOffsetsPerBatch: 50_000})
	}
	src1, err := source()
	if err != nil {
		return err
	}
	defer src1.Close()
	src2, err := source()
	if err != nil {
		return err
	}
	defer src2.Close()

	// Query 1: updates, printed and written to Kafka with a key per (customer, hour).
	totals := hourlyTotals(dataset.ReadStream(src1)).
		WithColumn("key", dataset.Concat(dataset.Col("customer"), dataset.Lit("@"),
			dataset.Col(dataset.WindowStart).Cast(dataset.Type(arrow.BinaryTypes.String))))
	out, err := kafkasink.New(kafkasink.Config{Brokers: brokers, Topic: totalsTopic, KeyColumn: "key", QueryID: "demo-hourly-totals"})
	if err != nil {
		return err
	}
	defer out.Close()
	// The engine's table formatter: decimals keep their scale, timestamps their zone.
	show, err := console.New(console.Config{Out: w, MaxRows: o.maxRows, Format: exec.FormatTable})
	if err != nil {
		return err
	}
	q1, err := microbatch.WriteStream(totals, sinks.Tee(show, out)).
		OutputMode(sinks.Update).Trigger(microbatch.ProcessingTime(2 * time.Second)).
		Checkpoint(filepath.Join(o.dir, "checkpoints", "totals")).Start(ctx)
	if err != nil {
		return err
	}
	// Query 2: each hour once, when the watermark closes it, appended to Parquet.
	hourlyDir := filepath.Join(o.dir, "hourly")
	pq, err := parquet.NewStream(parquet.StreamConfig{Dir: hourlyDir})
	if err != nil {
		q1.Stop()
		return err
	}
	q2, err := microbatch.WriteStream(hourlyTotals(dataset.ReadStream(src2)), pq).
		OutputMode(sinks.Append).Trigger(microbatch.ProcessingTime(5 * time.Second)).
		Checkpoint(filepath.Join(o.dir, "checkpoints", "hourly")).Start(ctx)
	if err != nil {
		q1.Stop()
		return err
	}

	<-ctx.Done()
	stopProducing()
	perr := <-produced
	err1, err2 := q1.Stop(), q2.Stop()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if perr != nil && !errors.Is(perr, context.Canceled) && !errors.Is(perr, context.DeadlineExceeded) {
		return fmt.Errorf("order generator: %w", perr)
	}
	fmt.Fprintln(w)
	for _, q := range []struct {
		name string
		q    *microbatch.Query
		to   string
	}{{"hourly totals (update)", q1, "console and topic " + totalsTopic}, {"closed hours (append)", q2, hourlyDir}} {
		var batches, rows int64
		for _, p := range q.q.RecentProgress() {
			batches++
			rows += p.InputRows
		}
		wm := "none yet"
		if p := q.q.LastProgress(); p != nil && !p.Watermark.IsZero() {
			wm = p.Watermark.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%-24s %d batches, %d orders read, watermark %s -> %s\n", q.name, batches, rows, wm, q.to)
	}
	if n, err := dataset.Read(hourlyDir).Count(context.Background()); err == nil {
		fmt.Fprintf(w, "%s holds %d closed (customer, hour) totals; read it with dataset.Read\n", hourlyDir, n)
	}
	return nil
}

// produceOrders writes generated orders (JSON values keyed by customer) at
// about rate per second until ctx ends. Event time runs 1 s per order (with
// up to 5 minutes of disorder), so at the default rate an event-time hour
// passes every couple of wall seconds and hourly windows close as you watch.
func produceOrders(ctx context.Context, brokers []string, rate int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(ordersTopic))
	if err != nil {
		return err
	}
	defer cl.Close()
	gen := generate.Orders{Seed: 7, Interval: time.Second, MaxDelay: 5 * time.Minute}
	mem := memory.NewGoAllocator()
	const chunk = 200
	tick := time.NewTicker(time.Duration(float64(time.Second) * chunk / float64(max(rate, 1))))
	defer tick.Stop()
	for from := int64(0); ; from += chunk {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		rec := gen.Record(mem, from, chunk)
		recs := ordersJSON(rec)
		rec.Release()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
	}
}

func ordersJSON(rec arrow.Record) []*kgo.Record {
	ids := rec.Column(0).(*array.Int64)
	cust := rec.Column(1).(*array.String)
	reg := rec.Column(2).(*array.String)
	amt := rec.Column(3).(*array.Decimal128)
	ts := rec.Column(4).(*array.Timestamp)
	scale := amt.DataType().(*arrow.Decimal128Type).Scale
	out := make([]*kgo.Record, rec.NumRows())
	for i := range out {
		v, _ := json.Marshal(map[string]any{
			"order_id": ids.Value(i), "customer": cust.Value(i), "region": reg.Value(i),
			"amount": amt.Value(i).ToString(scale), "ts": int64(ts.Value(i)),
		})
		out[i] = &kgo.Record{Key: []byte(cust.Value(i)), Value: v}
	}
	return out
}

// ensureTopics creates the demo's topics on a real cluster when missing.
func ensureTopics(ctx context.Context, brokers []string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, 4, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics %v on %v: %w", topics, brokers, err)
	}
	for _, r := range resp {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create topic %s on %v: %w", r.Topic, brokers, r.Err)
		}
	}
	return nil
}
