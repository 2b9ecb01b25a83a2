package console_test

import (
	"bytes"
	"context"
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
			rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
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
