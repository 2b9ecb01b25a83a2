package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources/kafka"
)

func main() {
	var cfg Config
	flag.IntVar(&cfg.Port, "port", 8080, "HTTP port on 127.0.0.1 (0: any free port)")
	flag.IntVar(&cfg.Rate, "rate", 50, "orders placed per second (1 to 1000; orders are a whole number of milliseconds apart)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "order generator seed")
	flag.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: run until Ctrl-C or SIGTERM)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Config is the dashboard's flags.
type Config struct {
	Port     int
	Rate     int
	Seed     uint64
	Duration time.Duration
}

const topic = "orders"

// Run runs the dashboard until ctx ends or cfg.Duration passes: an
// in-process Kafka (kfake) with the orders topic, the producer writing
// order events to it in event time, the three queries reading it, and the
// web server pushing their figures every second. It prints the page's URL
// to out when the server listens.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now().UTC().Truncate(time.Millisecond)
	events, err := NewEvents(cfg.Seed, start, cfg.Rate)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-dashboard-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// One partition, so offsets number the events in order.
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	defer broker.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("dashboard: listen: %w", err)
	}
	board := NewBoard()
	srv := NewServer(board, start)
	web := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- web.Serve(ln) }()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	produced := make(chan struct{})
	go func() {
		if err := produce(ctx, broker.ListenAddrs(), topic, events); err != nil {
			cancel(err)
		}
		close(produced)
	}()

	queries := []struct {
		name string
		job  func(*dataset.Dataset) *dataset.Dataset
		mode sinks.Mode
		sink microbatch.BatchFunc
	}{
		{"orders-per-minute", OrdersPerMinute, sinks.Update, board.Minutes},
		{"revenue-by-region", RevenueByRegion, sinks.Complete, board.Regions},
		{"conversion", Conversion, sinks.Complete, board.Conversion},
	}
	var running []*microbatch.Query
	// The page shows the figures; the log says only what goes wrong.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, q := range queries {
		src, err := kafka.New(kafka.Config{Name: topic, Brokers: broker.ListenAddrs(), Topics: []string{topic}, ValueSchema: EventSchema})
		if err != nil {
			cancel(err)
			break
		}
		defer src.Close()
		query, err := microbatch.WriteStream(q.job(dataset.ReadStream(src)), microbatch.ForeachBatch(q.sink)).
			QueryName(q.name).Logger(log).OutputMode(q.mode).Trigger(microbatch.ProcessingTime(time.Second)).
			Checkpoint(filepath.Join(dir, q.name)).Start(ctx)
		if err != nil {
			cancel(fmt.Errorf("start query %s: %w", q.name, err))
			break
		}
		running = append(running, query)
		go func() {
			if err := query.AwaitTermination(); err != nil {
				cancel(fmt.Errorf("query %s: %w", q.name, err))
			}
		}()
	}
	if context.Cause(ctx) == nil {
		fmt.Fprintf(out, "dashboard: http://%s/ (%d orders/s; Ctrl-C to stop)\n", ln.Addr(), cfg.Rate)
	}

	pushed := make(chan struct{})
	go func() {
		srv.Run(ctx, time.Second)
		close(pushed)
	}()
	<-ctx.Done()
	var errs []error
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, err) // a query or the producer failed
	}
	for _, q := range running {
		q.Stop()
	}
	<-pushed
	<-produced
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	errs = append(errs, web.Shutdown(shut))
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	last, _ := board.snapshot()
	fmt.Fprintf(out, "stopped: %d orders placed, %d paid (%.1f%%)\n", last.Conversion.Placed, last.Conversion.Paid, 100*last.Conversion.Rate)
	return nil
}
