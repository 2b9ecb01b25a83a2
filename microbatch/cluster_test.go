package microbatch_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/sinks"
)

// testCluster is the package's cluster in the cluster pass
// (SLUICE_TEST_CLUSTER=3, as make test runs it): a driver in this process
// and executor processes of this test binary. It is nil in an ordinary
// run. The batch-equals-stream corpus runs on it; the package's other
// tests stay local.
var testCluster *clustertest.Cluster

// clusterJobs are the queries the package's tests run on testCluster, by
// name (params["query"]). A test builds its Datasets and sinks with the
// same function the executors call with the task's parameters, so both
// sides hold the same streams, sinks and registered functions.
var clusterJobs = map[string]dataset.JobFunc{}

func init() {
	for _, q := range corpusQueries {
		clusterJobs[q.clusterName()] = q.clusterJob
	}
}

// clusterExecutor is what an executor process of the package's cluster
// runs: the registry's queries, rebuilt from each task's parameters.
func clusterExecutor() (shuffle.Runner, error) {
	return dataset.NewTaskServer(dataset.Config{}, func(params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
		job, ok := clusterJobs[params["query"]]
		if !ok {
			return nil, nil, fmt.Errorf("no query %q in this test binary's cluster jobs", params["query"])
		}
		return job(params)
	}), nil
}

// onCluster returns cfg set to run the registered query params["query"]
// on the package's cluster, and a check, to call after the run, that fails
// t unless the driver sent the executors tasks since: a query that
// silently ran in this process would pass every comparison.
func onCluster(t *testing.T, cfg dataset.Config, params map[string]string) (dataset.Config, func(what string)) {
	t.Helper()
	if _, ok := clusterJobs[params["query"]]; !ok {
		t.Fatalf("query %q is not in clusterJobs: executors could not build it", params["query"])
	}
	cfg.Cluster, cfg.Params = testCluster.Driver, maps.Clone(params)
	before := testCluster.Driver.SentAttempts()
	return cfg, func(what string) {
		t.Helper()
		after := testCluster.Driver.SentAttempts()
		if after == before {
			t.Fatalf("%s: the driver sent no task to the cluster's executors: the query ran in the test process", what)
		}
		t.Logf("%s: %d task attempts sent to the cluster's executors", what, after-before)
		before = after
	}
}
