package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/localcluster"
	"github.com/sluicedata/sluice/internal/measure"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	deltasink "github.com/sluicedata/sluice/sinks/delta"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

// options are the command line.
type options struct {
	job          string // "window" (also "") or "join"
	sink         string // the window job's sink: "parquet" (also "") or "delta"
	events       int64
	batchRows    int64
	keys         int
	eventRate    int64
	window       time.Duration
	delay        time.Duration
	emptyBatches int
	seed         uint64
	parallelism  int
	json         bool
	dir          string
	cpuProfile   string
	emptyProfile string
	// cluster > 0 runs the window job's tasks on that many executor
	// processes of this binary (internal/localcluster);
	// executorCommand makes an executor's command (default this
	// executable).
	cluster         int
	executorCommand func(args []string) *exec.Cmd
	// metrics and logLevel turn the engine's Prometheus metrics (scraped
	// every scrapeInterval) and its logs (JSON to <dir>/query.log) on, to
	// measure their overhead (observe.go); ob is what they set up.
	metrics        bool
	logLevel       string
	scrapeInterval time.Duration
	ob             *observer

	mem memory.Allocator // every Arrow buffer of the run; nil = memory.DefaultAllocator (tests inject a checked one)

	// stateBackend and stateLocal pick the window job's state backend
	// (StreamWriter.StateBackend).
	stateBackend, stateLocal string
}

// report is the one JSON line of -json. Definitions are in doc.go.
type report struct {
	Events               int64   `json:"events"`
	Seconds              float64 `json:"seconds"`
	EventsPerSec         float64 `json:"events_per_sec"`
	CPUSeconds           float64 `json:"cpu_seconds"`
	Batches              int     `json:"batches"`
	BatchRows            int64   `json:"batch_rows"`
	BatchP50Ms           float64 `json:"batch_p50_ms"`
	BatchP99Ms           float64 `json:"batch_p99_ms"`
	BatchMaxMs           float64 `json:"batch_max_ms"`
	AddBatchMsPerBatch   float64 `json:"add_batch_ms_per_batch"`
	SinkCommitMsPerBatch float64 `json:"sink_commit_ms_per_batch"`
	Sink                 string  `json:"sink"`
	SinkCommitP50Ms      float64 `json:"sink_commit_p50_ms"`
	SinkCommitP99Ms      float64 `json:"sink_commit_p99_ms"`
	CheckpointMsPerBatch float64 `json:"checkpoint_ms_per_batch"`
	StateRows            int64   `json:"state_rows"`
	StateBytes           int64   `json:"state_bytes"`
	StateBytesPerKey     float64 `json:"state_bytes_per_key"`
	StateBytesPerInKey   float64 `json:"state_bytes_per_distinct_key"`
	DroppedLate          int64   `json:"dropped_late"`
	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	OutputRows           int64   `json:"output_rows"`
	Windows              int     `json:"windows"`
	FinalWatermark       string  `json:"final_watermark"`
	BaselineSeconds      float64 `json:"baseline_seconds"`
	// The state backend and the state files the main run wrote: per batch
	// the deltas' bytes (median, max), the snapshots (count, largest), and
	// every state file's bytes in all.
	StateBackend          string `json:"state_backend"`
	StateDeltaBytesP50    int64  `json:"state_delta_bytes_p50"`
	StateDeltaBytesMax    int64  `json:"state_delta_bytes_max"`
	StateSnapshots        int    `json:"state_snapshots"`
	StateSnapshotBytesMax int64  `json:"state_snapshot_bytes_max"`
	StateFileBytes        int64  `json:"state_file_bytes"`

	EmptyBatches           int                `json:"empty_batches"`
	EmptyBatchP50Ms        float64            `json:"empty_batch_p50_ms"`
	EmptyBatchP99Ms        float64            `json:"empty_batch_p99_ms"`
	EmptyBatchMeanMs       float64            `json:"empty_batch_mean_ms"`
	EmptyBatchCheckpointMs float64            `json:"empty_batch_checkpoint_ms"`
	EmptyBatchStateRows    int64              `json:"empty_batch_state_rows"`
	EmptyBatchPhasesMs     map[string]float64 `json:"empty_batch_phases_ms"`
	EmptyFreshBatchP50Ms   float64            `json:"empty_fresh_batch_p50_ms"`
	EmptyFreshBatchP99Ms   float64            `json:"empty_fresh_batch_p99_ms"`
	EmptyFreshBatchMeanMs  float64            `json:"empty_fresh_batch_mean_ms"`
	EmptyFreshCheckpointMs float64            `json:"empty_fresh_checkpoint_ms"`
	EmptyFreshPhasesMs     map[string]float64 `json:"empty_fresh_phases_ms"`
	ProgressMissing        int                `json:"progress_missing"`
	Keys                   int                `json:"keys"`
	EventRate              int64              `json:"event_rate"`
	GOMAXPROCS             int                `json:"gomaxprocs"`
	Parallelism            int                `json:"parallelism"`
	Check                  string             `json:"check"`
	// Cluster mode (-cluster N): cpu_seconds is the driver's plus the
	// executors' during the main run; see doc.go.
	Executors          int     `json:"executors,omitempty"`
	DriverCPUSeconds   float64 `json:"driver_cpu_seconds,omitempty"`
	ExecutorCPUSeconds float64 `json:"executor_cpu_seconds,omitempty"`
	ShuffleBytes       int64   `json:"shuffle_bytes,omitempty"`
	TaskAttempts       int64   `json:"task_attempts,omitempty"`
	// -metrics and -log-level: what observed the run.
	Metrics                 bool   `json:"metrics"`
	LogLevel                string `json:"log_level"`
	Scrapes                 int    `json:"scrapes,omitempty"`
	emptyBatchTotalsMs      []float64
	emptyFreshBatchTotalsMs []float64
}

const (
	defaultEvents    = 50_000_000
	defaultBatchRows = 1_000_000
	defaultKeys      = 10_000
	defaultEventRate = 100_000
	defaultSeed      = 20261101
)

// origin is the event time of row 0: on a window boundary, so window i of
// the run is [origin + i*window, origin + (i+1)*window).
var origin = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func main() {
	var o options
	flag.StringVar(&o.job, "job", "window", "what to run: window (tumbling window count/sum) or join (orders left join payments; see doc.go)")
	flag.StringVar(&o.sink, "sink", "parquet", "the window job's sink: parquet (the streaming Parquet sink) or delta (a Delta table)")
	flag.Int64Var(&o.events, "events", defaultEvents, "events to generate and process")
	flag.Int64Var(&o.batchRows, "batch-rows", defaultBatchRows, "max events per micro-batch (the source's MaxRowsPerBatch)")
	flag.IntVar(&o.keys, "keys", defaultKeys, "distinct keys")
	flag.Int64Var(&o.eventRate, "event-rate", defaultEventRate, "events per second of event time (row i has event time origin + i/event-rate)")
	flag.DurationVar(&o.window, "window", 10*time.Second, "tumbling window size")
	flag.DurationVar(&o.delay, "delay", 2*time.Second, "watermark delay")
	flag.IntVar(&o.emptyBatches, "empty-batches", 100, "one-row batches run to measure the fixed cost of a batch (0 = skip)")
	flag.Uint64Var(&o.seed, "seed", defaultSeed, "generator seed (keys)")
	flag.IntVar(&o.parallelism, "parallelism", 0, "engine tasks (default GOMAXPROCS)")
	flag.BoolVar(&o.json, "json", false, "print one JSON line instead of a table")
	flag.StringVar(&o.dir, "dir", "", "checkpoint and output directory, must not exist or be empty (default: a temp dir, removed)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the main run to this file")
	flag.StringVar(&o.emptyProfile, "empty-cpuprofile", "", "write a CPU profile of the one-row batches on the main checkpoint to this file")
	flag.BoolVar(&o.metrics, "metrics", false, "publish the queries' Prometheus metrics (and Go runtime and process metrics) on 127.0.0.1 and scrape them every -scrape-interval")
	flag.StringVar(&o.logLevel, "log-level", "off", "log the queries at this level (debug, info, warn, error) as JSON to <dir>/query.log; off = discard")
	flag.DurationVar(&o.scrapeInterval, "scrape-interval", time.Second, "how often -metrics scrapes")
	flag.StringVar(&o.stateBackend, "state-backend", "", "the window job's state backend: memory (default) or disk (pebble databases under -state-local-dir)")
	flag.StringVar(&o.stateLocal, "state-local-dir", "", "the disk backend's local databases (default: in the run's temporary directory, removed; with -dir, under the system temp dir)")
	flag.IntVar(&o.cluster, "cluster", 0, "run the window job's tasks on this many executor processes of this binary (127.0.0.1, a dev CA) with the driver in this process")
	if len(os.Args) > 1 && os.Args[1] == "executor" { // started by -cluster
		if err := localcluster.ExecutorMain(context.Background(), os.Args[2:], clusterJob, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "streaming executor:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if o.job == "join" {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["events"] {
			o.events = joinDefaultEvents
		}
		if !set["batch-rows"] {
			o.batchRows = joinDefaultBatchRows
		}
		if !set["keys"] {
			o.keys = joinDefaultKeys
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "streaming:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func (o options) validate() error {
	switch {
	case o.job != "" && o.job != "window" && o.job != "join":
		return fmt.Errorf("-job %q: want window or join", o.job)
	case o.events <= 0:
		return fmt.Errorf("-events %d must be positive", o.events)
	case o.batchRows <= 0:
		return fmt.Errorf("-batch-rows %d must be positive", o.batchRows)
	case o.keys <= 0:
		return fmt.Errorf("-keys %d must be positive", o.keys)
	case o.eventRate <= 0 || o.eventRate > 1_000_000_000:
		return fmt.Errorf("-event-rate %d must be in 1..1e9", o.eventRate)
	case o.window <= 0 || o.window%time.Microsecond != 0:
		return fmt.Errorf("-window %v must be a positive whole number of microseconds", o.window)
	case o.delay < 0:
		return fmt.Errorf("-delay %v must not be negative", o.delay)
	case o.emptyBatches < 0:
		return fmt.Errorf("-empty-batches %d must not be negative", o.emptyBatches)
	case o.sink != "" && o.sink != "parquet" && o.sink != "delta":
		return fmt.Errorf("-sink %q: want parquet or delta", o.sink)
	case o.sink == "delta" && o.job == "join":
		return errors.New("-sink delta is for the window job")
	case o.cluster < 0:
		return fmt.Errorf("-cluster %d must not be negative", o.cluster)
	case o.cluster > 0 && o.job == "join":
		return errors.New("-cluster runs the window job only")
	}
	return nil
}

// run is main without the process: it returns the exit code (2 when the
// sink's output differs from the baseline) and an error to print.
func run(ctx context.Context, o options, stdout io.Writer) (int, error) {
	if err := o.validate(); err != nil {
		return 1, err
	}
	if o.parallelism <= 0 {
		o.parallelism = runtime.GOMAXPROCS(0)
	}
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-streaming-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
		if o.stateLocal == "" {
			// The disk backend's databases go with the temporary
			// checkpoints (their default place outlives a run).
			o.stateLocal = filepath.Join(tmp, "state-local")
		}
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return 1, fmt.Errorf("-dir %s is not empty: a checkpoint there would resume an old run", dir)
	}
	if o.scrapeInterval <= 0 {
		o.scrapeInterval = time.Second
	}
	ob, err := observe(o, dir)
	if err != nil {
		return 1, err
	}
	defer ob.close()
	o.ob = ob
	if o.job == "join" {
		return runJoin(ctx, o, dir, stdout)
	}
	rep := report{Sink: cmp.Or(o.sink, "parquet"), Events: o.events, BatchRows: o.batchRows, Keys: o.keys, EventRate: o.eventRate,
		GOMAXPROCS: runtime.GOMAXPROCS(0), Parallelism: o.parallelism, Metrics: o.metrics, LogLevel: o.logLevel}
	cfg := dataset.Config{Allocator: o.mem, Parallelism: o.parallelism}
	main := runDirs{checkpoint: filepath.Join(dir, "checkpoint"), out: filepath.Join(dir, "out")}
	var cl *localcluster.Cluster
	if o.cluster > 0 {
		var err error
		cl, err = localcluster.Start(ctx, dir, localcluster.Options{Executors: o.cluster, Command: o.executorCommand, Mem: o.mem,
			Profile: o.cpuProfile})
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		cfg.Cluster, rep.Executors = cl.Driver, o.cluster
	}

	// The measured run: every event, AvailableNow, in batches of -batch-rows.
	stopProfile, err := startProfile(o.cpuProfile)
	if err != nil {
		return 1, err
	}
	runtime.GC()
	var before localcluster.Sample
	if cl != nil {
		if before, err = cl.Sample(ctx); err != nil {
			return 1, err
		}
	}
	start, cpu := time.Now(), measure.CPUSeconds()
	main.stateFiles = newStateBytes()
	progress, missing, err := runQuery(ctx, o, cfg, main, 0, o.events, o.batchRows)
	rep.Seconds, rep.CPUSeconds = time.Since(start).Seconds(), measure.CPUSeconds()-cpu
	rep.StateBackend = cmp.Or(o.stateBackend, "memory")
	main.stateFiles.summary(&rep)
	main.stateFiles = nil
	stopProfile()
	if err != nil {
		return 1, err
	}
	if cl != nil {
		after, err := cl.Sample(ctx)
		if err != nil {
			return 1, err
		}
		w := localcluster.Between(before, after)
		rep.DriverCPUSeconds, rep.ExecutorCPUSeconds = rep.CPUSeconds, w.CPUSeconds
		rep.CPUSeconds += w.CPUSeconds
		rep.ShuffleBytes, rep.TaskAttempts = w.Bytes, w.Tasks
	}
	rep.PeakRSSBytes = measure.PeakRSS()
	rep.ProgressMissing += missing
	rep.EventsPerSec = float64(o.events) / rep.Seconds
	summarise(&rep, progress)
	var inputRows int64
	for _, p := range progress {
		inputRows += p.InputRows
	}
	if inputRows != o.events {
		return 1, fmt.Errorf("the query read %d events, want %d", inputRows, o.events)
	}
	last := progress[len(progress)-1]
	if last.Watermark.IsZero() {
		return 1, errors.New("the last batch ran without a watermark")
	}
	wmMicros := last.Watermark.UnixMicro()
	rep.FinalWatermark = last.Watermark.Format(time.RFC3339Nano)

	// Correctness: the Parquet output against a plain Go loop over the same events.
	start = time.Now()
	want, err := baseline(ctx, o, wmMicros)
	rep.BaselineSeconds = time.Since(start).Seconds()
	if err != nil {
		return 1, fmt.Errorf("baseline: %w", err)
	}
	// Read back in this process: the check is not part of the job.
	got, rows, err := readOutput(ctx, dataset.Config{Allocator: o.mem, Parallelism: o.parallelism}, main.out)
	if err != nil {
		return 1, fmt.Errorf("read back %s: %w", main.out, err)
	}
	rep.OutputRows, rep.Windows = rows, countWindows(want)
	checkErr := compare(got, want, rows)
	rep.Check = "ok"
	if checkErr != nil {
		rep.Check = "mismatch"
	}

	// The fixed cost of a batch: one-row batches, first on top of the main
	// run's checkpoint (its live windows in state), then on a new checkpoint.
	if o.emptyBatches > 0 && checkErr == nil {
		stopProfile, err := startProfile(o.emptyProfile)
		if err != nil {
			return 1, err
		}
		warm, missing, err := runQuery(ctx, o, cfg, main, o.events, o.events+int64(o.emptyBatches), 1)
		stopProfile()
		if err != nil {
			return 1, fmt.Errorf("one-row batches on the main checkpoint: %w", err)
		}
		rep.ProgressMissing += missing
		rep.EmptyBatches = len(warm)
		rep.emptyBatchTotalsMs, rep.EmptyBatchCheckpointMs, rep.EmptyBatchStateRows, rep.EmptyBatchPhasesMs = fixedCost(warm)
		rep.EmptyBatchP50Ms, rep.EmptyBatchMeanMs = measure.Percentile(rep.emptyBatchTotalsMs, 0.5), mean(rep.emptyBatchTotalsMs)
		rep.EmptyBatchP99Ms = measure.Percentile(rep.emptyBatchTotalsMs, 0.99)

		fresh := runDirs{checkpoint: filepath.Join(dir, "checkpoint-empty"), out: filepath.Join(dir, "out-empty")}
		cold, missing, err := runQuery(ctx, o, cfg, fresh, 0, int64(o.emptyBatches), 1)
		if err != nil {
			return 1, fmt.Errorf("one-row batches on a new checkpoint: %w", err)
		}
		rep.ProgressMissing += missing
		rep.emptyFreshBatchTotalsMs, rep.EmptyFreshCheckpointMs, _, rep.EmptyFreshPhasesMs = fixedCost(cold)
		rep.EmptyFreshBatchP50Ms, rep.EmptyFreshBatchMeanMs = measure.Percentile(rep.emptyFreshBatchTotalsMs, 0.5), mean(rep.emptyFreshBatchTotalsMs)
		rep.EmptyFreshBatchP99Ms = measure.Percentile(rep.emptyFreshBatchTotalsMs, 0.99)
	}

	rep.Scrapes = int(ob.scrapes.Load())
	if o.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		printReport(stdout, rep)
	}
	if checkErr != nil {
		return 2, fmt.Errorf("the Parquet output differs from the baseline: %w", checkErr)
	}
	return 0, nil
}

// runDirs are one query's checkpoint and Parquet output directories.
// runDirs are where a run keeps its checkpoint and output; stateFiles,
// when set, counts the state files the run writes.
type runDirs struct {
	checkpoint, out string
	stateFiles      *stateBytes
}

// job is the benchmarked query: 10 s tumbling windows per key, count and sum.
func job(src *generate.Rate, cfg dataset.Config, o options) *dataset.Dataset {
	return dataset.ReadStream(src).WithConfig(cfg).
		WithWatermark("timestamp", o.delay).
		GroupBy(dataset.Window("timestamp", o.window), "key").
		Agg(dataset.CountAll().As("count"), dataset.Sum(dataset.Col("value")).As("sum"))
}

// newSource is the Rate stream of the run, with a processing-time clock
// frozen at the instant the row `until` is due: an AvailableNow query
// reads rows [0, until) (those a checkpoint has not read yet) as fast as it
// can, and row i's event time is origin + i/eventRate.
func newSource(o options, until, batchRows int64) (*generate.Rate, error) {
	now := origin.Add(dueAfter(until, o.eventRate))
	return generate.NewRate(generate.RateConfig{Name: "events", RowsPerSecond: o.eventRate, Seed: o.seed, Keys: o.keys,
		StartTime: origin, MaxRowsPerBatch: batchRows, Now: func() time.Time { return now }})
}

// dueAfter is the smallest duration after which exactly rows rows of a
// rate stream are due (row i is due at i/rate s; generate counts rows in
// whole nanoseconds, rounding down, so round up here).
func dueAfter(rows, rate int64) time.Duration {
	sec, rem := rows/rate, rows%rate
	ns := (rem*int64(time.Second) + rate - 1) / rate
	return time.Duration(sec)*time.Second + time.Duration(ns)
}

// runQuery runs the job over rows [from, until) in batches of at most
// batchRows with the AvailableNow trigger, resuming the checkpoint in dirs,
// and returns the progress of every batch it ran, oldest first, and how
// many batches' progress it missed.
//
// Query.RecentProgress keeps only the last 100 batches, so a poller merges
// it by batch id every 5 ms while the query runs; it misses a batch only if
// more than 100 complete between two polls (counted, reported).
func runQuery(ctx context.Context, o options, cfg dataset.Config, dirs runDirs, from, until, batchRows int64) ([]microbatch.Progress, int, error) {
	src, err := newSource(o, until, batchRows)
	if err != nil {
		return nil, 0, err
	}
	sink, err := newSink(o.sink, dirs.out, o.mem)
	if err != nil {
		return nil, 0, err
	}
	if cfg.Cluster != nil {
		cfg.Params = o.params(until, batchRows, dirs.out)
	}
	w := microbatch.WriteStream(job(src, cfg, o), sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(dirs.checkpoint).OutputMode(sinks.Append).StateBackend(o.stateBackend, o.stateLocal)
	if dirs.stateFiles != nil && cfg.Cluster == nil {
		// (On a cluster the checkpoint must be the plain OS filesystem,
		// which executors reach: state files are not counted there.)
		w.FS(dirs.stateFiles)
	}
	out, err := measure.Run(ctx, o.ob.apply(w))
	if err != nil {
		return nil, 0, err
	}
	missing := int(out[len(out)-1].Batch-out[0].Batch+1) - len(out)
	return out, missing, nil
}

// params are what a cluster's executors rebuild runQuery's source, job
// and sink from (clusterJob).
func (o options) params(until, batchRows int64, out string) map[string]string {
	return map[string]string{
		"until": strconv.FormatInt(until, 10), "batch_rows": strconv.FormatInt(batchRows, 10),
		"event_rate": strconv.FormatInt(o.eventRate, 10), "seed": strconv.FormatUint(o.seed, 10), "keys": strconv.Itoa(o.keys),
		"window": o.window.String(), "delay": o.delay.String(), "out": out, "sink": o.sink,
	}
}

// clusterJob is the job an executor process runs: runQuery's source, job
// and Parquet sink, from the driver's parameters.
func clusterJob(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	var o options
	var until, batchRows int64
	var errs []error
	parse := func(k string, f func(string) error) {
		if err := f(p[k]); err != nil {
			errs = append(errs, fmt.Errorf("parameter %s=%q: %w", k, p[k], err))
		}
	}
	parse("until", func(s string) (err error) { until, err = strconv.ParseInt(s, 10, 64); return })
	parse("batch_rows", func(s string) (err error) { batchRows, err = strconv.ParseInt(s, 10, 64); return })
	parse("event_rate", func(s string) (err error) { o.eventRate, err = strconv.ParseInt(s, 10, 64); return })
	parse("seed", func(s string) (err error) { o.seed, err = strconv.ParseUint(s, 10, 64); return })
	parse("keys", func(s string) (err error) { o.keys, err = strconv.Atoi(s); return })
	parse("window", func(s string) (err error) { o.window, err = time.ParseDuration(s); return })
	parse("delay", func(s string) (err error) { o.delay, err = time.ParseDuration(s); return })
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("streaming job: %w", err)
	}
	src, err := newSource(o, until, batchRows)
	if err != nil {
		return nil, nil, err
	}
	sink, err := newSink(p["sink"], p["out"], nil)
	if err != nil {
		return nil, nil, err
	}
	return []sinks.Sink{sink}, []*dataset.Dataset{job(src, dataset.Config{}, o)}, nil
}

// newSink is the window job's sink writing out: the streaming Parquet
// sink, or a Delta table (sinks/delta) with the query's name as its txn appId.
func newSink(kind, out string, mem memory.Allocator) (sinks.Sink, error) {
	if kind == "delta" {
		return deltasink.New(deltasink.Config{Dir: out, AppID: "streaming-benchmark", Mem: mem})
	}
	return pqsink.NewStream(pqsink.StreamConfig{Dir: out, Mem: mem})
}

// checkpointMs is the driver's checkpoint I/O of a batch: the offsets WAL
// and the commit log (with purging). The state store's commit is inside
// addBatch and not counted here.
func checkpointMs(p microbatch.Progress) float64 {
	return measure.MS(p.Durations[microbatch.PhaseWALCommit] + p.Durations[microbatch.PhaseCommitLog])
}

func summarise(rep *report, ps []microbatch.Progress) {
	var totals, sinkMs []float64
	var add, sink, ckpt float64
	for _, p := range ps {
		totals = append(totals, measure.BatchMS(p))
		sinkMs = append(sinkMs, measure.MS(p.Durations[microbatch.PhaseSinkCommit]))
		add += measure.MS(p.Durations[microbatch.PhaseAddBatch])
		sink += measure.MS(p.Durations[microbatch.PhaseSinkCommit])
		ckpt += checkpointMs(p)
		var rows, bytes int64
		for _, s := range p.StateOperators {
			rows += s.Rows
			bytes += s.Bytes
			rep.DroppedLate += s.DroppedLate
		}
		if bytes > rep.StateBytes {
			rep.StateBytes, rep.StateRows = bytes, rows
		}
	}
	n := float64(len(ps))
	rep.Batches = len(ps)
	rep.BatchP50Ms, rep.BatchP99Ms, rep.BatchMaxMs = measure.Percentile(totals, 0.5), measure.Percentile(totals, 0.99), measure.Percentile(totals, 1)
	rep.AddBatchMsPerBatch, rep.SinkCommitMsPerBatch, rep.CheckpointMsPerBatch = add/n, sink/n, ckpt/n
	rep.SinkCommitP50Ms, rep.SinkCommitP99Ms = measure.Percentile(sinkMs, 0.5), measure.Percentile(sinkMs, 0.99)
	if rep.StateRows > 0 {
		rep.StateBytesPerKey = float64(rep.StateBytes) / float64(rep.StateRows)
	}
	rep.StateBytesPerInKey = float64(rep.StateBytes) / float64(rep.Keys)
}

// fixedCost summarises one-row batches: each batch's duration, the mean
// checkpoint time, the largest state they ran with and the mean of each
// driver phase.
func fixedCost(ps []microbatch.Progress) (totals []float64, ckptMs float64, stateRows int64, phases map[string]float64) {
	phases = map[string]float64{}
	for _, p := range ps {
		totals = append(totals, measure.BatchMS(p))
		ckptMs += checkpointMs(p)
		for k, d := range p.Durations {
			phases[k] += measure.MS(d) / float64(len(ps))
		}
		var rows int64
		for _, s := range p.StateOperators {
			rows += s.Rows
		}
		stateRows = max(stateRows, rows)
	}
	return totals, ckptMs / float64(len(ps)), stateRows, phases
}

// startProfile starts a CPU profile into path (nothing when path is
// empty); the returned func stops it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func printReport(w io.Writer, r report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\t\n", k, v) }
	line("events", fmt.Sprintf("%d (%d keys, %d events/s of event time)", r.Events, r.Keys, r.EventRate))
	line("wall", fmt.Sprintf("%.3f s  %.2f M events/s  %.2f s CPU", r.Seconds, r.EventsPerSec/1e6, r.CPUSeconds))
	line("batches", fmt.Sprintf("%d of <= %d rows", r.Batches, r.BatchRows))
	line("batch p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.BatchP50Ms, r.BatchP99Ms, r.BatchMaxMs))
	line("per batch: addBatch / sinkCommit / checkpoint", fmt.Sprintf("%.1f / %.1f / %.2f ms", r.AddBatchMsPerBatch, r.SinkCommitMsPerBatch, r.CheckpointMsPerBatch))
	line("state (largest)", fmt.Sprintf("%d rows, %d bytes, %.1f B/row", r.StateRows, r.StateBytes, r.StateBytesPerKey))
	line("peak RSS", fmt.Sprintf("%.1f MiB", float64(r.PeakRSSBytes)/(1<<20)))
	line("output", fmt.Sprintf("%d rows, %d windows, final watermark %s", r.OutputRows, r.Windows, r.FinalWatermark))
	if r.EmptyBatches > 0 {
		line("one-row batch, live state", fmt.Sprintf("p50 %.2f ms  p99 %.2f ms  mean %.2f ms  checkpoint %.2f ms  (%d batches, %d state rows)",
			r.EmptyBatchP50Ms, r.EmptyBatchP99Ms, r.EmptyBatchMeanMs, r.EmptyBatchCheckpointMs, r.EmptyBatches, r.EmptyBatchStateRows))
		line("one-row batch, new checkpoint", fmt.Sprintf("p50 %.2f ms  p99 %.2f ms  mean %.2f ms  checkpoint %.2f ms",
			r.EmptyFreshBatchP50Ms, r.EmptyFreshBatchP99Ms, r.EmptyFreshBatchMeanMs, r.EmptyFreshCheckpointMs))
	}
	if r.ProgressMissing > 0 {
		line("progress missed", strconv.Itoa(r.ProgressMissing)+" batches")
	}
	line("baseline", fmt.Sprintf("%.3f s", r.BaselineSeconds))
	if r.Executors > 0 {
		line("cluster", fmt.Sprintf("%d executors: CPU driver %.2f s + executors %.2f s, %d task attempts, %d bytes shuffled",
			r.Executors, r.DriverCPUSeconds, r.ExecutorCPUSeconds, r.TaskAttempts, r.ShuffleBytes))
	}
	line("GOMAXPROCS / parallelism", fmt.Sprintf("%d / %d", r.GOMAXPROCS, r.Parallelism))
	line("check", r.Check)
	tw.Flush()
}
