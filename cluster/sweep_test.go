package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/shuffle"
)

// putOne is a job whose every task keeps one block.
type putOne struct{}

func (putOne) RunTask(ctx context.Context, _ []byte, env shuffle.Env) ([]byte, error) {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.Append(1)
	col := b.NewArray()
	rec := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 1)
	col.Release()
	if _, err := env.Blocks.Put(0, 0, 0, []arrow.Record{rec}); err != nil {
		return nil, err
	}
	return []byte(`{}`), nil
}

func TestTheBlocksOfADriverThatLeftAreDropped(t *testing.T) {
	id, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewGossipKey()
	ctx := context.Background()
	d, err := StartDriver(ctx, Config{GossipKey: key, TLS: id})
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartExecutor(ctx, Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id, orphanAfter: 300 * time.Millisecond}, putOne{})
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer e.Close()
	for len(d.Executors()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := d.RunTask(ctx, e.Name(), "run-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if e.BlockMemory() == 0 {
		t.Fatal("the task kept no block")
	}
	d.Close() // without releasing run-1
	deadline := time.Now().Add(10 * time.Second)
	for e.BlockMemory() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the executor still holds %d bytes of a departed driver's run", e.BlockMemory())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTheClientOfAnExecutorThatLeftIsClosed(t *testing.T) {
	id, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewGossipKey()
	ctx := context.Background()
	d, err := StartDriver(ctx, Config{GossipKey: key, TLS: id})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e, err := StartExecutor(ctx, Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id}, putOne{})
	if err != nil {
		t.Fatal(err)
	}
	for len(d.Executors()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := d.RunTask(ctx, e.Name(), "run-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	addr := e.Flight()
	has := func() bool {
		d.node.mu.Lock()
		defer d.node.mu.Unlock()
		_, ok := d.node.clients[addr]
		return ok
	}
	if !has() {
		t.Fatal("the driver kept no client of the executor it sent a task")
	}
	e.Close()
	deadline := time.Now().Add(5 * time.Second)
	for has() {
		if time.Now().After(deadline) {
			t.Fatalf("the driver still holds a client of %s, which left", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A task attempt of a run that reaches its executor after the driver
// released the run (it was held up in transit, as when the executor hung
// and came back) is refused, and the run is not made anew: nothing would
// release it again while the driver lives.
func TestALateAttemptOfAReleasedRunIsRefusedAndKeepsNoBlocks(t *testing.T) {
	id, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewGossipKey()
	ctx := context.Background()
	d, err := StartDriver(ctx, Config{GossipKey: key, TLS: id})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e, err := StartExecutor(ctx, Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id}, putOne{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for len(d.Executors()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := d.RunTask(ctx, e.Name(), "run-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	d.Release("run-1", -1<<30)
	deadline := time.Now().Add(10 * time.Second)
	for e.BlockMemory() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the release did not arrive: %d bytes held", e.BlockMemory())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = d.RunTask(ctx, e.Name(), "run-1", []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "was released") {
		t.Fatalf("a late attempt of a released run: err = %v, want it refused", err)
	}
	e.mu.Lock()
	runs := len(e.runs)
	e.mu.Unlock()
	if runs != 0 || e.BlockMemory() != 0 {
		t.Fatalf("after a late attempt the executor holds %d runs, %d bytes", runs, e.BlockMemory())
	}
}

// failWith is a job whose every task fails with err.
type failWith struct{ err error }

func (f failWith) RunTask(context.Context, []byte, shuffle.Env) ([]byte, error) { return nil, f.err }

type brokerDown struct{}

func (brokerDown) Error() string   { return "broker unreachable" }
func (brokerDown) Transient() bool { return true }

// A task's error crosses from the executor as text, and keeps whether it
// was transient (a broker the task could not reach), so a restart strategy
// treats a task that failed on an executor as it would in the driver.
func TestATaskErrorKeepsWhetherItIsTransient(t *testing.T) {
	id, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewGossipKey()
	ctx := context.Background()
	d, err := StartDriver(ctx, Config{GossipKey: key, TLS: id})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, c := range []struct {
		err       error
		transient bool
	}{
		{fmt.Errorf("read split orders/1: %w", brokerDown{}), true},
		{errors.New("cast 'x' to int64"), false},
	} {
		e, err := StartExecutor(ctx, Config{Seeds: []string{d.Gossip()}, GossipKey: key, TLS: id}, failWith{c.err})
		if err != nil {
			t.Fatal(err)
		}
		for len(d.Executors()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		_, err = d.RunTask(ctx, e.Name(), "run-1", []byte(`{}`))
		var tr interface{ Transient() bool }
		got := errors.As(err, &tr) && tr.Transient()
		if err == nil || got != c.transient || !strings.Contains(err.Error(), c.err.Error()) || !strings.Contains(err.Error(), e.Name()) {
			t.Errorf("task error %q: RunTask = %v, transient %v; want the text, the node and transient %v", c.err, err, got, c.transient)
		}
		if d.LostAttempts() != 0 {
			t.Errorf("a task's own error counted as a lost executor")
		}
		e.Close()
		for len(d.Executors()) != 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
