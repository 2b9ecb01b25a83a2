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
	"github.com/sluicedata/sluice/sinks/sinktest"
	pqsource "github.com/sluicedata/sluice/sources/parquet"
)

// readRows reads every committed row of dir with the Parquet source, which
// honours the sink's log.
func readRows(t *testing.T, dir string) [][]string {
	t.Helper()
	ctx := context.Background()
	tbl, err := pqsource.Open(ctx, dir)
	if errors.Is(err, pqsource.ErrNoFiles) {
		return nil
	}
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	// Project to the suite's columns: partition columns come last in the
	// table schema and types may widen (int64 partitions).
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	splits, _ := tbl.Splits(nil)
	var rows [][]string
	for _, sp := range splits {
		err := pqsource.ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			defer rec.Release()
			for _, r := range sinktest.Render(rec) {
				// Reorder to the suite schema by name.
				out := make([]string, 0, 2)
				for _, f := range sinktest.Schema.Fields() {
					i := tbl.Schema.FieldIndices(f.Name)[0]
					out = append(out, r[i])
				}
				rows = append(rows, out)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", sp.Path, err)
		}
	}
	return rows
}

func TestStreamContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts pqsink.Options
	}{
		{"unpartitioned", pqsink.Options{}},
		{"partitioned by name", pqsink.Options{PartitionBy: []string{"name"}, Compression: "snappy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
				dir := filepath.Join(t.TempDir(), "out")
				s, err := pqsink.NewStream(pqsink.StreamConfig{Dir: dir, Options: tc.opts, Mem: mem, CheckpointEvery: 2})
				if err != nil {
					t.Fatal(err)
				}
				return sinktest.Harness{
					Sink:        s,
					Rows:        func(t *testing.T) [][]string { return readRows(t, dir) },
					Unsupported: []sinks.Mode{sinks.Update, sinks.Complete},
				}
			})
		})
	}
}

// dataFiles lists the .parquet files under dir, relative, sorted.
func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestStreamLayout(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	s, err := pqsink.NewStream(pqsink.StreamConfig{Dir: dir, Mem: mem, Options: pqsink.Options{PartitionBy: []string{"p"}}})
	if err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "p", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	write := func(id int64, task int, js string) sinks.CommitMessage {
		b := sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema}
		w, err := s.NewWriter(ctx, b, task)
		if err != nil {
			t.Fatal(err)
		}
		rec := recordJSON(t, mem, schema, js)
		defer rec.Release()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		msg, err := w.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	b := func(id int64) sinks.Batch { return sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema} }

	for id := int64(0); id < 12; id++ {
		msg := write(id, 0, `[{"id":1,"p":"a"},{"id":2,"p":"b"}]`)
		if err := s.Commit(ctx, b(id), []sinks.CommitMessage{msg}); err != nil {
			t.Fatal(err)
		}
	}
	// Batch 12 is prepared but never committed; batch 13 is aborted.
	write(12, 0, `[{"id":1,"p":"c"}]`)
	write(13, 3, `[{"id":1,"p":"d"}]`)
	if err := s.Abort(ctx, b(13), nil); err != nil {
		t.Fatal(err)
	}
	files := dataFiles(t, dir)
	for _, want := range []string{"p=a/part-0-0-00000.parquet", "p=b/part-11-0-00000.parquet", "p=c/part-12-0-00000.parquet"} {
		if !slices.Contains(files, want) {
			t.Errorf("missing %s in %v", want, files)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "p=d")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("aborted batch 13 left its partition dir: %v", err)
	}
	logNames, _ := os.ReadDir(filepath.Join(dir, manifest.LogDir))
	var names []string
	for _, e := range logNames {
		names = append(names, e.Name())
	}
	// Checkpoints after 9 entries... every 10: at batch 9; entries 0-9 stay
	// until the next checkpoint covers them twice.
	if !slices.Contains(names, "9.checkpoint.json") || !slices.Contains(names, "11.json") {
		t.Errorf("log dir holds %v", names)
	}
	committed, ok, err := manifest.Read(dir)
	if err != nil || !ok || len(committed) != 24 {
		t.Fatalf("manifest.Read: %d files, ok=%v, err=%v", len(committed), ok, err)
	}
	for _, f := range committed {
		if strings.Contains(f, "part-12-") {
			t.Errorf("uncommitted file %s listed", f)
		}
	}
	if err := s.Check(sinks.Update, schema); err == nil || !strings.Contains(err.Error(), "update") {
		t.Errorf("Check(update) = %v", err)
	}
}

func recordJSON(t *testing.T, mem memory.Allocator, schema *arrow.Schema, js string) arrow.Record {
	t.Helper()
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
