package sinks_test

import (
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
