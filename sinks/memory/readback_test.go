package memory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
	memsink "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

func TestReadBatch(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s, err := memsink.New(memsink.Config{Name: "out", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := func(id int64) (string, error) {
		recs, err := s.ReadBatch(ctx, sinks.Batch{ID: id}, mem)
		var rows []string
		for _, r := range recs {
			for _, row := range sinktest.Render(r) {
				rows = append(rows, strings.Join(row, "="))
			}
			r.Release()
		}
		return strings.Join(rows, " "), err
	}
	commit(t, s, mem, 0, sinks.Append, `[{"k":"a","v":1}]`, `[{"k":"b","v":2}]`)
	commit(t, s, mem, 1, sinks.Append, `[{"k":"c","v":3}]`)
	commit(t, s, mem, 2, sinks.Append)
	for id, want := range []string{"a=1 b=2", "c=3", ""} {
		if got, err := read(int64(id)); err != nil || got != want {
			t.Fatalf("batch %d: %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := read(3); !errors.Is(err, sinks.ErrBatchNotCommitted) || !strings.Contains(err.Error(), `memory sink "out": read batch 3: not committed`) {
		t.Fatalf("batch 3: %v", err)
	}
	commit(t, s, mem, 3, sinks.Complete, `[{"k":"z","v":9}]`)
	if got, err := read(3); err != nil || got != "z=9" {
		t.Fatalf("complete batch 3: %q, %v", got, err)
	}
	if _, err := read(1); !errors.Is(err, sinks.ErrBatchNotCommitted) || !strings.Contains(err.Error(), "rewrote the table") {
		t.Fatalf("batch 1 after a complete batch: %v", err)
	}
}
