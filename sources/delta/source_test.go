package delta_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	idelta "github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sinks"
	sdelta "github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sinks/sinktest"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/delta"
	"github.com/sluicedata/sluice/sources/sourcetest"
)

// table commits batches 0..n-1 of two rows each to a table partitioned by name.
func table(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := sdelta.New(sdelta.Config{Dir: dir, AppID: "w", Options: parquet.Options{PartitionBy: []string{"name"}}})
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < n; b++ {
		batch := sinks.Batch{ID: int64(b), Mode: sinks.Append, Schema: sinktest.Schema}
		w, err := s.NewWriter(context.Background(), batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		msg := sinktest.WriteJSON(t, w, memory.DefaultAllocator, sinktest.Schema,
			fmt.Sprintf(`[{"id": %d, "name": "n%d"}, {"id": %d, "name": null}]`, 2*b, b%2, 2*b+1))
		if err := s.Commit(context.Background(), batch, []sinks.CommitMessage{msg}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func off(v int64) sources.Offset { return sources.Offset(fmt.Sprintf(`{"version":%d}`, v)) }

func TestBatchesReadTheSnapshotThenEachVersionsAdds(t *testing.T) {
	dir := table(t, 5)
	ctx := context.Background()
	s, err := delta.New(ctx, delta.Config{Dir: dir, MaxVersionsPerBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Schema().String(); !strings.Contains(got, "id: type=int64") || !strings.Contains(got, "name: type=utf8") {
		t.Fatalf("schema %s", got)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	if err := s.Bound(ctx); err != nil {
		t.Fatal(err)
	}
	start, _ := s.Initial(ctx)
	var batches []string
	for range 10 {
		end, err := s.Latest(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		if string(end) == string(start) {
			break
		}
		splits, err := s.Splits(ctx, start, end)
		if err != nil {
			t.Fatal(err)
		}
		sourcetest.CheckRoundTrip(t, mem, splits, s)
		batches = append(batches, fmt.Sprintf("%s: %d rows", end, len(sourcetest.Read(t, mem, splits))))
		start = end
	}
	// The first batch is the snapshot of version 4 (all 10 rows); nothing is left after it.
	if got := strings.Join(batches, "; "); got != `{"version":4}: 10 rows` {
		t.Fatalf("batches %s", got)
	}
	// From version 1 on, at most two versions a batch, each version's own adds.
	for _, c := range []struct{ lo, hi int64 }{{1, 3}, {3, 4}} {
		end, _ := s.Latest(ctx, off(c.lo))
		if string(end) != string(off(c.hi)) {
			t.Fatalf("Latest after %d: %s, want %d", c.lo, end, c.hi)
		}
		splits, err := s.Splits(ctx, off(c.lo), end)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sourcetest.Read(t, mem, splits)); n != 2*int(c.hi-c.lo) {
			t.Fatalf("versions %d..%d: %d rows", c.lo+1, c.hi, n)
		}
	}
	splits, _ := s.Splits(ctx, off(-1), off(0))
	good, _ := splits[0].Encode()
	sourcetest.CheckRefused(t, s, "delta", good, map[string][]byte{
		"a file outside the table is refused": []byte(strings.Replace(string(good), `"file":"`, `"file":"../`, 1)),
	})
}

func TestADeleteAndACleanedLogAreErrorsNamingTheVersion(t *testing.T) {
	dir := table(t, 3)
	ctx := context.Background()
	s, err := delta.New(ctx, delta.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := idelta.Open(vfs.OS{}, dir).Latest()
	if err != nil {
		t.Fatal(err)
	}
	victim := snap.SortedFiles()[0].Path
	if err := idelta.Open(vfs.OS{}, dir).Commit(3, []idelta.Action{{Remove: &idelta.Remove{Path: victim, DataChange: true}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Splits(ctx, off(2), off(3)); err == nil || !strings.Contains(err.Error(), "version 3 removes") {
		t.Fatalf("a delete: %v", err)
	}
	// The snapshot of version 3 (a first batch) is fine: the removed file is not in it.
	if _, err := s.Splits(ctx, off(-1), off(3)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, idelta.LogDir, idelta.CommitName(2)))
	if _, err := s.Splits(ctx, off(1), off(2)); !errors.Is(err, sources.ErrOffsetGone) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("a cleaned-up commit: %v", err)
	}
}

// A split names the file, row group and rows of each record it reads, so a
// runtime error on one of its values names them.
func TestASplitNamesTheFileOfEachRecord(t *testing.T) {
	dir := table(t, 2)
	ctx := context.Background()
	s, err := delta.New(ctx, delta.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	splits, err := s.Splits(ctx, off(-1), off(1))
	if err != nil || len(splits) == 0 {
		t.Fatalf("splits %v, %v", splits, err)
	}
	records := 0
	for _, sp := range splits {
		pr, ok := sp.(sources.PositionReader)
		if !ok {
			t.Fatalf("a Delta split (%T) cannot say where its records are", sp)
		}
		err := pr.ReadAt(ctx, mem, nil, func(rec arrow.Record, atf func() string) error {
			defer rec.Release()
			at := atf()
			records++
			if !strings.Contains(at, dir) || !strings.Contains(at, ".parquet, row group 0") {
				t.Errorf("a record of %v is at %q, want its file in %s and row group", sp, at, dir)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if records == 0 {
		t.Fatal("the splits read no record")
	}
}

// A split builds only the columns a query reads, in the order it asks,
// a partition column (from the log, not the file) among them.
func TestASplitReadsOnlyTheColumnsAsked(t *testing.T) {
	dir := table(t, 2)
	ctx := context.Background()
	s, err := delta.New(ctx, delta.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	splits, err := s.Splits(ctx, off(-1), off(1))
	if err != nil || len(splits) == 0 {
		t.Fatalf("splits %v, %v", splits, err)
	}
	var cells []string
	for _, sp := range splits {
		err := sp.(sources.ColumnReader).ReadColumns(ctx, mem, []string{"name", "id"}, func(rec arrow.Record) error {
			defer rec.Release()
			if rec.NumCols() != 2 || rec.ColumnName(0) != "name" || rec.ColumnName(1) != "id" {
				t.Errorf("columns %s, want name, id", rec.Schema())
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				cells = append(cells, rec.Column(0).ValueStr(i)+":"+rec.Column(1).ValueStr(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(cells)
	if got, want := strings.Join(cells, " "), "(null):1 (null):3 n0:0 n1:2"; got != want {
		t.Errorf("rows %q, want %q", got, want)
	}
}
