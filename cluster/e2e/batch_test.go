package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/sinks"
)

func TestMain(m *testing.M) {
	clustertest.Main(m, func() (shuffle.Runner, error) {
		return dataset.NewTaskServer(dataset.Config{}, func(map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
			return nil, []*dataset.Dataset{slowJob(nil)}, nil
		}), nil
	})
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// input is n records of 500 rows over 37 keys.
func input(n int) []arrow.Record {
	var recs []arrow.Record
	for b := 0; b < n; b++ {
		kb := array.NewStringBuilder(memory.DefaultAllocator)
		vb := array.NewInt64Builder(memory.DefaultAllocator)
		for i := 0; i < 500; i++ {
			kb.Append(fmt.Sprintf("k%d", (b*500+i)%37))
			vb.Append(int64(b*500 + i))
		}
		recs = append(recs, array.NewRecord(schema, []arrow.Array{kb.NewArray(), vb.NewArray()}, 500))
	}
	return recs
}

// slowJob is the job's code: every record passes a registered function
// that takes 30 ms (so a kill lands mid-job), then a shuffle, a grouped
// aggregate and a second shuffle to a sort. Driver and executors build it
// alike (the executors for its registered function).
func slowJob(recs []arrow.Record) *dataset.Dataset {
	return dataset.FromRecords(schema, recs...).
		MapBatches("slow", nil, func(_ memory.Allocator, in arrow.Record) (arrow.Record, error) {
			time.Sleep(30 * time.Millisecond)
			in.Retain()
			return in, nil
		}).
		GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("s"), dataset.CountAll().As("n")).
		OrderBy("k")
}

func rows(t *testing.T, recs []arrow.Record) []string {
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
	return out
}

func collect(t *testing.T, ds *dataset.Dataset) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := ds.CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rows(t, recs)
}

func TestABatchJobOnThreeExecutorProcessesGivesTheLocalAnswer(t *testing.T) {
	recs := input(12)
	cfg := dataset.Config{Parallelism: 2, ShufflePartitions: 5}
	want := collect(t, slowJob(recs).WithConfig(cfg))
	if len(want) != 37 {
		t.Fatalf("%d groups, want 37", len(want))
	}
	for name, memLimit := range map[string]int64{"in memory": 0, "every block spilled": 1} {
		t.Run(name, func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Executors: 3, ExecutorMemory: memLimit})
			cfg := cfg
			cfg.Cluster = c.Driver
			got := collect(t, slowJob(recs).WithConfig(cfg))
			if !slices.Equal(got, want) {
				t.Fatalf("cluster answer differs:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// The job has 60 map tasks, then 5 and 5 reduce tasks: the kills land
// while maps run (the victim's running tasks and finished blocks are lost),
// at the first reduce stage (its blocks are fetched from a dead node) and
// at the last.
func TestAnExecutorKilledMidJobCostsRetriesNotRows(t *testing.T) {
	recs := input(60)
	cfg := dataset.Config{Parallelism: 2, ShufflePartitions: 5}
	want := collect(t, slowJob(recs).WithConfig(cfg))
	for _, at := range []int64{3, 30, 62, 65} {
		t.Run(fmt.Sprintf("after %d tasks", at), func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Executors: 3})
			cfg := cfg
			cfg.Cluster = c.Driver
			victim := c.Executors()[1]
			done := make(chan struct{})
			killed := make(chan bool, 1)
			go func() {
				for c.Driver.SentAttempts() < at {
					select {
					case <-done:
						killed <- false
						return
					case <-time.After(time.Millisecond):
					}
				}
				victim.Kill()
				killed <- true
			}()
			got := collect(t, slowJob(recs).WithConfig(cfg))
			close(done)
			if !<-killed {
				t.Fatalf("the job ended after %d task attempts, before the kill", c.Driver.SentAttempts())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("after killing %s the answer differs:\n got %v\nwant %v", victim.Name, got, want)
			}
			// Only the attempts running on the victim when it died are lost:
			// a dead node gets no more work (it would fail fast and draw
			// every task of the stage to itself).
			if lost := c.Driver.LostAttempts(); lost > 2 {
				t.Fatalf("%d attempts lost their executor, want at most the victim's 2 slots", lost)
			}
			t.Logf("%d attempts sent, %d lost their executor", c.Driver.SentAttempts(), c.Driver.LostAttempts())
		})
	}
}

// SIGSTOP is the stand-in for a partitioned or hung executor: its running
// attempts and the blocks it holds are given up after the keepalive
// timeout and redone elsewhere, and the job's answer is the local one.
// After SIGCONT it is a member again, and a late answer to an attempt the
// driver gave up on reaches no one: the next job's answer is right too.
func TestAHungExecutorsWorkMovesElsewhereAndItRejoinsAfterwards(t *testing.T) {
	recs := input(60)
	cfg := dataset.Config{Parallelism: 2, ShufflePartitions: 5}
	want := collect(t, slowJob(recs).WithConfig(cfg))
	c := clustertest.Start(t, clustertest.Options{Executors: 3})
	cfg.Cluster = c.Driver
	victim := c.Executors()[0]
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for c.Driver.SentAttempts() < 20 {
			time.Sleep(time.Millisecond)
		}
		victim.Signal(syscall.SIGSTOP)
	}()
	start := time.Now()
	got := collect(t, slowJob(recs).WithConfig(cfg))
	<-stopped
	t.Logf("with %s stopped: %v, %d attempts lost their executor", victim.Name, time.Since(start).Round(time.Millisecond), c.Driver.LostAttempts())
	if !slices.Equal(got, want) {
		t.Fatalf("with %s stopped the answer differs:\n got %v\nwant %v", victim.Name, got, want)
	}
	if c.Driver.LostAttempts() == 0 {
		t.Fatal("no attempt was lost: the stop landed after the job")
	}
	if err := victim.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, slowJob(recs).WithConfig(cfg)); !slices.Equal(got, want) {
		t.Fatalf("after SIGCONT the answer differs:\n got %v\nwant %v", got, want)
	}
	// Every job released its blocks everywhere, on the executor that hung
	// (in quarantine when the first job ended) too.
	deadline := time.Now().Add(15 * time.Second)
	for {
		stats, err := c.Driver.ExecutorStats(context.Background())
		held := map[string]cluster.ExecutorStats{}
		for name, s := range stats {
			if s.Runs > 0 || s.BlockMemory > 0 {
				held[name] = s
			}
		}
		if err == nil && len(held) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the jobs, executors still hold blocks: %+v (err %v)", held, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
