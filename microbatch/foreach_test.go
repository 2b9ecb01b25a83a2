package microbatch_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
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
