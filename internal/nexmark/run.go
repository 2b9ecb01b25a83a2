package nexmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/localcluster"
	"github.com/sluicedata/sluice/internal/measure"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	srcpq "github.com/sluicedata/sluice/sources/parquet"
)

const (
	// DefaultSeed is the generator seed of every published run.
	DefaultSeed = 20261101
	// DefaultBatchEvents caps a micro-batch: the in-process generator's
	// events, or each kind's Parquet rows.
	DefaultBatchEvents = 1_000_000
)

// Options are one run of a query (the flags of `nexmark run`).
type Options struct {
	Query string
	// Logger receives the query's log; nil discards it (a benchmark
	// reports its own figures).
	Logger *slog.Logger
	// Events is how many events (all kinds) the in-process generator
	// makes; ignored with Input.
	Events int64
	// Input, when set, is a generated directory (WriteFiles) read as
	// streams instead of the in-process generator.
	Input string
	// Out, when set, is a directory the result is written to as Parquet;
	// default a discarding sink that counts rows.
	Out string
	// Sink, when not nil, replaces the discarding or Parquet sink (tests
	// collect with it).
	Sink        sinks.Sink
	BatchEvents int64 // max events per micro-batch of the generator, or rows per kind of Parquet input
	Seed        uint64
	EventRate   float64 // events per second of event time; 0 = the generator's default
	Parallelism int     // engine tasks; default GOMAXPROCS
	Mem         memory.Allocator
	// StateBackend is the query's state backend: "memory" (default) or
	// "disk" (local pebble databases under the run's temporary directory).
	StateBackend string

	// Cluster > 0 runs the query on that many executor processes
	// (internal/localcluster), each with ExecutorSlots task slots
	// (default GOMAXPROCS); with Profile set, executor i writes a CPU
	// profile to Profile.executor-<i>.
	Cluster       int
	ExecutorSlots int
	Profile       string
	// ExecutorCommand makes the command of an executor process from the
	// executor subcommand's arguments ("executor --join ..."); default
	// this executable with them.
	ExecutorCommand func(args []string) *exec.Cmd
	// Dispatcher, when set, runs the query's tasks on that cluster's
	// executors (the tests' cluster), which build the job with StreamJob.
	Dispatcher plan.Dispatcher
}

// Report is what a run measured: the one JSON line of `nexmark run
// --json` (field definitions in doc.go).
type Report struct {
	Query              string  `json:"query"`
	Input              string  `json:"input"`
	Sink               string  `json:"sink"`
	StateBackend       string  `json:"state_backend,omitempty"`
	Events             int64   `json:"events"`
	EventRate          float64 `json:"event_rate,omitempty"`
	InputRows          int64   `json:"input_rows"`
	Bids               int64   `json:"bids"`
	OutputRows         int64   `json:"output_rows"`
	Seconds            float64 `json:"seconds"`
	EventsPerSec       float64 `json:"events_per_sec"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
	BatchEvents        int64   `json:"batch_events"` // the cap of a batch (Options.BatchEvents)
	Batches            int     `json:"batches"`
	BatchP50Ms         float64 `json:"batch_p50_ms"`
	BatchP99Ms         float64 `json:"batch_p99_ms"`
	BatchMaxMs         float64 `json:"batch_max_ms"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	GOMAXPROCS         int     `json:"gomaxprocs"`
	Parallelism        int     `json:"parallelism"`
	// FinalWatermark is the watermark after the last batch (zero for a
	// query without one): windows ending at or before it were emitted.
	FinalWatermark time.Time `json:"final_watermark,omitzero"`

	// Cluster mode (--cluster N): cpu_seconds is the driver's plus the
	// executors'; see doc.go.
	Executors                int     `json:"executors,omitempty"`
	ExecutorSlots            int     `json:"executor_slots,omitempty"`
	DriverCPUSeconds         float64 `json:"driver_cpu_seconds,omitempty"`
	ExecutorCPUSeconds       float64 `json:"executor_cpu_seconds,omitempty"`
	ExecutorPeakRSSBytes     int64   `json:"executor_peak_rss_bytes,omitempty"`
	TaskAttempts             int64   `json:"task_attempts,omitempty"`
	TasksFailed              int64   `json:"tasks_failed,omitempty"`
	ShuffleGets              int64   `json:"shuffle_gets,omitempty"`
	ShuffleBlocks            int64   `json:"shuffle_blocks,omitempty"`
	ShuffleBytes             int64   `json:"shuffle_bytes,omitempty"`
	ShuffleBytesPerSec       float64 `json:"shuffle_bytes_per_sec,omitempty"`
	ShuffleBytesPerCPUSecond float64 `json:"shuffle_bytes_per_cpu_second,omitempty"`
}

// Run runs o.Query as a stream to completion (AvailableNow, a checkpoint
// in a temp dir) and reports. A query that emits nothing (a window that
// never closed) is a report with 0 output rows, not an error.
func Run(ctx context.Context, o Options) (Report, error) {
	if _, ok := queries[o.Query]; !ok {
		if why, ok := unsupported[o.Query]; ok {
			return Report{}, fmt.Errorf("%s is not supported yet: %s", o.Query, why)
		}
		return Report{}, fmt.Errorf("unknown query %q (want one of %s)", o.Query, strings.Join(QueryNames(), ", "))
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.BatchEvents <= 0 {
		return Report{}, fmt.Errorf("--batch-events %d must be positive", o.BatchEvents)
	}
	sink := o.Sink
	// Executors rebuild the query from parameters: generator streams and
	// the counting sink.
	if o.Cluster > 0 && (o.Input != "" || o.Out != "" || sink != nil) {
		return Report{}, errors.New("--cluster runs over the in-process generator into the counting sink only, not --input or --out")
	}
	tmp, err := os.MkdirTemp("", "sluice-nexmark-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(tmp)
	ckpt := filepath.Join(tmp, "checkpoint")

	rep := Report{Query: o.Query, Input: "generator", Sink: "discard", StateBackend: o.StateBackend, BatchEvents: o.BatchEvents,
		GOMAXPROCS: runtime.GOMAXPROCS(0), Parallelism: o.Parallelism}
	if o.Input != "" {
		m, err := ReadMeta(o.Input)
		if err != nil {
			return Report{}, err
		}
		rep.Input, rep.Events, rep.EventRate = o.Input, m.Events, m.EventRate
	} else {
		if o.Events <= 0 {
			return Report{}, fmt.Errorf("--events %d must be positive", o.Events)
		}
		rep.Events, rep.EventRate = o.Events, o.EventRate
	}
	var counted *countSink
	switch {
	case sink != nil:
		rep.Sink = sink.Name()
	case o.Out != "":
		rep.Sink = o.Out
		if sink, err = pqsink.NewStream(pqsink.StreamConfig{Dir: o.Out, Mem: o.Mem}); err != nil {
			return Report{}, err
		}
	default:
		counted = &countSink{}
		sink = counted
	}
	dcfg := dataset.Config{Allocator: o.Mem, Parallelism: o.Parallelism}
	var cl *localcluster.Cluster
	switch {
	case o.Cluster > 0:
		cl, err = localcluster.Start(ctx, tmp, localcluster.Options{Executors: o.Cluster, Slots: o.ExecutorSlots,
			Profile: o.Profile, Command: o.ExecutorCommand, Mem: o.Mem})
		if err != nil {
			return Report{}, err
		}
		defer cl.Close()
		dcfg.Cluster, dcfg.Params = cl.Driver, o.params(ckpt, sink.Name())
		rep.Executors, rep.ExecutorSlots = o.Cluster, cl.Slots
	case o.Dispatcher != nil:
		dcfg.Cluster, dcfg.Params = o.Dispatcher, o.params(ckpt, sink.Name())
	}
	out, kindOf, err := buildStream(o, ckpt, dcfg)
	if err != nil {
		return Report{}, err
	}
	runtime.GC()
	var before localcluster.Sample
	if cl != nil {
		if before, err = cl.Sample(ctx); err != nil {
			return Report{}, err
		}
	}
	start, cpu := time.Now(), measure.CPUSeconds()
	mode := sinks.Append
	if updating[o.Query] {
		mode = sinks.Update
	}
	progress, err := runStream(ctx, out, sink, ckpt, mode, o.Logger, o.StateBackend, filepath.Join(tmp, "state-local"))
	rep.Seconds, rep.CPUSeconds = time.Since(start).Seconds(), measure.CPUSeconds()-cpu
	if err != nil {
		return Report{}, err
	}
	if cl != nil {
		after, err := cl.Sample(ctx)
		if err != nil {
			return Report{}, err
		}
		rep.addExecutors(localcluster.Between(before, after))
	}
	rep.PeakRSSBytes = measure.PeakRSS()
	read := map[string]int64{} // rows per kind
	for _, p := range progress {
		for _, sp := range p.Sources {
			read[kindOf[sp.Name]] += sp.Rows
		}
	}
	seen := map[string]bool{}
	for _, src := range out.Streams() {
		k := kindOf[src.Name()]
		if seen[k] {
			continue
		}
		seen[k] = true
		if o.Input == "" && read[k] != kindIn(k, o.Events) {
			return Report{}, fmt.Errorf("the query read %d %s events, want %d", read[k], k, kindIn(k, o.Events))
		}
		rep.InputRows += read[k]
	}
	rep.Bids = read["bid"]
	if counted != nil {
		rep.OutputRows = counted.rows.Load()
	}
	if o.Out != "" {
		if rep.OutputRows, err = countParquet(ctx, o.Out); err != nil {
			return Report{}, err
		}
	}
	rep.EventsPerSec = float64(rep.Events) / rep.Seconds
	if rep.CPUSeconds > 0 {
		rep.EventsPerCPUSecond = float64(rep.Events) / rep.CPUSeconds
	}
	var totals []float64
	for _, p := range progress {
		totals = append(totals, measure.BatchMS(p))
	}
	rep.Batches = len(progress)
	rep.FinalWatermark = progress[len(progress)-1].Watermark
	rep.BatchP50Ms, rep.BatchP99Ms, rep.BatchMaxMs = measure.Percentile(totals, 0.5), measure.Percentile(totals, 0.99), measure.Percentile(totals, 1)
	return rep, nil
}

// countParquet counts the rows the streaming Parquet sink committed to dir.
// A query whose windows never closed commits no file: its commit log lists
// none, and that is 0 rows.
func countParquet(ctx context.Context, dir string) (int64, error) {
	n, err := dataset.Read(dir).Count(ctx)
	if errors.Is(err, srcpq.ErrNoFiles) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read back %s: %w", dir, err)
	}
	return n, nil
}

// addExecutors adds to r what the executors did during the run: their
// CPU time (cpu_seconds becomes the driver's plus theirs), peak RSS, task
// attempts and the bytes they served over Flight.
func (r *Report) addExecutors(w localcluster.Work) {
	r.DriverCPUSeconds = r.CPUSeconds
	r.ExecutorCPUSeconds = w.CPUSeconds
	r.CPUSeconds += w.CPUSeconds
	r.ExecutorPeakRSSBytes = w.PeakRSSBytes
	r.TaskAttempts, r.TasksFailed = w.Tasks, w.TasksFailed
	r.ShuffleGets, r.ShuffleBlocks, r.ShuffleBytes = w.Gets, w.Blocks, w.Bytes
	r.ShuffleBytesPerSec = float64(w.Bytes) / r.Seconds
	if r.CPUSeconds > 0 {
		r.ShuffleBytesPerCPUSecond = float64(w.Bytes) / r.CPUSeconds
	}
}

// runStream runs ds into sink with the AvailableNow trigger and returns the
// progress of every batch, oldest first.
func runStream(ctx context.Context, ds *dataset.Dataset, sink sinks.Sink, ckpt string, mode sinks.Mode, log *slog.Logger, backend, localDir string) ([]microbatch.Progress, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return measure.Run(ctx, microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(ckpt).OutputMode(mode).Logger(log).StateBackend(backend, localDir))
}

// WriteText writes r for a reader: what ran, rows, rates and latencies.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s over %s into %s\n", r.Query, r.Input, r.Sink)
	fmt.Fprintf(w, "events      %d (the query read %d, %d bids), %d output rows\n", r.Events, r.InputRows, r.Bids, r.OutputRows)
	fmt.Fprintf(w, "wall        %.3f s  %.2f M events/s\n", r.Seconds, r.EventsPerSec/1e6)
	fmt.Fprintf(w, "cpu         %.3f s  %.2f M events/s per core used\n", r.CPUSeconds, r.EventsPerCPUSecond/1e6)
	fmt.Fprintf(w, "batches     %d, p50 / p99 / max %.1f / %.1f / %.1f ms\n", r.Batches, r.BatchP50Ms, r.BatchP99Ms, r.BatchMaxMs)
	fmt.Fprintf(w, "peak RSS    %.1f MiB (GOMAXPROCS %d, parallelism %d)\n", float64(r.PeakRSSBytes)/(1<<20), r.GOMAXPROCS, r.Parallelism)
}
