package dataset_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks/parquet"
)

// writeStrings writes vals as column s (with k = row index % 3) to a new
// directory of Parquet files with row groups of rowGroup rows, and returns
// the one file written.
func writeStrings(t *testing.T, mem memory.Allocator, cfg dataset.Config, vals []string, rowGroup int) string {
	t.Helper()
	sb, kb := array.NewStringBuilder(mem), array.NewInt64Builder(mem)
	defer sb.Release()
	defer kb.Release()
	for i, v := range vals {
		sb.Append(v)
		kb.Append(int64(i % 3))
	}
	rec := recordOf([]string{"s", "k"}, sb.NewArray(), kb.NewArray())
	defer rec.Release()
	dir := t.TempDir()
	err := dataset.FromRecords(rec.Schema(), rec).WithConfig(cfg).
		Write(context.Background(), dir, dataset.WriteOptions{Options: parquet.Options{RowGroupRows: int64(rowGroup)}})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("wrote %d files, want 1: %v", len(files), files)
	}
	return files[0]
}

func numbers(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(from + i)
	}
	return out
}

// TestRuntimeErrorsNameTheFileAndRowGroup: a cast error in a job over several
// Parquet files names the file and row group of the bad value, as well as the
// value and row; after a shuffle, where rows of every file meet, it names the
// stage, task and shuffle partition instead, and no file.
func TestRuntimeErrorsNameTheFileAndRowGroup(t *testing.T) {
	mem, cfg := checked(t)
	cfg.ShufflePartitions = 2
	bad := numbers(100, 10)
	bad[6] = "x6" // row group 1 (rows 4-7), row 2 of its record
	files := []string{
		writeStrings(t, mem, cfg, numbers(0, 10), 4),
		writeStrings(t, mem, cfg, bad, 4),
		writeStrings(t, mem, cfg, numbers(200, 10), 4),
	}
	long := dataset.Type(arrow.PrimitiveTypes.Int64)

	_, err := dataset.Read(files...).WithConfig(cfg).Select(dataset.Col("s").Cast(long)).Collect(context.Background())
	if err == nil {
		t.Fatal("the cast of \"x6\" did not fail")
	}
	msg := err.Error()
	t.Logf("error: %v", err)
	for _, want := range []string{files[1], "row group 1,", "file rows 4-7", `'x6'`, "row 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	for _, f := range []string{files[0], files[2]} {
		if strings.Contains(msg, f) {
			t.Errorf("the error names %s, which has no bad value: %v", f, err)
		}
	}

	// After a shuffle the split is gone: the error names stage and task.
	_, err = dataset.Read(files...).WithConfig(cfg).GroupBy("s").Agg(dataset.CountAll().As("n")).
		Select(dataset.Col("s").Cast(long)).Collect(context.Background())
	if err == nil {
		t.Fatal("the cast of \"x6\" after a shuffle did not fail")
	}
	t.Logf("after a shuffle: %v", err)
	msg = err.Error()
	if !strings.Contains(msg, "stage ") || !strings.Contains(msg, "of the shuffle") || !strings.Contains(msg, `'x6'`) {
		t.Errorf("the error after a shuffle does not name the stage and value: %v", err)
	}
	if strings.Contains(msg, ".parquet") {
		t.Errorf("the error after a shuffle names a file, which it cannot know: %v", err)
	}
}
