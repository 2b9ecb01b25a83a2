package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks"
	kafkasink "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
	"github.com/sluicedata/sluice/sources/kafka"
	pqsource "github.com/sluicedata/sluice/sources/parquet"
)

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

// The built-in jobs, by their "job" parameter: the demo's two queries. A
// driver builds a query's Datasets and sinks with buildJob from the
// parameters it then sends with every task (dataset.Config.Params), and
// `sluice executor` rebuilds the same code from them.
const (
	jobTotals = "demo-totals" // updated hourly totals -> console and a Kafka topic
	jobHourly = "demo-hourly" // closed hours -> Parquet
	jobBatch  = "demo-batch"  // the batch demo: no stream, no sink, no function to rebuild
)

// builtJob is one query's code built from its parameters, and what to
// close when the process is done with it.
type builtJob struct {
	sinks   []sinks.Sink
	ds      []*dataset.Dataset
	closers []func() error
}

func (j *builtJob) close() error {
	var errs []error
	for i := len(j.closers) - 1; i >= 0; i-- {
		errs = append(errs, j.closers[i]())
	}
	return errors.Join(errs...)
}

// buildJob builds the built-in job params["job"] from params. b receives
// the totals query's rows in the driver (on an executor, nil: the rows
// travel to the driver, whose sink instance commits them).
//
//	demo-totals: brokers, in (topic), out (topic), query_id
//	demo-hourly: brokers, in (topic), parquet (directory)
func buildJob(params map[string]string, b *board) (*builtJob, error) {
	need := func(keys ...string) error {
		for _, k := range keys {
			if params[k] == "" {
				return fmt.Errorf("job %s: parameter %q is missing (parameters %v)", params["job"], k, params)
			}
		}
		return nil
	}
	j := &builtJob{}
	fail := func(err error) (*builtJob, error) {
		j.close()
		return nil, fmt.Errorf("job %s: %w", params["job"], err)
	}
	source := func() (*dataset.Dataset, error) {
		src, err := kafka.New(kafka.Config{Name: ordersTopic, Brokers: split(params["brokers"]), Topics: []string{params["in"]},
			ValueSchema: generate.OrdersSchema, MaxOffsetsPerBatch: 50_000})
		if err != nil {
			return nil, err
		}
		j.closers = append(j.closers, src.Close)
		return dataset.ReadStream(src), nil
	}
	switch params["job"] {
	case jobTotals:
		if err := need("brokers", "in", "out", "query_id"); err != nil {
			return nil, err
		}
		orders, err := source()
		if err != nil {
			return fail(err)
		}
		// Updates, printed and written to Kafka with a key per (customer, hour).
		totals := hourlyTotals(orders).
			WithColumn("key", dataset.Concat(dataset.Col("customer"), dataset.Lit("@"),
				dataset.Col(dataset.WindowStart).Cast(dataset.Type(arrow.BinaryTypes.String))))
		topic, err := kafkasink.New(kafkasink.Config{Brokers: split(params["brokers"]), Topic: params["out"], KeyColumn: "key", QueryID: params["query_id"]})
		if err != nil {
			return fail(err)
		}
		j.closers = append(j.closers, topic.Close)
		// The updates also go to the driver's board, which prints the top
		// customers every few seconds.
		if b == nil {
			b = newBoard() // an executor's: never committed to
		}
		j.sinks, j.ds = []sinks.Sink{sinks.Tee(microbatch.ForeachBatch(b.update), topic)}, []*dataset.Dataset{totals}
	case jobHourly:
		if err := need("brokers", "in", "parquet"); err != nil {
			return nil, err
		}
		orders, err := source()
		if err != nil {
			return fail(err)
		}
		// Each hour once, when the watermark closes it, appended to Parquet.
		pq, err := parquet.NewStream(parquet.StreamConfig{Dir: params["parquet"]})
		if err != nil {
			return fail(err)
		}
		j.sinks, j.ds = []sinks.Sink{pq}, []*dataset.Dataset{hourlyTotals(orders)}
	case jobBatch:
	default:
		return nil, fmt.Errorf("no built-in job %q (parameter job): want %s or %s", params["job"], jobTotals, jobHourly)
	}
	return j, nil
}

// produceOrders writes generated orders [0, n) (n < 0: until ctx ends) as
// JSON values keyed by customer, about rate per second (0: at once). Event
// time runs 1 s per order (with up to 5 minutes of disorder), so at the
// default rate an event-time hour passes every couple of wall seconds and
// hourly windows close as you watch.
func produceOrders(ctx context.Context, brokers []string, n int64, rate int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(ordersTopic))
	if err != nil {
		return err
	}
	defer cl.Close()
	gen := generate.Orders{Seed: 7, Interval: time.Second, MaxDelay: 5 * time.Minute}
	mem := memory.NewGoAllocator()
	chunk := int64(5000)
	var tick <-chan time.Time
	if rate > 0 {
		chunk = 200
		t := time.NewTicker(time.Duration(float64(time.Second) * float64(chunk) / float64(rate)))
		defer t.Stop()
		tick = t.C
	}
	for from := int64(0); n < 0 || from < n; from += chunk {
		if tick != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick:
			}
		}
		size := chunk
		if n >= 0 {
			size = min(chunk, n-from)
		}
		rec := gen.Record(mem, from, size)
		recs := ordersJSON(rec)
		rec.Release()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
	}
	return nil
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

// streamDemo is the demo job's Stream: orders are generated into a Kafka
// topic (an in-process one without --brokers); one query prints each
// batch's updated hourly totals and writes them to the order-totals topic
// (exactly once), another appends each closed hour to a Parquet
// directory. In cluster mode (env.Cluster) their tasks run on the
// executors. In the stream role orders are produced at --rate until the
// stop; in backfill, --orders of them are produced first and the queries
// read them all (AvailableNow), then stop.
func streamDemo(ctx context.Context, env *jobcli.Env, cfg *demoConfig) error {
	w := env.Stdout
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, env.Stop)
		env.Defer(func() error { t.Stop(); return nil })
	}
	// Checkpoints go under --dir unless --checkpoint-dir says where;
	// without --dir the Parquet output then goes under the checkpoints.
	// With neither, both go to a new directory, kept at exit (the final
	// lines say where): a new one each run, since the in-process Kafka
	// starts empty each run and a checkpoint of the last one would be
	// ahead of it.
	dir := cfg.Dir
	if dir == "" && env.Settings.CheckpointDir == "" {
		tmp, err := os.MkdirTemp("", "sluice-demo-")
		if err != nil {
			return err
		}
		dir = tmp
	}
	hourlyDir := filepath.Join(dir, "hourly")
	if env.Settings.CheckpointDir == "" {
		env.Settings.CheckpointDir = filepath.Join(dir, "checkpoints")
	} else if dir == "" {
		hourlyDir = filepath.Join(env.Settings.CheckpointDir, "parquet", "hourly")
	}
	// Executors are told these paths: they must not depend on the
	// driver's working directory.
	hourlyDir, err := filepath.Abs(hourlyDir)
	if err != nil {
		return err
	}
	brokers := cfg.Brokers
	if len(brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, ordersTopic, totalsTopic))
		if err != nil {
			return fmt.Errorf("start in-process kafka: %w", err)
		}
		env.Defer(func() error { c.Close(); return nil })
		brokers = c.ListenAddrs()
		fmt.Fprintf(w, "in-process Kafka (kfake) on %s\n", strings.Join(brokers, ","))
		if env.Cluster != nil {
			fmt.Fprintln(w, "(only executors on this machine reach it; give --brokers for executors on other machines)")
		}
	} else if err := ensureTopics(ctx, brokers, ordersTopic, totalsTopic); err != nil {
		return err
	}
	checkpoints, err := env.Checkpoint("")
	if err != nil {
		return err
	}
	if env.UIURL != "" {
		fmt.Fprintf(w, "web UI %s   metrics %s\n", env.UIURL, env.MetricsURL)
	} else if env.MetricsURL != "" {
		fmt.Fprintf(w, "metrics %s\n", env.MetricsURL)
	}
	if env.Cluster != nil {
		fmt.Fprintf(w, "cluster mode: driver %s, gossip %s, Flight %s; checkpoints in %s, Parquet in %s (every executor must reach both)\n",
			env.Cluster.Name(), env.Cluster.Gossip(), env.Cluster.Flight(), checkpoints, hourlyDir)
	}

	switch env.Role {
	case "replay":
		// checkpoint replay reads the input a batch read; new orders in a
		// fresh in-process Kafka are not it (the replay then refuses: the
		// offsets are gone). With --brokers the topic still holds it.
	case "backfill":
		if err := produceOrders(ctx, brokers, cfg.Orders, 0); err != nil {
			return fmt.Errorf("order generator: %w", err)
		}
		env.Expect(2 * cfg.Orders) // both queries read them all
	default:
		produced := make(chan error, 1)
		pctx, stopProducing := context.WithCancel(context.WithoutCancel(ctx))
		go func() { produced <- produceOrders(pctx, brokers, -1, cfg.Rate) }()
		env.Defer(func() error {
			stopProducing()
			if err := <-produced; err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("order generator: %w", err)
			}
			return nil
		})
	}

	// start builds a query's job from its parameters and starts it; in
	// cluster mode the same parameters travel with its tasks. Each batch
	// prints one line.
	b := newBoard()
	var printMu sync.Mutex // lines of the two queries and the board's table
	start := func(name string, params map[string]string, mode sinks.Mode, every time.Duration) (*microbatch.Query, error) {
		j, err := buildJob(params, b)
		if err != nil {
			return nil, err
		}
		env.Defer(j.close)
		return env.Start(ctx, microbatch.WriteStream(j.ds[0].WithConfig(env.Dataset(params)), j.sinks[0]).OutputMode(mode).QueryName(name),
			jobcli.QueryOptions{Name: name, Every: every, OnProgress: func(p microbatch.Progress) {
				printMu.Lock()
				fmt.Fprintln(w, batchLine(name, p))
				printMu.Unlock()
			}})
	}
	joined := strings.Join(brokers, ",")
	q1, err := start("totals", map[string]string{"job": jobTotals, "brokers": joined, "in": ordersTopic, "out": totalsTopic,
		"query_id": "demo-hourly-totals"}, sinks.Update, 2*time.Second)
	if err != nil {
		return err
	}
	q2, err := start("hourly", map[string]string{"job": jobHourly, "brokers": joined, "in": ordersTopic, "parquet": hourlyDir},
		sinks.Append, 5*time.Second)
	if err != nil || env.Role == "replay" { // a replay starts no query: no summary
		return err
	}
	// The top customers every few seconds, not every batch, until the
	// summary (which prints them last).
	stopTables := func() {}
	if env.Role == "stream" && cfg.Every > 0 {
		tick := time.NewTicker(cfg.Every)
		done := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					printMu.Lock()
					b.print(w, cfg.Rows)
					printMu.Unlock()
				}
			}
		}()
		stopTables = func() { tick.Stop(); close(done); <-stopped }
	}
	// The summary, once the queries have stopped (deferred functions run
	// last first: before the sources close and Kafka stops).
	env.Defer(func() error {
		stopTables()
		b.print(w, cfg.Rows)
		for _, q := range []struct {
			name string
			q    *microbatch.Query
			to   string
		}{{"hourly totals (update)", q1, "topic " + totalsTopic + " and the table above"}, {"closed hours (append)", q2, hourlyDir}} {
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
		if env.Cluster != nil {
			fmt.Fprintf(w, "cluster: %d task attempts sent to executors, %d lost their executor\n", env.Cluster.SentAttempts(), env.Cluster.LostAttempts())
		}
		n, err := dataset.Read(hourlyDir).Count(context.Background())
		if errors.Is(err, pqsource.ErrNoFiles) {
			n, err = 0, nil // no hour closed yet
		}
		if err == nil {
			fmt.Fprintf(w, "%s holds %d closed (customer, hour) totals: dataset.Read(%q) reads them, as do pyarrow, DuckDB and Spark\n", hourlyDir, n, hourlyDir)
		}
		if checkpoints != "" {
			fmt.Fprintf(w, "checkpoints in %s: sluice checkpoint inspect %s\n", checkpoints, filepath.Join(checkpoints, "totals"))
		}
		return nil
	})
	return nil
}
