package console_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/console"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

func TestContract(t *testing.T) {
	sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
		// The injected formatter records what each committed batch shows.
		var mu sync.Mutex
		var shown [][]string
		s, err := console.New(console.Config{
			Mem: mem, Out: io.Discard, MaxRows: 1 << 20,
			Format: func(w io.Writer, schema *arrow.Schema, recs []arrow.Record, maxRows int) error {
				mu.Lock()
				defer mu.Unlock()
				shown = append(shown, sinktest.Render(recs...)...)
				return console.FormatTable(w, schema, recs, maxRows)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return sinktest.Harness{Sink: s, Rows: func(t *testing.T) [][]string {
			mu.Lock()
			defer mu.Unlock()
			return append([][]string(nil), shown...)
		}}
	})
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "word", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func TestPrintsEachCommittedBatchOnce(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var out bytes.Buffer
	s, err := console.New(console.Config{Out: &out, MaxRows: 3, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := func(id int64, tasks ...string) {
		b := sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema}
		var msgs []sinks.CommitMessage
		for task, js := range tasks {
			w, err := s.NewWriter(ctx, b, task)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, sinktest.WriteJSON(t, w, mem, schema, js))
		}
		if err := s.Commit(ctx, b, msgs); err != nil {
			t.Fatal(err)
		}
	}
	run(0, `[{"id":1,"word":"a"},{"id":22,"word":null}]`, `[{"id":333,"word":"a very long word indeed, longer than twenty"},{"id":4,"word":"d"}]`)
	run(0, `[{"id":9,"word":"again"}]`)
	run(1)
	want := `-------------------------------------------
Batch: 0
-------------------------------------------
+---+--------------------+
| id|                word|
+---+--------------------+
|  1|                   a|
| 22|                null|
|333|a very long word ...|
+---+--------------------+
only showing top 3 of 4 rows

-------------------------------------------
Batch: 1
-------------------------------------------
+--+----+
|id|word|
+--+----+
+--+----+

`
	if got := out.String(); got != want {
		t.Errorf("printed:\n%s\nwant:\n%s", got, want)
	}
}

// TestRemoteTasksPrintTheSameOnTheDriversInstance plays a cluster: tasks
// write on an executor's Sink with a WithRemote ctx and the driver's Sink
// (another instance) commits; it must print what a local run prints, cut
// rows and their count included.
func TestRemoteTasksPrintTheSameOnTheDriversInstance(t *testing.T) {
	tasks := []string{
		`[{"id":1,"word":"a"},{"id":22,"word":null},{"id":5,"word":"e"}]`,
		`[{"id":333,"word":"a very long word indeed, longer than twenty"},{"id":4,"word":"d"}]`,
	}
	run := func(t *testing.T, remote bool) string {
		execMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		driverMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer execMem.AssertSize(t, 0)
		defer driverMem.AssertSize(t, 0)
		var out bytes.Buffer
		driver, err := console.New(console.Config{Name: "c", Out: &out, MaxRows: 4, Mem: driverMem})
		if err != nil {
			t.Fatal(err)
		}
		defer driver.Close()
		executor, err := console.New(console.Config{Name: "c", Out: io.Discard, MaxRows: 4, Mem: execMem})
		if err != nil {
			t.Fatal(err)
		}
		defer executor.Close()
		ctx, writeOn := context.Background(), driver
		if remote {
			ctx, writeOn = sinks.WithRemote(ctx), executor
		}
		for id := range int64(2) {
			b := sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema}
			var msgs []sinks.CommitMessage
			for task, js := range tasks[:2-id] {
				w, err := writeOn.NewWriter(ctx, b, task)
				if err != nil {
					t.Fatal(err)
				}
				rec, _, err := array.RecordFromJSON(execMem, schema, strings.NewReader(js))
				if err != nil {
					t.Fatal(err)
				}
				err = w.Write(rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				msg, err := w.Prepare()
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, msg)
			}
			for range 2 { // a second Commit of the batch prints nothing
				if err := driver.Commit(context.Background(), b, msgs); err != nil {
					t.Fatal(err)
				}
			}
		}
		return out.String()
	}
	local, remote := run(t, false), run(t, true)
	if !strings.Contains(local, "only showing top 4 of 5 rows") || !strings.Contains(local, "Batch: 1") {
		t.Fatalf("local run printed:\n%s", local)
	}
	if remote != local {
		t.Errorf("remote run printed:\n%s\nlocal run printed:\n%s", remote, local)
	}
}

func TestACorruptRemoteMessageIsAClearError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var out bytes.Buffer
	s, err := console.New(console.Config{Out: &out, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := sinks.Batch{ID: 2, Mode: sinks.Append, Schema: schema}
	bad := sinks.CommitMessage(`{"batch":2,"task":1,"inline":true,"written":1,"rows":"QVJST1cx"}`)
	err = s.Commit(context.Background(), b, []sinks.CommitMessage{bad})
	if !errors.Is(err, console.ErrCorruptMessage) || !strings.Contains(err.Error(), "console sink: commit batch 2: task 1") {
		t.Fatalf("Commit of a corrupt message = %v, want ErrCorruptMessage naming the sink, batch and task", err)
	}
	if out.Len() != 0 {
		t.Errorf("a refused batch printed %q", out.String())
	}
}
