package delta_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	idelta "github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sinks/sinktest"
	pqsource "github.com/sluicedata/sluice/sources/parquet"
)

// readRows reads every row of the table's latest version with the Parquet
// source (which reads the Delta log), in the suite's column order.
func readRows(t *testing.T, path string) [][]string {
	t.Helper()
	ctx := context.Background()
	tbl, err := pqsource.Open(ctx, path)
	if errors.Is(err, pqsource.ErrNoFiles) || errors.Is(err, idelta.ErrNoTable) {
		return nil
	}
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	splits, _ := tbl.Splits(nil)
	var rows [][]string
	for _, sp := range splits {
		err := pqsource.ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			defer rec.Release()
			for _, r := range sinktest.Render(rec) {
				out := make([]string, 0, 2)
				for _, f := range sinktest.Schema.Fields() {
					out = append(out, r[tbl.Schema.FieldIndices(f.Name)[0]])
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

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts parquet.Options
	}{
		{"unpartitioned", parquet.Options{}},
		{"partitioned by name", parquet.Options{PartitionBy: []string{"name"}, Compression: "snappy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
				dir := filepath.Join(t.TempDir(), "out")
				s, err := delta.New(delta.Config{Dir: dir, AppID: "q1", Options: tc.opts, Mem: mem, CheckpointEvery: 2})
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

func batch(id int64) sinks.Batch {
	return sinks.Batch{ID: id, Mode: sinks.Append, Schema: sinktest.Schema}
}

// writeBatch runs one task of batch id writing rows "{id: n, name: p<n%3>}"
// for n in ids, and returns its commit message.
func writeBatch(t *testing.T, s sinks.Sink, id int64, ids ...int) sinks.CommitMessage {
	t.Helper()
	w, err := s.NewWriter(context.Background(), batch(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, n := range ids {
		recs = append(recs, fmt.Sprintf(`{"id": %d, "name": "p%d"}`, n, n%3))
	}
	return sinktest.WriteJSON(t, w, memory.DefaultAllocator, sinktest.Schema, "["+strings.Join(recs, ",")+"]")
}

func sortedIDs(rows [][]string) string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r[0])
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

func TestEveryCommitCarriesTheTxnAndCheckpointsComeEveryN(t *testing.T) {
	dir := t.TempDir()
	s, err := delta.New(delta.Config{Dir: dir, AppID: "query-7", Options: parquet.Options{PartitionBy: []string{"name"}}, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for b := int64(0); b < 7; b++ {
		msg := writeBatch(t, s, b, int(b*10), int(b*10+1))
		if err := s.Commit(ctx, batch(b), []sinks.CommitMessage{msg}); err != nil {
			t.Fatal(err)
		}
	}
	tb := idelta.Open(vfs.OS{}, dir)
	for v := int64(0); v < 7; v++ {
		snap, err := tb.Snapshot(v)
		if err != nil {
			t.Fatal(err)
		}
		if snap.TxnVersion("query-7") != v || len(snap.Files) != 2*int(v+1) {
			t.Fatalf("version %d: txn %d, %d files", v, snap.TxnVersion("query-7"), len(snap.Files))
		}
		if len(readRows(t, pqsource.DeltaPath(dir, v))) != 2*int(v+1) {
			t.Fatalf("time travel to version %d: wrong row count", v)
		}
	}
	for v, want := range map[int64]bool{3: true, 6: true, 2: false, 4: false} {
		_, err := os.Stat(filepath.Join(dir, idelta.LogDir, idelta.CheckpointName(v)))
		if (err == nil) != want {
			t.Fatalf("checkpoint of version %d: exists=%v, want %v", v, err == nil, want)
		}
	}
	if got := sortedIDs(readRows(t, dir)); got != "0,1,10,11,20,21,30,31,40,41,50,51,60,61" {
		t.Fatalf("rows %s", got)
	}
}

func TestAnotherQueryAppendsAndTheSameQueryIsDeduplicated(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	mk := func(app string) *delta.Sink {
		s, err := delta.New(delta.Config{Dir: dir, AppID: app})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Two instances of one query (a zombie and its replacement) and another query, all at once.
	a1, a2, other := mk("a"), mk("a"), mk("b")
	m1, m2, m3 := writeBatch(t, a1, 0, 1, 2), writeBatch(t, a2, 0, 1, 2), writeBatch(t, other, 0, 100)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, c := range []struct {
		s *delta.Sink
		m sinks.CommitMessage
	}{{a1, m1}, {a2, m2}, {other, m3}} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.s.Commit(ctx, batch(0), []sinks.CommitMessage{c.m}) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if got := sortedIDs(readRows(t, dir)); got != "1,100,2" {
		t.Fatalf("rows %s, want query a's batch once and query b's", got)
	}
	// The loser's files are gone: only files of the log remain.
	snap, err := idelta.Open(vfs.OS{}, dir).Latest()
	if err != nil {
		t.Fatal(err)
	}
	var onDisk int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, idelta.LogDir) {
			onDisk++
		}
		return nil
	})
	if onDisk != len(snap.Files) || snap.Version != 1 {
		t.Fatalf("%d data files on disk, %d in version %d", onDisk, len(snap.Files), snap.Version)
	}
}

func TestATableThatDoesNotFitIsRefusedNamingIt(t *testing.T) {
	dir := t.TempDir()
	s, err := delta.New(delta.Config{Dir: dir, AppID: "a", Options: parquet.Options{PartitionBy: []string{"name"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), batch(0), []sinks.CommitMessage{writeBatch(t, s, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	other, _ := delta.New(delta.Config{Dir: dir, AppID: "b"})
	err = other.Check(sinks.Append, sinktest.Schema)
	if !errors.Is(err, delta.ErrTableMismatch) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "version 0") {
		t.Fatalf("unpartitioned sink on a partitioned table: %v", err)
	}
	wider := arrow.NewSchema(append(sinktest.Schema.Fields(), arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64}), nil)
	s2, _ := delta.New(delta.Config{Dir: dir, AppID: "c", Options: parquet.Options{PartitionBy: []string{"name"}}})
	if err := s2.Check(sinks.Append, wider); !errors.Is(err, delta.ErrTableMismatch) || !strings.Contains(err.Error(), "x double") {
		t.Fatalf("another schema: %v", err)
	}
	ntz := arrow.NewSchema([]arrow.Field{{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond}}}, nil)
	if err := s2.Check(sinks.Append, ntz); !errors.Is(err, idelta.ErrUnsupported) || !strings.Contains(err.Error(), `"t"`) {
		t.Fatalf("timestamp without zone: %v", err)
	}
}

func TestPartitionColumnsReadWithTheTablesTypes(t *testing.T) {
	dir := t.TempDir()
	s, err := delta.New(delta.Config{Dir: dir, AppID: "a", Options: parquet.Options{PartitionBy: []string{"name"}}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewWriter(context.Background(), batch(0), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Names that look like numbers stay strings: the table's schema says so.
	msg := sinktest.WriteJSON(t, w, memory.DefaultAllocator, sinktest.Schema, `[{"id": 1, "name": "7"}, {"id": 2, "name": "08"}]`)
	if err := s.Commit(context.Background(), batch(0), []sinks.CommitMessage{msg}); err != nil {
		t.Fatal(err)
	}
	tbl, err := pqsource.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if f := tbl.Schema.Field(tbl.Schema.FieldIndices("name")[0]); f.Type.ID() != arrow.STRING {
		t.Fatalf("partition column name reads as %s, want string", f.Type)
	}
	got := readRows(t, dir)
	sort.Slice(got, func(i, j int) bool { return got[i][0] < got[j][0] })
	if fmt.Sprint(got) != "[[1 7] [2 08]]" {
		t.Fatalf("rows %v", got)
	}
}

// A zombie attempt of a batch (writers made before the batch committed)
// commits after the batch did: its Commit adds no version and deletes its
// own files.
func TestALateAttemptOfACommittedBatchChangesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a1, _ := delta.New(delta.Config{Dir: dir, AppID: "a"})
	a2, _ := delta.New(delta.Config{Dir: dir, AppID: "a"})
	m1, m2 := writeBatch(t, a1, 0, 1, 2), writeBatch(t, a2, 0, 1, 2)
	if err := a1.Commit(ctx, batch(0), []sinks.CommitMessage{m1}); err != nil {
		t.Fatal(err)
	}
	if err := a2.Commit(ctx, batch(0), []sinks.CommitMessage{m2}); err != nil {
		t.Fatal(err)
	}
	if err := a1.Commit(ctx, batch(0), []sinks.CommitMessage{m1}); err != nil { // a plain repeat
		t.Fatal(err)
	}
	snap, err := idelta.Open(vfs.OS{}, dir).Latest()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 0 || sortedIDs(readRows(t, dir)) != "1,2" {
		t.Fatalf("version %d, rows %s; want version 0 and rows 1,2", snap.Version, sortedIDs(readRows(t, dir)))
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "part-*.parquet"))
	if len(matches) != len(snap.Files) {
		t.Fatalf("%d data files on disk, %d in the table: the late attempt's files stayed", len(matches), len(snap.Files))
	}
}

// A new checkpoint under an AppID the table already holds batches of would
// take its first batches for committed ones: its writers are refused.
func TestAFreshCheckpointUnderAnOldAppIDIsRefused(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := delta.New(delta.Config{Dir: dir, AppID: "q"})
	for b := int64(0); b < 3; b++ {
		if err := s.Commit(ctx, batch(b), []sinks.CommitMessage{writeBatch(t, s, b, int(b))}); err != nil {
			t.Fatal(err)
		}
	}
	again, _ := delta.New(delta.Config{Dir: dir, AppID: "q"})
	_, err := again.NewWriter(ctx, batch(0), 0)
	if !errors.Is(err, delta.ErrTableMismatch) || !strings.Contains(err.Error(), `batch 2 of AppID "q"`) {
		t.Fatalf("batch 0 after batch 2 was committed: %v", err)
	}
	// The re-run of the last committed batch (a crash before commits/2) is fine.
	if _, err := again.NewWriter(ctx, batch(2), 0); err != nil {
		t.Fatal(err)
	}
}

func TestReadBatchGivesBackOneBatchsRows(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := delta.New(delta.Config{Dir: dir, AppID: "q", Options: parquet.Options{PartitionBy: []string{"name"}}, CheckpointEvery: 2})
	other, _ := delta.New(delta.Config{Dir: dir, AppID: "other", Options: parquet.Options{PartitionBy: []string{"name"}}})
	for b := int64(0); b < 3; b++ {
		if err := s.Commit(ctx, batch(b), []sinks.CommitMessage{writeBatch(t, s, b, int(10*b), int(10*b+1))}); err != nil {
			t.Fatal(err)
		}
		if err := other.Commit(ctx, batch(b), []sinks.CommitMessage{writeBatch(t, other, b, int(100+b))}); err != nil {
			t.Fatal(err)
		}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs, err := s.ReadBatch(ctx, sinks.Batch{ID: 1}, mem)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		for _, row := range sinktest.Render(r) {
			ids = append(ids, row[0])
		}
		r.Release()
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "10,11" {
		t.Fatalf("batch 1 read back as %v", ids)
	}
	if _, err := s.ReadBatch(ctx, sinks.Batch{ID: 3}, mem); !errors.Is(err, sinks.ErrBatchNotCommitted) {
		t.Fatalf("batch 3: %v", err)
	}
}
