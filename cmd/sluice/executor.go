package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks"
)

// executor runs `sluice executor`: a cluster member that runs the tasks of
// the built-in jobs (buildJob) for any driver of the same build, until ctx
// ends (SIGINT, SIGTERM). It logs to stderr.
func executor(ctx context.Context, args []string, stderr io.Writer) error {
	fs, o := executorFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("executor: unexpected argument %q (flags only)", fs.Arg(0))
	}
	cf := &o.cluster
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	cfg, err := cf.config(log)
	if err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	if o.workDir != "" {
		if err := os.MkdirAll(o.workDir, 0o700); err != nil {
			return fmt.Errorf("executor: --work-dir: %w", err)
		}
	}
	cfg.Slots, cfg.SpillDir, cfg.MemoryLimit = o.slots, o.workDir, o.memory
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.GOMAXPROCS(0)
	}

	jobs := &jobCache{}
	defer jobs.close()
	srv := dataset.NewTaskServer(dataset.Config{}, jobs.build)
	defer srv.Close()
	e, err := cluster.StartExecutor(ctx, cfg, srv)
	if err != nil {
		return fmt.Errorf("executor: %w", cf.startError(err))
	}
	if len(cfg.Seeds) == 0 {
		log.Info("no --join: this executor starts a cluster of its own; others join it at its --bind address")
	}
	log.Info("executor ready", "node", e.Name(), "gossip", e.Gossip(), "flight", e.Flight(), "seeds", cf.join, "slots", cfg.Slots, "fingerprint", cluster.Fingerprint())

	// A line when the task count moved, at most every 10 s: the executor
	// is visibly working without a line per task.
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var reported int64
	events := e.Membership().Events()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			log.Info("member "+ev.Kind, "node", e.Name(), "member", ev.Member.Name, "role", ev.Member.Meta.Role, "flight", ev.Member.Meta.Flight)
		case <-tick.C:
			if n := e.Tasks(); n != reported {
				log.Info("tasks run", "node", e.Name(), "tasks", n, "block_memory", e.BlockMemory(), "spilled_blocks", e.Spilled())
				reported = n
			}
		}
	}
	tasks := e.Tasks()
	if err := e.Close(); err != nil {
		// Usual when it is the last member (nobody left to confirm); else
		// the others find it gone by probing, as after a crash, and the
		// driver re-runs whatever it held. Not a failure of this stop.
		log.Info("left the cluster; no member confirmed the goodbye", "node", e.Name(), "err", err)
	}
	log.Info("executor stopped", "node", e.Name(), "tasks", tasks)
	return nil
}

// executorOpts are the flags of `sluice executor`. Their names are part of
// deploy/kubernetes (TestTheDeployManifestsParse).
type executorOpts struct {
	cluster  clusterFlags
	slots    int
	workDir  string
	memory   int64
	logLevel string
}

func executorFlags() (*flag.FlagSet, *executorOpts) {
	fs := flag.NewFlagSet("executor", flag.ContinueOnError)
	o := &executorOpts{}
	o.cluster.register(fs, "join", "gossip seeds, host:port[,host:port]: any member of the cluster (this executor's own --bind is fine for the first one)",
		"127.0.0.1:7946", "127.0.0.1:7947")
	fs.IntVar(&o.slots, "slots", 0, "tasks run at once (default: the number of CPUs)")
	fs.StringVar(&o.workDir, "work-dir", "", "directory for map output spilled to disk (default: a temp dir, removed at exit)")
	fs.Int64Var(&o.memory, "memory", 0, "bytes of map output kept in memory before spilling to --work-dir (default 256 MiB)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs, o
}

// jobCache builds the built-in jobs for the task server and closes their
// sources and sinks when the executor stops. (The task server builds a
// job once per set of parameters and keeps it.)
type jobCache struct {
	mu   sync.Mutex
	jobs []*builtJob
}

func (c *jobCache) build(params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	// The console sink's rows go to the driver in the task's result; this
	// instance never prints.
	j, err := buildJob(params, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	c.jobs = append(c.jobs, j)
	c.mu.Unlock()
	return j.sinks, j.ds, nil
}

func (c *jobCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range c.jobs {
		j.close()
	}
	c.jobs = nil
}
