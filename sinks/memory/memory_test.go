package memory_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
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

// TestRemoteTasksCommitOnTheDriversInstance plays a cluster: tasks write
// on an executor's Sink with a WithRemote ctx, and the driver's Sink (another
// instance of the same name) commits their messages. The table must equal
// the one of tasks run beside the driver.
func TestRemoteTasksCommitOnTheDriversInstance(t *testing.T) {
	batches := []struct {
		mode  sinks.Mode
		tasks [][]string // per task, records as JSON arrays
	}{
		{sinks.Update, [][]string{{`[{"k":"a","v":1},{"k":"b","v":1}]`, `[{"k":null,"v":1}]`}, {`[{"k":"c","v":1}]`}}},
		{sinks.Update, [][]string{{`[{"k":"b","v":2}]`}, {}, {`[{"k":"a","v":3},{"k":"b","v":3}]`}}},
		{sinks.Update, [][]string{{`[]`}}},
	}
	run := func(t *testing.T, remote bool) string {
		execMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		driverMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer execMem.AssertSize(t, 0)
		defer driverMem.AssertSize(t, 0)
		driver, err := memsink.New(memsink.Config{Name: "out", Mem: driverMem, Keys: []string{"k"}})
		if err != nil {
			t.Fatal(err)
		}
		defer driver.Close()
		executor, err := memsink.New(memsink.Config{Name: "out", Mem: execMem, Keys: []string{"k"}})
		if err != nil {
			t.Fatal(err)
		}
		defer executor.Close()
		ctx, writeOn := context.Background(), driver
		if remote {
			ctx, writeOn = sinks.WithRemote(ctx), executor
		}
		for id, batch := range batches {
			b := sinks.Batch{ID: int64(id), Mode: batch.mode, Schema: kv}
			var msgs []sinks.CommitMessage
			for task, recs := range batch.tasks {
				msgs = append(msgs, writeTask(t, ctx, writeOn, execMem, b, task, recs...))
			}
			if err := driver.Commit(context.Background(), b, msgs); err != nil {
				t.Fatal(err)
			}
			// A second Commit of the batch (a re-run) changes nothing.
			if err := driver.Commit(context.Background(), b, msgs); err != nil {
				t.Fatal(err)
			}
		}
		return table(driver)
	}
	local, remote := run(t, false), run(t, true)
	if want := "(null)\t1\nc\t1\na\t3\nb\t3\n"; local != want {
		t.Fatalf("local table:\n%s\nwant:\n%s", local, want)
	}
	if remote != local {
		t.Errorf("remote table:\n%s\nlocal table:\n%s", remote, local)
	}
}

func writeTask(t *testing.T, ctx context.Context, s *memsink.Sink, mem memory.Allocator, b sinks.Batch, task int, rows ...string) sinks.CommitMessage {
	t.Helper()
	w, err := s.NewWriter(ctx, b, task)
	if err != nil {
		t.Fatal(err)
	}
	return sinktest.WriteJSON(t, w, mem, kv, rows...)
}

func TestACorruptRemoteMessageIsAClearError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s, err := memsink.New(memsink.Config{Name: "out", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := sinks.Batch{ID: 0, Mode: sinks.Append, Schema: kv}
	msg := writeTask(t, sinks.WithRemote(context.Background()), s, mem, b, 4, `[{"k":"a","v":1}]`)
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	m["rows"] = base64.StdEncoding.EncodeToString([]byte("ARROW1 but not really"))
	bad, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Commit(context.Background(), b, []sinks.CommitMessage{bad})
	if !errors.Is(err, memsink.ErrCorruptMessage) || !strings.Contains(err.Error(), "memory sink: commit batch 0: task 4") {
		t.Fatalf("Commit of a corrupt message = %v, want ErrCorruptMessage naming the sink, batch and task", err)
	}
	if err := s.Commit(context.Background(), b, []sinks.CommitMessage{msg}); err != nil {
		t.Fatal(err)
	}
	if got := table(s); got != "a\t1\n" {
		t.Errorf("table after the good message: %q", got)
	}
	// A message of another batch is refused by name.
	err = s.Commit(context.Background(), sinks.Batch{ID: 1, Mode: sinks.Append, Schema: kv}, []sinks.CommitMessage{msg})
	if !errors.Is(err, memsink.ErrUnknownMessage) || !strings.Contains(err.Error(), "a message of batch 0") {
		t.Fatalf("Commit of another batch's message = %v, want ErrUnknownMessage naming it", err)
	}
}
