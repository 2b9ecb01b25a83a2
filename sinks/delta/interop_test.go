package delta_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	idelta "github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/delta"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sinks/sinktest"
)

// readDeltaRS is the script the interop tests read a table with: delta-rs
// (deltalake from PyPI) to a pyarrow table, one line per row, sorted, each
// value as Python's str(); then the version and the txn versions asked for.
const readDeltaRS = `
import sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
t = dt.to_pyarrow_table()
cols = sys.argv[2].split(",")
rows = sorted("|".join(str(v) for v in r) for r in zip(*[t.column(c).to_pylist() for c in cols]))
for r in rows:
    print(r)
print("version", dt.version())
for app in sys.argv[3:]:
    print("txn", app, dt.transaction_version(app))
# delta-rs's runtime threads sometimes abort the interpreter's teardown
# ("terminate called without an active exception"): skip it.
import os
sys.stdout.flush()
os._exit(0)
`

var richSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
	{Name: "tms", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true}, // stored as microseconds
}, nil)

// richRow is row n as JSON for the writer and as delta-rs prints it.
func richRow(n int) (js, py string) {
	name := fmt.Sprintf(`"n %d/%%"`, n%3) // a space, a slash and a percent sign in partition values
	pyName := fmt.Sprintf("n %d/%%", n%3)
	if n%7 == 0 {
		name, pyName = "null", "None"
	}
	day := fmt.Sprintf("2026-01-%02d", 1+n%2)
	js = fmt.Sprintf(`{"id": %d, "name": %s, "x": %d.5, "day": %q, "ts": "2026-01-02T03:04:%02dZ", "ok": %v, "amount": "%d.25", "tms": "2026-02-03T04:05:06.%03dZ"}`,
		n, name, n, day, n%60, n%2 == 0, n, n%1000)
	tms := fmt.Sprintf(".%03d000", n%1000)
	if n%1000 == 0 {
		tms = "" // Python's str drops a zero fraction
	}
	py = fmt.Sprintf("%d|%s|%d.5|%s|2026-01-02 03:04:%02d+00:00|%v|%d.25|2026-02-03 04:05:06%s+00:00", n, pyName, n, day, n%60, map[bool]string{true: "True", false: "False"}[n%2 == 0], n, tms)
	return js, py
}

// richBatches is how many batches writeRich commits (versions 0..8, a
// checkpoint at 4 and 8).
const richBatches = 9

// writeRich writes richBatches batches of two tasks of richSchema rows into
// a Delta table at dir partitioned by name and day (as query "interop"),
// then leaves a crashed batch's files beside them; it returns the rows as
// Python's str prints them, sorted.
func writeRich(t *testing.T, dir string) []string {
	t.Helper()
	s, err := delta.New(delta.Config{Dir: dir, AppID: "interop", Options: parquet.Options{PartitionBy: []string{"name", "day"}, Compression: "snappy"}, CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var want []string
	n := 0
	for b := int64(0); b < richBatches; b++ {
		var msgs []sinks.CommitMessage
		for task := 0; task < 2; task++ {
			w, err := s.NewWriter(ctx, sinks.Batch{ID: b, Mode: sinks.Append, Schema: richSchema}, task)
			if err != nil {
				t.Fatal(err)
			}
			var js []string
			for range 5 {
				j, p := richRow(n)
				js, want = append(js, j), append(want, p)
				n++
			}
			msgs = append(msgs, sinktest.WriteJSON(t, w, memory.DefaultAllocator, richSchema, "["+strings.Join(js, ",")+"]"))
		}
		if err := s.Commit(ctx, sinks.Batch{ID: b, Mode: sinks.Append, Schema: richSchema}, msgs); err != nil {
			t.Fatal(err)
		}
	}
	// A crashed batch's files stay on disk, in no version.
	w, _ := s.NewWriter(ctx, sinks.Batch{ID: richBatches, Mode: sinks.Append, Schema: richSchema}, 0)
	j, _ := richRow(1000)
	sinktest.WriteJSON(t, w, memory.DefaultAllocator, richSchema, "["+j+"]")
	sort.Strings(want)
	return want
}

// dropCommitsBeforeCheckpoint removes the commits the last checkpoint
// (version richBatches-1) covers, so a reader must read the checkpoint.
func dropCommitsBeforeCheckpoint(t *testing.T, dir string) {
	t.Helper()
	for v := int64(0); v < richBatches-1; v++ {
		if err := os.Remove(filepath.Join(dir, idelta.LogDir, idelta.CommitName(v))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeltaRSReadsWhatSluiceWrote(t *testing.T) {
	dir := t.TempDir()
	want := append(writeRich(t, dir), fmt.Sprintf("version %d", richBatches-1), fmt.Sprintf("txn interop %d", richBatches-1), "txn other None")
	check := func(what string) {
		t.Helper()
		got := strings.Split(strings.TrimSpace(testenv.RunPython(t, readDeltaRS, dir, "id,name,x,day,ts,ok,amount,tms", "interop", "other")), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("delta-rs read %s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	check("the whole log")
	// The checkpoint of version 8 alone must give the same table to delta-rs.
	dropCommitsBeforeCheckpoint(t, dir)
	check("from the checkpoint")
}

// createDeltaRS makes a table with delta-rs (two appends, partitioned by
// name) in the suite's schema.
const createDeltaRS = `
import sys, os
import pyarrow as pa
from deltalake import write_deltalake
for lo in (0, 3):
    write_deltalake(sys.argv[1], pa.table({"id": pa.array(range(lo, lo + 3), pa.int64()),
        "name": pa.array(["a", "b", None], pa.string())}), partition_by=["name"], mode="append")
sys.stdout.flush()
os._exit(0)
`

func TestSluiceAppendsToATableDeltaRSMade(t *testing.T) {
	dir := t.TempDir()
	testenv.RunPython(t, createDeltaRS, dir)
	s, err := delta.New(delta.Config{Dir: dir, AppID: "appender", Options: parquet.Options{PartitionBy: []string{"name"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(sinks.Append, sinktest.Schema); err != nil {
		t.Fatalf("check against delta-rs's table: %v", err)
	}
	ctx := context.Background()
	for b := int64(0); b < 2; b++ {
		if err := s.Commit(ctx, batch(b), []sinks.CommitMessage{writeBatch(t, s, b, int(10+b))}); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.TrimSpace(testenv.RunPython(t, readDeltaRS, dir, "id,name", "appender"))
	want := strings.Join([]string{"0|a", "10|p1", "11|p2", "1|b", "2|None", "3|a", "4|b", "5|None", "version 3", "txn appender 1"}, "\n")
	if got != want {
		t.Fatalf("delta-rs read:\n%s\nwant:\n%s", got, want)
	}
	if ids := sortedIDs(readRows(t, dir)); ids != "0,1,10,11,2,3,4,5" {
		t.Fatalf("sluice read %s", ids)
	}
}
