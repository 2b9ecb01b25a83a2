package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/sinks"
)

// testCluster is the package's cluster in the cluster pass
// (SLUICE_TEST_CLUSTER=3, as make test runs it): a driver in this process
// and executor processes of this test binary; nil in an ordinary run. The
// correctness tests run their batch queries and streams on it as well,
// against the local answers.
var testCluster *clustertest.Cluster

func TestMain(m *testing.M) {
	var run clustertest.Runner
	testCluster, run = clustertest.Package(m, clusterExecutor)
	os.Exit(run.Run())
}

// clusterJobs are the jobs the tests run on testCluster, by name
// (params["query"]): each streaming query under its own name (run's job,
// rebuilt by streamJob from runOpts.params), and each batch query over a
// generated directory (params["input"]) as "batch <name>". The driver side
// builds its Datasets with the same functions.
var clusterJobs = map[string]dataset.JobFunc{}

func init() {
	for name, q := range queries {
		clusterJobs[name] = streamJob
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
func onCluster(t *testing.T, o *runOpts) func(what string) {
	t.Helper()
	if testCluster == nil {
		return func(string) {}
	}
	if _, ok := clusterJobs[o.query]; !ok {
		t.Fatalf("query %q is not in clusterJobs: executors could not build it", o.query)
	}
	o.cluster = testCluster.Driver
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
