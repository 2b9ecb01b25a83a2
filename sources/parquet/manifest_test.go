package parquet_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/manifest"
	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/parquet"
)

var streamSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "p", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// writeStream writes batch ids 1..3 with the streaming sink, two tasks each,
// rows id = batch*100 + i, and commits only those in commit.
func writeStream(t *testing.T, mem memory.Allocator, dir string, opts pqsink.Options, commit ...int64) {
	t.Helper()
	ctx := context.Background()
	s, err := pqsink.NewStream(pqsink.StreamConfig{Dir: dir, Mem: mem, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 3; id++ {
		b := sinks.Batch{ID: id, Mode: sinks.Append, Schema: streamSchema}
		var msgs []sinks.CommitMessage
		for task := range 2 {
			w, err := s.NewWriter(ctx, b, task)
			if err != nil {
				t.Fatal(err)
			}
			bld := array.NewRecordBuilder(mem, streamSchema)
			for i := range 5 {
				bld.Field(0).(*array.Int64Builder).Append(id*100 + int64(task*5+i))
				bld.Field(1).(*array.Int64Builder).Append(int64(i % 2))
			}
			rec := bld.NewRecord()
			bld.Release()
			err = w.Write(rec)
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
			msg, err := w.Prepare()
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, msg)
		}
		if slices.Contains(commit, id) {
			if err := s.Commit(ctx, b, msgs); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readIDs returns the sorted ids of every row Open and ReadSplit see in dir.
func readIDs(t *testing.T, mem memory.Allocator, dir string) []int64 {
	t.Helper()
	ctx := context.Background()
	tbl, err := parquet.Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	splits, _ := tbl.Splits(nil)
	var ids []int64
	for _, sp := range splits {
		err := parquet.ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			defer rec.Release()
			ids = append(ids, rec.Column(tbl.Schema.FieldIndices("id")[0]).(*array.Int64).Int64Values()...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	return ids
}

func ids(batches ...int64) []int64 {
	var out []int64
	for _, b := range batches {
		for i := range 10 {
			out = append(out, b*100+int64(i))
		}
	}
	return out
}

func TestOpenHonoursTheSinkLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts pqsink.Options
	}{
		{"unpartitioned", pqsink.Options{}},
		{"hive partitioned", pqsink.Options{PartitionBy: []string{"p"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			writeStream(t, mem, dir, tc.opts, 1, 2)
			// Batch 3's commit crashed after renaming its files, before its
			// log entry: whole files under final names that no log lists.
			crashAfterRenames(t, dir)

			t.Run("only committed batches are read", func(t *testing.T) {
				if got, want := readIDs(t, mem, dir), ids(1, 2); !slices.Equal(got, want) {
					t.Errorf("ids %v\nwant %v", got, want)
				}
				tbl, _ := parquet.Open(context.Background(), dir)
				// 2 batches x 2 tasks, x 2 partition directories when partitioned;
				// batch 3's files are on disk too.
				want := 4
				if tc.opts.PartitionBy != nil {
					want = 8
				}
				if len(tbl.Files) != want || len(dataFilesUnder(t, dir)) != want*3/2 {
					t.Errorf("%d files opened of %d on disk, want %d of %d", len(tbl.Files), len(dataFilesUnder(t, dir)), want, want*3/2)
				}
				if tc.opts.PartitionBy != nil && !slices.Equal(tbl.PartitionColumns, []string{"p"}) {
					t.Errorf("partition columns %v", tbl.PartitionColumns)
				}
			})

			t.Run("a directory without a log reads every file", func(t *testing.T) {
				if err := os.RemoveAll(filepath.Join(dir, manifest.LogDir)); err != nil {
					t.Fatal(err)
				}
				if got, want := readIDs(t, mem, dir), ids(1, 2, 3); !slices.Equal(got, want) {
					t.Errorf("ids %v\nwant %v", got, want)
				}
			})
		})
	}
}

func TestOpenLogWithoutCommitsHasNoFiles(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	writeStream(t, mem, dir, pqsink.Options{})
	if _, err := parquet.Open(context.Background(), dir); !errors.Is(err, parquet.ErrNoFiles) {
		t.Errorf("Open = %v, want ErrNoFiles", err)
	}
}

func TestOpenLogNamingAMissingFileFails(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	writeStream(t, mem, dir, pqsink.Options{}, 1)
	if err := os.Remove(filepath.Join(dir, "part-1-0-00000.parquet")); err != nil {
		t.Fatal(err)
	}
	if _, err := parquet.Open(context.Background(), dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open = %v, want a missing-file error", err)
	}
}

// crashAfterRenames gives every in-progress file under dir its final name,
// as the sink's Commit does before it writes the log entry.
func crashAfterRenames(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || !strings.HasPrefix(name, ".part-") || !strings.HasSuffix(name, ".inprogress") {
			return nil
		}
		n++
		// .part-3-0-00000.parquet.<nonce>.inprogress -> part-3-0-00000.parquet
		final := strings.TrimPrefix(name, ".")
		final = final[:strings.Index(final, ".parquet")+len(".parquet")]
		return os.Rename(p, filepath.Join(filepath.Dir(p), final))
	})
	if err != nil || n == 0 {
		t.Fatalf("renamed %d in-progress files: %v", n, err)
	}
}

func dataFilesUnder(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".parquet" {
			out = append(out, p)
		}
		return nil
	})
	return out
}
