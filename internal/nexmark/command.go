package nexmark

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/localcluster"
	"github.com/sluicedata/sluice/sources/generate"
)

// Commands are the Nexmark subcommands `sluice nexmark` and the benchmark
// runner (benchmarks/nexmark) share: generate, run and the hidden
// executor that run --cluster starts. Each takes the arguments after its
// name; -h prints its flags and returns flag.ErrHelp.
type Commands struct {
	// Prog names these commands in usage and errors: "sluice nexmark" or
	// "nexmark".
	Prog string
	// ExecutorArgs are this executable's arguments before "executor" that
	// reach Executor: run --cluster starts executor processes of this
	// executable with them, so an installed binary needs no toolchain
	// (["nexmark"] for sluice, none for benchmarks/nexmark).
	ExecutorArgs   []string
	Stdout, Stderr io.Writer
}

// Usage writes the shared commands' lines of a usage text.
func (c Commands) Usage(w io.Writer) {
	fmt.Fprintf(w, `  %[1]s generate --events N --out DIR [--seed S] [--event-rate R]
        write events [0, N) of the Nexmark generator as Parquet: DIR/person, DIR/auction,
        DIR/bid (and DIR/nexmark.json); a progress bar on a terminal
  %[1]s run --query QUERY --events N [--input DIR] [--out DIR] [--json] [--cluster N]
        run a query as a stream (AvailableNow; append mode, q4 update mode) over the in-process
        generator, or over the Parquet of a generated DIR, into a discarding sink or a Parquet
        DIR; report throughput. QUERY: %[2]s
        --cluster N runs it on N executor processes of this binary (127.0.0.1, a dev CA made
        for the run) and reports their CPU time too, and the bytes they shuffled over Flight
        --event-rate R: events per second of event time (default 10 000 000)
        --cpuprofile FILE writes a CPU profile for go tool pprof; --memprofile FILE a heap
        profile taken near the largest live heap (what the peak RSS is made of)
`, c.Prog, strings.Join(QueryNames(), ", "))
}

func (c Commands) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.Prog+" "+name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	return fs
}

// Generate is `generate`: events [0, N) as Parquet (WriteFiles), with a
// progress bar on Stderr when it is a terminal. Its errors start with
// "generate: ".
func (c Commands) Generate(ctx context.Context, args []string) error {
	if err := c.generate(ctx, args); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

func (c Commands) generate(ctx context.Context, args []string) error {
	fs := c.flags("generate")
	events := fs.Int64("events", 10_000_000, "events to generate (all kinds)")
	out := fs.String("out", "", "output directory (required; must not exist or be empty)")
	seed := fs.Uint64("seed", DefaultSeed, "generator seed")
	rate := fs.Float64("event-rate", 0, "events per second of event time (default 10 000 000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	bar := newProgress(c.Stderr, *events, "generate")
	if err := WriteFiles(ctx, *out, generate.NexmarkConfig{Seed: *seed, EventRate: *rate}, *events, memory.DefaultAllocator, bar.set); err != nil {
		bar.abandon()
		return err
	}
	bar.finish()
	return nil
}

// Run is `run`: one query run (Run), its report as text or one JSON line
// on Stdout. Its errors start with "run: ".
func (c Commands) Run(ctx context.Context, args []string) error {
	if err := c.run(ctx, args); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

func (c Commands) run(ctx context.Context, args []string) (err error) {
	fs := c.flags("run")
	var o Options
	fs.StringVar(&o.Query, "query", "q0", "query: "+strings.Join(QueryNames(), ", "))
	fs.Int64Var(&o.Events, "events", 10_000_000, "events of the in-process generator (all kinds); ignored with --input")
	fs.StringVar(&o.Input, "input", "", "read the Parquet of this generated directory instead of the in-process generator")
	fs.StringVar(&o.Out, "out", "", "write the result as Parquet here (default: a discarding sink)")
	asJSON := fs.Bool("json", false, "print one JSON line")
	fs.Int64Var(&o.BatchEvents, "batch-events", DefaultBatchEvents, "max events per micro-batch: of the generator, or rows of each kind's Parquet (--input; whole row groups, at most one file)")
	fs.Uint64Var(&o.Seed, "seed", DefaultSeed, "generator seed")
	fs.Float64Var(&o.EventRate, "event-rate", 0, "events per second of event time (generator input; default 10 000 000)")
	fs.IntVar(&o.Parallelism, "parallelism", 0, "engine tasks (default GOMAXPROCS)")
	fs.StringVar(&o.StateBackend, "state-backend", "memory", "state backend of stateful queries: memory or disk (local pebble databases)")
	fs.IntVar(&o.Cluster, "cluster", 0, "run on this many executor processes of this binary (127.0.0.1, a dev CA) with a driver in this process")
	fs.IntVar(&o.ExecutorSlots, "executor-slots", 0, "task slots per executor with --cluster (default GOMAXPROCS)")
	fs.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of the whole command to this file (go tool pprof); with --cluster executor i writes FILE.executor-<i>")
	memProfile := fs.String("memprofile", "", "write a heap profile taken when the live heap was largest to this file (go tool pprof -sample_index=inuse_space)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	o.ExecutorCommand = c.executorCommand
	if o.Profile != "" {
		f, err := os.Create(o.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		stop := peakHeapProfile(*memProfile)
		defer func() {
			if perr := stop(); perr != nil && err == nil {
				err = perr
			}
		}()
	}
	rep, err := Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.Stdout, string(b))
		return err
	}
	rep.WriteText(c.Stdout)
	return nil
}

// executorCommand is an executor process of run --cluster: this
// executable with ExecutorArgs, then args ("executor --join ...").
func (c Commands) executorCommand(args []string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		// localcluster reports the start's error; os.Executable fails only
		// where /proc is missing, and a relative argv[0] is the best left.
		self = os.Args[0]
	}
	return exec.Command(self, append(slices.Clone(c.ExecutorArgs), args...)...)
}

// Executor is the hidden `executor` subcommand run --cluster starts: an
// executor process serving StreamJob until its stdin closes or it is
// signalled (internal/localcluster).
func (c Commands) Executor(ctx context.Context, args []string) error {
	return localcluster.ExecutorMain(ctx, args, StreamJob, c.Stdout)
}

// peakHeapProfile samples the live heap every 50 ms and writes a heap
// profile to path each time it grows by a tenth over the largest seen, so
// the file ends holding the profile of (about) the peak: what a query's
// peak RSS is made of. stop ends the sampling and reports a write error.
func peakHeapProfile(path string) (stop func() error) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak+peak/10 {
				peak = v
				if werr = writeHeapProfile(path); werr != nil {
					return
				}
			}
		}
	}()
	return func() error {
		close(done)
		wg.Wait()
		return werr
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
