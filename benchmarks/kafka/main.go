package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mx "github.com/sluicedata/sluice/internal/measure"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/testenv"
)

// options are the command line.
type options struct {
	records        int64
	partitions     int
	brokers        string // "" = an in-process kfake cluster
	batchRecords   int64  // the e2e source's MaxOffsetsPerBatch
	splitOffsets   int64  // the source's MaxOffsetsPerSplit (0 = one split per partition)
	customers      int
	interval       time.Duration
	maxDelay       time.Duration
	window         time.Duration
	watermarkDelay time.Duration
	seed           uint64
	parallelism    int
	json           bool
	skipE2E        bool
	cpuProfile     string // of the source-alone measurement
	e2eProfile     string // of the end-to-end measurement

	mem memory.Allocator // nil = memory.DefaultAllocator (tests inject a checked one)
}

const (
	defaultRecords    = 1_000_000
	defaultPartitions = 4
	defaultSeed       = 20261101
)

// result is one JSON line: one measurement. Definitions are in doc.go.
type result struct {
	Measurement   string  `json:"measurement"`
	Cluster       string  `json:"cluster"`
	Records       int64   `json:"records"`
	Partitions    int     `json:"partitions"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	PeakRSSBytes  int64   `json:"peak_rss_bytes"`

	ValueBytes int64 `json:"value_bytes,omitempty"` // produce: JSON value bytes written

	// source
	Splits       int     `json:"splits,omitempty"`
	Readers      int     `json:"readers,omitempty"`
	ArrowRecords int     `json:"arrow_records,omitempty"`
	RatioToRaw   float64 `json:"ratio_to_raw,omitempty"`
	CPURatio     float64 `json:"cpu_ratio_to_raw,omitempty"`
	Target       float64 `json:"target,omitempty"`
	TargetMet    *bool   `json:"target_met,omitempty"`

	// end_to_end
	Batches        int     `json:"batches,omitempty"`
	BatchRecords   int64   `json:"batch_records,omitempty"`
	BatchP50Ms     float64 `json:"batch_p50_ms,omitempty"`
	BatchP99Ms     float64 `json:"batch_p99_ms,omitempty"`
	BatchMaxMs     float64 `json:"batch_max_ms,omitempty"`
	AddBatchMs     float64 `json:"add_batch_ms_per_batch,omitempty"`
	SinkCommitMs   float64 `json:"sink_commit_ms_per_batch,omitempty"`
	OutputRecords  int64   `json:"output_records,omitempty"`
	Groups         int     `json:"groups,omitempty"`
	DroppedLate    *int64  `json:"dropped_late,omitempty"`
	CheckSeconds   float64 `json:"check_seconds,omitempty"`
	ProgressMissed *int    `json:"progress_missing,omitempty"`

	Check string `json:"check,omitempty"` // "ok" or "mismatch" (exit status 2)
}

// target is the goal: the source at 70 % of the raw loop's records/s.
const target = 0.70

func main() {
	var o options
	flag.Int64Var(&o.records, "records", defaultRecords, "JSON orders to produce and read")
	flag.IntVar(&o.partitions, "partitions", defaultPartitions, "partitions of the input topic (and of the output topic)")
	flag.StringVar(&o.brokers, "brokers", "", "seed brokers of a real cluster, host:port[,...] (default $"+testenv.KafkaBrokersEnv+", else an in-process kfake cluster)")
	flag.Int64Var(&o.batchRecords, "batch-records", 0, "end to end: offsets per micro-batch, MaxOffsetsPerBatch (default records/10)")
	flag.Int64Var(&o.splitOffsets, "split-offsets", 0, "the source's MaxOffsetsPerSplit (0 = one split per partition and batch)")
	flag.IntVar(&o.customers, "customers", 1000, "distinct customers")
	flag.DurationVar(&o.interval, "interval", 100*time.Millisecond, "event-time gap between consecutive orders")
	flag.DurationVar(&o.maxDelay, "max-delay", 5*time.Second, "each order's event time is moved back by up to this")
	flag.DurationVar(&o.window, "window", time.Hour, "tumbling window size")
	flag.DurationVar(&o.watermarkDelay, "watermark-delay", time.Minute, "watermark delay")
	flag.Uint64Var(&o.seed, "seed", defaultSeed, "generator seed")
	flag.IntVar(&o.parallelism, "parallelism", 0, "readers of the source alone and engine tasks (default GOMAXPROCS)")
	flag.BoolVar(&o.json, "json", false, "print one JSON line per measurement instead of a table")
	flag.BoolVar(&o.skipE2E, "skip-e2e", false, "measure the raw loop and the source only")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the source-alone measurement to this file")
	flag.StringVar(&o.e2eProfile, "e2e-cpuprofile", "", "write a CPU profile of the end-to-end measurement to this file")
	flag.Parse()
	if o.brokers == "" {
		o.brokers = strings.TrimSpace(os.Getenv(testenv.KafkaBrokersEnv))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafka bench:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func (o options) validate() error {
	switch {
	case o.records <= 0:
		return fmt.Errorf("-records %d must be positive", o.records)
	case o.partitions <= 0:
		return fmt.Errorf("-partitions %d must be positive", o.partitions)
	case o.batchRecords < 0 || o.splitOffsets < 0:
		return errors.New("-batch-records and -split-offsets must not be negative")
	case o.customers <= 0:
		return fmt.Errorf("-customers %d must be positive", o.customers)
	case o.interval < time.Millisecond || o.interval%time.Millisecond != 0:
		return fmt.Errorf("-interval %v must be a positive whole number of milliseconds", o.interval)
	case o.maxDelay < 0 || o.maxDelay%time.Millisecond != 0:
		return fmt.Errorf("-max-delay %v must be a non-negative whole number of milliseconds", o.maxDelay)
	case o.window <= 0 || o.window%time.Millisecond != 0:
		return fmt.Errorf("-window %v must be a positive whole number of milliseconds", o.window)
	case o.watermarkDelay < 0:
		return fmt.Errorf("-watermark-delay %v must not be negative", o.watermarkDelay)
	}
	return nil
}

// run is main without the process: it returns the exit code (2 when the
// end-to-end output or the source's rows differ from the plain Go
// computation) and an error to print.
func run(ctx context.Context, o options, stdout io.Writer) (int, error) {
	if err := o.validate(); err != nil {
		return 1, err
	}
	if o.parallelism <= 0 {
		o.parallelism = runtime.GOMAXPROCS(0)
	}
	if o.batchRecords == 0 {
		o.batchRecords = max(o.records/10, 1)
	}
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	clusterName := "apache-kafka"
	var brokers []string
	if o.brokers == "" {
		clusterName = "kfake"
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return 1, fmt.Errorf("kfake: %w", err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
	} else {
		for _, b := range strings.Split(o.brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				brokers = append(brokers, b)
			}
		}
	}
	cl, err := newCluster(brokers)
	if err != nil {
		return 1, err
	}
	defer cl.close()

	tag := fmt.Sprintf("%d-%08x", os.Getpid(), rand.Uint32())
	in, out := "sluice-bench-kafka-in-"+tag, "sluice-bench-kafka-out-"+tag
	for _, t := range []string{in, out} {
		if err := cl.createTopic(ctx, t, int32(o.partitions)); err != nil {
			return 1, err
		}
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl.deleteTopics(ctx, out, in)
	}()

	var results []result
	emit := func(r result) {
		r.Cluster, r.Records, r.Partitions, r.GOMAXPROCS = clusterName, o.records, o.partitions, runtime.GOMAXPROCS(0)
		if r.Seconds > 0 && r.RecordsPerSec == 0 {
			r.RecordsPerSec = float64(o.records) / r.Seconds
		}
		results = append(results, r)
		if o.json {
			b, _ := json.Marshal(r)
			fmt.Fprintln(stdout, string(b))
		} else {
			printResult(stdout, r)
		}
	}
	gen := ordersGen(o)

	// 0. Produce the input (measured too, for the record).
	m := startMeasure()
	valueBytes, err := cl.produce(ctx, in, gen, o.records, o.partitions)
	if err != nil {
		return 1, fmt.Errorf("produce: %w", err)
	}
	emit(m.done(result{Measurement: "produce", ValueBytes: valueBytes}))

	// 1. The raw franz-go consume loop: every record, counted, not decoded.
	m = startMeasure()
	n, err := rawConsume(ctx, brokers, in, o.partitions)
	if err != nil {
		return 1, fmt.Errorf("raw consume: %w", err)
	}
	raw := m.done(result{Measurement: "raw_consume"})
	if n != o.records {
		return 1, fmt.Errorf("raw consume read %d records, want %d", n, o.records)
	}
	emit(raw)

	// 2. The sluice Kafka source alone, values decoded into Arrow.
	want := expectedSums(gen, o.records)
	stopProfile, err := startProfile(o.cpuProfile)
	if err != nil {
		return 1, err
	}
	m = startMeasure()
	sr, err := readSource(ctx, o, brokers, in, false)
	stopProfile()
	if err != nil {
		return 1, fmt.Errorf("source: %w", err)
	}
	srcRes := m.done(result{Measurement: "source", Splits: sr.splits, Readers: o.parallelism, ArrowRecords: sr.arrowRecords})
	srcErr := sr.sums.compare(want.withoutStrings())
	if srcErr == nil {
		// The string columns too, in a second, unmeasured read.
		var full sourceResult
		if full, err = readSource(ctx, o, brokers, in, true); err != nil {
			return 1, fmt.Errorf("source (checking pass): %w", err)
		}
		srcErr = full.sums.compare(want)
	}
	srcRes.RatioToRaw = raw.Seconds / srcRes.Seconds // records/s over records/s of the same records
	srcRes.CPURatio = raw.CPUSeconds / srcRes.CPUSeconds
	met := srcRes.RatioToRaw >= target
	srcRes.Target, srcRes.TargetMet = target, &met
	srcRes.Check = "ok"
	if srcErr != nil {
		srcRes.Check = "mismatch"
	}
	emit(srcRes)
	if srcErr != nil {
		return 2, fmt.Errorf("the source's rows differ from the generated orders: %w", srcErr)
	}
	if o.skipE2E {
		return 0, nil
	}

	// 3. End to end: source -> windowed aggregation (update) -> exactly-once sink.
	dir, err := os.MkdirTemp("", "sluice-bench-kafka-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	stopProfile, err = startProfile(o.e2eProfile)
	if err != nil {
		return 1, err
	}
	m = startMeasure()
	progress, missing, err := runQuery(ctx, o, brokers, in, out, dir)
	stopProfile()
	if err != nil {
		return 1, fmt.Errorf("end to end: %w", err)
	}
	e2e := m.done(result{Measurement: "end_to_end", BatchRecords: o.batchRecords, ProgressMissed: &missing})
	var inputRows, late int64
	var totals []float64
	var add, sink float64
	for _, p := range progress {
		inputRows += p.InputRows
		totals = append(totals, mx.BatchMS(p))
		add += mx.MS(p.Durations["addBatch"])
		sink += mx.MS(p.Durations["sinkCommit"])
		for _, s := range p.StateOperators {
			late += s.DroppedLate
		}
	}
	e2e.Batches = len(progress)
	e2e.BatchP50Ms, e2e.BatchP99Ms, e2e.BatchMaxMs = mx.Percentile(totals, 0.5), mx.Percentile(totals, 0.99), mx.Percentile(totals, 1)
	e2e.AddBatchMs, e2e.SinkCommitMs = add/float64(len(progress)), sink/float64(len(progress))
	e2e.DroppedLate = &late

	// Correctness: the output topic, read_committed, last value per key,
	// against a plain Go computation over the generated orders.
	checkStart := time.Now()
	got, outRecs, err := cl.readOutput(ctx, out)
	if err != nil {
		return 1, fmt.Errorf("read back %s: %w", out, err)
	}
	wantWindows := expectedWindows(gen, o.records, o.window)
	e2e.CheckSeconds = time.Since(checkStart).Seconds()
	e2e.OutputRecords, e2e.Groups = outRecs, len(got)
	var checkErr error
	switch {
	case inputRows != o.records:
		checkErr = fmt.Errorf("the query read %d rows, want %d", inputRows, o.records)
	case late != 0:
		checkErr = fmt.Errorf("the query dropped %d rows as late; raise -watermark-delay", late)
	default:
		checkErr = compareWindows(got, wantWindows)
	}
	e2e.Check = "ok"
	if checkErr != nil {
		e2e.Check = "mismatch"
	}
	emit(e2e)
	if checkErr != nil {
		return 2, fmt.Errorf("the end-to-end output differs from the plain Go computation: %w", checkErr)
	}
	return 0, nil
}

// measure is the wall clock and CPU time at a measurement's start.
type measure struct {
	start time.Time
	cpu   float64
}

func startMeasure() measure {
	runtime.GC()
	return measure{start: time.Now(), cpu: mx.CPUSeconds()}
}

// done fills in seconds, CPU seconds and the peak RSS so far.
func (m measure) done(r result) result {
	r.Seconds = time.Since(m.start).Seconds()
	r.CPUSeconds = mx.CPUSeconds() - m.cpu
	r.PeakRSSBytes = mx.PeakRSS()
	return r
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

func printResult(w io.Writer, r result) {
	fmt.Fprintf(w, "%-11s %s  %d records  %.3f s  %.0f records/s  %.2f s CPU  peak RSS %.1f MiB",
		r.Measurement, r.Cluster, r.Records, r.Seconds, r.RecordsPerSec, r.CPUSeconds, float64(r.PeakRSSBytes)/(1<<20))
	if r.TargetMet != nil {
		fmt.Fprintf(w, "  ratio to raw %.2f (target %.2f met: %v)", r.RatioToRaw, r.Target, *r.TargetMet)
	}
	if r.Batches > 0 {
		fmt.Fprintf(w, "  %d batches p50 %.1f ms p99 %.1f ms  %d output records, %d groups", r.Batches, r.BatchP50Ms, r.BatchP99Ms, r.OutputRecords, r.Groups)
	}
	if r.Check != "" {
		fmt.Fprintf(w, "  check %s", r.Check)
	}
	fmt.Fprintln(w)
}
