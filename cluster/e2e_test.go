package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
)

// startCluster starts a driver and executors in this process, on
// 127.0.0.1 with ports chosen now, sharing one dev CA and gossip key.
func startCluster(t *testing.T, executors int) (*cluster.Driver, []*cluster.Executor) {
	t.Helper()
	ctx := context.Background()
	id, _, err := cluster.DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := cluster.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.StartDriver(ctx, cluster.Config{GossipKey: key, TLS: id, WaitForExecutors: 20 * time.Second, JoinTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	secrets[d] = secret{key, id}
	var exs []*cluster.Executor
	for i := 0; i < executors; i++ {
		srv := dataset.NewTaskServer(dataset.Config{}, noJob)
		e, err := cluster.StartExecutor(ctx, cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id, Slots: 2, JoinTimeout: 5 * time.Second}, srv)
		servers[e] = srv
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close(); srv.Close() })
		exs = append(exs, e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(d.Executors()) < executors {
		if time.Now().After(deadline) {
			t.Fatalf("driver sees %d of %d executors after 10 s", len(d.Executors()), executors)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d, exs
}

// noJob is a job of no registered function, stream or sink: batch jobs
// over in-memory data need nothing else.
func noJob(map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) { return nil, nil, nil }

type secret struct {
	key []byte
	id  *cluster.TLS
}

// servers are the in-process executors' task servers.
var servers = map[*cluster.Executor]*plan.TaskServer{}

// secrets are each test cluster's gossip key and TLS identity, by driver.
var secrets = map[*cluster.Driver]secret{}

func gossipKeyOf(t *testing.T, d *cluster.Driver) []byte { return secrets[d].key }

func rowsOf(t *testing.T, recs []arrow.Record) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			var b strings.Builder
			for j, c := range r.Columns() {
				if j > 0 {
					b.WriteByte('|')
				}
				b.WriteString(c.ValueStr(i))
			}
			out = append(out, b.String())
		}
		r.Release()
	}
	slices.Sort(out)
	return out
}

func TestABatchJobOnThreeExecutorsGivesTheLocalAnswer(t *testing.T) {
	d, exs := startCluster(t, 3)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.BinaryTypes.String},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	var recs []arrow.Record
	for b := 0; b < 5; b++ {
		kb := array.NewStringBuilder(memory.DefaultAllocator)
		vb := array.NewInt64Builder(memory.DefaultAllocator)
		for i := 0; i < 1000; i++ {
			kb.Append(fmt.Sprintf("k%d", (b*1000+i)%37))
			vb.Append(int64(b*1000 + i))
		}
		recs = append(recs, array.NewRecord(schema, []arrow.Array{kb.NewArray(), vb.NewArray()}, 1000))
	}
	query := func(cfg dataset.Config) []string {
		ds := dataset.FromRecords(schema, recs...).WithConfig(cfg).
			GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("s"), dataset.CountAll().As("n"))
		out, err := ds.CollectRecords(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return rowsOf(t, out)
	}
	want := query(dataset.Config{Parallelism: 2, ShufflePartitions: 4})
	got := query(dataset.Config{Parallelism: 2, ShufflePartitions: 4, Cluster: d})
	if !slices.Equal(got, want) {
		t.Fatalf("cluster answer differs:\n got %v\nwant %v", got, want)
	}
	for _, e := range exs {
		if e.Tasks() == 0 {
			t.Errorf("executor %s ran no task", e.Name())
		}
	}
	if len(want) != 37 {
		t.Fatalf("%d groups, want 37", len(want))
	}
}

func TestWithNoExecutorAJobWaitsBoundedAndRunsWhenOneJoins(t *testing.T) {
	d, _ := startCluster(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 2, 3}, nil)
	rec := array.NewRecord(schema, []arrow.Array{b.NewArray()}, 3)
	ds := dataset.FromRecords(schema, rec).WithConfig(dataset.Config{Cluster: d}).Agg(dataset.Sum(dataset.Col("v")).As("s"))

	// Nobody comes: the job fails after the driver's wait, saying so.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	short, err := cluster.StartDriver(ctx, cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: secrets[d].key, TLS: secrets[d].id, WaitForExecutors: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	_, err = ds.WithConfig(dataset.Config{Cluster: short}).CollectRecords(ctx)
	if err == nil || !strings.Contains(err.Error(), "no executor alive after waiting 300ms") || !strings.Contains(err.Error(), short.Name()) {
		t.Fatalf("err = %v, want no executor alive after waiting, naming the driver", err)
	}

	// One joins while the job waits: it runs there. Meanwhile the driver
	// says it waits (a streaming query's Status shows it).
	sawWaiting := make(chan string, 1)
	go func() {
		for i := 0; i < 100 && d.Waiting() == ""; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		sawWaiting <- d.Waiting()
		time.Sleep(100 * time.Millisecond)
		srv := dataset.NewTaskServer(dataset.Config{}, noJob)
		e, err := cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: secrets[d].key, TLS: secrets[d].id}, srv)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { e.Close() })
	}()
	recs, err := ds.CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, recs); !slices.Equal(got, []string{"6"}) {
		t.Fatalf("got %v, want [6]", got)
	}
	if w := <-sawWaiting; !strings.Contains(w, "waiting for an executor to join") {
		t.Fatalf("while the job waited the driver said %q", w)
	}
	if w := d.Waiting(); w != "" {
		t.Fatalf("after the job the driver says %q", w)
	}
}

func TestAnExecutorKeepsTheBroadcastDataOfBoundedlyManyJobs(t *testing.T) {
	d, exs := startCluster(t, 1)
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 2, 3}, nil)
	rec := array.NewRecord(schema, []arrow.Array{b.NewArray()}, 3)
	for i := 0; i < 40; i++ {
		recs, err := dataset.FromRecords(schema, rec).WithConfig(dataset.Config{Cluster: d}).Agg(dataset.Sum(dataset.Col("v")).As("s")).CollectRecords(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := rowsOf(t, recs); !slices.Equal(got, []string{"6"}) {
			t.Fatalf("job %d: got %v", i, got)
		}
	}
	if n := servers[exs[0]].Broadcasts(); n == 0 || n > 16 {
		t.Fatalf("the executor keeps the broadcast data of %d jobs after 40, want 1 to 16", n)
	}
}
