package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
	memsink "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

func TestContract(t *testing.T) {
	sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
		s, err := memsink.New(memsink.Config{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return sinktest.Harness{Sink: s, Rows: func(t *testing.T) [][]string {
			recs := s.Rows()
			defer func() {
				for _, r := range recs {
					r.Release()
				}
			}()
			return sinktest.Render(recs...)
		}}
	})
}

var kv = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// commit runs one task writing rows (a JSON array) as batch id in mode.
func commit(t *testing.T, s *memsink.Sink, mem memory.Allocator, id int64, mode sinks.Mode, rows ...string) {
	t.Helper()
	ctx := context.Background()
	b := sinks.Batch{ID: id, Mode: mode, Schema: kv}
	w, err := s.NewWriter(ctx, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range rows {
		rec, _, err := array.RecordFromJSON(mem, kv, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	msg, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, b, []sinks.CommitMessage{msg}); err != nil {
		t.Fatal(err)
	}
}

func table(s *memsink.Sink) string {
	return s.String()
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
		run  func(t *testing.T, s *memsink.Sink, mem memory.Allocator)
		want string
	}{
		{"append adds every batch's rows", nil, func(t *testing.T, s *memsink.Sink, mem memory.Allocator) {
			commit(t, s, mem, 0, sinks.Append, `[{"k":"a","v":1}]`)
			commit(t, s, mem, 1, sinks.Append, `[{"k":"a","v":2}]`)
		}, "a\t1\na\t2\n"},
		{"complete replaces the table", nil, func(t *testing.T, s *memsink.Sink, mem memory.Allocator) {
			commit(t, s, mem, 0, sinks.Complete, `[{"k":"a","v":1},{"k":"b","v":1}]`)
			commit(t, s, mem, 1, sinks.Complete, `[{"k":"a","v":2}]`, `[{"k":"c","v":3}]`)
		}, "a\t2\nc\t3\n"},
		{"update upserts by key, the last row of a key winning", []string{"k"}, func(t *testing.T, s *memsink.Sink, mem memory.Allocator) {
			commit(t, s, mem, 0, sinks.Update, `[{"k":"a","v":1},{"k":"b","v":1},{"k":null,"v":1}]`)
			commit(t, s, mem, 1, sinks.Update, `[{"k":"b","v":2},{"k":"c","v":2}]`, `[{"k":"b","v":3},{"k":null,"v":4}]`)
			commit(t, s, mem, 1, sinks.Update, `[{"k":"a","v":9}]`) // re-commit: no-op
		}, "a\t1\nc\t2\nb\t3\n(null)\t4\n"},
		{"update without keys appends", nil, func(t *testing.T, s *memsink.Sink, mem memory.Allocator) {
			commit(t, s, mem, 0, sinks.Update, `[{"k":"a","v":1}]`)
			commit(t, s, mem, 1, sinks.Update, `[{"k":"a","v":2}]`)
		}, "a\t1\na\t2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			s, err := memsink.New(memsink.Config{Mem: mem, Keys: tc.keys})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tc.run(t, s, mem)
			if got := table(s); got != tc.want {
				t.Errorf("table:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestCheckUpdateNeedsKeyColumns(t *testing.T) {
	s, _ := memsink.New(memsink.Config{Keys: []string{"missing"}})
	if err := s.Check(sinks.Update, kv); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Check = %v, want an error naming the key", err)
	}
}
