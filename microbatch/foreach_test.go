package microbatch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/stage"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
)

func TestForeachBatchSeesEachBatchAsADataset(t *testing.T) {
	f := newFixture(t, 31, 12)
	var got []string
	var ids []int64
	fn := func(ctx context.Context, id int64, ds *dataset.Dataset) error {
		ids = append(ids, id)
		recs, err := ds.CollectRecords(ctx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			got = append(got, render(r)...)
			r.Release()
		}
		return nil
	}
	q, err := f.query(f.source(t, 30), microbatch.ForeachBatch(fn), vfs.NewMem()).Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, f.want) {
		t.Fatalf("foreachBatch saw %d rows, want %d", len(got), len(f.want))
	}
	for i, id := range ids {
		if id != int64(i) {
			t.Fatalf("batch ids %v, want 0, 1, 2, ...", ids)
		}
	}
}

// TestForeachBatchOfRemoteTasks plays a cluster: tasks write on an
// executor's ForeachBatch sink with a WithRemote ctx, and the driver's
// (another instance, same fn) commits their messages; fn must see the rows
// a local run shows it, in task order, and a corrupt message is a clear
// error that calls fn for nothing.
func TestForeachBatchOfRemoteTasks(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := input(mem, 5, 7)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	run := func(t *testing.T, remote bool) (seen []string) {
		fn := func(ctx context.Context, id int64, ds *dataset.Dataset) error {
			out, err := ds.CollectRecords(ctx)
			if err != nil {
				return err
			}
			for _, r := range out {
				seen = append(seen, render(r)...)
				r.Release()
			}
			return nil
		}
		driver, executor := microbatch.ForeachBatch(fn), microbatch.ForeachBatch(fn)
		ctx, writeOn := context.Background(), driver
		if remote {
			ctx, writeOn = sinks.WithRemote(ctx), executor
		}
		b := sinks.Batch{ID: 4, Mode: sinks.Append, Schema: schema}
		var msgs []sinks.CommitMessage
		for task := range 3 {
			w, err := writeOn.NewWriter(ctx, b, task)
			if err != nil {
				t.Fatal(err)
			}
			for i := task; i < len(recs); i += 3 {
				if err := w.Write(recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			msg, err := w.Prepare()
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, msg)
		}
		if remote {
			bad := append(slices.Clone(msgs), sinks.CommitMessage(`{"batch":4,"task":3,"inline":true,"written":1,"rows":"bm90IGFycm93"}`))
			err := driver.Commit(context.Background(), b, bad)
			if !errors.Is(err, stage.ErrCorruptMessage) || !strings.Contains(err.Error(), "foreachBatch: commit batch 4: task 3") || seen != nil {
				t.Fatalf("Commit with a corrupt message = %v (fn saw %d rows), want ErrCorruptMessage naming the sink, batch and task", err, len(seen))
			}
		}
		if err := driver.Commit(context.Background(), b, msgs); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	local, remote := run(t, false), run(t, true)
	if len(local) == 0 {
		t.Fatal("the local run showed fn no rows")
	}
	if !slices.Equal(remote, local) {
		t.Errorf("fn saw %d rows from remote tasks, %d from local ones; they differ", len(remote), len(local))
	}
}
