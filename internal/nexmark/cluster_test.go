package nexmark

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/sinks"
)

// executorEnv makes this test binary an executor process of run
// --cluster: its value is the executor subcommand's arguments (JSON).
const executorEnv = "SLUICE_NEXMARK_TEST_EXECUTOR"

func TestMain(m *testing.M) {
	if raw := os.Getenv(executorEnv); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, "executor:", err)
			os.Exit(2)
		}
		if len(args) == 0 || args[0] != "executor" {
			fmt.Fprintf(os.Stderr, "executor: arguments %q do not start with executor\n", args)
			os.Exit(2)
		}
		c := Commands{Prog: "nexmark", Stdout: os.Stdout, Stderr: os.Stderr}
		if err := c.Executor(context.Background(), args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "executor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// What runs put under the temporary directory by default (a disk
	// state backend's local databases, SLUICE_STATE_BACKEND=disk) goes
	// with the run, executors' included.
	removeTemp := testenv.OwnTempDir()
	var run clustertest.Runner
	testCluster, run = clustertest.Package(m, clusterExecutor)
	code := run.Run()
	removeTemp()
	os.Exit(code)
}

// testExecutor starts this test binary as an executor process.
func testExecutor(args []string) *exec.Cmd {
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), executorEnv+"="+string(b))
	return cmd
}

// run --cluster 2 runs q5 (a hop window count, a max per window and a
// join back: two shuffles) on two executor processes and counts the rows
// the local run counts; the report has the executors' CPU time, their
// task attempts and the bytes they served over Flight.
func TestClusterRunCountsTheLocalRowsAndReportsTheShuffle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := Options{Query: "q5", Events: 200_000, EventRate: 10_000, BatchEvents: 50_000, Seed: DefaultSeed, Parallelism: 2}
	local, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if local.OutputRows == 0 {
		t.Fatal("the local run emitted no row: the test needs windows that close")
	}
	o.Cluster, o.ExecutorSlots, o.ExecutorCommand, o.Mem = 2, 2, testExecutor, mem
	got, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if got.OutputRows != local.OutputRows || got.InputRows != local.InputRows || got.Batches != local.Batches {
		t.Fatalf("cluster run: %d output rows, %d input rows, %d batches; local: %d, %d, %d",
			got.OutputRows, got.InputRows, got.Batches, local.OutputRows, local.InputRows, local.Batches)
	}
	if got.Executors != 2 || got.TaskAttempts == 0 || got.ShuffleGets == 0 || got.ShuffleBlocks == 0 || got.ShuffleBytes == 0 {
		t.Fatalf("cluster report lacks the executors' work: %+v", got)
	}
	if got.ExecutorCPUSeconds <= 0 || got.CPUSeconds != got.DriverCPUSeconds+got.ExecutorCPUSeconds {
		t.Fatalf("cpu_seconds %v should be the driver's %v plus the executors' %v (> 0)", got.CPUSeconds, got.DriverCPUSeconds, got.ExecutorCPUSeconds)
	}
	b, _ := json.Marshal(got)
	for _, k := range []string{`"executors":2`, `"executor_cpu_seconds":`, `"shuffle_bytes":`, `"shuffle_bytes_per_cpu_second":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("report %s lacks %s", b, k)
		}
	}
}

// A cluster run needs the generator (executors rebuild it from the
// parameters) and the counting sink.
func TestClusterRunRefusesWhatExecutorsCannotRebuild(t *testing.T) {
	_, err := Run(context.Background(), Options{Query: "q0", Input: t.TempDir(), BatchEvents: 1, Cluster: 2})
	if err == nil || !strings.Contains(err.Error(), "--cluster runs over the in-process generator into the counting sink only") {
		t.Fatalf("--cluster with --input: %v", err)
	}
}

// testCluster is the package's cluster in the cluster pass
// (SLUICE_TEST_CLUSTER=3, as make test runs it): a driver in this process
// and executor processes of this test binary; nil in an ordinary run. The
// correctness tests run their batch queries and streams on it as well,
// against the local answers.
var testCluster *clustertest.Cluster

// clusterJobs are the jobs the tests run on testCluster, by name
// (params["query"]): each streaming query under its own name (run's job,
// rebuilt by StreamJob from Options.params), and each batch query over a
// generated directory (params["input"]) as "batch <name>". The driver side
// builds its Datasets with the same functions.
var clusterJobs = map[string]dataset.JobFunc{}

func init() {
	for name, q := range queries {
		clusterJobs[name] = StreamJob
		clusterJobs["batch "+name] = batchJob(q)
	}
	for _, c := range joinCases {
		clusterJobs["batch "+c.name+" windowed"] = batchJob(c.windowed)
	}
}

// batchJob is q over the Parquet of the generated directory
// params["input"].
func batchJob(q query) dataset.JobFunc {
	return func(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
		s, err := readStreams(p["input"])
		if err != nil {
			return nil, nil, err
		}
		return nil, []*dataset.Dataset{q(s)}, nil
	}
}

// clusterExecutor is what an executor process of the package's cluster
// runs: the registry's jobs, rebuilt from each task's parameters.
func clusterExecutor() (shuffle.Runner, error) {
	return dataset.NewTaskServer(dataset.Config{}, func(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
		job, ok := clusterJobs[p["query"]]
		if !ok {
			return nil, nil, fmt.Errorf("no job %q in this test binary's cluster jobs", p["query"])
		}
		return job(p)
	}), nil
}

// sentCheck returns a check, to call after a run, that fails t unless the
// driver sent the executors tasks since: a run that silently stayed in
// this process would pass every comparison.
func sentCheck(t *testing.T) func(what string) {
	t.Helper()
	before := testCluster.Driver.SentAttempts()
	return func(what string) {
		t.Helper()
		after := testCluster.Driver.SentAttempts()
		if after == before {
			t.Fatalf("%s: the driver sent no task to the cluster's executors: it ran in the test process", what)
		}
		t.Logf("%s: %d task attempts on the cluster", what, after-before)
		before = after
	}
}

// onCluster sets o to run on the package's cluster, when there is one, and
// returns the check that it did (a no-op without a cluster).
func onCluster(t *testing.T, o *Options) func(what string) {
	t.Helper()
	if testCluster == nil {
		return func(string) {}
	}
	if _, ok := clusterJobs[o.Query]; !ok {
		t.Fatalf("query %q is not in clusterJobs: executors could not build it", o.Query)
	}
	o.Dispatcher = testCluster.Driver
	return sentCheck(t)
}

// clusterBatch runs the batch job registered as name over the generated
// directory gen on the package's cluster and returns its records (the
// caller releases them).
func clusterBatch(t *testing.T, ctx context.Context, name, gen string) table {
	t.Helper()
	params := map[string]string{"query": name, "input": gen}
	job, ok := clusterJobs[name]
	if !ok {
		t.Fatalf("batch job %q is not in clusterJobs", name)
	}
	_, ds, err := job(params)
	if err != nil {
		t.Fatal(err)
	}
	sent := sentCheck(t)
	tb := collectTable(t, ctx, ds[0].WithConfig(dataset.Config{Cluster: testCluster.Driver, Params: params}))
	sent(name)
	return tb
}
