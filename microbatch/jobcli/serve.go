package jobcli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/internal/ui"
	"github.com/sluicedata/sluice/microbatch"
)

// defaultUIAddr is Spark's UI port, on loopback: reaching it from another
// machine is a deliberate --ui-addr.
const defaultUIAddr = "127.0.0.1:4040"

// portTries is how many ports after a taken default one a job tries, as
// Spark's spark.port.maxRetries does, before it takes any free port.
const portTries = 16

// endpoints are the HTTP servers of a role: the web UI (drivers) and
// /metrics (on the UI's server, or its own).
type endpoints struct {
	ui      *ui.Server
	servers []*http.Server
	done    chan error
	// UIURL and MetricsURL are what the role logs (and the demo prints);
	// "" when not served.
	UIURL, MetricsURL string
}

// newRegistry is the role's Prometheus registry and the queries' metrics
// in it, with the Go runtime's and the process's.
func newRegistry() (*prometheus.Registry, *microbatch.Metrics) {
	reg := prometheus.NewRegistry()
	m, err := microbatch.NewMetrics(reg)
	if err == nil {
		err = microbatch.RegisterRuntime(reg)
	}
	if err != nil {
		panic(fmt.Sprintf("jobcli: metrics of a new registry: %v", err)) // a fresh registry has no name taken
	}
	return reg, m
}

// serve starts the role's HTTP endpoints: the web UI of env's queries on
// s.UIAddr (drivers), /metrics of reg on s.MetricsAddr or, when that is
// empty, on the UI's server. ctx ends the UI's event streams; close stops
// everything.
func serve(ctx context.Context, env *Env, reg *prometheus.Registry) (*endpoints, error) {
	s := env.Settings
	e := &endpoints{done: make(chan error, 2)}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorLog: nil})
	if env.Role != roleExecutor && s.UIAddr != "" {
		execs := ui.LocalExecutors
		if env.Cluster != nil {
			execs = ui.ClusterExecutors(env.Cluster)
		}
		srv, err := ui.New(ui.Config{Job: env.jobName, Queries: env.Queries, Executors: execs, Context: ctx, Logger: env.Log})
		if err != nil {
			return nil, err
		}
		e.ui = srv
		mux := http.NewServeMux()
		mux.Handle("/", srv)
		if s.MetricsAddr == "" {
			mux.Handle("GET /metrics", metrics)
		}
		l, err := listen(s.UIAddr, s.UIAddr == defaultUIAddr)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("web UI: %w", err)
		}
		e.UIURL = "http://" + l.Addr().String() + "/"
		if s.MetricsAddr == "" {
			e.MetricsURL = "http://" + l.Addr().String() + "/metrics"
		}
		e.start(l, mux)
	}
	if s.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		l, err := listen(s.MetricsAddr, false)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
		e.MetricsURL = "http://" + l.Addr().String() + "/metrics"
		e.start(l, mux)
	}
	return e, nil
}

// listen listens on addr; with next, a taken port moves on to the
// following ones, then to any free port.
func listen(addr string, next bool) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil || !next {
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	for i := 1; i <= portTries; i++ {
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+i))); err == nil {
			return l, nil
		}
	}
	if l, err := net.Listen("tcp", net.JoinHostPort(host, "0")); err == nil {
		return l, nil
	}
	return nil, fmt.Errorf("listen on %s: %w", addr, err)
}

func (e *endpoints) start(l net.Listener, h http.Handler) {
	// No WriteTimeout: the UI's event streams are long-lived (the UI
	// bounds each write itself).
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	e.servers = append(e.servers, srv)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		e.done <- err
	}()
}

// close ends the UI's event streams, then the servers, and waits for
// them.
func (e *endpoints) close() error {
	var errs []error
	if e.ui != nil {
		errs = append(errs, e.ui.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range e.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	for range e.servers {
		errs = append(errs, <-e.done)
	}
	e.servers = nil
	return errors.Join(errs...)
}

// Queries are the queries the job started so far (the web UI lists them).
func (e *Env) Queries() []*microbatch.Query {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*microbatch.Query(nil), e.queries...)
}

// registerExecutor adds an executor's counters to its /metrics: what the
// driver's UI shows of it, for Prometheus.
func registerExecutor(reg *prometheus.Registry, e *cluster.Executor) error {
	stat := func(f func(cluster.ExecutorStats) float64) func() float64 {
		return func() float64 { return f(e.Stats()) }
	}
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_executor_tasks_total", Help: "Task attempts this executor was sent."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.Tasks) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_executor_tasks_failed_total", Help: "Task attempts that returned an error (their own, a fetch failure, a cancellation)."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.TasksFailed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_executor_shuffle_blocks_served_total", Help: "Map output blocks served to other processes over Flight."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.BlocksServed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_executor_shuffle_served_bytes_total", Help: "Bytes of Flight messages sent serving map output blocks."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.BytesServed) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_executor_block_memory_bytes", Help: "Memory the map output blocks this executor holds take."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.BlockMemory) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_executor_spilled_blocks", Help: "Map output blocks held in the spill directory."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.SpilledBlocks) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_executor_runs", Help: "Driver runs (jobs, micro-batches) whose blocks this executor holds."},
			stat(func(s cluster.ExecutorStats) float64 { return float64(s.Runs) })),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
