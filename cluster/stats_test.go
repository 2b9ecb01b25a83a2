package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/scheduler"
)

// echoRunner answers a task with its body, or fails a task "fail".
type echoRunner struct{}

func (echoRunner) RunTask(_ context.Context, task []byte, _ shuffle.Env) ([]byte, error) {
	if string(task) == "fail" {
		return nil, errors.New("asked to fail")
	}
	return task, nil
}

// The driver reads each executor's counters over Flight: the task attempts
// it was sent and those that failed, and for the blocks a DoGet served,
// the calls, the blocks and the bytes of the Arrow IPC messages (at least
// the records' buffers, at most those plus a few KiB of headers).
func TestExecutorStatsCountTasksAndTheBytesOfTheBlocksServed(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	id, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := StartDriver(ctx, Config{GossipKey: key, TLS: id, JoinTimeout: 5 * time.Second, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e, err := StartExecutor(ctx, Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id, Slots: 1, JoinTimeout: 5 * time.Second, Mem: mem}, echoRunner{})
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

	got, err := d.ExecutorStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := got[e.Name()]
	if !ok || s.Runtime == nil || s.Runtime.PID != os.Getpid() || s.Runtime.Goroutines <= 0 {
		t.Fatalf("stats before any work = %+v (present %v), want this process's runtime for %s", got, ok, e.Name())
	}
	if s.Runtime = nil; s != (ExecutorStats{}) {
		t.Fatalf("stats before any work = %+v, want zero counters for %s", s, e.Name())
	}

	for _, body := range []string{"a", "b", "fail"} {
		res, err := d.RunTask(ctx, e.Name(), "run-1", []byte(body))
		if body == "fail" {
			if err == nil || !strings.Contains(err.Error(), "asked to fail") {
				t.Fatalf("task %q: err %v, want the task's own error", body, err)
			}
			continue
		}
		if err != nil || string(res) != body {
			t.Fatalf("task %q: %q, %v", body, res, err)
		}
	}

	// Two blocks of one stage on the executor, fetched by the driver in
	// one DoGet.
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var locs []scheduler.Location
	var bufBytes int64
	run := e.run("run-1", d.Name(), nil)
	for part := 0; part < 2; part++ {
		b := array.NewInt64Builder(mem)
		for i := 0; i < 10_000; i++ {
			b.Append(int64(part*10_000 + i))
		}
		arr := b.NewArray()
		b.Release()
		rec := array.NewRecord(schema, []arrow.Array{arr}, int64(arr.Len()))
		arr.Release()
		bufBytes += 10_000 * 8
		loc, err := run.Put(0, 0, part, []arrow.Record{rec}) // the store owns rec now
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, loc)
	}
	recs, err := d.Fetch(ctx, "run-1", locs)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, r := range recs {
		rows += int(r.NumRows())
		r.Release()
	}
	if rows != 20_000 {
		t.Fatalf("fetched %d rows, want 20000", rows)
	}

	got, err = d.ExecutorStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s = got[e.Name()]
	if s.Tasks != 3 || s.TasksFailed != 1 || s.Gets != 1 || s.BlocksServed != 2 {
		t.Fatalf("stats %+v: want 3 tasks, 1 failed, 1 get of 2 blocks", s)
	}
	if s.BytesServed < bufBytes || s.BytesServed > bufBytes+4096 {
		t.Fatalf("bytes served %d, want the %d bytes of the blocks' buffers plus at most 4 KiB of IPC headers", s.BytesServed, bufBytes)
	}
	// The counters as the executor holds them (the runtime's figures move).
	held := e.Stats()
	if s.Runtime == nil {
		t.Fatalf("the driver read no runtime of the executor: %+v", s)
	}
	if s.Runtime, held.Runtime = nil, nil; s != held {
		t.Fatalf("the driver read %+v, the executor holds %+v", s, held)
	}
	d.Release("run-1", -1<<30)
	deadline = time.Now().Add(5 * time.Second)
	for e.BlockMemory() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
