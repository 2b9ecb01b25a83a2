package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sluicedata/sluice/internal/measure"
	"github.com/sluicedata/sluice/internal/nexmark"
)

// Targets of cluster mode, from the issue.
const (
	clusterRatioTarget = 0.75 // cluster/local events per CPU-second
	oneRowP50TargetMs  = 15.0 // one-row micro-batch p50 on a cluster
)

// clusterHeading starts the section of RESULTS.md that cluster-results
// writes; results keeps it when it rewrites the file.
const clusterHeading = "## Cluster mode"

// latencyReport is what cluster-results reads of a benchmarks/streaming
// -json line: the one-row batches' latency, local or on executors.
type latencyReport struct {
	Events       int64   `json:"events"`
	EmptyBatches int     `json:"empty_batches"`
	WarmP50      float64 `json:"empty_batch_p50_ms"`
	WarmP99      float64 `json:"empty_batch_p99_ms"`
	WarmState    int64   `json:"empty_batch_state_rows"`
	FreshP50     float64 `json:"empty_fresh_batch_p50_ms"`
	FreshP99     float64 `json:"empty_fresh_batch_p99_ms"`
	Executors    int     `json:"executors"`
	Check        string  `json:"check"`
}

// comparison is one query's local and cluster runs of one sitting, and
// one JSON line of cluster-results.
type comparison struct {
	Query     string  `json:"query"`
	Events    int64   `json:"events"`
	EventRate float64 `json:"event_rate,omitempty"`
	Executors int     `json:"executors"`
	Runs      int     `json:"runs"` // per mode
	// Medians over the runs of each mode.
	LocalEventsPerCPUSecond   float64 `json:"local_events_per_cpu_second"`
	ClusterEventsPerCPUSecond float64 `json:"cluster_events_per_cpu_second"`
	// Ratio is the cluster median over the local one; RatioMin and
	// RatioMax bound the ratios of the interleaved pairs (local run i,
	// cluster run i).
	Ratio    float64 `json:"ratio"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
	Target   float64 `json:"target"`
	Met      bool    `json:"met"`

	LocalSeconds              float64 `json:"local_seconds"`
	LocalCPUSeconds           float64 `json:"local_cpu_seconds"`
	ClusterSeconds            float64 `json:"cluster_seconds"`
	ClusterCPUSeconds         float64 `json:"cluster_cpu_seconds"`
	ClusterDriverCPUSeconds   float64 `json:"cluster_driver_cpu_seconds"`
	ClusterExecutorCPUSeconds float64 `json:"cluster_executor_cpu_seconds"`
	OutputRows                int64   `json:"output_rows"`
	TaskAttempts              int64   `json:"task_attempts"`
	ShuffleBytes              int64   `json:"shuffle_bytes"`
	// ShuffleBytesPerSecPerCore is bytes shuffled / CPU seconds of the
	// cluster run: per second per core used.
	ShuffleBytesPerSecPerCore float64 `json:"shuffle_bytes_per_sec_per_core"`
	ShuffleBytesPerSec        float64 `json:"shuffle_bytes_per_sec"`
}

// latencyLine is one mode's one-row batch latency: medians over the runs.
type latencyLine struct {
	Latency   string  `json:"latency"` // "one-row batch"
	Mode      string  `json:"mode"`    // local or cluster
	Executors int     `json:"executors"`
	Runs      int     `json:"runs"`
	Batches   int     `json:"batches_per_run"`
	FreshP50  float64 `json:"p50_ms"`
	FreshP99  float64 `json:"p99_ms"`
	WarmP50   float64 `json:"warm_p50_ms"`
	WarmP99   float64 `json:"warm_p99_ms"`
	WarmState int64   `json:"warm_state_rows"`
	Target    float64 `json:"target_p50_ms,omitempty"`
	Met       *bool   `json:"met,omitempty"`
}

// readClusterLines reads run --json lines and benchmarks/streaming -json
// lines (told apart by "query").
func readClusterLines(in io.Reader) ([]report, []latencyReport, error) {
	var reps []report
	var lats []latencyReport
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &probe); err != nil {
			return nil, nil, fmt.Errorf("cluster-results: %w in %q", err, line)
		}
		if _, ok := probe["query"]; ok {
			var r report
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return nil, nil, fmt.Errorf("cluster-results: %w in %q", err, line)
			}
			reps = append(reps, r)
			continue
		}
		if _, ok := probe["empty_fresh_batch_p50_ms"]; ok {
			var l latencyReport
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				return nil, nil, fmt.Errorf("cluster-results: %w in %q", err, line)
			}
			lats = append(lats, l)
		}
	}
	return reps, lats, sc.Err()
}

// compareRuns pairs each query's local and cluster runs (same events and
// event rate), in the order they ran.
func compareRuns(reps []report) ([]comparison, error) {
	type key struct {
		q    string
		n    int64
		rate float64
	}
	var order []key
	local, clustered := map[key][]report{}, map[key][]report{}
	for _, r := range reps {
		k := key{r.Query, r.Events, r.EventRate}
		if _, ok := local[k]; !ok {
			if _, ok := clustered[k]; !ok {
				order = append(order, k)
			}
		}
		if r.Executors > 0 {
			clustered[k] = append(clustered[k], r)
		} else {
			local[k] = append(local[k], r)
		}
	}
	var out []comparison
	for _, k := range order {
		l, c := local[k], clustered[k]
		if len(l) == 0 || len(c) == 0 {
			return nil, fmt.Errorf("cluster-results: %s at %d events has %d local and %d cluster runs: want both", k.q, k.n, len(l), len(c))
		}
		med := func(rs []report, f func(report) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, f(r))
			}
			return measure.Percentile(xs, 0.5)
		}
		cmp := comparison{Query: k.q, Events: k.n, EventRate: k.rate, Executors: c[0].Executors, Runs: min(len(l), len(c)), Target: clusterRatioTarget,
			LocalEventsPerCPUSecond:   med(l, func(r report) float64 { return r.EventsPerCPUSecond }),
			ClusterEventsPerCPUSecond: med(c, func(r report) float64 { return r.EventsPerCPUSecond }),
			LocalSeconds:              med(l, func(r report) float64 { return r.Seconds }),
			LocalCPUSeconds:           med(l, func(r report) float64 { return r.CPUSeconds }),
			ClusterSeconds:            med(c, func(r report) float64 { return r.Seconds }),
			ClusterCPUSeconds:         med(c, func(r report) float64 { return r.CPUSeconds }),
			ClusterDriverCPUSeconds:   med(c, func(r report) float64 { return r.DriverCPUSeconds }),
			ClusterExecutorCPUSeconds: med(c, func(r report) float64 { return r.ExecutorCPUSeconds }),
			ShuffleBytesPerSecPerCore: med(c, func(r report) float64 { return r.ShuffleBytesPerCPUSecond }),
			ShuffleBytesPerSec:        med(c, func(r report) float64 { return r.ShuffleBytesPerSec }),
			ShuffleBytes:              int64(med(c, func(r report) float64 { return float64(r.ShuffleBytes) })),
			TaskAttempts:              int64(med(c, func(r report) float64 { return float64(r.TaskAttempts) })),
			OutputRows:                c[0].OutputRows,
		}
		for _, r := range append(slices.Clone(l), c...) {
			if r.OutputRows != cmp.OutputRows {
				return nil, fmt.Errorf("cluster-results: %s at %d events: runs emitted %d and %d rows", k.q, k.n, cmp.OutputRows, r.OutputRows)
			}
		}
		if cmp.LocalEventsPerCPUSecond > 0 {
			cmp.Ratio = cmp.ClusterEventsPerCPUSecond / cmp.LocalEventsPerCPUSecond
		}
		cmp.RatioMin = -1
		for i := 0; i < cmp.Runs; i++ {
			x := c[i].EventsPerCPUSecond / l[i].EventsPerCPUSecond
			if cmp.RatioMin < 0 || x < cmp.RatioMin {
				cmp.RatioMin = x
			}
			cmp.RatioMax = max(cmp.RatioMax, x)
		}
		cmp.Met = cmp.Ratio >= clusterRatioTarget
		out = append(out, cmp)
	}
	return out, nil
}

// compareLatency summarises the one-row batches per mode.
func compareLatency(lats []latencyReport) []latencyLine {
	by := map[int][]latencyReport{}
	var modes []int
	for _, l := range lats {
		if _, ok := by[l.Executors]; !ok {
			modes = append(modes, l.Executors)
		}
		by[l.Executors] = append(by[l.Executors], l)
	}
	slices.Sort(modes)
	var out []latencyLine
	for _, n := range modes {
		ls := by[n]
		med := func(f func(latencyReport) float64) float64 {
			var xs []float64
			for _, l := range ls {
				xs = append(xs, f(l))
			}
			return measure.Percentile(xs, 0.5)
		}
		line := latencyLine{Latency: "one-row batch", Mode: "local", Executors: n, Runs: len(ls), Batches: ls[0].EmptyBatches,
			FreshP50: med(func(l latencyReport) float64 { return l.FreshP50 }), FreshP99: med(func(l latencyReport) float64 { return l.FreshP99 }),
			WarmP50: med(func(l latencyReport) float64 { return l.WarmP50 }), WarmP99: med(func(l latencyReport) float64 { return l.WarmP99 }),
			WarmState: ls[0].WarmState}
		if n > 0 {
			met := line.FreshP50 <= oneRowP50TargetMs
			line.Mode, line.Target, line.Met = "cluster", oneRowP50TargetMs, &met
		}
		out = append(out, line)
	}
	return out
}

// writeClusterResults prints each comparison and latency line as JSON to
// stdout and, when results is set, writes them as the cluster section of
// that Markdown file (replacing the section, or appending it).
func writeClusterResults(in io.Reader, stdout io.Writer, results string, now time.Time) error {
	reps, lats, err := readClusterLines(in)
	if err != nil {
		return err
	}
	cmps, err := compareRuns(reps)
	if err != nil {
		return err
	}
	lines := compareLatency(lats)
	if len(cmps) == 0 && len(lines) == 0 {
		return fmt.Errorf("cluster-results: no run --json or streaming -json lines in the input")
	}
	enc := json.NewEncoder(stdout)
	for _, c := range cmps {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	if results == "" {
		return nil
	}
	var b strings.Builder
	clusterSection(&b, cmps, lines, now)
	old, err := os.ReadFile(results)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(results, []byte(replaceSection(string(old), clusterHeading, b.String())), 0o644)
}

// clusterSection renders the cluster section of RESULTS.md.
func clusterSection(w io.Writer, cmps []comparison, lines []latencyLine, now time.Time) {
	fmt.Fprintf(w, "%s\n\n", clusterHeading)
	fmt.Fprintf(w, "Written by `make bench-cluster` (`nexmark run --cluster 2`, `streaming -cluster 2`, then `nexmark cluster-results`) on %s; "+
		"machine: %d CPUs (nproc), %s, %s %s/%s, shared with other jobs while measured.\n\n",
		now.UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if len(cmps) > 0 {
		fmt.Fprintf(w, "Each query ran locally and on %d executor processes of the runner's own binary, interleaved (local, cluster, local, …), "+
			"with the same events (in-process generator, seed %d, 10 M events/s of event time), parallelism 2 and 2 task slots per executor. "+
			"The driver runs in the runner's process; executors listen on 127.0.0.1 with mutual TLS (a dev CA made per run) and encrypted gossip. "+
			"CPU s is user + system time during the streaming run: the runner's (getrusage) plus, in cluster mode, each executor's "+
			"(/proc/<pid>/stat before and after). Medians over the runs; the ratio range is over the interleaved pairs. "+
			"Bytes shuffled are the Arrow IPC bytes executors served over Flight (DoGet: reduce tasks on the other executor and the driver), "+
			"per second per core = bytes / CPU s. Both modes use the counting sink (rows counted in each task's commit message).\n\n",
			cmps[0].Executors, nexmark.DefaultSeed)
		fmt.Fprintln(w, "| query | events | runs | local events/s per core | cluster events/s per core | cluster/local (pairs) | target ≥ 0.75 | local wall / CPU s | cluster wall / CPU s (driver + executors) | task attempts | bytes shuffled | shuffled bytes/s per core |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
		for _, c := range cmps {
			verdict := "met"
			if !c.Met {
				verdict = "missed"
			}
			name := c.Query
			if c.EventRate != 0 {
				name = fmt.Sprintf("%s (%s events/s of event time)", c.Query, kilo(c.EventRate))
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %.2f (%.2f-%.2f) | %s | %.2f / %.2f | %.2f / %.2f (%.2f + %.2f) | %d | %s | %s |\n",
				name, c.Events, c.Runs, kilo(c.LocalEventsPerCPUSecond), kilo(c.ClusterEventsPerCPUSecond), c.Ratio, c.RatioMin, c.RatioMax, verdict,
				c.LocalSeconds, c.LocalCPUSeconds, c.ClusterSeconds, c.ClusterCPUSeconds, c.ClusterDriverCPUSeconds, c.ClusterExecutorCPUSeconds,
				c.TaskAttempts, mib(float64(c.ShuffleBytes)), mib(c.ShuffleBytesPerSecPerCore))
		}
		fmt.Fprintln(w)
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "One-row micro-batches (`benchmarks/streaming -empty-batches`: the window job, Parquet sink, checkpoint on local disk, one row per batch; "+
			"\"new checkpoint\" runs on an empty one, \"live state\" on top of the main run's open windows). Medians over the runs of each batch's triggerExecution percentiles.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| mode | runs | batches per run | p50 ms (new checkpoint) | p99 ms | p50 ms (live state) | p99 ms | target p50 ≤ 15 ms |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
		for _, l := range lines {
			target := "—"
			if l.Met != nil {
				target = "met"
				if !*l.Met {
					target = "missed"
				}
			}
			mode := l.Mode
			if l.Executors > 0 {
				mode = fmt.Sprintf("cluster (%d executors)", l.Executors)
			}
			fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %s |\n", mode, l.Runs, l.Batches, l.FreshP50, l.FreshP99, l.WarmP50, l.WarmP99, target)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Where the time goes (CPU profiles of the driver and an executor) is in benchmarks/nexmark/doc.go, \"Measured in cluster mode\".")
}

// mib renders bytes as "12.3 MiB".
func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }

// replaceSection returns doc with the section starting at the line heading
// (up to the next "## " heading or the end) replaced by section, or
// section appended when doc has none.
func replaceSection(doc, heading, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	start := sectionStart(doc, heading)
	if start < 0 {
		if doc == "" {
			return section
		}
		return strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	rest := doc[start+len(heading):]
	end := len(doc)
	if i := strings.Index(rest, "\n## "); i >= 0 {
		end = start + len(heading) + i + 1
	}
	tail := doc[end:]
	if tail != "" {
		section += "\n"
	}
	return doc[:start] + section + tail
}

// sectionStart is where the line heading starts in doc, or -1.
func sectionStart(doc, heading string) int {
	if strings.HasPrefix(doc, heading+"\n") {
		return 0
	}
	if i := strings.Index(doc, "\n"+heading+"\n"); i >= 0 {
		return i + 1
	}
	return -1
}

// headings lists the "## " heading lines of doc, in order.
func headings(doc string) []string {
	var hs []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "## ") {
			hs = append(hs, line)
		}
	}
	return hs
}

// section returns the section of doc starting at heading, "" if none.
func section(doc, heading string) string {
	start := sectionStart(doc, heading)
	if start < 0 {
		return ""
	}
	rest := doc[start+len(heading):]
	if i := strings.Index(rest, "\n## "); i >= 0 {
		return doc[start : start+len(heading)+i+1]
	}
	return doc[start:]
}
