package killkafka

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/scheduler"
	"github.com/sluicedata/sluice/sinks"
)

// The windowed aggregation keeps its state in 12 key-group ranges, placed
// on executors by rendezvous hashing. Batch after batch each range stays
// warm where it is; when an executor joins, only the ranges it now owns
// are loaded (by it) from the checkpoint, and when one leaves, only the
// ranges it owned are. Expected moves are computed from the placement
// rule, not observed.
func TestExecutorsJoiningAndLeavingLoadOnlyTheRangesWhoseOwnerChanged(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "orders", "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	k := newCluster(t, kc.ListenAddrs())
	k.produceOrders(t, "orders", ordersGen(7), orders)
	cl := clustertest.Start(t, clustertest.Options{Executors: 2})

	const ranges = 12
	params := map[string]string{"brokers": strings.Join(k.brokers, ","), "in": "orders", "out": "out", "query_id": "join-test"}
	cfg := dataset.Config{Parallelism: 2, ShufflePartitions: ranges, Cluster: cl.Driver, Params: params}
	dir := t.TempDir()

	// The stateful stage of the compiled query, to predict placement.
	outs, dss, err := kafkaJob(params)
	if err != nil {
		t.Fatal(err)
	}
	cq, err := dss[0].WithConfig(dataset.Config{ShufflePartitions: ranges}).CompileStream(outs[0], dataset.StreamOptions{KeyGroups: checkpoint.DefaultKeyGroups, Emit: sinks.Append})
	if err != nil {
		t.Fatal(err)
	}
	stage := -1
	for _, st := range cq.Spec().Stages {
		if st.Stateful() {
			stage = st.ID
		}
	}
	cq.Close()
	owners := func() map[int]string {
		var nodes []scheduler.Node
		for _, m := range cl.Driver.Executors() {
			nodes = append(nodes, scheduler.Node{Name: m.Name, Slots: 2})
		}
		out := map[int]string{}
		for r := 0; r < ranges; r++ {
			out[r] = scheduler.Owner(stage, r, nodes)
		}
		return out
	}
	moved := func(before, after map[int]string) int {
		n := 0
		for r := range before {
			if before[r] != after[r] {
				n++
			}
		}
		return n
	}

	// batch runs one micro-batch (a query started with the Once trigger
	// on the same checkpoint: a new driver epoch each time) and returns
	// the state ranges it loaded.
	batch := func(what string) int64 {
		t.Helper()
		outs, dss, err := kafkaJob(params)
		if err != nil {
			t.Fatal(err)
		}
		defer outs[0].(interface{ Close() error }).Close()
		q, err := microbatch.WriteStream(dss[0].WithConfig(cfg), outs[0]).Trigger(microbatch.Once()).
			Checkpoint(dir).OutputMode(sinks.Append).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		p := q.RecentProgress()
		var loads int64
		for _, op := range p[len(p)-1].StateOperators {
			loads += op.Loads
		}
		t.Logf("%s: batch %d loaded %d ranges", what, p[len(p)-1].Batch, loads)
		return loads
	}

	batch("first batch (empty state)")
	if n := batch("second batch, same executors"); n != 0 {
		t.Fatalf("%d ranges loaded with no executor change: state should stay warm", n)
	}
	before := owners()
	cl.AddExecutor(2)
	cl.WaitExecutors(3)
	after := owners()
	want := moved(before, after)
	if want == 0 || want == ranges {
		t.Fatalf("the new executor owns %d of %d ranges: the test needs some to move and some to stay", want, ranges)
	}
	if n := batch("an executor joined"); n != int64(want) {
		t.Fatalf("%d ranges loaded after a join, want the %d whose owner changed", n, want)
	}
	if n := batch("no change"); n != 0 {
		t.Fatalf("%d ranges loaded with no executor change", n)
	}
	leaving := cl.Live()[0]
	before = owners()
	if err := leaving.Stop(); err != nil {
		t.Fatal(err)
	}
	cl.WaitExecutors(2)
	after = owners()
	want = moved(before, after)
	if n := batch(fmt.Sprintf("executor %s left", leaving.Name)); n != int64(want) {
		t.Fatalf("%d ranges loaded after a leave, want the %d the leaver owned", n, want)
	}
}
