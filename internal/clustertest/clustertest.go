// Package clustertest runs a real cluster for tests: a driver in the test
// process and executors as child processes of the test binary, on
// 127.0.0.1 with ports chosen at run time, with a fresh CA and gossip key
// written to files the way an operator would make them. Children exit when
// the test process goes away (their stdin closes), so a dying test leaves
// no executor behind.
//
// A test binary that uses it calls Main from its TestMain with the job its
// executors run (the same code the driver's Datasets come from). A package
// with a cluster pass (its tests run again with $SLUICE_TEST_CLUSTER=N, as
// make test does) calls Package instead: it starts one cluster of N
// executors for the whole package before the tests and stops it after
// them; tests that can run on a cluster use it, the others ignore it.
//
// Start makes a cluster for one test (failures fail the test); StartMain
// makes one outside any test (failures are errors, or panics from the
// methods that have no error to return).
package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/executorproc"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/shuffle"
)

const envExecutor = "SLUICE_CLUSTERTEST_EXECUTOR"

// EnvExecutors asks a package with a cluster pass (see Package) for a
// cluster of that many executor processes: SLUICE_TEST_CLUSTER=3.
const EnvExecutors = "SLUICE_TEST_CLUSTER"

// executorConfig is what a child executor is started with.
type executorConfig struct {
	Seeds     []string `json:"seeds"`
	KeyFile   string   `json:"key_file"`
	TLS       cluster.TLSFiles
	Slots     int    `json:"slots"`
	SpillDir  string `json:"spill_dir"`
	MemLimit  int64  `json:"mem_limit,omitempty"`
	Verbose   bool   `json:"verbose,omitempty"`
	NoGossKey bool   `json:"no_gossip_key,omitempty"`
}

// Main runs the tests, or, in a child started by Cluster.AddExecutor, an
// executor running job until its stdin closes or it is signalled.
func Main(m *testing.M, job func() (shuffle.Runner, error)) {
	ExitIfExecutor(job)
	os.Exit(m.Run())
}

// ExitIfExecutor runs an executor of job and exits when this process is
// a child started by Cluster.AddExecutor; otherwise it returns at once. A
// TestMain that runs other children of its binary calls their checks and
// this one first, before it starts anything.
func ExitIfExecutor(job func() (shuffle.Runner, error)) {
	raw := os.Getenv(envExecutor)
	if raw == "" {
		return
	}
	if err := runExecutor(raw, job); err != nil {
		fmt.Fprintln(os.Stderr, "executor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Executors is the number of executors $SLUICE_TEST_CLUSTER asks for: 0
// when it is unset.
func Executors() (int, error) {
	v := os.Getenv(EnvExecutors)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a number of executors, at least 1", EnvExecutors, v)
	}
	return n, nil
}

// Runner runs a package's tests: a *testing.M, or what Package returns,
// as goleak.VerifyTestMain takes it.
type Runner interface{ Run() int }

// Package is the start of the TestMain of a package with a cluster pass.
// In an executor child it runs the executor of job and exits
// (ExitIfExecutor). Otherwise, when $SLUICE_TEST_CLUSTER asks for N
// executors, it starts a cluster (StartMain) and returns it with m
// wrapped so that the cluster stops when the tests end (before a leak
// check that runs after them, as goleak.VerifyTestMain's); without the
// variable the cluster is nil and the runner is m. A cluster that cannot
// start fails the package: it prints why and exits with status 1.
//
//	func TestMain(m *testing.M) {
//		cl, run := clustertest.Package(m, job)
//		testCluster = cl
//		goleak.VerifyTestMain(run)
//	}
func Package(m *testing.M, job func() (shuffle.Runner, error)) (*Cluster, Runner) {
	ExitIfExecutor(job)
	n, err := Executors()
	if err == nil && n == 0 {
		return nil, m
	}
	var c *Cluster
	stop := func() {}
	if err == nil {
		c, stop, err = StartMain(Options{Executors: n})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: the package's cluster:", err)
		os.Exit(1)
	}
	return c, stopAfter{m, stop}
}

type stopAfter struct {
	m    *testing.M
	stop func()
}

func (s stopAfter) Run() int {
	defer s.stop()
	return s.m.Run()
}

func runExecutor(raw string, job func() (shuffle.Runner, error)) error {
	var cfg executorConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return err
	}
	key, err := cluster.LoadGossipKey(cfg.KeyFile)
	if err != nil {
		return err
	}
	id, err := cfg.TLS.Load()
	if err != nil {
		return err
	}
	runner, err := job()
	if err != nil {
		return err
	}
	if ts, ok := runner.(*plan.TaskServer); ok && cfg.SpillDir != "" {
		// The disk state backend's databases go where the executor spills,
		// under the test's directory, not under the system's temp dir.
		ts.StateLocalDir = filepath.Join(cfg.SpillDir, "state")
	}
	level := slog.LevelWarn
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return executorproc.Run(context.Background(), cluster.Config{Seeds: cfg.Seeds, GossipKey: key, TLS: id, Slots: cfg.Slots,
		SpillDir: cfg.SpillDir, MemoryLimit: cfg.MemLimit, Logger: log, JoinTimeout: 10 * time.Second}, runner, os.Stdout, true)
}

// Join is how another process's driver joins a test cluster (it travels
// to a child process as JSON).
type Join struct {
	Seeds   []string         `json:"seeds"`
	KeyFile string           `json:"key_file"`
	TLS     cluster.TLSFiles `json:"tls"`
}

// Join returns how a driver in another process joins c.
func (c *Cluster) Join() *Join {
	return &Join{Seeds: []string{c.Driver.Gossip()}, KeyFile: filepath.Join(c.Dir, "gossip.key"),
		TLS: cluster.TLSFiles{CA: c.TLS.CA, Cert: filepath.Join(c.Dir, "driver.pem"), Key: filepath.Join(c.Dir, "driver-key.pem")}}
}

// Driver starts a driver that joins the cluster j names.
func (j *Join) Driver() (*cluster.Driver, error) {
	key, err := cluster.LoadGossipKey(j.KeyFile)
	if err != nil {
		return nil, err
	}
	id, err := j.TLS.Load()
	if err != nil {
		return nil, err
	}
	return cluster.StartDriver(context.Background(), cluster.Config{Seeds: j.Seeds, GossipKey: key, TLS: id,
		JoinTimeout: 10 * time.Second, WaitForExecutors: time.Minute, TaskTimeout: 30 * time.Second})
}

// Cluster is a driver in this process and executor child processes.
type Cluster struct {
	t      testing.TB // nil for a cluster of StartMain
	Dir    string     // CA, certificates, gossip key
	Driver *cluster.Driver
	Key    []byte
	TLS    cluster.TLSFiles

	memLimit int64

	mu     sync.Mutex
	execs  []*Executor
	spills []string // each executor's spill directory
}

// Executor is one child executor process.
type Executor = executorproc.Proc

// Options shape a test cluster.
type Options struct {
	Executors int
	Slots     int // per executor; default 2
	// ExecutorMemory is each executor's memory for map output blocks
	// (cluster.Config.MemoryLimit); beyond it they spill to disk.
	ExecutorMemory int64
	// Driver adjusts the driver's config before it starts.
	Driver func(*cluster.Config)
}

// Start writes a CA, certificates and a gossip key under t.TempDir,
// starts the driver and o.Executors executor processes, and waits until
// the driver sees them all. The cluster stops when t ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	c, err := start(t, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StartMain is Start outside any test (a TestMain's cluster for a whole
// package): its files go to a new temporary directory, and stop stops the
// executors and the driver and removes that directory. The cluster's
// methods that fail a test in a cluster of Start (AddExecutor,
// WaitExecutors) panic instead.
func StartMain(o Options) (c *Cluster, stop func(), err error) {
	dir, err := os.MkdirTemp("", "sluice-clustertest-")
	if err != nil {
		return nil, nil, err
	}
	if c, err = start(nil, dir, o); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return c, func() {
		c.Close()
		os.RemoveAll(dir)
	}, nil
}

// start starts a cluster with its files in dir; t, when not nil, owns it
// (its Cleanup closes it). On an error what was started is stopped.
func start(t testing.TB, dir string, o Options) (*Cluster, error) {
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
	c := &Cluster{t: t, Dir: dir, Key: key, memLimit: o.ExecutorMemory,
		TLS: cluster.TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "executor.pem"), Key: filepath.Join(dir, "executor-key.pem")}}
	id, err := cluster.TLSFiles{CA: c.TLS.CA, Cert: filepath.Join(dir, "driver.pem"), Key: filepath.Join(dir, "driver-key.pem")}.Load()
	if err != nil {
		return nil, err
	}
	cfg := cluster.Config{GossipKey: key, TLS: id, WaitForExecutors: 30 * time.Second, JoinTimeout: 10 * time.Second, TaskTimeout: time.Minute}
	if o.Driver != nil {
		o.Driver(&cfg)
	}
	c.Driver, err = cluster.StartDriver(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	if t != nil {
		t.Cleanup(c.Close)
	}
	for i := 0; i < o.Executors; i++ {
		if _, err := c.addExecutor(max(o.Slots, 2)); err != nil {
			if t == nil {
				c.Close()
			}
			return nil, err
		}
	}
	if err := c.waitExecutors(o.Executors); err != nil {
		if t == nil {
			c.Close()
		}
		return nil, err
	}
	return c, nil
}

// fail fails c's test, or panics for a cluster of StartMain.
func (c *Cluster) fail(err error) {
	if c.t == nil {
		panic(fmt.Sprintf("clustertest: %v", err))
	}
	c.t.Helper()
	c.t.Fatal(err)
}

// AddExecutor starts one more executor process and returns it once it
// joined.
func (c *Cluster) AddExecutor(slots int) *Executor {
	if c.t != nil {
		c.t.Helper()
	}
	e, err := c.addExecutor(slots)
	if err != nil {
		c.fail(err)
	}
	return e
}

func (c *Cluster) addExecutor(slots int) (*Executor, error) {
	var spill string
	if c.t != nil {
		spill = c.t.TempDir()
	} else {
		var err error
		if spill, err = os.MkdirTemp(c.Dir, "executor-"); err != nil {
			return nil, err
		}
	}
	cfg := executorConfig{Seeds: []string{c.Driver.Gossip()}, KeyFile: filepath.Join(c.Dir, "gossip.key"), TLS: c.TLS,
		Slots: slots, SpillDir: spill, MemLimit: c.memLimit, Verbose: os.Getenv("SLUICE_CLUSTERTEST_VERBOSE") != ""}
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envExecutor+"="+string(b), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	e, err := executorproc.Start(cmd)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.execs = append(c.execs, e)
	c.spills = append(c.spills, spill)
	c.mu.Unlock()
	return e, nil
}

// StateDirs are the directories where the executors started so far keep
// the disk state backend's local databases.
func (c *Cluster) StateDirs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var dirs []string
	for _, s := range c.spills {
		dirs = append(dirs, filepath.Join(s, "state"))
	}
	return dirs
}

// Executors are the executor processes started, dead or alive.
func (c *Cluster) Executors() []*Executor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Executor(nil), c.execs...)
}

// Live are the executor processes that have not exited.
func (c *Cluster) Live() []*Executor {
	var out []*Executor
	for _, e := range c.Executors() {
		if !e.Exited() {
			out = append(out, e)
		}
	}
	return out
}

// WaitExecutors waits (up to 30 s) until the driver sees n live executors.
func (c *Cluster) WaitExecutors(n int) {
	if c.t != nil {
		c.t.Helper()
	}
	if err := c.waitExecutors(n); err != nil {
		c.fail(err)
	}
}

func (c *Cluster) waitExecutors(n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for len(c.Driver.Executors()) != n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the driver sees %d executors after 30 s, want %d", len(c.Driver.Executors()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Close stops every executor (closing its stdin, then killing one that
// does not exit within 10 s) and the driver.
func (c *Cluster) Close() {
	execs := c.Executors()
	for _, e := range execs {
		e.Signal(syscall.SIGCONT) // a stopped one would not see its stdin close
	}
	executorproc.StopAll(execs)
	c.Driver.Close()
}

// Churn is the kill loop of the cluster kill tests: it runs one query to
// its end in a child driver process (start starts it, the same query each
// time, resuming from its checkpoint), SIGKILLing a random live executor
// every up-to-ExecutorEvery (and starting a replacement) and, in about one
// start in three or whenever Kills still lacks driver kills, the driver
// somewhere in its first DriverWithin. After each driver kill it calls
// AfterDriverKill, when set, then starts the driver again. Kills counts
// the kills of every call.
type Churn struct {
	Rng             *rand.Rand
	ExecutorEvery   time.Duration
	DriverWithin    time.Duration
	MinDriverKills  int // driver kills are forced once executor kills reach MinExecutorKills
	MinExecutorKill int
	AfterDriverKill func(kill int)

	ExecutorKills, DriverKills int
}

// Run runs one query under churn and returns how often its driver was
// restarted.
func (ch *Churn) Run(t testing.TB, c *Cluster, start func() *killtest.Child) (restarts int) {
	t.Helper()
	for {
		child := start()
		driverAt := time.Duration(-1)
		if ch.Rng.IntN(3) == 0 || (ch.ExecutorKills >= ch.MinExecutorKill && ch.DriverKills < ch.MinDriverKills) {
			driverAt = time.Duration(ch.Rng.Int64N(int64(ch.DriverWithin)))
		}
		began := time.Now()
		killedDriver := false
		for {
			wait := time.Duration(ch.Rng.Int64N(int64(ch.ExecutorEvery)))
			if driverAt >= 0 && time.Since(began)+wait >= driverAt {
				if !child.Wait(t, max(driverAt-time.Since(began), 0)) {
					killedDriver = child.RunOrKill(t, 0)
				}
				break
			}
			if child.Wait(t, wait) {
				break
			}
			live := c.Live()
			live[ch.Rng.IntN(len(live))].Kill()
			ch.ExecutorKills++
			c.AddExecutor(2)
		}
		if !killedDriver {
			return restarts
		}
		ch.DriverKills++
		restarts++
		if ch.AfterDriverKill != nil {
			ch.AfterDriverKill(ch.DriverKills)
		}
	}
}

// Done reports whether the kills reached their minimums.
func (ch *Churn) Done() bool {
	return ch.ExecutorKills >= ch.MinExecutorKill && ch.DriverKills >= ch.MinDriverKills
}
