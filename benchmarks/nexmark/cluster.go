package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources/generate"
)

// params are what a cluster's executors rebuild the query from
// (dataset.Config.Params): the same generator streams and query as the
// driver's.
func (o runOpts) params() map[string]string {
	return map[string]string{
		"query":        o.query,
		"events":       strconv.FormatInt(o.events, 10),
		"seed":         strconv.FormatUint(o.seed, 10),
		"event_rate":   strconv.FormatFloat(o.eventRate, 'g', -1, 64),
		"batch_events": strconv.FormatInt(o.batchEvents, 10),
	}
}

// clusterJob is the job an executor process runs: the query of the
// driver's parameters over the generator, into the counting sink.
func clusterJob(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	var o runOpts
	var errs []error
	num := func(k string, parse func(string) error) {
		if err := parse(p[k]); err != nil {
			errs = append(errs, fmt.Errorf("parameter %s=%q: %w", k, p[k], err))
		}
	}
	o.query = p["query"]
	num("events", func(s string) (err error) { o.events, err = strconv.ParseInt(s, 10, 64); return })
	num("seed", func(s string) (err error) { o.seed, err = strconv.ParseUint(s, 10, 64); return })
	num("event_rate", func(s string) (err error) { o.eventRate, err = strconv.ParseFloat(s, 64); return })
	num("batch_events", func(s string) (err error) { o.batchEvents, err = strconv.ParseInt(s, 10, 64); return })
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("nexmark job: %w", err)
	}
	cfg := generate.NexmarkConfig{Seed: o.seed, EventRate: o.eventRate, Events: o.events, MaxEventsPerBatch: o.batchEvents}
	out, _, err := buildQuery(o, cfg, dataset.Config{}, "")
	if err != nil {
		return nil, nil, err
	}
	return []sinks.Sink{&countSink{}}, []*dataset.Dataset{out}, nil
}

// countSink discards rows and counts them: a writer's commit message is
// its row count, so it costs the same in a task of the driver's process
// as on an executor (a ForeachBatch sink would carry every row to the
// driver in its commit messages).
type countSink struct {
	rows atomic.Int64
	mu   sync.Mutex
	last int64 // last batch committed, for idempotent commits
	any  bool
}

func (s *countSink) Name() string { return "count" }

func (s *countSink) Check(sinks.Mode, *arrow.Schema) error { return nil }

func (s *countSink) NewWriter(context.Context, sinks.Batch, int) (sinks.Writer, error) {
	return &countWriter{}, nil
}

func (s *countSink) Commit(_ context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	var n int64
	for _, m := range msgs {
		var c countMsg
		if err := json.Unmarshal(m, &c); err != nil {
			return fmt.Errorf("count sink: batch %d: commit message %q: %w", b.ID, m, err)
		}
		n += c.Rows
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.any && b.ID <= s.last {
		return nil
	}
	s.any, s.last = true, b.ID
	s.rows.Add(n)
	return nil
}

func (s *countSink) Abort(context.Context, sinks.Batch, []sinks.CommitMessage) error { return nil }

type countMsg struct {
	Rows int64 `json:"rows"`
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(rec arrow.Record) error { w.n += rec.NumRows(); return nil }

func (w *countWriter) Prepare() (sinks.CommitMessage, error) {
	return json.Marshal(countMsg{Rows: w.n})
}

func (w *countWriter) Abort() error { return nil }

// localCluster is a driver in the runner's process and executor processes
// of this binary on 127.0.0.1, with a dev CA, certificates and gossip key
// written to a temporary directory.
type localCluster struct {
	driver *cluster.Driver
	execs  []*execProc
	slots  int
}

// execProc is one executor process.
type execProc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
	log   *lockedBuffer
}

// startLocalCluster starts o.cluster executor processes and a driver
// (certificates and key under dir) and waits until the driver sees every
// executor.
func startLocalCluster(ctx context.Context, o runOpts, dir string) (c *localCluster, err error) {
	dir = filepath.Join(dir, "cluster")
	if _, err := cluster.WriteDevCluster(dir, []string{"driver", "executor"}, []string{"127.0.0.1", "localhost"}, 24*time.Hour); err != nil {
		return nil, err
	}
	key, err := cluster.NewGossipKey()
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "gossip.key")
	if err := cluster.WriteGossipKey(keyFile, key); err != nil {
		return nil, err
	}
	id, err := cluster.TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "driver.pem"), Key: filepath.Join(dir, "driver-key.pem")}.Load()
	if err != nil {
		return nil, err
	}
	d, err := cluster.StartDriver(ctx, cluster.Config{GossipKey: key, TLS: id, JoinTimeout: 10 * time.Second, WaitForExecutors: 30 * time.Second, Mem: o.mem})
	if err != nil {
		return nil, err
	}
	c = &localCluster{driver: d, slots: o.executorSlots}
	if c.slots <= 0 {
		c.slots = runtime.GOMAXPROCS(0)
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	command := o.executorCommand
	if command == nil {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		command = func(args []string) *exec.Cmd { return exec.Command(self, args...) }
	}
	for i := 0; i < o.cluster; i++ {
		args := []string{"executor", "--join", d.Gossip(), "--key-file", keyFile, "--tls-ca", filepath.Join(dir, "ca.pem"),
			"--tls-cert", filepath.Join(dir, "executor.pem"), "--tls-key", filepath.Join(dir, "executor-key.pem"),
			"--slots", strconv.Itoa(c.slots), "--exit-with-stdin"}
		if o.profile != "" {
			args = append(args, "--cpuprofile", fmt.Sprintf("%s.executor-%d", o.profile, i))
		}
		e, err := startExecutor(command(args))
		if err != nil {
			return nil, fmt.Errorf("executor %d: %w", i, err)
		}
		c.execs = append(c.execs, e)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(d.Executors()) < o.cluster {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the driver sees %d of %d executors after 30 s", len(d.Executors()), o.cluster)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c, nil
}

// startExecutor starts cmd and waits (up to 30 s) for its "ready" line.
func startExecutor(cmd *exec.Cmd) (*execProc, error) {
	e := &execProc{cmd: cmd, done: make(chan error, 1), log: &lockedBuffer{}}
	cmd.Stderr = e.log
	var err error
	if e.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready ") {
				ready <- line
			}
		}
	}()
	go func() { e.done <- cmd.Wait() }()
	select {
	case line := <-ready:
		e.name = strings.Fields(line)[1]
		return e, nil
	case err := <-e.done:
		return nil, fmt.Errorf("exited before it was ready: %v: %s", err, e.log.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-e.done
		return nil, fmt.Errorf("not ready after 30 s: %s", e.log.String())
	}
}

// clusterSample is the executors' CPU time and counters at one instant.
type clusterSample struct {
	cpu   float64
	rss   int64 // the executors' peak RSS, summed
	stats map[string]cluster.ExecutorStats
}

// sample reads every executor's CPU time (/proc/<pid>/stat) and counters.
func (c *localCluster) sample(ctx context.Context) (clusterSample, error) {
	s := clusterSample{}
	for _, e := range c.execs {
		cpu, err := procCPUSeconds(e.cmd.Process.Pid)
		if err != nil {
			return s, fmt.Errorf("executor %s: %w", e.name, err)
		}
		s.cpu += cpu
		s.rss += procPeakRSS(e.cmd.Process.Pid)
	}
	stats, err := c.driver.ExecutorStats(ctx)
	if err != nil {
		return s, err
	}
	if len(stats) != len(c.execs) {
		return s, fmt.Errorf("stats of %d executors, want %d", len(stats), len(c.execs))
	}
	s.stats = stats
	return s, nil
}

// fill adds to rep what the executors did between before and after:
// their CPU time (cpu_seconds becomes the driver's plus theirs), task
// attempts and the bytes they served over Flight.
func (c *localCluster) fill(rep *report, before, after clusterSample) {
	rep.DriverCPUSeconds = rep.CPUSeconds
	rep.ExecutorCPUSeconds = after.cpu - before.cpu
	rep.CPUSeconds += rep.ExecutorCPUSeconds
	rep.ExecutorPeakRSSBytes = after.rss
	for name, a := range after.stats {
		b := before.stats[name]
		rep.TaskAttempts += a.Tasks - b.Tasks
		rep.TasksFailed += a.TasksFailed - b.TasksFailed
		rep.ShuffleGets += a.Gets - b.Gets
		rep.ShuffleBlocks += a.BlocksServed - b.BlocksServed
		rep.ShuffleBytes += a.BytesServed - b.BytesServed
	}
	rep.ShuffleBytesPerSec = float64(rep.ShuffleBytes) / rep.Seconds
	if rep.CPUSeconds > 0 {
		rep.ShuffleBytesPerCPUSecond = float64(rep.ShuffleBytes) / rep.CPUSeconds
	}
}

// close stops every executor (its stdin closes; killed if it does not
// exit within 10 s) and the driver.
func (c *localCluster) close() {
	for _, e := range c.execs {
		e.stdin.Close()
	}
	for _, e := range c.execs {
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			e.cmd.Process.Kill()
			<-e.done
		}
	}
	c.execs = nil
	c.driver.Close()
}

// procCPUSeconds is a live process's user + system CPU time from
// /proc/<pid>/stat (utime and stime, fields 14 and 15, in clock ticks of
// 1/100 s: USER_HZ is 100 on every Linux architecture Go supports).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("cpu time of process %d: short /proc/%d/stat %q", pid, pid, b)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time of process %d: %w", pid, err)
	}
	return float64(ut+st) / 100, nil
}

// procPeakRSS is a live process's peak resident set size in bytes (VmHWM
// of /proc/<pid>/status), 0 when unknown.
func procPeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// executorMain is the executor subcommand: an executor process running
// the Nexmark job (clusterJob) until it is signalled or, with
// --exit-with-stdin, its stdin closes (the runner that started it went
// away). It prints "ready <name> <flight address>" once it joined.
func executorMain(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("executor", flag.ContinueOnError)
	join := fs.String("join", "", "gossip address of a member to join (required)")
	keyFile := fs.String("key-file", "", "gossip key file (required)")
	ca := fs.String("tls-ca", "", "cluster CA certificate (required)")
	cert := fs.String("tls-cert", "", "this executor's certificate (required)")
	key := fs.String("tls-key", "", "this executor's key (required)")
	slots := fs.Int("slots", 0, "tasks run at once (default GOMAXPROCS)")
	withStdin := fs.Bool("exit-with-stdin", false, "exit when stdin closes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the executor's life to this file")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *join == "" || *keyFile == "" || *ca == "" || *cert == "" || *key == "" {
		return errors.New("executor: --join, --key-file, --tls-ca, --tls-cert and --tls-key are required")
	}
	gossipKey, err := cluster.LoadGossipKey(*keyFile)
	if err != nil {
		return err
	}
	id, err := cluster.TLSFiles{CA: *ca, Cert: *cert, Key: *key}.Load()
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := dataset.NewTaskServer(dataset.Config{}, clusterJob)
	defer srv.Close()
	e, err := cluster.StartExecutor(ctx, cluster.Config{Seeds: []string{*join}, GossipKey: gossipKey, TLS: id, Slots: *slots,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), JoinTimeout: 10 * time.Second}, srv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready %s %s\n", e.Name(), e.Flight())
	if *withStdin {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	<-ctx.Done()
	return e.Close()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the first MiB of a chatty executor's log
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
