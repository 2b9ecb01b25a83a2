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
	for _, want := range []string{"p=a/part-0-0-00000.parquet", "p=b/part-11-0-00000.parquet"} {
		if !slices.Contains(files, want) {
			t.Errorf("missing %s in %v", want, files)
		}
	}
	// The uncommitted batch's file is there under its hidden name only.
	if got := allFiles(t, filepath.Join(dir, "p=c")); len(got) != 1 || !strings.HasPrefix(got[0], ".part-12-0-00000.parquet.") || !strings.HasSuffix(got[0], ".inprogress") {
		t.Errorf("p=c holds %v, want only .part-12-0-00000.parquet.<nonce>.inprogress", got)
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

// countRows counts the committed rows of dir, read by the Parquet source.
func countRows(t *testing.T, dir string) int64 {
	t.Helper()
	ctx := context.Background()
	tbl, err := pqsource.Open(ctx, dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	splits, _ := tbl.Splits(nil)
	var n int64
	for _, sp := range splits {
		err := pqsource.ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			n += rec.NumRows()
			rec.Release()
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", sp.Path, err)
		}
	}
	return n
}

// allFiles lists every file under dir, hidden ones included, relative and
// sorted, skipping the log.
func allFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == manifest.LogDir {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// visibleFiles are the files a reader that skips "_" and "." names
// (pyarrow, Spark, DuckDB) lists.
func visibleFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range allFiles(t, dir) {
		hidden := false
		for _, seg := range strings.Split(f, "/") {
			hidden = hidden || strings.HasPrefix(seg, ".") || strings.HasPrefix(seg, "_")
		}
		if !hidden {
			out = append(out, f)
		}
	}
	return out
}

// Files being written, prepared or left by a crashed run carry names that
// pyarrow, Spark and DuckDB skip; Commit gives them their final names, and
// clears what a crashed run of the batch left (a 0-byte in-progress file, a
// whole file a crashed Commit renamed but never logged); Abort removes them
// by name.
func TestStreamWritesInProgressFilesUnderHiddenNames(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	s, err := pqsink.NewStream(pqsink.StreamConfig{Dir: dir, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := func(id int64) sinks.Batch { return sinks.Batch{ID: id, Mode: sinks.Append, Schema: schema} }
	prepare := func(id int64, task int, js string) sinks.CommitMessage {
		t.Helper()
		w, err := s.NewWriter(ctx, b(id), task)
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
	plant := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// What a SIGKILL of an earlier run of batch 0 left: a 0-byte
	// in-progress file, and a file its Commit renamed before dying (whole
	// in truth; garbage here, so a reader would fail if it stayed).
	plant(".part-0-0-00000.parquet.0badc0ffee00.inprogress", "")
	plant("part-0-7-00000.parquet", "PAR1 torn")
	msgs := []sinks.CommitMessage{prepare(0, 0, `[{"id":1},{"id":2}]`), prepare(0, 1, `[{"id":3}]`)}
	for _, f := range visibleFiles(t, dir) {
		if strings.HasPrefix(f, "part-0-0-") || strings.HasPrefix(f, "part-0-1-") {
			t.Errorf("prepared, uncommitted file %s is visible to readers", f)
		}
	}
	if err := s.Commit(ctx, b(0), msgs); err != nil {
		t.Fatal(err)
	}
	if got, want := allFiles(t, dir), []string{"part-0-0-00000.parquet", "part-0-1-00000.parquet"}; !slices.Equal(got, want) {
		t.Errorf("after commit of batch 0 the table holds %v, want %v", got, want)
	}
	if got := countRows(t, dir); got != 3 {
		t.Errorf("read %d rows, want 3", got)
	}

	// A Commit that stopped after renaming some files is completed by the
	// retry with the same messages.
	msgs = []sinks.CommitMessage{prepare(1, 0, `[{"id":4}]`), prepare(1, 1, `[{"id":5}]`)}
	hidden := allFiles(t, dir)
	for _, f := range hidden {
		if strings.HasPrefix(f, ".part-1-0-") {
			if err := os.Rename(filepath.Join(dir, f), filepath.Join(dir, "part-1-0-00000.parquet")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Commit(ctx, b(1), msgs); err != nil {
		t.Fatalf("commit after a partial rename: %v", err)
	}
	if got := countRows(t, dir); got != 5 {
		t.Errorf("read %d rows, want 5", got)
	}

	// A message whose in-progress file is gone fails the commit, naming it.
	msg := prepare(2, 0, `[{"id":6}]`)
	for _, f := range allFiles(t, dir) {
		if strings.HasPrefix(f, ".part-2-") {
			os.Remove(filepath.Join(dir, f))
		}
	}
	if err := s.Commit(ctx, b(2), []sinks.CommitMessage{msg}); err == nil || !strings.Contains(err.Error(), "batch 2") || !strings.Contains(err.Error(), "part-2-0-00000.parquet") {
		t.Errorf("commit with a lost in-progress file: %v, want an error naming batch 2 and the file", err)
	}

	// Abort removes the batch's in-progress files of every run.
	prepare(3, 0, `[{"id":7}]`)
	plant(".part-3-4-00000.parquet.0badc0ffee00.inprogress", "")
	if err := s.Abort(ctx, b(3), nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range allFiles(t, dir) {
		if strings.Contains(f, "part-3-") {
			t.Errorf("abort of batch 3 left %s", f)
		}
	}

	// Not the first Commit of this sink: a crashed Commit of batch 4 is
	// noticed by a final name already there, and its other files go.
	prepare(4, 0, `[{"id":8}]`)
	for _, f := range allFiles(t, dir) {
		if strings.HasPrefix(f, ".part-4-0-") {
			os.Rename(filepath.Join(dir, f), filepath.Join(dir, "part-4-0-00000.parquet"))
		}
	}
	plant("part-4-9-00000.parquet", "PAR1 torn")
	if err := s.Commit(ctx, b(4), []sinks.CommitMessage{prepare(4, 0, `[{"id":8}]`)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range allFiles(t, dir) {
		if strings.Contains(f, "part-4-9-") {
			t.Errorf("the re-run's commit of batch 4 left %s", f)
		}
	}

	// A new sink (a restarted driver) sweeps the whole table once: the
	// in-progress files earlier batches' crashed runs left go too.
	if err := os.Mkdir(filepath.Join(dir, "p=x"), 0o755); err != nil {
		t.Fatal(err)
	}
	plant("p=x/.part-1-3-00000.parquet.0badc0ffee00.inprogress", "")
	plant(".part-4-3-00000.parquet.0badc0ffee00.inprogress", "")
	s, err = pqsink.NewStream(pqsink.StreamConfig{Dir: dir, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, b(5), []sinks.CommitMessage{prepare(5, 0, `[{"id":9}]`)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range allFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(f), ".part-") {
			t.Errorf("the first commit after a restart left %s", f)
		}
	}
	if got := countRows(t, dir); got != 7 {
		t.Errorf("read %d rows, want 7", got)
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
