package parquet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

func TestStreamReadBatchReadsBackEachCommittedBatch(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	// A log checkpoint every 3 entries: early batches are read through a
	// checkpoint that lists files, not batches.
	s, err := pqsink.NewStream(pqsink.StreamConfig{Dir: dir, Mem: mem, CheckpointEvery: 3, Options: pqsink.Options{PartitionBy: []string{"p"}}})
	if err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "p", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := func(id int64) sinks.Batch { return sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema} }
	write := func(id int64, task int, js string) sinks.CommitMessage {
		w, err := s.NewWriter(ctx, b(id), task)
		if err != nil {
			t.Fatal(err)
		}
		if js != "" {
			rec := recordJSON(t, mem, schema, js)
			defer rec.Release()
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		msg, err := w.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	for id := int64(0); id < 8; id++ {
		msgs := []sinks.CommitMessage{
			write(id, 0, fmt.Sprintf(`[{"id":%d,"p":"a"},{"id":%d,"p":"b"}]`, id*10, id*10+1)),
			write(id, 1, fmt.Sprintf(`[{"id":%d,"p":"a"},{"id":null,"p":null}]`, id*10+2)),
		}
		if id == 5 { // a batch that wrote nothing
			msgs = []sinks.CommitMessage{write(id, 0, "")}
		}
		if err := s.Commit(ctx, b(id), msgs); err != nil {
			t.Fatal(err)
		}
	}
	write(8, 0, `[{"id":80,"p":"a"}]`) // prepared, never committed
	for id := int64(0); id < 8; id++ {
		recs, err := s.ReadBatch(ctx, sinks.Batch{ID: id}, mem)
		if err != nil {
			t.Fatalf("batch %d: %v", id, err)
		}
		var got []string
		for _, r := range recs {
			for _, row := range sinktest.Render(r) {
				id, p := row[r.Schema().FieldIndices("id")[0]], row[r.Schema().FieldIndices("p")[0]]
				got = append(got, id+"/"+p)
			}
			r.Release()
		}
		slices.Sort(got)
		want := fmt.Sprintf("%d/a %d/b %d/a (null)/(null)", id*10, id*10+1, id*10+2)
		if id == 5 {
			want = ""
		}
		wantRows := strings.Fields(want)
		slices.Sort(wantRows)
		if !slices.Equal(got, wantRows) {
			t.Errorf("batch %d: rows %v, want %v", id, got, wantRows)
		}
	}
	for _, id := range []int64{8, 9} {
		if _, err := s.ReadBatch(ctx, sinks.Batch{ID: id}, mem); !errors.Is(err, sinks.ErrBatchNotCommitted) || !strings.Contains(err.Error(), dir) {
			t.Errorf("batch %d: %v, want ErrBatchNotCommitted naming %s", id, err, dir)
		}
	}
}
