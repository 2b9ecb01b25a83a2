package sinks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

// A dead-letter writer copies the chosen rows of nested, dictionary and
// plain columns with their batch, sink, task, position and reason; a task
// that rejects nothing commits nothing.
func TestDeadLetterWriterCopiesTheRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32})},
		{Name: "d", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}},
	}, nil)
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[
		{"id": 0, "tags": ["a"], "s": {"a": 0}, "d": "x"},
		{"id": 1, "tags": null, "s": {"a": 1}, "d": "y"},
		{"id": 2, "tags": [], "s": {"a": 2}, "d": "x"},
		{"id": 3, "tags": ["b", "c"], "s": {"a": 3}, "d": "z"}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	dl, err := sinkmem.New(sinkmem.Config{Name: "dead", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	b := sinks.Batch{ID: 4, Mode: sinks.Append, Schema: schema}

	var msgs []sinks.CommitMessage
	for task := range 2 {
		w, err := sinks.NewDeadLetterWriter(t.Context(), dl, "out", b, task, mem)
		if err != nil {
			t.Fatal(err)
		}
		if task == 1 {
			if err := w.Write(rec, 10, []int{1, 3}, []string{"too big", "bad key"}); err != nil {
				t.Fatal(err)
			}
		}
		if n := w.DeadLettered(); n != int64(2*task) {
			t.Errorf("task %d: DeadLettered() = %d", task, n)
		}
		m, err := w.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		if task == 0 && m != nil {
			t.Errorf("task 0 rejected nothing and has message %s", m)
		}
		msgs = append(msgs, m)
	}
	if err := sinks.CommitDeadLetters(t.Context(), dl, b, msgs); err != nil {
		t.Fatal(err)
	}
	recs := dl.Rows()
	got := sinktest.Render(recs...)
	for _, r := range recs {
		r.Release()
	}
	want := [][]string{
		{"1", "(null)", `{"a":1}`, "y", "4", "out", "1", "11", "too big"},
		{"3", `["b","c"]`, `{"a":3}`, "z", "4", "out", "1", "13", "bad key"},
	}
	if len(got) != len(want) {
		t.Fatalf("dead letters %q, want %q", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("dead letter %d: %q, want %q", i, got[i], want[i])
		}
	}
}
