package sinktest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
)

// Harness is one fresh sink under test.
type Harness struct {
	Sink sinks.Sink
	// Rows returns every row committed so far, rendered with Render, in any
	// order. Records it reads are its own to release.
	Rows func(t *testing.T) [][]string
	// Unsupported are the modes Check must reject; the others must pass.
	Unsupported []sinks.Mode
}

// Factory makes a fresh Harness whose sink allocates from mem. Release
// whatever the sink holds with t.Cleanup: the suite checks mem is empty
// after the factory's cleanups have run.
type Factory func(t *testing.T, mem memory.Allocator) Harness

// Schema is the schema of every record the suite writes.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// Render renders the rows of recs, one string per column (Array.ValueStr;
// nulls as "(null)"), in record order.
func Render(recs ...arrow.Record) [][]string {
	var rows [][]string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			row := make([]string, r.NumCols())
			for j, c := range r.Columns() {
				row[j] = c.ValueStr(i)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// Run runs every case of the contract on fresh sinks from f.
func Run(t *testing.T, f Factory) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(newEnv(t, f))
		})
	}
}

type env struct {
	t      *testing.T
	h      Harness
	ctx    context.Context
	recMem *memory.CheckedAllocator // the suite's records
	mu     sync.Mutex               // guards recMem checks across concurrent tasks
}

func newEnv(t *testing.T, f Factory) *env {
	sinkMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	recMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	// Registered first, so it runs after the factory's cleanups.
	t.Cleanup(func() {
		sinkMem.AssertSize(t, 0)
		recMem.AssertSize(t, 0)
	})
	h := f(t, sinkMem)
	if h.Sink == nil || h.Rows == nil {
		t.Fatal("sinktest: Factory returned a Harness without Sink or Rows")
	}
	return &env{t: t, h: h, ctx: context.Background(), recMem: recMem}
}

// rows returns the rendered rows of ids, as the suite writes them: name is
// "n<id>", null for ids divisible by 5.
func rows(ids ...int64) [][]string {
	var out [][]string
	for _, id := range ids {
		name := fmt.Sprintf("n%d", id)
		if id%5 == 0 {
			name = array.NullValueStr
		}
		out = append(out, []string{fmt.Sprint(id), name})
	}
	return out
}

func span(lo, hi int64) []int64 {
	var ids []int64
	for i := lo; i < hi; i++ {
		ids = append(ids, i)
	}
	return ids
}

func (e *env) record(ids []int64) arrow.Record {
	b := array.NewRecordBuilder(e.recMem, Schema)
	defer b.Release()
	idb := b.Field(0).(*array.Int64Builder)
	nb := b.Field(1).(*array.StringBuilder)
	for _, id := range ids {
		idb.Append(id)
		if id%5 == 0 {
			nb.AppendNull()
		} else {
			nb.Append(fmt.Sprintf("n%d", id))
		}
	}
	return b.NewRecord()
}

func batch(id int64) sinks.Batch { return sinks.Batch{ID: id, Mode: sinks.Append, Schema: Schema} }

// task writes each slice of ids as one record (released right after Write)
// and prepares.
func (e *env) task(b sinks.Batch, task int, recs ...[]int64) sinks.CommitMessage {
	e.t.Helper()
	w, err := e.h.Sink.NewWriter(e.ctx, b, task)
	if err != nil {
		e.t.Fatalf("NewWriter(batch %d, task %d): %v", b.ID, task, err)
	}
	for _, ids := range recs {
		rec := e.record(ids)
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			e.t.Fatalf("Write(batch %d, task %d): %v", b.ID, task, err)
		}
	}
	msg, err := w.Prepare()
	if err != nil {
		e.t.Fatalf("Prepare(batch %d, task %d): %v", b.ID, task, err)
	}
	return msg
}

// tasks runs one task per slice of ids, in task order.
func (e *env) tasks(b sinks.Batch, perTask ...[]int64) []sinks.CommitMessage {
	e.t.Helper()
	var msgs []sinks.CommitMessage
	for i, ids := range perTask {
		msgs = append(msgs, e.task(b, i, ids))
	}
	return msgs
}

func (e *env) commit(b sinks.Batch, msgs []sinks.CommitMessage) {
	e.t.Helper()
	if err := e.h.Sink.Commit(e.ctx, b, msgs); err != nil {
		e.t.Fatalf("Commit(batch %d): %v", b.ID, err)
	}
}

func (e *env) abort(b sinks.Batch, msgs []sinks.CommitMessage) {
	e.t.Helper()
	if err := e.h.Sink.Abort(e.ctx, b, msgs); err != nil {
		e.t.Fatalf("Abort(batch %d): %v", b.ID, err)
	}
}

// expect checks the committed rows are exactly those of ids.
func (e *env) expect(what string, ids ...int64) {
	e.t.Helper()
	got := e.h.Rows(e.t)
	want := rows(ids...)
	key := func(r []string) string { return strings.Join(r, "\x00") }
	sort := func(rs [][]string) {
		slices.SortFunc(rs, func(a, b []string) int { return strings.Compare(key(a), key(b)) })
	}
	sort(got)
	sort(want)
	if !slices.EqualFunc(got, want, slices.Equal) {
		e.t.Errorf("%s: committed rows\n got %v\nwant %v", what, got, want)
	}
}

func (e *env) assertNoRecords(what string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.recMem.CurrentAlloc(); n != 0 {
		e.t.Errorf("%s: %d bytes of released records still allocated: the sink retained a record", what, n)
	}
}

var cases = []struct {
	name string
	run  func(e *env)
}{
	{"a batch written by several tasks is visible only after Commit", func(e *env) {
		b := batch(0)
		msgs := []sinks.CommitMessage{
			e.task(b, 0, span(0, 3)),
			e.task(b, 1, span(3, 6), span(6, 8)),
			e.task(b, 2, span(8, 10)),
		}
		e.expect("after Prepare, before Commit")
		e.commit(b, msgs)
		e.expect("after Commit", span(0, 10)...)
		e.commit(batch(1), e.tasks(batch(1), span(10, 12), span(12, 15)))
		e.expect("after a second batch", span(0, 15)...)
	}},

	{"tasks of one batch may write concurrently", func(e *env) {
		b := batch(0)
		const n = 8
		msgs := make([]sinks.CommitMessage, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for task := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, err := e.h.Sink.NewWriter(e.ctx, b, task)
				if err != nil {
					errs[task] = err
					return
				}
				for r := range 3 {
					lo := int64(task*100 + r*10)
					e.mu.Lock()
					rec := e.record(span(lo, lo+10))
					e.mu.Unlock()
					err := w.Write(rec)
					e.mu.Lock()
					rec.Release()
					e.mu.Unlock()
					if err != nil {
						errs[task] = err
						return
					}
				}
				msgs[task], errs[task] = w.Prepare()
			}()
		}
		wg.Wait()
		for task, err := range errs {
			if err != nil {
				e.t.Fatalf("task %d: %v", task, err)
			}
		}
		e.commit(b, msgs)
		var want []int64
		for task := range n {
			want = append(want, span(int64(task*100), int64(task*100+30))...)
		}
		e.expect("after Commit", want...)
	}},

	{"the same batch committed twice is written once", func(e *env) {
		b := batch(0)
		msgs := e.tasks(b, span(0, 4), span(4, 7))
		e.commit(b, msgs)
		e.commit(b, msgs)
		e.expect("after two Commits", span(0, 7)...)
		e.commit(batch(1), e.tasks(batch(1), span(7, 9)))
		e.commit(b, msgs)
		e.expect("after committing batch 0 again after batch 1", span(0, 9)...)
	}},

	{"a batch re-run after a crash is written once", func(e *env) {
		e.commit(batch(0), e.tasks(batch(0), span(0, 3)))
		b := batch(1)
		// Run 1 prepares with three tasks, then the driver dies before Commit.
		e.tasks(b, span(3, 5), span(5, 8), span(8, 10))
		// Run 2 (same batch id, recorded offsets) prepares again with two
		// tasks and commits; run 1's output must not show.
		msgs := e.tasks(b, span(3, 6), span(6, 10))
		e.commit(b, msgs)
		e.expect("after the re-run's Commit", span(0, 10)...)
		// Run 3: the driver died after the sink commit but before
		// commits/1; the batch runs and commits once more.
		msgs = e.tasks(b, span(3, 6), span(6, 10))
		e.commit(b, msgs)
		e.expect("after a re-run of a committed batch", span(0, 10)...)
		e.commit(batch(2), e.tasks(batch(2), span(10, 12)))
		e.expect("after the next batch", span(0, 12)...)
	}},

	{"Abort leaves nothing", func(e *env) {
		e.commit(batch(0), e.tasks(batch(0), span(0, 2)))
		b := batch(1)
		msgs := e.tasks(b, span(2, 5), span(5, 7))
		e.abort(b, msgs)
		e.abort(b, msgs)
		e.expect("after Abort (twice)", span(0, 2)...)

		// A task that fails before Prepare aborts its writer.
		w, err := e.h.Sink.NewWriter(e.ctx, b, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		rec := e.record(span(100, 110))
		if err := w.Write(rec); err != nil {
			e.t.Fatal(err)
		}
		rec.Release()
		if err := w.Abort(); err != nil {
			e.t.Fatalf("Writer.Abort: %v", err)
		}
		e.abort(b, nil)
		e.expect("after Writer.Abort", span(0, 2)...)

		// The batch runs again and commits.
		e.commit(b, e.tasks(b, span(2, 4)))
		e.expect("after the batch re-ran", span(0, 4)...)
		// Abort of a committed batch (messages from an earlier run) changes nothing.
		e.abort(b, msgs)
		e.abort(batch(0), nil)
		e.expect("after Abort of committed batches", span(0, 4)...)

		// Writer.Abort after Prepare is a no-op.
		w, err = e.h.Sink.NewWriter(e.ctx, batch(2), 0)
		if err != nil {
			e.t.Fatal(err)
		}
		rec = e.record(span(4, 6))
		if err := w.Write(rec); err != nil {
			e.t.Fatal(err)
		}
		rec.Release()
		msg, err := w.Prepare()
		if err != nil {
			e.t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			e.t.Fatalf("Writer.Abort after Prepare: %v", err)
		}
		e.commit(batch(2), []sinks.CommitMessage{msg})
		e.expect("after Writer.Abort following Prepare", span(0, 6)...)
	}},

	{"an empty batch commits", func(e *env) {
		e.commit(batch(0), nil)
		b := batch(1)
		msgs := []sinks.CommitMessage{e.task(b, 0), e.task(b, 1, nil)}
		e.commit(b, msgs)
		e.commit(b, msgs)
		e.expect("after empty batches")
		e.commit(batch(2), e.tasks(batch(2), span(0, 3)))
		e.commit(batch(0), nil)
		e.expect("after a batch with rows", span(0, 3)...)
	}},

	{"records are not retained", func(e *env) {
		b := batch(0)
		w, err := e.h.Sink.NewWriter(e.ctx, b, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		for i := range 4 {
			rec := e.record(span(int64(i*10), int64(i*10+10)))
			if err := w.Write(rec); err != nil {
				e.t.Fatal(err)
			}
			rec.Release()
			e.assertNoRecords(fmt.Sprintf("after Write %d", i))
		}
		msg, err := w.Prepare()
		if err != nil {
			e.t.Fatal(err)
		}
		e.assertNoRecords("after Prepare")
		e.commit(b, []sinks.CommitMessage{msg})
		e.assertNoRecords("after Commit")
		e.expect("after Commit", span(0, 40)...)
	}},

	{"Check rejects unsupported modes with a reason", func(e *env) {
		if e.h.Sink.Name() == "" {
			e.t.Error("Name() is empty")
		}
		for _, m := range []sinks.Mode{sinks.Append, sinks.Update, sinks.Complete, sinks.Mode("sideways")} {
			err := e.h.Sink.Check(m, Schema)
			unsupported := slices.Contains(e.h.Unsupported, m) || m == "sideways"
			switch {
			case unsupported && err == nil:
				e.t.Errorf("Check(%s) = nil, want an error", m)
			case unsupported && !strings.Contains(err.Error(), string(m)):
				e.t.Errorf("Check(%s) = %q: the reason does not name the mode", m, err)
			case !unsupported && err != nil:
				e.t.Errorf("Check(%s) = %v, want nil", m, err)
			}
		}
	}},
}

// WriteJSON writes each JSON array of rows as one record of schema through
// w (releasing it right after Write), prepares w and returns its commit
// message; any error fails t.
func WriteJSON(t testing.TB, w sinks.Writer, mem memory.Allocator, schema *arrow.Schema, records ...string) sinks.CommitMessage {
	t.Helper()
	for _, js := range records {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
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
	return msg
}
