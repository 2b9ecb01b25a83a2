package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/internal/stage"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64},
}, nil)

func retain(rec arrow.Record, _ int64) (arrow.Record, error) {
	rec.Retain()
	return rec, nil
}

// prepare writes each JSON array as one record through a writer of st made
// with ctx and returns its commit message.
func prepare(t *testing.T, ctx context.Context, st *stage.Stage, mem memory.Allocator, b sinks.Batch, task int, keep stage.Keep, rows ...string) sinks.CommitMessage {
	t.Helper()
	w, err := st.NewWriter(ctx, b, task, keep)
	if err != nil {
		t.Fatal(err)
	}
	return sinktest.WriteJSON(t, w, mem, schema, rows...)
}

func render(recs []arrow.Record) string {
	var b strings.Builder
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			b.WriteString(r.Column(0).ValueStr(i) + "=" + r.Column(1).ValueStr(i) + " ")
		}
	}
	return b.String()
}

func TestARemoteWritersMessageIsTakenByAnotherStage(t *testing.T) {
	execMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	driverMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer execMem.AssertSize(t, 0)
	defer driverMem.AssertSize(t, 0)
	executor, driver := stage.New("test sink", execMem), stage.New("test sink", driverMem)
	defer executor.Close()
	defer driver.Close()

	b := sinks.Batch{ID: 3, Mode: sinks.Append, Schema: schema}
	remote := sinks.WithRemote(context.Background())
	// Keep the first two rows of each record: rows written and kept differ.
	firstTwo := func(rec arrow.Record, _ int64) (arrow.Record, error) {
		return rec.NewSlice(0, min(2, rec.NumRows())), nil
	}
	msgs := []sinks.CommitMessage{
		prepare(t, remote, executor, execMem, b, 0, firstTwo, `[{"k":"a","v":1},{"k":null,"v":2},{"k":"c","v":3}]`, `[{"k":"d","v":4}]`),
		prepare(t, context.Background(), driver, driverMem, b, 1, retain, `[{"k":"local","v":5}]`),
		prepare(t, remote, executor, execMem, b, 2, firstTwo), // no rows: still a message
	}
	if !strings.Contains(string(msgs[0]), `"rows":`) || strings.Contains(string(msgs[1]), `"rows":`) {
		t.Fatalf("remote message %s should carry rows, local %s a token", msgs[0], msgs[1])
	}
	recs, written, err := driver.Take(b, msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if got, want := render(recs), "a=1 (null)=2 d=4 local=5 "; got != want || written != 5 {
		t.Errorf("took %q (%d written), want %q (5 written)", got, written, want)
	}
	if _, _, err := executor.Take(b, msgs[1:2]); !errors.Is(err, stage.ErrUnknownMessage) {
		t.Errorf("another stage took a local token: %v, want ErrUnknownMessage", err)
	}
}

func TestTakeRefusesMessagesOfAnotherBatchOrCorrupt(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	st := stage.New("test sink", mem)
	defer st.Close()
	remote := sinks.WithRemote(context.Background())
	b := sinks.Batch{ID: 7, Mode: sinks.Append, Schema: schema}
	good := prepare(t, remote, st, mem, b, 0, retain, `[{"k":"a","v":1}]`)
	edit := func(f func(m map[string]any)) sinks.CommitMessage {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rows := func() []byte {
		var m struct{ Rows []byte }
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		return m.Rows
	}
	other := sinks.Batch{ID: 8, Mode: sinks.Append, Schema: arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}}, nil)}
	otherRows := prepare2(t, remote, st, mem, other)
	for _, c := range []struct {
		name string
		msg  sinks.CommitMessage
		want error
		text string
	}{
		{"a message of another batch is unknown and named", edit(func(m map[string]any) { m["batch"] = 6 }), stage.ErrUnknownMessage, "a message of batch 6"},
		{"truncated rows are corrupt", edit(func(m map[string]any) { m["rows"] = rows()[:len(rows())-20] }), stage.ErrCorruptMessage, "task 0"},
		{"rows that are not Arrow IPC are corrupt", edit(func(m map[string]any) { m["rows"] = []byte("not arrow at all") }), stage.ErrCorruptMessage, "test sink: commit batch 7"},
		{"rows of another schema are corrupt", edit(func(m map[string]any) { m["rows"] = otherRows }), stage.ErrCorruptMessage, "schema mismatch"},
		{"more rows than written are corrupt", edit(func(m map[string]any) { m["written"] = 0 }), stage.ErrCorruptMessage, "1 rows kept of 0 written"},
		{"a message that is not JSON is unknown", sinks.CommitMessage(`{"batch":`), stage.ErrUnknownMessage, "test sink"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The good message first: a bad one anywhere takes nothing.
			recs, _, err := st.Take(b, []sinks.CommitMessage{good, c.msg})
			for _, r := range recs {
				r.Release()
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Take = %v, want %v naming %q", err, c.want, c.text)
			}
		})
	}
	recs, _, err := st.Take(b, []sinks.CommitMessage{good})
	if err != nil || render(recs) != "a=1 " {
		t.Fatalf("the good message after refusals: %q, %v", render(recs), err)
	}
	for _, r := range recs {
		r.Release()
	}
}

// prepare2 returns the inline rows of one record [{"x":1}] of batch b.
func prepare2(t *testing.T, ctx context.Context, st *stage.Stage, mem memory.Allocator, b sinks.Batch) []byte {
	t.Helper()
	w, err := st.NewWriter(ctx, b, 0, retain)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := array.RecordFromJSON(mem, b.Schema, strings.NewReader(`[{"x":1}]`))
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
	var m struct{ Rows []byte }
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	return m.Rows
}

func TestAnAbortedRemoteWriterHoldsNothing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	st := stage.New("test sink", mem)
	defer st.Close()
	b := sinks.Batch{ID: 1, Mode: sinks.Append, Schema: schema}
	w, err := st.NewWriter(sinks.WithRemote(context.Background()), b, 0, retain)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[{"k":"a","v":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	err = w.Write(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
}
