package killkafka

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/internal/testenv"
)

// executorJob is what the test's executor processes run: the same job,
// built from the driver's parameters.
func executorJob() (shuffle.Runner, error) {
	return dataset.NewTaskServer(dataset.Config{}, kafkaJob), nil
}

// The Kafka -> windowed aggregation -> exactly-once Kafka query of the
// kill test above, its tasks on three executor processes: executors are
// SIGKILLed at seeded random points (and replaced), and so, now and then,
// is the driver (restarted from its checkpoint, with a new epoch). Each
// run's output, read with read_committed, must equal a run never killed,
// and the windows computed in Go.
func TestClusterKafkaQueryWithExecutorsAndDriverKilledWritesEveryWindowExactlyOnce(t *testing.T) {
	onEachBroker(t, clusterKillTest)
}

func clusterKillTest(t *testing.T, kc *kafkaCluster, real bool) {
	// SLUICE_SOAK=N multiplies both for a long soak.
	minExecutorKills, minDriverKills := testenv.Soak(t, 30), testenv.Soak(t, 3)
	seed := runSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x636c7573))

	in, refOut := "orders", "out-reference"
	if real {
		in, refOut = uniqueName("sluice-clusterkill-in"), uniqueName("sluice-clusterkill-ref")
		kc.createTopic(t, in, partitions, true)
		kc.createTopic(t, refOut, partitions, true)
	}
	kc.produceOrders(t, in, ordersGen(seed), orders)

	cl := clustertest.Start(t, clustertest.Options{Executors: 3})
	join := cl.Join()
	runCfg := func(out string) child {
		return child{Brokers: kc.brokers, In: in, Out: out, QueryID: out, Checkpoint: filepath.Join(t.TempDir(), "checkpoint"), Cluster: join}
	}

	// The reference: a cluster run never killed.
	ref := runCfg(refOut)
	began := time.Now()
	if killtest.Start(t, childEnv, ref).RunOrKill(t, 5*time.Minute) {
		t.Fatal("reference run was killed")
	}
	took := time.Since(began)
	refState := readKillState(t, ref.Checkpoint)
	finalWM := refState.watermarks[refState.lastOffsets]
	refRecs := recordStrings(kc.readTopic(t, refOut))
	wantWindows := expectedWindows(seed, orders, finalWM)
	if d := diffSorted(parseWindows(t, kc.readTopic(t, refOut)), wantWindows); d != "" {
		t.Fatalf("seed %d: the never-killed cluster run's output differs from the windows computed in Go (%d): %s", seed, len(wantWindows), d)
	}
	t.Logf("reference: %d records in %d batches, %v", len(refRecs), refState.lastOffsets+1, took.Round(time.Millisecond))

	// Executors die every up-to-a-quarter of the reference run; a driver
	// run is killed now and then somewhere in its first half.
	churn := &clustertest.Churn{Rng: rng, ExecutorEvery: max(took/4, 100*time.Millisecond), DriverWithin: took / 2,
		MinExecutorKill: minExecutorKills, MinDriverKills: minDriverKills}
	runs := 0
	for !churn.Done() {
		runs++
		out := fmt.Sprintf("out-run%d", runs)
		if real {
			out = uniqueName(fmt.Sprintf("sluice-clusterkill-run%d", runs))
		}
		kc.createTopic(t, out, partitions, real)
		cfg := runCfg(out)
		restarts := churn.Run(t, cl, func() *killtest.Child { return killtest.Start(t, childEnv, cfg) })
		got := recordStrings(kc.readTopic(t, out))
		if d := diffSorted(got, refRecs); d != "" {
			t.Fatalf("seed %d: run %d (driver restarted %d times): the output topic (%d records) differs from the never-killed run's (%d): %s", seed, runs, restarts, len(got), len(refRecs), d)
		}
		t.Logf("run %d: output equals the reference (%d records); executor kills so far %d, driver kills %d", runs, len(got), churn.ExecutorKills, churn.DriverKills)
	}
	t.Logf("%d executor kills and %d driver kills over %d runs in %v", churn.ExecutorKills, churn.DriverKills, runs, time.Since(began).Round(time.Millisecond))
}
