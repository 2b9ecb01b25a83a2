package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicedata/sluice/microbatch"
)

// observer is what -metrics and -log-level turn on around the measured
// queries: the engine's Prometheus metrics served on 127.0.0.1 and scraped
// every -scrape-interval by a client in this process (so the CPU of both
// ends of a scrape is counted), and its slog records written as JSON to
// <dir>/query.log.
type observer struct {
	metrics *microbatch.Metrics
	log     *slog.Logger
	scrapes atomic.Int64
	close   func() error
}

// observe sets up o's observability; close stops the scraper and server
// and closes the log file.
func observe(o options, dir string) (*observer, error) {
	ob := &observer{log: slog.New(slog.DiscardHandler)}
	var closers []func() error
	ob.close = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	if o.logLevel != "" && o.logLevel != "off" {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
			return nil, fmt.Errorf("-log-level %q: want off, debug, info, warn or error", o.logLevel)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(filepath.Join(dir, "query.log"))
		if err != nil {
			return nil, err
		}
		closers = append(closers, f.Close)
		ob.log = slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: lvl}))
	}
	if !o.metrics {
		return ob, nil
	}
	reg := prometheus.NewRegistry()
	m, err := microbatch.NewMetrics(reg)
	if err == nil {
		err = microbatch.RegisterRuntime(reg)
	}
	if err != nil {
		ob.close()
		return nil, err
	}
	ob.metrics = m
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ob.close()
		return nil, err
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String() + "/metrics"
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Transport: &http.Transport{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.scrapeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ob.scrapes.Add(1)
		}
	}()
	closers = append(closers, func() error {
		cancel()
		wg.Wait()
		client.CloseIdleConnections()
		return srv.Close()
	})
	return ob, nil
}

// apply hands the observer's logger and metrics to w.
func (ob *observer) apply(w *microbatch.StreamWriter) *microbatch.StreamWriter {
	w = w.Logger(ob.log)
	if ob.metrics != nil {
		w = w.Metrics(ob.metrics)
	}
	return w
}
