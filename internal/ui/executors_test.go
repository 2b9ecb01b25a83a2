package ui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/internal/shuffle"
)

// echoRunner answers a task with its body.
type echoRunner struct{}

func (echoRunner) RunTask(_ context.Context, task []byte, _ shuffle.Env) ([]byte, error) {
	return task, nil
}

// In cluster mode the executors table lists the driver (this process,
// with its runtime) and each executor the driver gives work, with its
// Flight address, slots and the counters it reports: here a real driver
// and executor on loopback, the executor having run two tasks.
func TestClusterExecutorsListsTheDriverAndItsExecutorsWithTheirCounters(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	id, _, err := cluster.DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := cluster.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.StartDriver(ctx, cluster.Config{GossipKey: key, TLS: id, JoinTimeout: 5 * time.Second, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e, err := cluster.StartExecutor(ctx, cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id, Slots: 3, JoinTimeout: 5 * time.Second, Mem: mem}, echoRunner{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(d.Executors()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the driver sees no executor after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, body := range []string{"a", "b"} {
		if _, err := d.RunTask(ctx, e.Name(), "run-1", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}

	list, err := ClusterExecutors(d)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("executors %+v: want the driver and one executor", list)
	}
	if dr := list[0]; dr.ID != d.Name() || dr.Role != "driver" || dr.Runtime == nil || dr.Runtime.Goroutines <= 0 {
		t.Fatalf("first row %+v: want the driver %s with this process's runtime", dr, d.Name())
	}
	ex := list[1]
	if ex.ID != e.Name() || ex.Role != "executor" || ex.State != "active" || ex.Slots != 3 || ex.Address == "" ||
		ex.Stats == nil || ex.Stats.Tasks != 2 {
		t.Fatalf("executor row %+v (stats %+v): want %s, active, 3 slots, its Flight address and 2 tasks", ex, ex.Stats, e.Name())
	}
}

// fakeDriver is a driver whose answers a test sets.
type fakeDriver struct {
	active []cluster.Member
	stats  map[string]cluster.ExecutorStats
	err    error
}

func (f fakeDriver) Name() string                { return "driver-1" }
func (f fakeDriver) Executors() []cluster.Member { return f.active }
func (f fakeDriver) ExecutorStats(context.Context) (map[string]cluster.ExecutorStats, error) {
	return f.stats, f.err
}

// An executor the driver gives no work (quarantined, or of another build)
// still answers stats and is listed as excluded; one that does not answer
// is listed without counters, and the error says which.
func TestClusterExecutorsMarksExcludedAndSilentExecutors(t *testing.T) {
	f := fakeDriver{
		active: []cluster.Member{{Name: "exec-b", Meta: cluster.Meta{Flight: "127.0.0.1:2", Slots: 2}}, {Name: "exec-a", Meta: cluster.Meta{Flight: "127.0.0.1:1", Slots: 4}}},
		stats:  map[string]cluster.ExecutorStats{"exec-a": {Tasks: 5}, "exec-c": {Tasks: 7, TasksFailed: 1}},
		err:    errors.New("cluster: stats of executor exec-b (127.0.0.1:2): unavailable"),
	}
	list, err := clusterExecutors(f)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exec-b") {
		t.Fatalf("error %v: want the silent executor named", err)
	}
	var got []string
	for _, e := range list {
		s := e.ID + " " + e.Role + " " + e.State
		if e.Stats != nil {
			s += " tasks"
		}
		got = append(got, s)
	}
	want := []string{"driver-1 driver active", "exec-a executor active tasks", "exec-b executor active", "exec-c executor excluded tasks"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("listed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if list[1].Stats.Tasks != 5 || list[3].Stats.Tasks != 7 || list[1].Slots != 4 || list[1].Address != "127.0.0.1:1" {
		t.Fatalf("rows %+v: counters, slots or address lost", list)
	}
}
