package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/internal/localcluster"
)

// executorEnv makes this test binary an executor process of -cluster: its
// value is the executor subcommand's arguments (JSON).
const executorEnv = "SLUICE_STREAMING_TEST_EXECUTOR"

func TestMain(m *testing.M) {
	if raw := os.Getenv(executorEnv); raw != "" {
		var args []string
		err := json.Unmarshal([]byte(raw), &args)
		if err == nil {
			err = localcluster.ExecutorMain(context.Background(), args[1:], clusterJob, os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "executor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func testExecutor(args []string) *exec.Cmd {
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), executorEnv+"="+string(b))
	return cmd
}

// The window job with its tasks on two executor processes: the Parquet
// they write equals the baseline, the one-row batches are measured with
// p50 and p99, and the report has the executors' CPU time and shuffle.
func TestTinyRunOnTwoExecutorsMatchesTheBaseline(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := tiny(t)
	o.mem, o.cluster, o.executorCommand = mem, 2, testExecutor
	var out bytes.Buffer
	code, err := run(context.Background(), o, &out)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v\n%s", code, err, out.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, out.String())
	}
	if rep["check"] != "ok" || rep["output_rows"] != 100.0 || rep["executors"] != 2.0 {
		t.Errorf("check %v, %v output rows, %v executors; want ok, 100, 2", rep["check"], rep["output_rows"], rep["executors"])
	}
	// (Not shuffle_bytes: with one map task and two state ranges a batch
	// may keep all its data on one executor, and then nothing crosses.)
	for _, k := range []string{"executor_cpu_seconds", "task_attempts", "empty_batch_p99_ms", "empty_fresh_batch_p50_ms", "empty_fresh_batch_p99_ms"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("report field %s = %v, want a positive number", k, rep[k])
		}
	}
	t.Logf("%s", out.String())
}

// tiny is 200,000 events over 100 keys at 10,000 events/s of event time:
// 20 s of event time, so windows close during the run, in 8 batches.
func tiny(t *testing.T) options {
	return options{events: 200_000, batchRows: 25_000, keys: 100, eventRate: 10_000, window: 10 * time.Second,
		delay: 2 * time.Second, emptyBatches: 5, seed: defaultSeed, parallelism: 2, json: true, dir: t.TempDir()}
}

// The benchmark at tiny scale: the output equals the baseline, every field
// of the report is filled in and no Arrow memory leaks.
func TestTinyRunMatchesTheBaselineAndReports(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := tiny(t)
	o.mem = mem
	var out bytes.Buffer
	code, err := run(context.Background(), o, &out)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v\n%s", code, err, out.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, out.String())
	}
	for _, k := range []string{"events", "seconds", "events_per_sec", "batches", "batch_p50_ms", "batch_p99_ms",
		"checkpoint_ms_per_batch", "state_bytes", "peak_rss_bytes", "empty_batch_p50_ms"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("report field %s = %v, want a positive number", k, rep[k])
		}
	}
	// 20 s of event time, watermark 2 s behind its end: the first window
	// (and only it) is closed.
	if rep["check"] != "ok" || rep["windows"] != 1.0 || rep["output_rows"] != 100.0 {
		t.Errorf("check %v, %v windows, %v output rows; want ok, 1, 100", rep["check"], rep["windows"], rep["output_rows"])
	}
	// 8 data batches and one for the final watermark.
	if rep["batches"] != 9.0 || rep["progress_missing"] != 0.0 {
		t.Errorf("%v batches (%v missed), want 9 (0)", rep["batches"], rep["progress_missing"])
	}
	if rep["empty_batches"].(float64) < 5 {
		t.Errorf("%v one-row batches, want at least 5", rep["empty_batches"])
	}
	t.Logf("%s", out.String())
}

// A wrong answer is caught: compare names the group that differs.
func TestCompareFindsADifferentGroup(t *testing.T) {
	want := map[group]agg{{0, "key-1"}: {3, 10}, {0, "key-2"}: {1, 5}}
	got := map[group]agg{{0, "key-1"}: {3, 10}, {0, "key-2"}: {1, 6}}
	if err := compare(want, want, 2); err != nil {
		t.Fatalf("equal maps differ: %v", err)
	}
	err := compare(got, want, 2)
	if err == nil || !strings.Contains(err.Error(), `"key-2"`) {
		t.Fatalf("compare = %v, want a difference naming key-2", err)
	}
	delete(got, group{0, "key-2"})
	got[group{10_000_000, "key-2"}] = agg{1, 5}
	if err := compare(got, want, 2); err == nil || !strings.Contains(err.Error(), "2 of 2 groups differ") {
		t.Fatalf("compare = %v, want a missing and an extra group", err)
	}
}

// A non-empty -dir is refused: its checkpoint would resume an old run.
func TestNonEmptyDirIsRefused(t *testing.T) {
	o := tiny(t)
	o.events = 1000
	var out bytes.Buffer
	if code, err := run(context.Background(), o, &out); code != 0 || err != nil {
		t.Fatalf("first run: %d, %v", code, err)
	}
	if code, err := run(context.Background(), o, &out); code == 0 || err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second run into the same dir: code %d, %v; want a refusal", code, err)
	}
}

// -metrics and -log-level info: the run is scraped while it runs and
// every batch of the queries leaves its JSON log line.
func TestMetricsAndLogsAreOnWhenAsked(t *testing.T) {
	o := tiny(t)
	o.metrics, o.logLevel, o.scrapeInterval, o.emptyBatches = true, "info", 20*time.Millisecond, 0
	var out bytes.Buffer
	if code, err := run(context.Background(), o, &out); code != 0 || err != nil {
		t.Fatalf("run: code %d, %v\n%s", code, err, out.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, out.String())
	}
	if rep["metrics"] != true || rep["log_level"] != "info" || rep["scrapes"] == nil || rep["scrapes"].(float64) < 1 {
		t.Errorf("metrics %v, log level %v, %v scrapes; want true, info, at least 1", rep["metrics"], rep["log_level"], rep["scrapes"])
	}
	log, err := os.ReadFile(o.dir + "/query.log")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `"msg":"batch completed"`); float64(n) != rep["batches"] {
		t.Errorf("%d batch completed lines for %v batches:\n%s", n, rep["batches"], log)
	}
	o = tiny(t)
	o.logLevel = "loud"
	if code, err := run(context.Background(), o, &out); code == 0 || err == nil || !strings.Contains(err.Error(), `-log-level "loud"`) {
		t.Errorf("-log-level loud: code %d, %v; want a refusal naming it", code, err)
	}
}
