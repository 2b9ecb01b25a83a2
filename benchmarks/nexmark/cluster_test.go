package main

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
		if err := cli(context.Background(), args, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "executor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
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
	o := runOpts{query: "q5", events: 200_000, eventRate: 10_000, batchEvents: 50_000, seed: defaultSeed, parallelism: 2}
	local, err := run(ctx, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if local.OutputRows == 0 {
		t.Fatal("the local run emitted no row: the test needs windows that close")
	}
	o.cluster, o.executorSlots, o.executorCommand, o.mem = 2, 2, testExecutor, mem
	got, err := run(ctx, o, nil)
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
	_, err := run(context.Background(), runOpts{query: "q0", input: t.TempDir(), batchEvents: 1, cluster: 2}, nil)
	if err == nil || !strings.Contains(err.Error(), "--cluster runs over the in-process generator into the counting sink only") {
		t.Fatalf("--cluster with --input: %v", err)
	}
}
