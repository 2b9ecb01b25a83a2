package microbatch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	idelta "github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sdelta "github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sinks/sinktest"
	srcdelta "github.com/sluicedata/sluice/sources/delta"
)

var deltaIn = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "region", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// appendDelta commits batches [from, to) of 50 rows each to the Delta table
// at dir (as query "writer"), then leaves a crashed batch's files behind.
func appendDelta(t *testing.T, dir string, from, to int) {
	t.Helper()
	s, err := sdelta.New(sdelta.Config{Dir: dir, AppID: "writer", Options: parquet.Options{PartitionBy: []string{"region"}}, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for b := from; b <= to; b++ {
		batch := sinks.Batch{ID: int64(b), Mode: sinks.Append, Schema: deltaIn}
		w, err := s.NewWriter(ctx, batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for i := b * 50; i < b*50+50; i++ {
			rows = append(rows, fmt.Sprintf(`{"id": %d, "region": %q, "amount": %d}`, i, []string{"emea", "apac", "amer"}[i%3], i%17))
		}
		msg := sinktest.WriteJSON(t, w, memory.DefaultAllocator, deltaIn, "["+strings.Join(rows, ",")+"]")
		if b == to {
			break // crashed: never committed
		}
		if err := s.Commit(ctx, batch, []sinks.CommitMessage{msg}); err != nil {
			t.Fatal(err)
		}
	}
}

func deltaRows(t *testing.T, dir string) string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs, err := dataset.Read(dir).WithConfig(dataset.Config{Allocator: mem}).Select("id", "region", "amount").CollectRecords(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			out = append(out, fmt.Sprintf("%s|%s|%s", exec.FormatValue(r.Column(0), i), exec.FormatValue(r.Column(1), i), exec.FormatValue(r.Column(2), i)))
		}
		r.Release()
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// A backfill (AvailableNow) reads a Delta table through the Delta source
// and writes a Delta table: it equals the input; run again with the same
// checkpoint after more versions landed, it reads only those, once.
func TestABackfillCopiesADeltaTableAndThenOnlyItsNewVersions(t *testing.T) {
	dir := t.TempDir()
	in, out, cp := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "cp")
	appendDelta(t, in, 0, 4)
	var queryID string
	backfill := func() int {
		t.Helper()
		src, err := srcdelta.New(context.Background(), srcdelta.Config{Dir: in, MaxVersionsPerBatch: 2})
		if err != nil {
			t.Fatal(err)
		}
		// No AppID: the query's id is the txn appId.
		sink, err := sdelta.New(sdelta.Config{Dir: out, Options: parquet.Options{PartitionBy: []string{"region"}}})
		if err != nil {
			t.Fatal(err)
		}
		ds := dataset.ReadStream(src).Select("id", "region", "amount")
		q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).Checkpoint(cp).OutputMode(sinks.Append).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		queryID = q.ID()
		return len(q.RecentProgress())
	}
	backfill()
	want := deltaRows(t, in)
	if got := deltaRows(t, out); got != want || strings.Count(want, "\n") != 4*50-1 {
		t.Fatalf("first backfill: %d rows, input %d rows", strings.Count(got, "\n")+1, strings.Count(want, "\n")+1)
	}
	appendDelta(t, in, 4, 9) // versions 4..8
	n := backfill()
	want = deltaRows(t, in)
	if got := deltaRows(t, out); got != want || strings.Count(want, "\n") != 9*50-1 {
		t.Fatalf("second backfill: %d rows, input %d rows", strings.Count(got, "\n")+1, strings.Count(want, "\n")+1)
	}
	if n != 3 { // versions 4..8, at most 2 a batch
		t.Fatalf("second backfill ran %d batches, want 3", n)
	}
	// Both runs' commits carry the query's id (one checkpoint) as txn
	// appId: batch 0 (the snapshot), then batches 1..3 (the new versions).
	snap, err := idelta.Open(vfs.OS{}, out).Latest()
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.TxnVersion(queryID); got != 3 {
		t.Fatalf("the table's txn version for query %s is %d, want the last batch", queryID, got)
	}
}
