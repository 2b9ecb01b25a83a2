// Package localcluster runs a query on a cluster on this machine: a driver
// in the caller's process and executor processes of the caller's own binary
// (its hidden executor subcommand, ExecutorMain; Options.Command says how
// to reach it, as `sluice nexmark executor` does for the sluice binary), on
// 127.0.0.1 with ports chosen at run time and a dev CA, certificates and
// gossip key written for the run. It measures what the executors do: their
// CPU time and peak RSS (from /proc, read while they live) and their
// counters (cluster.Driver.ExecutorStats: task attempts, bytes served over
// Flight). internal/nexmark's run --cluster and benchmarks/streaming
// -cluster use it; it lives under internal/ so the sluice binary can.
//
// Executors rebuild the job from the driver's parameters
// (dataset.Config.Params) with the JobFunc the caller gives ExecutorMain.
// They exit when the caller closes their stdin (Close, or its death).
package localcluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/executorproc"
)

// Options shape a local cluster.
type Options struct {
	Executors int
	// Slots are each executor's task slots; default GOMAXPROCS.
	Slots int
	// Profile, when set, makes executor i write a CPU profile of its life
	// to Profile.executor-<i>.
	Profile string
	// Command makes an executor process's command from the executor
	// subcommand's arguments ("executor --join ..."); default this
	// executable with them.
	Command func(args []string) *exec.Cmd
	// Mem is the driver's allocator.
	Mem memory.Allocator
}

// Cluster is a driver in this process and executor processes.
type Cluster struct {
	Driver *cluster.Driver
	Slots  int
	execs  []*executorproc.Proc
}

// Start writes a dev CA, certificates and a gossip key under dir/cluster,
// starts the driver and o.Executors executor processes, and waits (up to
// 30 s) until the driver sees them all.
func Start(ctx context.Context, dir string, o Options) (c *Cluster, err error) {
	if o.Executors <= 0 {
		return nil, fmt.Errorf("localcluster: %d executors: want at least one", o.Executors)
	}
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
	d, err := cluster.StartDriver(ctx, cluster.Config{GossipKey: key, TLS: id, JoinTimeout: 10 * time.Second, WaitForExecutors: 30 * time.Second, Mem: o.Mem})
	if err != nil {
		return nil, err
	}
	c = &Cluster{Driver: d, Slots: o.Slots}
	if c.Slots <= 0 {
		c.Slots = runtime.GOMAXPROCS(0)
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	command := o.Command
	if command == nil {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		command = func(args []string) *exec.Cmd { return exec.Command(self, args...) }
	}
	for i := 0; i < o.Executors; i++ {
		args := []string{"executor", "--join", d.Gossip(), "--key-file", keyFile, "--tls-ca", filepath.Join(dir, "ca.pem"),
			"--tls-cert", filepath.Join(dir, "executor.pem"), "--tls-key", filepath.Join(dir, "executor-key.pem"),
			"--slots", strconv.Itoa(c.Slots), "--exit-with-stdin"}
		if o.Profile != "" {
			args = append(args, "--cpuprofile", fmt.Sprintf("%s.executor-%d", o.Profile, i))
		}
		e, err := executorproc.Start(command(args))
		if err != nil {
			return nil, fmt.Errorf("localcluster: executor %d: %w", i, err)
		}
		c.execs = append(c.execs, e)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(d.Executors()) < o.Executors {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("localcluster: the driver sees %d of %d executors after 30 s", len(d.Executors()), o.Executors)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c, nil
}

// Sample is the executors' CPU time, peak RSS and counters at one instant.
type Sample struct {
	CPUSeconds   float64 // user + system, summed over the executors
	PeakRSSBytes int64   // summed over the executors
	Stats        map[string]cluster.ExecutorStats
}

// Sample reads every executor's CPU time and peak RSS (/proc) and its
// counters (over Flight).
func (c *Cluster) Sample(ctx context.Context) (Sample, error) {
	s := Sample{}
	for _, e := range c.execs {
		cpu, err := procCPUSeconds(e.Pid())
		if err != nil {
			return s, fmt.Errorf("localcluster: executor %s: %w", e.Name, err)
		}
		s.CPUSeconds += cpu
		s.PeakRSSBytes += procPeakRSS(e.Pid())
	}
	stats, err := c.Driver.ExecutorStats(ctx)
	if err != nil {
		return s, err
	}
	if len(stats) != len(c.execs) {
		return s, fmt.Errorf("localcluster: stats of %d executors, want %d", len(stats), len(c.execs))
	}
	s.Stats = stats
	return s, nil
}

// Work is what the executors did between two samples.
type Work struct {
	CPUSeconds   float64
	PeakRSSBytes int64 // at the later sample
	Tasks        int64
	TasksFailed  int64
	Gets         int64
	Blocks       int64
	Bytes        int64 // served over Flight (DoGet)
}

// Between is the executors' work from before to after.
func Between(before, after Sample) Work {
	w := Work{CPUSeconds: after.CPUSeconds - before.CPUSeconds, PeakRSSBytes: after.PeakRSSBytes}
	for name, a := range after.Stats {
		b := before.Stats[name]
		w.Tasks += a.Tasks - b.Tasks
		w.TasksFailed += a.TasksFailed - b.TasksFailed
		w.Gets += a.Gets - b.Gets
		w.Blocks += a.BlocksServed - b.BlocksServed
		w.Bytes += a.BytesServed - b.BytesServed
	}
	return w
}

// Close stops every executor (its stdin closes; killed if it does not
// exit within 10 s) and the driver.
func (c *Cluster) Close() {
	executorproc.StopAll(c.execs)
	c.execs = nil
	c.Driver.Close()
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
	if i < 0 {
		return 0, fmt.Errorf("cpu time of process %d: no command name in /proc/%d/stat %q", pid, pid, b)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
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

// ExecutorMain is a benchmark's executor subcommand: an executor process
// running job's tasks until it is signalled or, with --exit-with-stdin, its
// stdin closes (the benchmark that started it went away). It prints
// "ready <name> <flight address>" to stdout once it joined.
func ExecutorMain(ctx context.Context, args []string, job dataset.JobFunc, stdout io.Writer) (err error) {
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
	srv := dataset.NewTaskServer(dataset.Config{}, job)
	defer srv.Close()
	return executorproc.Run(ctx, cluster.Config{Seeds: []string{*join}, GossipKey: gossipKey, TLS: id, Slots: *slots,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), JoinTimeout: 10 * time.Second}, srv, stdout, *withStdin)
}
