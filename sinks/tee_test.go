package sinks_test

import (
	"context"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

// A tee of two memory sinks passes the sink contract, and both receive the
// same committed rows.
func TestTeePassesTheSinkContract(t *testing.T) {
	sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
		a, err := sinkmem.New(sinkmem.Config{Name: "a", Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		b, err := sinkmem.New(sinkmem.Config{Name: "b", Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		rows := func(t *testing.T) [][]string {
			ra, rb := a.Rows(), b.Rows()
			defer func() {
				for _, r := range append(ra, rb...) {
					r.Release()
				}
			}()
			ga, gb := sinktest.Render(ra...), sinktest.Render(rb...)
			if len(ga) != len(gb) {
				t.Fatalf("tee: sink a has %d rows, b %d", len(ga), len(gb))
			}
			return ga
		}
		return sinktest.Harness{Sink: sinks.Tee(a, b), Rows: rows}
	})
}

// counting is a writer that dead-lettered n rows.
type counting struct {
	sinks.Writer
	n int64
}

func (c counting) DeadLettered() int64 { return c.n }

// A tee's writer counts the rows its sinks' writers dead-lettered, so a
// sink under a bad-record policy is counted inside a tee too.
func TestTeeWriterSumsDeadLetters(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a, err := sinkmem.New(sinkmem.Config{Name: "a", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w, err := sinks.Tee(deadCounting{a, 2}, a, deadCounting{a, 3}).NewWriter(t.Context(), sinks.Batch{ID: 0, Mode: sinks.Append, Schema: sinktest.Schema}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	bc, ok := w.(sinks.BadRecordCounter)
	if !ok {
		t.Fatal("a tee's writer does not count dead letters (sinks.BadRecordCounter)")
	}
	if n := bc.DeadLettered(); n != 5 {
		t.Errorf("DeadLettered() = %d, want 2 + 3", n)
	}
}

// deadCounting is a sink whose writers say they dead-lettered n rows.
type deadCounting struct {
	sinks.Sink
	n int64
}

func (d deadCounting) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	w, err := d.Sink.NewWriter(ctx, b, task)
	return counting{w, d.n}, err
}
