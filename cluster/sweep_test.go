package cluster

import (
	"context"
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
