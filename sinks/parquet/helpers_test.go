package parquet

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

// recordFromJSON builds a record from a JSON array of row objects.
func recordFromJSON(t testing.TB, mem memory.Allocator, schema *arrow.Schema, rows string) arrow.Record {
	t.Helper()
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(rows))
	if err != nil {
		t.Fatalf("record from json: %v", err)
	}
	return rec
}

// decodeJSON decodes with json.Number so 64-bit integers compare exactly.
func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode json %q: %v", s, err)
	}
	return v
}

func jsonEqual(t testing.TB, what, got, want string) {
	t.Helper()
	g, w := decodeJSON(t, got), decodeJSON(t, want)
	if !reflect.DeepEqual(g, w) {
		diffJSON(t, what, g, w)
		var gb, wb bytes.Buffer
		json.Indent(&gb, []byte(got), "", "  ")
		json.Indent(&wb, []byte(want), "", "  ")
		t.Errorf("%s:\n got %s\nwant %s", what, gb.String(), wb.String())
	}
}

// writeFiles writes recs with a fresh FileWriter under dir and closes it.
func writeFiles(t testing.TB, mem memory.Allocator, dir string, schema *arrow.Schema, opts Options, recs ...arrow.Record) []WrittenFile {
	t.Helper()
	w, err := NewFileWriter(mem, dir, "part", schema, opts)
	if err != nil {
		t.Fatalf("NewFileWriter: %v", err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return files
}

// pyReadColumns is a python script printing, for the file or dataset
// directory in argv[1], {"schema": {name: type}, "columns": {name: values}}
// with values made JSON-exact: timestamps and dates as their integers,
// decimals as strings, binary as hex.
const pyReadColumns = `
import sys, json, pyarrow as pa, pyarrow.parquet as pq, pyarrow.dataset as ds
path = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "hive":
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
else:
    t = pq.read_table(path)
if "sort" in sys.argv[2:]:
    t = t.sort_by("id")
out = {"schema": {f.name: str(f.type) for f in t.schema}, "columns": {}}
for f in t.schema:
    c = t.column(f.name)
    if pa.types.is_date(f.type):
        c = c.cast(pa.int32())
    if pa.types.is_timestamp(f.type):
        c = c.cast(pa.int64())
    v = c.to_pylist()
    if pa.types.is_decimal(f.type):
        v = [None if x is None else str(x) for x in v]
    if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
        v = [None if x is None else x.hex() for x in v]
    out["columns"][f.name] = v
print(json.dumps(out, default=str))
`

func pyRead(t testing.TB, path string, args ...string) string {
	t.Helper()
	return testenv.RunPython(t, pyReadColumns, append([]string{path}, args...)...)
}

func abs(t testing.TB, dir string, f WrittenFile) string {
	return filepath.Join(dir, f.Path)
}

// diffJSON reports the paths where two decoded JSON values differ.
func diffJSON(t testing.TB, path string, got, want any) {
	t.Helper()
	gm, ok1 := got.(map[string]any)
	wm, ok2 := want.(map[string]any)
	if ok1 && ok2 {
		for k := range wm {
			diffJSON(t, path+"."+k, gm[k], wm[k])
		}
		for k := range gm {
			if _, ok := wm[k]; !ok {
				t.Errorf("%s.%s: unexpected %v", path, k, gm[k])
			}
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", path, got, want)
	}
}
