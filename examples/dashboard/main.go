package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/jobcli"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources/kafka"
)

func main() {
	os.Args = append(os.Args[:1], withCommand(os.Args[1:])...)
	jobcli.Main(dashboardJob(&Config{}))
}

// withCommand is args with the stream command first when they name no
// command (none at all, or flags only): `dashboard` and `dashboard --port
// 0` start the dashboard as they did before it had commands. A help flag
// still asks for the binary's help.
func withCommand(args []string) []string {
	if len(args) == 0 || (len(args[0]) > 1 && args[0][0] == '-' && args[0] != "-h" && args[0] != "-help" && args[0] != "--help") {
		return append([]string{"stream"}, args...)
	}
	return args
}

// Config is the dashboard's own settings: flags of the stream command,
// DASHBOARD_* environment variables or keys of a --config file.
type Config struct {
	Port     int           `roles:"stream" help:"port of the dashboard's page on 127.0.0.1 (0: any free port)"`
	Rate     int           `help:"orders placed per second (1 to 1000; orders are a whole number of milliseconds apart)"`
	Seed     uint64        `help:"order generator seed"`
	Duration time.Duration `roles:"stream" help:"stop after this long (0: run until Ctrl-C or SIGTERM)"`
}

// Validate refuses what the page server or the generator cannot take.
func (c *Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return jobcli.Invalid("port", "%d: want 0 (any free port) to 65535", c.Port)
	}
	if c.Rate < 1 || c.Rate > 1000 {
		return jobcli.Invalid("rate", "%d orders/s: want 1 to 1000", c.Rate)
	}
	if c.Duration < 0 {
		return jobcli.Invalid("duration", "%v: want 0 (no limit) or more", c.Duration)
	}
	return nil
}

// dashboardJob is the dashboard as a jobcli job, cfg set to the defaults
// and filled in by the CLI.
func dashboardJob(cfg *Config) jobcli.Job {
	*cfg = Config{Port: 8080, Rate: 50, Seed: 1}
	return jobcli.Job{
		Name:    "dashboard",
		Summary: "dashboard streams a shop's order events through three queries and pushes their figures to a web page every second (stream; no command: stream).",
		Config:  cfg,
		Stream:  func(ctx context.Context, env *jobcli.Env) error { return stream(ctx, env, cfg) },
	}
}

const topic = "orders"

// The figures, each its own query into a ForeachBatch sink that writes
// the board.
var figureQueries = []struct {
	name string
	job  func(*dataset.Dataset) *dataset.Dataset
	mode sinks.Mode
	sink func(*Board) microbatch.BatchFunc
}{
	{"orders-per-minute", OrdersPerMinute, sinks.Update, func(b *Board) microbatch.BatchFunc { return b.Minutes }},
	{"revenue-by-region", RevenueByRegion, sinks.Complete, func(b *Board) microbatch.BatchFunc { return b.Regions }},
	{"conversion", Conversion, sinks.Complete, func(b *Board) microbatch.BatchFunc { return b.Conversion }},
}

// stream is the job's Stream: an in-process Kafka (kfake) with the orders
// topic, the producer writing order events to it in event time, the three
// queries reading it (started by env, 1 s trigger) and the page server
// pushing their figures every second. It prints the page's URL (and the
// job's web UI's) on stdout once the queries run; the rest happens in the
// functions given to env.Defer when the CLI stops the queries.
func stream(ctx context.Context, env *jobcli.Env, cfg *Config) error {
	switch {
	case env.Role == "backfill":
		// AvailableNow would read the topic as it is at the start: empty.
		return jobcli.Usage(errors.New("the dashboard's order events are written when the wall clock reaches their event time, so there is no range to read at once: run stream"))
	case env.Role == "replay":
		return errors.New("the dashboard's Kafka is in-process and starts empty each run, and its events start at the run's wall-clock time: a committed batch's input is gone once the run ends, so there is nothing to replay")
	case env.Cluster != nil:
		return jobcli.Usage(errors.New("the dashboard runs in one process (its Kafka is in-process and the page reads the figures from memory): drop --join"))
	}
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, env.Stop)
		env.Defer(func() error { t.Stop(); return nil })
	}
	start := time.Now().UTC().Truncate(time.Millisecond)
	events, err := NewEvents(cfg.Seed, start, cfg.Rate)
	if err != nil {
		return err
	}
	if dir := env.Settings.CheckpointDir; dir != "" {
		// Each run has a new in-process Kafka and a new event stream: a
		// checkpoint of an earlier run would be ahead of the topic. Its
		// checkpoints are kept apart, for checkpoint inspect and verify.
		env.Settings.CheckpointDir = filepath.Join(dir, "run-"+start.Format("20060102T150405.000Z"))
	}
	// One partition, so offsets number the events in order.
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	env.Defer(func() error { broker.Close(); return nil })

	board := NewBoard()
	for _, f := range figureQueries {
		src, err := kafka.New(kafka.Config{Name: topic, Brokers: broker.ListenAddrs(), Topics: []string{topic}, ValueSchema: EventSchema})
		if err != nil {
			return fmt.Errorf("query %s: %w", f.name, err)
		}
		env.Defer(src.Close)
		w := microbatch.WriteStream(f.job(dataset.ReadStream(src)).WithConfig(env.Dataset(nil)), microbatch.ForeachBatch(f.sink(board))).
			OutputMode(f.mode)
		if _, err := env.Start(ctx, w, jobcli.QueryOptions{Name: f.name, Every: time.Second}); err != nil {
			return err
		}
	}

	pctx, stopProducing := context.WithCancel(ctx)
	produced := make(chan error, 1)
	go func() {
		err := produce(pctx, broker.ListenAddrs(), topic, events)
		if err != nil {
			// The producer failing ends the job, as a query failing
			// does; the deferred function below returns its error.
			env.Log.Error("stopping: the order producer failed", "err", err)
			env.Stop()
		}
		produced <- err
	}()
	env.Defer(func() error {
		stopProducing()
		return <-produced
	})

	page, err := servePage(ctx, env, board, start, cfg.Port)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "dashboard: %s (%d orders/s; Ctrl-C to stop)\n", page, cfg.Rate)
	if env.UIURL != "" {
		fmt.Fprintf(env.Stdout, "web UI %s   metrics %s\n", env.UIURL, env.MetricsURL)
	}
	if env.Settings.CheckpointDir != "" {
		fmt.Fprintf(env.Stdout, "checkpoints in %s\n", env.Settings.CheckpointDir)
	}
	env.Defer(func() error {
		last, _ := board.snapshot()
		fmt.Fprintf(env.Stdout, "stopped: %d orders placed, %d paid (%.1f%%)\n", last.Conversion.Placed, last.Conversion.Paid, 100*last.Conversion.Rate)
		return nil
	})
	return nil
}

// servePage serves the dashboard's page on 127.0.0.1:port, pushing the
// board every second until the CLI stops the queries, and returns its URL.
func servePage(ctx context.Context, env *jobcli.Env, board *Board, start time.Time, port int) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return "", jobcli.Invalid("port", "listen: %v", err)
	}
	srv := NewServer(board, start)
	web := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- web.Serve(ln) }()
	pushCtx, stopPushing := context.WithCancel(ctx)
	pushed := make(chan struct{})
	go func() {
		srv.Run(pushCtx, time.Second) // closes the page connections when it returns
		close(pushed)
	}()
	env.Defer(func() error {
		stopPushing()
		<-pushed
		shut, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		err := web.Shutdown(shut)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("page server: %w", err)
		}
		return nil
	})
	return "http://" + ln.Addr().String() + "/", nil
}
