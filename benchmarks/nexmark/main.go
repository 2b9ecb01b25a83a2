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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/benchmarks/internal/localcluster"
	"github.com/sluicedata/sluice/benchmarks/internal/measure"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/nexmarkfiles"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/files"
	"github.com/sluicedata/sluice/sources/generate"
)

// Streams are the inputs of a Nexmark query: the person, auction and bid
// events of one generator, as streams (over the in-process generator or a
// generated directory's Parquet) or as batch Datasets over that Parquet.
// A query reads only the ones it needs; the others stay out of its plan.
type Streams struct {
	Person, Auction, Bid *dataset.Dataset
	// Config is the generator's config (seed and event rate); q4 derives
	// the longest auction from its event rate.
	Config generate.NexmarkConfig
}

// query builds one Nexmark query over s with the public Dataset API.
type query func(s Streams) *dataset.Dataset

// queries are the benchmark's queries, by name.
var queries = map[string]query{
	"q0":         q0,
	"q1":         q1,
	"q2":         q2,
	"q3":         q3,
	"q4":         q4,
	"q4-winning": q4Winning,
	"q5":         q5,
	"q7":         q7,
	"q8":         q8,
	"q11":        q11,
}

// unsupported names the Nexmark queries sluice cannot run yet, and why.
var unsupported = map[string]string{}

// updating are the queries whose result changes as rows arrive: they run in
// update output mode (each batch emits the groups it changed), the others
// in append mode.
var updating = map[string]bool{"q4": true}

// queryNames lists the runnable queries in Nexmark order.
func queryNames() []string {
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	num := func(n string) int {
		v, _ := strconv.Atoi(strings.TrimLeft(strings.SplitN(n, "-", 2)[0], "q"))
		return v
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(num(a), num(b)), cmp.Compare(a, b)) })
	return names
}

// readStreams returns the Parquet of a generated directory as batch Datasets.
func readStreams(dir string) (Streams, error) {
	m, err := readMeta(dir)
	if err != nil {
		return Streams{}, err
	}
	return Streams{
		Person:  dataset.Read(filepath.Join(dir, "person")),
		Auction: dataset.Read(filepath.Join(dir, "auction")),
		Bid:     dataset.Read(filepath.Join(dir, "bid")),
		Config:  generate.NexmarkConfig{Seed: m.Seed, EventRate: m.EventRate},
	}, nil
}

const (
	defaultSeed        = 20261101
	defaultBatchEvents = 1_000_000
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: go run ./benchmarks/nexmark <command> [flags]

commands:
  generate --events N --out DIR
        write events [0, N) of the Nexmark generator as Parquet: DIR/person, DIR/auction, DIR/bid
  run --query QUERY --events N [--input DIR] [--out DIR] [--json] [--cluster N]
        run a query as a stream (AvailableNow; append mode, q4 update mode) over the in-process
        generator, or over the Parquet of a generated DIR, into a discarding sink or a Parquet
        DIR; report throughput. QUERY: q0, q1, q2, q3, q4, q4-winning, q5, q7, q8, q11
        --cluster N runs it on N executor processes of this binary (127.0.0.1, a dev CA made
        for the run) and reports their CPU time too, and the bytes they shuffled over Flight

  results --in FILE [--out FILE.md]
        turn run --json lines into the Markdown table of benchmarks/RESULTS.md, with the
        machine (nproc, CPU model, Go version) and the date (keeping the file's cluster section)

  cluster-results --in FILE [--results FILE.md]
        pair the local and --cluster run --json lines of FILE per query (and summarise the
        benchmarks/streaming -json lines' one-row batch latency per mode): print one JSON line
        each with the cluster/local ratio of events per CPU-second, and write them as the
        "Cluster mode" section of FILE.md

  generate and run take --event-rate R: events per second of event time (default 10 000 000)
  run --cpuprofile FILE writes a CPU profile for go tool pprof
`)
}

func cli(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("no command")
	}
	switch args[0] {
	case "generate":
		fs := flag.NewFlagSet("generate", flag.ContinueOnError)
		events := fs.Int64("events", 10_000_000, "events to generate (all kinds)")
		out := fs.String("out", "", "output directory (required; must not exist or be empty)")
		seed := fs.Uint64("seed", defaultSeed, "generator seed")
		rate := fs.Float64("event-rate", 0, "events per second of event time (default 10 000 000)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("generate: --out is required")
		}
		return generateParquet(ctx, *out, generate.NexmarkConfig{Seed: *seed, EventRate: *rate}, *events, memory.DefaultAllocator)
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		var o runOpts
		fs.StringVar(&o.query, "query", "q0", "query: "+strings.Join(queryNames(), ", "))
		fs.Int64Var(&o.events, "events", 10_000_000, "events of the in-process generator (all kinds); ignored with --input")
		fs.StringVar(&o.input, "input", "", "read the Parquet of this generated directory instead of the in-process generator")
		fs.StringVar(&o.out, "out", "", "write the result as Parquet here (default: a discarding sink)")
		fs.BoolVar(&o.json, "json", false, "print one JSON line")
		fs.Int64Var(&o.batchEvents, "batch-events", defaultBatchEvents, "max events per micro-batch (generator input)")
		fs.Uint64Var(&o.seed, "seed", defaultSeed, "generator seed")
		fs.Float64Var(&o.eventRate, "event-rate", 0, "events per second of event time (generator input; default 10 000 000)")
		fs.IntVar(&o.parallelism, "parallelism", 0, "engine tasks (default GOMAXPROCS)")
		fs.IntVar(&o.cluster, "cluster", 0, "run on this many executor processes of this binary (127.0.0.1, a dev CA) with a driver in this process")
		fs.IntVar(&o.executorSlots, "executor-slots", 0, "task slots per executor with --cluster (default GOMAXPROCS)")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole command to this file (go tool pprof); with --cluster executor i writes FILE.executor-<i>")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.profile = *cpuProfile
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
		rep, err := run(ctx, o, nil)
		if err != nil {
			return err
		}
		if o.json {
			b, _ := json.Marshal(rep)
			fmt.Fprintln(stdout, string(b))
		} else {
			printReport(stdout, rep)
		}
		return nil
	case "results":
		fs := flag.NewFlagSet("results", flag.ContinueOnError)
		in := fs.String("in", "", "file of run --json lines (required)")
		out := fs.String("out", "", "Markdown file to write (default stdout)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *in == "" {
			return errors.New("results: --in is required")
		}
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		if *out == "" {
			return writeResults(f, stdout, time.Now())
		}
		var b strings.Builder
		if err := writeResults(f, &b, time.Now()); err != nil {
			return err
		}
		// The cluster section is bench-cluster's (cluster-results): keep it.
		doc := b.String()
		if old, err := os.ReadFile(*out); err == nil {
			if sec := section(string(old), clusterHeading); sec != "" {
				doc = replaceSection(doc, clusterHeading, sec)
			}
		}
		return os.WriteFile(*out, []byte(doc), 0o644)
	case "cluster-results":
		fs := flag.NewFlagSet("cluster-results", flag.ContinueOnError)
		in := fs.String("in", "", "file of run --json lines, local and --cluster, and of benchmarks/streaming -json lines (required)")
		results := fs.String("results", "", "Markdown file whose cluster section to write (default: only print)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *in == "" {
			return errors.New("cluster-results: --in is required")
		}
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		return writeClusterResults(f, stdout, *results, time.Now())
	case "executor": // started by run --cluster (benchmarks/internal/localcluster)
		return localcluster.ExecutorMain(ctx, args[1:], streamJob, stdout)
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	}
	usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

// generateParquet writes events [0, events) as Parquet under out/person,
// out/auction and out/bid, and the config in out/nexmark.json.
func generateParquet(ctx context.Context, out string, cfg generate.NexmarkConfig, events int64, mem memory.Allocator) error {
	return nexmarkfiles.Write(ctx, out, cfg, events, mem)
}

func readMeta(dir string) (nexmarkfiles.Meta, error) { return nexmarkfiles.ReadMeta(dir) }

// bidsIn is how many of events [0, n) are bids (event id % 50 >= 4).
func bidsIn(n int64) int64 {
	full, rem := n/50, n%50
	return full*46 + max(rem-4, 0)
}

// kindIn is how many of events [0, n) are of kind: people have event id %
// 50 == 0, auctions 1, 2 or 3, bids the rest.
func kindIn(kind string, n int64) int64 {
	full, rem := n/50, n%50
	switch kind {
	case "person":
		return full + min(rem, 1)
	case "auction":
		return full*3 + min(max(rem-1, 0), 3)
	}
	return bidsIn(n)
}

type runOpts struct {
	query       string
	events      int64
	input       string
	out         string
	json        bool
	batchEvents int64
	seed        uint64
	eventRate   float64 // events per second of event time; 0 = the generator's default
	parallelism int
	mem         memory.Allocator // default memory.DefaultAllocator

	// cluster > 0 runs the query on that many executor processes of this
	// binary (see cluster.go), each with executorSlots task slots (default
	// GOMAXPROCS); with profile set, executor i writes a CPU profile to
	// profile.executor-<i>.
	cluster       int
	executorSlots int
	profile       string
	// executorCommand makes the command of an executor process with the
	// executor subcommand's arguments; default this executable.
	executorCommand func(args []string) *exec.Cmd
	// dispatcher, when set, runs the query's tasks on that cluster's
	// executors (the tests' cluster), which build the job with streamJob.
	dispatcher plan.Dispatcher
}

// report is the one JSON line of run --json.
//
// event_rate is the generator's events per second of event time (absent:
// the default 10 M); events counts events of all kinds (as Nexmark does), though most queries
// read only some kinds (q0-q2 the bids, 46 in 50); input_rows counts the
// events of the kinds the query read, bids the bids among them;
// events_per_cpu_second is events divided by the
// process CPU time (user + system) the streaming run used, i.e. events per
// second per core actually used; batch_*_ms is a batch's latestOffset +
// walCommit + triggerExecution; final_watermark is the watermark after the
// last batch (append mode emits the windows that end at or before it).
type report struct {
	Query              string  `json:"query"`
	Input              string  `json:"input"`
	Sink               string  `json:"sink"`
	Events             int64   `json:"events"`
	EventRate          float64 `json:"event_rate,omitempty"`
	InputRows          int64   `json:"input_rows"`
	Bids               int64   `json:"bids"`
	OutputRows         int64   `json:"output_rows"`
	Seconds            float64 `json:"seconds"`
	EventsPerSec       float64 `json:"events_per_sec"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
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

// run runs o.query as a stream to completion and reports. sink, when not
// nil, replaces the discarding or Parquet sink (tests collect with it).
func run(ctx context.Context, o runOpts, sink sinks.Sink) (report, error) {
	if _, ok := queries[o.query]; !ok {
		if why, ok := unsupported[o.query]; ok {
			return report{}, fmt.Errorf("%s is not supported yet: %s", o.query, why)
		}
		return report{}, fmt.Errorf("unknown query %q (want one of %s)", o.query, strings.Join(queryNames(), ", "))
	}
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	if o.parallelism <= 0 {
		o.parallelism = runtime.GOMAXPROCS(0)
	}
	if o.batchEvents <= 0 {
		return report{}, fmt.Errorf("--batch-events %d must be positive", o.batchEvents)
	}
	// Executors rebuild the query from parameters: generator streams and
	// the counting sink.
	if o.cluster > 0 && (o.input != "" || o.out != "" || sink != nil) {
		return report{}, errors.New("--cluster runs over the in-process generator into the counting sink only, not --input or --out")
	}
	tmp, err := os.MkdirTemp("", "sluice-nexmark-")
	if err != nil {
		return report{}, err
	}
	defer os.RemoveAll(tmp)
	ckpt := filepath.Join(tmp, "checkpoint")

	rep := report{Query: o.query, Input: "generator", Sink: "discard", GOMAXPROCS: runtime.GOMAXPROCS(0), Parallelism: o.parallelism}
	if o.input != "" {
		m, err := readMeta(o.input)
		if err != nil {
			return report{}, err
		}
		rep.Input, rep.Events, rep.EventRate = o.input, m.Events, m.EventRate
	} else {
		if o.events <= 0 {
			return report{}, fmt.Errorf("--events %d must be positive", o.events)
		}
		rep.Events, rep.EventRate = o.events, o.eventRate
	}
	var counted *countSink
	switch {
	case sink != nil:
		rep.Sink = sink.Name()
	case o.out != "":
		rep.Sink = o.out
		if sink, err = pqsink.NewStream(pqsink.StreamConfig{Dir: o.out, Mem: o.mem}); err != nil {
			return report{}, err
		}
	default:
		counted = &countSink{}
		sink = counted
	}
	dcfg := dataset.Config{Allocator: o.mem, Parallelism: o.parallelism}
	var cl *localcluster.Cluster
	switch {
	case o.cluster > 0:
		cl, err = localcluster.Start(ctx, tmp, localcluster.Options{Executors: o.cluster, Slots: o.executorSlots,
			Profile: o.profile, Command: o.executorCommand, Mem: o.mem})
		if err != nil {
			return report{}, err
		}
		defer cl.Close()
		dcfg.Cluster, dcfg.Params = cl.Driver, o.params(ckpt, sink.Name())
		rep.Executors, rep.ExecutorSlots = o.cluster, cl.Slots
	case o.dispatcher != nil:
		dcfg.Cluster, dcfg.Params = o.dispatcher, o.params(ckpt, sink.Name())
	}
	out, kindOf, err := buildStream(o, ckpt, dcfg)
	if err != nil {
		return report{}, err
	}
	runtime.GC()
	var before localcluster.Sample
	if cl != nil {
		if before, err = cl.Sample(ctx); err != nil {
			return report{}, err
		}
	}
	start, cpu := time.Now(), measure.CPUSeconds()
	mode := sinks.Append
	if updating[o.query] {
		mode = sinks.Update
	}
	progress, err := runStream(ctx, out, sink, ckpt, mode)
	rep.Seconds, rep.CPUSeconds = time.Since(start).Seconds(), measure.CPUSeconds()-cpu
	if err != nil {
		return report{}, err
	}
	if cl != nil {
		after, err := cl.Sample(ctx)
		if err != nil {
			return report{}, err
		}
		fill(&rep, localcluster.Between(before, after))
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
		if o.input == "" && read[k] != kindIn(k, o.events) {
			return report{}, fmt.Errorf("the query read %d %s events, want %d", read[k], k, kindIn(k, o.events))
		}
		rep.InputRows += read[k]
	}
	rep.Bids = read["bid"]
	if counted != nil {
		rep.OutputRows = counted.rows.Load()
	}
	if o.out != "" {
		if rep.OutputRows, err = dataset.Read(o.out).Count(ctx); err != nil {
			return report{}, fmt.Errorf("read back %s: %w", o.out, err)
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

// buildStream builds o.query over one stream per kind (the in-process
// generator's, or the Parquet of o.input's), with cfg, and returns it with
// each stream's kind by source name. Over Parquet each stream takes one
// file per batch, so the three move through event time at their own pace
// (the watermark is the minimum); the seen-file logs live in ckpt. A
// query's plan reads only the streams it uses.
func buildStream(o runOpts, ckpt string, cfg dataset.Config) (*dataset.Dataset, map[string]string, error) {
	q, ok := queries[o.query]
	if !ok {
		return nil, nil, fmt.Errorf("unknown query %q (want one of %s)", o.query, strings.Join(queryNames(), ", "))
	}
	gen := generate.NexmarkConfig{Seed: o.seed, EventRate: o.eventRate, Events: o.events, MaxEventsPerBatch: o.batchEvents}
	if o.input != "" {
		m, err := readMeta(o.input)
		if err != nil {
			return nil, nil, err
		}
		gen = generate.NexmarkConfig{Seed: m.Seed, EventRate: m.EventRate}
	}
	ds := map[string]*dataset.Dataset{}
	kindOf := map[string]string{} // source name -> kind
	for _, k := range nexmarkfiles.Kinds {
		var src sources.Stream
		var err error
		if o.input != "" {
			src, err = files.New(files.Config{Name: k.Name, Dir: filepath.Join(o.input, k.Name), Schema: k.Schema,
				MaxFilesPerBatch: 1, LogDir: filepath.Join(ckpt, "sources", k.Name), SettleDelay: time.Millisecond})
		} else {
			src, err = generate.NewNexmarkStream(gen, k.Name)
		}
		if err != nil {
			return nil, nil, err
		}
		ds[k.Name], kindOf[src.Name()] = dataset.ReadStream(src).WithConfig(cfg), k.Name
	}
	out := q(Streams{Person: ds["person"], Auction: ds["auction"], Bid: ds["bid"], Config: gen})
	if err := out.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", o.query, err)
	}
	return out, kindOf, nil
}

// params are what a cluster's executors rebuild a run's job from
// (streamJob): the options that shape its streams and query, its
// checkpoint and the name of its sink.
func (o runOpts) params(ckpt, sink string) map[string]string {
	return map[string]string{
		"query":        o.query,
		"events":       strconv.FormatInt(o.events, 10),
		"input":        o.input,
		"batch_events": strconv.FormatInt(o.batchEvents, 10),
		"seed":         strconv.FormatUint(o.seed, 10),
		"event_rate":   strconv.FormatFloat(o.eventRate, 'g', -1, 64),
		"checkpoint":   ckpt,
		"sink":         sink,
	}
}

// streamJob is the job of a run on a cluster, built in an executor from
// the driver's parameters (runOpts.params): the stream buildStream makes
// and a sink of the driver's sink's name — the foreachBatch sink (its
// function runs in the driver only) or the Parquet sink of a directory.
func streamJob(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	var o runOpts
	var err error
	num := func(key string) int64 {
		v, e := strconv.ParseInt(p[key], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("parameter %s=%q: %w", key, p[key], e)
		}
		return v
	}
	o.query, o.input = p["query"], p["input"]
	o.events, o.batchEvents = num("events"), num("batch_events")
	o.seed = uint64(num("seed"))
	if o.eventRate, err = strconv.ParseFloat(p["event_rate"], 64); err != nil {
		return nil, nil, fmt.Errorf("parameter event_rate=%q: %w", p["event_rate"], err)
	}
	if err != nil {
		return nil, nil, err
	}
	var sink sinks.Sink
	switch name := p["sink"]; {
	case name == "count":
		sink = &countSink{}
	case name == "foreachBatch":
		sink = microbatch.ForeachBatch(func(context.Context, int64, *dataset.Dataset) error {
			return errors.New("foreachBatch: the function runs in the driver")
		})
	case strings.HasPrefix(name, "parquet:"):
		if sink, err = pqsink.NewStream(pqsink.StreamConfig{Dir: strings.TrimPrefix(name, "parquet:")}); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("sink %q: a cluster run writes to the counting sink, foreachBatch or a Parquet directory", name)
	}
	out, _, err := buildStream(o, p["checkpoint"], dataset.Config{})
	if err != nil {
		return nil, nil, err
	}
	return []sinks.Sink{sink}, []*dataset.Dataset{out}, nil
}

// runStream runs ds into sink with the AvailableNow trigger and returns the
// progress of every batch, oldest first.
func runStream(ctx context.Context, ds *dataset.Dataset, sink sinks.Sink, ckpt string, mode sinks.Mode) ([]microbatch.Progress, error) {
	out, err := measure.Run(ctx, microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(ckpt).OutputMode(mode))
	if err != nil {
		return nil, err
	}
	return out, nil
}

func printReport(w io.Writer, r report) {
	fmt.Fprintf(w, "%s over %s into %s\n", r.Query, r.Input, r.Sink)
	fmt.Fprintf(w, "events      %d (the query read %d, %d bids), %d output rows\n", r.Events, r.InputRows, r.Bids, r.OutputRows)
	fmt.Fprintf(w, "wall        %.3f s  %.2f M events/s\n", r.Seconds, r.EventsPerSec/1e6)
	fmt.Fprintf(w, "cpu         %.3f s  %.2f M events/s per core used\n", r.CPUSeconds, r.EventsPerCPUSecond/1e6)
	fmt.Fprintf(w, "batches     %d, p50 / p99 / max %.1f / %.1f / %.1f ms\n", r.Batches, r.BatchP50Ms, r.BatchP99Ms, r.BatchMaxMs)
	fmt.Fprintf(w, "peak RSS    %.1f MiB (GOMAXPROCS %d, parallelism %d)\n", float64(r.PeakRSSBytes)/(1<<20), r.GOMAXPROCS, r.Parallelism)
}
