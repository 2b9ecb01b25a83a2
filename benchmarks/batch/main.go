package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/sluicedata/sluice/internal/measure"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	ds "github.com/sluicedata/sluice/dataset"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
)

// options are the command line.
type options struct {
	query       string
	sf          float64
	json        bool
	data        string
	out         string
	seed        uint64
	filesOrders int64
	rowGroup    int64
	runs        int
	parallelism int
	cpuProfile  string
	generate    bool // generate into -data and exit (the child process mode)

	mem memory.Allocator // every Arrow buffer of the run; nil = memory.DefaultAllocator (tests inject a checked one)
}

// report is the one JSON line of -json. Definitions are in doc.go.
type report struct {
	Query              string  `json:"query"`
	SF                 float64 `json:"sf"`
	Rows               int64   `json:"rows"`
	Files              int     `json:"files"`
	Seconds            float64 `json:"seconds"`
	RowsPerSec         float64 `json:"rows_per_sec"`
	EngineSeconds      float64 `json:"engine_seconds"`
	EngineCPUSeconds   float64 `json:"engine_cpu_seconds"`
	DecodeSeconds      float64 `json:"decode_seconds"`
	DecodeCPUSeconds   float64 `json:"decode_cpu_seconds"`
	HandloopSeconds    float64 `json:"handloop_seconds"`
	HandloopRowsPerSec float64 `json:"handloop_rows_per_sec"`
	EngineVsHandloop   float64 `json:"engine_vs_handloop"`
	EngineVsLoop       float64 `json:"engine_vs_loop"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	PeakRSSTotalBytes  int64   `json:"peak_rss_total_bytes"`
	GOMAXPROCS         int     `json:"gomaxprocs"`
	Parallelism        int     `json:"parallelism"`
	Runs               int     `json:"runs"`
	ResultRows         int     `json:"result_rows"`
	GenerateSeconds    float64 `json:"generate_seconds,omitempty"`
	Check              string  `json:"check"`
}

func main() {
	var o options
	flag.StringVar(&o.query, "query", "q1", "TPC-H query: q1 or q6")
	flag.Float64Var(&o.sf, "sf", 1, "scale factor (1 = 1.5 M orders, about 6.0 M lineitem rows)")
	flag.BoolVar(&o.json, "json", false, "print one JSON line instead of tables")
	flag.StringVar(&o.data, "data", "", "keep the generated Parquet in this directory and reuse it when complete (default: a temp dir, removed)")
	flag.StringVar(&o.out, "out", "", "write the query's result as Parquet into this directory (replaced)")
	flag.Uint64Var(&o.seed, "seed", defaultSeed, "generator seed")
	flag.Int64Var(&o.filesOrders, "file-orders", defaultOrdersPerFile, "orders per generated file (about 4 lineitem rows each)")
	flag.Int64Var(&o.rowGroup, "row-group-rows", defaultRowGroupRows, "rows per Parquet row group")
	flag.IntVar(&o.runs, "runs", 1, "run engine and hand loop this many times; report the fastest of each")
	flag.IntVar(&o.parallelism, "parallelism", 0, "engine tasks and hand-loop goroutines (default GOMAXPROCS)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the engine runs to this file")
	flag.BoolVar(&o.generate, "generate", false, "only generate the data into -data, then exit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "batch:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// run is main without the process: it returns the exit code (2 when the
// engine's answer differs from the hand loop's) and an error to print.
func run(ctx context.Context, o options, stdout io.Writer) (int, error) {
	if o.parallelism <= 0 {
		o.parallelism = runtime.GOMAXPROCS(0)
	}
	o.runs = max(1, o.runs)
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	gc := genConfig{SF: o.sf, Seed: o.seed, OrdersPerFile: o.filesOrders, RowGroupRows: o.rowGroup}
	if o.generate {
		if o.data == "" {
			return 1, errors.New("-generate needs -data")
		}
		_, err := generate(ctx, o.data, gc, o.parallelism)
		return 0, err
	}
	q, ok := queries[o.query]
	if !ok {
		return 1, fmt.Errorf("unknown -query %q (want q1 or q6)", o.query)
	}
	dir := o.data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-tpch-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	rep := report{Query: q.name, SF: o.sf, GOMAXPROCS: runtime.GOMAXPROCS(0), Parallelism: o.parallelism, Runs: o.runs}

	m := readMarker(dir, gc)
	if m == nil {
		start := time.Now()
		if err := generateInChild(ctx, dir, o); err != nil {
			return 1, err
		}
		rep.GenerateSeconds = time.Since(start).Seconds()
		if m = readMarker(dir, gc); m == nil {
			return 1, fmt.Errorf("generation into %s left no complete marker", dir)
		}
	}
	files := m.paths(dir)
	rep.Rows, rep.Files = m.Rows, len(files)

	// Engine, end to end from Parquet.
	cfg := ds.Config{Allocator: o.mem, Parallelism: o.parallelism}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return 1, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 1, err
		}
	}
	var schema *arrow.Schema
	var recs []arrow.Record
	for i := range o.runs {
		releaseAll(recs)
		runtime.GC()
		start, cpu := time.Now(), measure.CPUSeconds()
		s, rs, err := runEngine(ctx, q, files, cfg)
		sec, cpu := time.Since(start).Seconds(), measure.CPUSeconds()-cpu
		if err != nil {
			pprof.StopCPUProfile()
			return 1, err
		}
		schema, recs = s, rs
		if i == 0 || sec < rep.EngineSeconds {
			rep.EngineSeconds, rep.EngineCPUSeconds = sec, cpu
		}
	}
	pprof.StopCPUProfile()
	defer func() { releaseAll(recs) }()
	rep.PeakRSSBytes = measure.PeakRSS()
	floats, ints := q.resultColumns()
	got, err := engineAnswer(schema, recs, floats, ints)
	if err != nil {
		return 1, err
	}
	rep.ResultRows = len(got.keys)

	// Hand loop: decode the needed columns once, then plain Go loops.
	var want answer
	for i := range o.runs {
		runtime.GC()
		start, cpu := time.Now(), measure.CPUSeconds()
		in, err := decode(ctx, o.mem, files, q.columns, o.parallelism)
		dec, cpu := time.Since(start).Seconds(), measure.CPUSeconds()-cpu
		if err != nil {
			return 1, err
		}
		start = time.Now()
		want, err = q.loop(in, o.parallelism)
		loop := time.Since(start).Seconds()
		releaseAll(in)
		if err != nil {
			return 1, err
		}
		if i == 0 || dec < rep.DecodeSeconds {
			rep.DecodeSeconds, rep.DecodeCPUSeconds = dec, cpu
		}
		if i == 0 || loop < rep.HandloopSeconds {
			rep.HandloopSeconds = loop
		}
	}
	rep.PeakRSSTotalBytes = measure.PeakRSS()

	rep.Seconds = rep.EngineSeconds
	rep.RowsPerSec = float64(rep.Rows) / rep.EngineSeconds
	rep.HandloopRowsPerSec = float64(rep.Rows) / rep.HandloopSeconds
	rep.EngineVsHandloop = rep.EngineSeconds / (rep.DecodeSeconds + rep.HandloopSeconds)
	rep.EngineVsLoop = rep.EngineSeconds / rep.HandloopSeconds

	code := 0
	rep.Check = "ok"
	checkErr := compare(got, want)
	if checkErr != nil {
		rep.Check = "mismatch"
		code = 2
	}
	if o.out != "" {
		w := ds.FromRecords(schema, recs...).WithConfig(cfg)
		if err := w.Write(ctx, o.out, ds.WriteOptions{Mode: pqsink.Overwrite}); err != nil {
			return 1, fmt.Errorf("write result: %w", err)
		}
	}
	if o.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		if err := ds.FromRecords(schema, recs...).WithConfig(cfg).ShowTo(ctx, stdout, 100); err != nil {
			return 1, err
		}
		printTimings(stdout, rep)
	}
	if checkErr != nil {
		return code, fmt.Errorf("%s: engine answer differs from the hand loop: %w", q.name, checkErr)
	}
	return code, nil
}

// generateInChild generates the data in a child process of this binary so
// the generator's memory does not count in this process's peak RSS.
func generateInChild(ctx context.Context, dir string, o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-generate", "-data", dir,
		"-sf", strconv.FormatFloat(o.sf, 'g', -1, 64),
		"-seed", strconv.FormatUint(o.seed, 10),
		"-file-orders", strconv.FormatInt(o.filesOrders, 10),
		"-row-group-rows", strconv.FormatInt(o.rowGroup, 10),
		"-parallelism", strconv.Itoa(o.parallelism))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generate sf %g into %s: %w", o.sf, dir, err)
	}
	return nil
}

func printTimings(w io.Writer, r report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\t\n", k, v) }
	fmt.Fprintln(w)
	line("query", r.Query)
	line("scale factor", strconv.FormatFloat(r.SF, 'g', -1, 64))
	line("lineitem rows", strconv.FormatInt(r.Rows, 10))
	line("files", strconv.Itoa(r.Files))
	if r.GenerateSeconds > 0 {
		line("generate", fmt.Sprintf("%.3f s", r.GenerateSeconds))
	}
	line("engine (end to end)", fmt.Sprintf("%.3f s  %.1f M rows/s  %.2f s CPU", r.EngineSeconds, r.RowsPerSec/1e6, r.EngineCPUSeconds))
	line("decode (baseline)", fmt.Sprintf("%.3f s  %.2f s CPU", r.DecodeSeconds, r.DecodeCPUSeconds))
	line("hand loop", fmt.Sprintf("%.3f s  %.1f M rows/s", r.HandloopSeconds, r.HandloopRowsPerSec/1e6))
	line("engine / (decode + loop)", fmt.Sprintf("%.2f", r.EngineVsHandloop))
	line("engine / loop", fmt.Sprintf("%.2f", r.EngineVsLoop))
	line("peak RSS after engine", fmt.Sprintf("%.1f MiB", float64(r.PeakRSSBytes)/(1<<20)))
	line("peak RSS total", fmt.Sprintf("%.1f MiB", float64(r.PeakRSSTotalBytes)/(1<<20)))
	line("GOMAXPROCS", strconv.Itoa(r.GOMAXPROCS))
	line("check", r.Check)
	tw.Flush()
}
