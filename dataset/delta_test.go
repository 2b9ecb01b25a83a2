package dataset_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

var deltaOrders = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "region", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// writeDeltaOrders commits batches of 10 orders each to a Delta table
// partitioned by region, leaves one crashed batch's files beside them, and
// returns per region the (sum, count) after each batch.
func writeDeltaOrders(t *testing.T, dir string, batches int) []map[string][2]int64 {
	t.Helper()
	s, err := delta.New(delta.Config{Dir: dir, AppID: "orders", Options: parquet.Options{PartitionBy: []string{"region"}}, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var after []map[string][2]int64
	totals := map[string][2]int64{}
	regions := []string{"emea", "apac", "amer"}
	for b := 0; b <= batches; b++ {
		batch := sinks.Batch{ID: int64(b), Mode: sinks.Append, Schema: deltaOrders}
		w, err := s.NewWriter(ctx, batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for i := b * 10; i < b*10+10; i++ {
			r := regions[i%3]
			rows = append(rows, fmt.Sprintf(`{"id": %d, "region": %q, "amount": %d}`, i, r, i*i))
			if b < batches {
				totals[r] = [2]int64{totals[r][0] + int64(i*i), totals[r][1] + 1}
			}
		}
		msg := sinktest.WriteJSON(t, w, memory.DefaultAllocator, deltaOrders, "["+strings.Join(rows, ",")+"]")
		if b == batches {
			break // the crashed batch: files on disk, never committed
		}
		if err := s.Commit(ctx, batch, []sinks.CommitMessage{msg}); err != nil {
			t.Fatal(err)
		}
		snap := map[string][2]int64{}
		for k, v := range totals {
			snap[k] = v
		}
		after = append(after, snap)
	}
	return after
}

func revenue(t *testing.T, ds *dataset.Dataset) string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs, err := ds.WithConfig(dataset.Config{Allocator: mem}).
		GroupBy("region").Agg(dataset.Sum(dataset.Col("amount")).As("revenue"), dataset.CountAll().As("n")).
		CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			out = append(out, fmt.Sprintf("%s=%s/%s", r.Column(0).(*array.String).Value(i), exec.FormatValue(r.Column(1), i), exec.FormatValue(r.Column(2), i)))
		}
		r.Release()
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func render(m map[string][2]int64) string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d/%d", k, v[0], v[1]))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestABatchJobReadsADeltaTableAndItsVersions(t *testing.T) {
	dir := t.TempDir()
	after := writeDeltaOrders(t, dir, 5)
	if got, want := revenue(t, dataset.Read(dir)), render(after[4]); got != want {
		t.Fatalf("latest:\n got %s\nwant %s", got, want)
	}
	for v := range after {
		if got, want := revenue(t, dataset.ReadDelta(dir, int64(v))), render(after[v]); got != want {
			t.Fatalf("version %d:\n got %s\nwant %s", v, got, want)
		}
	}
	// A filter on the partition column.
	n, err := dataset.Read(dir).Filter(dataset.Col("region").Eq("apac")).Count(context.Background())
	if err != nil || n != after[4]["apac"][1] {
		t.Fatalf("apac rows: %d, %v; want %d", n, err, after[4]["apac"][1])
	}
	if err := dataset.ReadDelta(dir, 9).Err(); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("version 9 of a 5-version table: %v", err)
	}
}
