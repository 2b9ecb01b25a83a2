package parquet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/testenv"
)

// writeDeltaRS makes a table with delta-rs: partitioned appends, a
// checkpoint, a delete (removes and rewritten files), more appends; then
// prints, per version, "v <n>" and its rows sorted as "id|p|x|d".
const writeDeltaRS = `
import sys, datetime
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path = sys.argv[1]
def batch(lo, hi):
    ids = list(range(lo, hi))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "p": pa.array([None if i % 7 == 0 else "p=%d %%" % (i % 3) for i in ids], pa.string()),
        "x": pa.array([i + 0.5 for i in ids], pa.float64()),
        "d": pa.array([datetime.date(2026, 1, 1 + i % 2) for i in ids], pa.date32()),
    })
write_deltalake(path, batch(0, 10), partition_by=["p", "d"])
for k in range(1, 5):
    write_deltalake(path, batch(10 * k, 10 * k + 10), partition_by=["p", "d"], mode="append")
DeltaTable(path).create_checkpoint()
DeltaTable(path).delete("id < 5")
write_deltalake(path, batch(100, 104), partition_by=["p", "d"], mode="append")
dt = DeltaTable(path)
for v in range(dt.version() + 1):
    t = DeltaTable(path, version=v).to_pyarrow_table()
    print("v", v)
    for r in sorted("|".join(str(x) for x in r) for r in zip(*[t.column(c).to_pylist() for c in ["id", "p", "x", "d"]])):
        print(r)
# delta-rs's runtime threads sometimes abort the interpreter's teardown
# ("terminate called without an active exception"): skip it.
import os
sys.stdout.flush()
os._exit(0)
`

// readDeltaRows renders every row of path as "id|p|x|d" the way Python's str
// prints them, sorted.
func readDeltaRows(t *testing.T, path string) []string {
	t.Helper()
	ctx := context.Background()
	tbl, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	splits, _ := tbl.Splits(nil)
	var rows []string
	for _, sp := range splits {
		err := ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			defer rec.Release()
			for i := 0; i < int(rec.NumRows()); i++ {
				var vals []string
				for _, c := range []string{"id", "p", "x", "d"} {
					a := rec.Column(tbl.Schema.FieldIndices(c)[0])
					vals = append(vals, pyStr(a, i))
				}
				rows = append(rows, strings.Join(vals, "|"))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", sp.Path, err)
		}
	}
	sort.Strings(rows)
	return rows
}

func pyStr(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "None"
	}
	switch a := a.(type) {
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'f', -1, 64)
	case *array.String:
		return a.Value(i)
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	}
	return a.ValueStr(i)
}

func TestReadsEveryVersionOfATableDeltaRSWrote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	out := testenv.RunPython(t, writeDeltaRS, dir)
	want := map[int64][]string{}
	v := int64(-1)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n, ok := strings.CutPrefix(l, "v "); ok {
			v, _ = strconv.ParseInt(n, 10, 64)
			want[v] = []string{}
			continue
		}
		want[v] = append(want[v], l)
	}
	if v < 6 {
		t.Fatalf("delta-rs made %d versions:\n%s", v+1, out)
	}
	if _, err := os.Stat(filepath.Join(dir, delta.LogDir, delta.CheckpointName(4))); err != nil {
		t.Fatalf("delta-rs wrote no checkpoint of version 4: %v", err)
	}
	for version := int64(0); version <= v; version++ {
		got := readDeltaRows(t, DeltaPath(dir, version))
		if strings.Join(got, "\n") != strings.Join(want[version], "\n") {
			t.Fatalf("version %d:\n got %s\nwant %s", version, strings.Join(got, "\n"), strings.Join(want[version], "\n"))
		}
	}
	if got := readDeltaRows(t, dir); strings.Join(got, "\n") != strings.Join(want[v], "\n") {
		t.Fatalf("latest:\n got %s\nwant %s", got, want[v])
	}
	// The rows of the deleted files' versions are still on disk, but not in the snapshot.
	if _, err := Open(context.Background(), DeltaPath(dir, v+1)); !errors.Is(err, delta.ErrNoVersion) {
		t.Fatalf("version %d: %v, want ErrNoVersion", v+1, err)
	}
	// Read without the commits the checkpoint covers: the checkpoint delta-rs wrote is what we read.
	for k := int64(0); k < 4; k++ {
		os.Remove(filepath.Join(dir, delta.LogDir, delta.CommitName(k)))
	}
	if got := readDeltaRows(t, dir); strings.Join(got, "\n") != strings.Join(want[v], "\n") {
		t.Fatalf("latest from the checkpoint:\n got %s\nwant %s", got, want[v])
	}
}
