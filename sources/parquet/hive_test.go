package parquet

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

const hiveRows = 4000

// hiveScript writes a Hive-partitioned dataset (region, year) with a null
// region partition, a region value that needs escaping, 100-row row groups,
// and the litter Spark leaves behind (_SUCCESS, _temporary, .staging).
const hiveScript = `
import sys, os
import pyarrow as pa, pyarrow.dataset as ds
out = sys.argv[1]
n = 4000
ids = list(range(n))
t = pa.table({
  "id": pa.array(ids, pa.int64()),
  "v": pa.array([i * 0.5 for i in ids], pa.float64()),
  "name": pa.array([("n%02d" % (i % 13)) if i % 5 else None for i in ids], pa.string()),
  "region": pa.array([None if i % 10 == 0 else ["eu", "us west/1", "ap"][i % 3] for i in ids], pa.string()),
  "year": pa.array([2020 + (i // 2000) for i in ids], pa.int64()),
})
part = ds.partitioning(pa.schema([("region", pa.string()), ("year", pa.int64())]), flavor="hive")
ds.write_dataset(t, out, format="parquet", partitioning=part, max_rows_per_group=100, min_rows_per_group=100,
                 use_threads=False, existing_data_behavior="overwrite_or_ignore")
open(out + "/_SUCCESS", "w").close()
os.makedirs(out + "/.staging")
open(out + "/.staging/junk.parquet", "w").write("junk")
os.makedirs(out + "/_temporary/0")
open(out + "/_temporary/0/part-0.parquet", "w").write("junk")
print("ok")
`

type hiveRow struct {
	id     int64
	v      float64
	name   *string
	region *string
	year   int64
}

func hiveExpected(i int) hiveRow {
	r := hiveRow{id: int64(i), v: float64(i) * 0.5, year: 2020 + int64(i/2000)}
	if i%5 != 0 {
		s := fmt.Sprintf("n%02d", i%13)
		r.name = &s
	}
	if i%10 != 0 {
		s := []string{"eu", "us west/1", "ap"}[i%3]
		r.region = &s
	}
	return r
}

func rowsOf(t *testing.T, c columns) []hiveRow {
	t.Helper()
	rows := make([]hiveRow, len(c["id"]))
	for i := range rows {
		id, _ := strconv.ParseInt(c["id"][i].(string), 10, 64)
		bits, _ := strconv.ParseUint(c["v"][i].(string), 10, 64)
		year, _ := strconv.ParseInt(c["year"][i].(string), 10, 64)
		rows[i] = hiveRow{id: id, v: math.Float64frombits(bits), year: year}
		if s, ok := c["name"][i].(string); ok {
			rows[i].name = &s
		}
		if s, ok := c["region"][i].(string); ok {
			rows[i].region = &s
		}
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].id < rows[b].id })
	return rows
}

func sameRow(a, b hiveRow) bool {
	eq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.id == b.id && a.v == b.v && a.year == b.year && eq(a.name, b.name) && eq(a.region, b.region)
}

func writeHive(t *testing.T) string {
	dir := t.TempDir()
	testenv.RunPython(t, hiveScript, dir)
	return dir
}

func TestHivePartitionedDirectory(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := writeHive(t)
	tab, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "region", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "year", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	if !tab.Schema.Equal(want) {
		t.Fatalf("schema\n%s\nwant\n%s", tab.Schema, want)
	}
	if fmt.Sprint(tab.PartitionColumns) != "[region year]" {
		t.Errorf("partition columns %v", tab.PartitionColumns)
	}
	if len(tab.Files) != 8 { // 4 regions (one null) x 2 years
		t.Errorf("%d files, want 8: %+v", len(tab.Files), tab.Files)
	}
	var sawNull, sawEscaped bool
	for _, f := range tab.Files {
		sawNull = sawNull || f.Partition[0].Null
		sawEscaped = sawEscaped || f.Partition[0].Value == "us west/1"
	}
	if !sawNull || !sawEscaped {
		t.Errorf("null partition seen %v, unescaped value seen %v", sawNull, sawEscaped)
	}

	got, st := readTable(t, mem, tab, tab.Schema, nil, 64)
	if st.FilesPruned != 0 || st.RowGroupsPruned != 0 || st.Files != 8 {
		t.Errorf("no predicates but %+v", st)
	}
	rows := rowsOf(t, got)
	if len(rows) != hiveRows {
		t.Fatalf("%d rows, want %d", len(rows), hiveRows)
	}
	for i, r := range rows {
		if w := hiveExpected(i); !sameRow(r, w) {
			t.Fatalf("row %d: %+v, want %+v", i, r, w)
		}
	}

	t.Run("projection of a subset in the caller's order", func(t *testing.T) {
		sub := project(t, tab.Schema, "year", "name", "id")
		got, _ := readTable(t, mem, tab, sub, nil, 1000)
		if len(got) != 3 || len(got["id"]) != hiveRows {
			t.Fatalf("got columns %d, rows %d", len(got), len(got["id"]))
		}
		for i := range got["id"] {
			id, _ := strconv.ParseInt(got["id"][i].(string), 10, 64)
			w := hiveExpected(int(id))
			if got["year"][i] != strconv.FormatInt(w.year, 10) || (w.name == nil) != (got["name"][i] == nil) {
				t.Fatalf("row id %d: year %v name %v, want %+v", id, got["year"][i], got["name"][i], w)
			}
		}
	})
}

func TestPruningProvablyPrunesAndKeepsEveryMatchingRow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tab, err := Open(context.Background(), writeHive(t))
	if err != nil {
		t.Fatal(err)
	}
	all, _ := readTable(t, mem, tab, tab.Schema, nil, 0)
	allRows := rowsOf(t, all)

	filesWith := func(keep func(f File) bool) int {
		n := 0
		for _, f := range tab.Files {
			if !keep(f) {
				n++
			}
		}
		return n
	}
	cases := []struct {
		name        string
		preds       []Predicate
		filesPruned int // exact, -1 to skip
		minRGPruned int
		match       func(r hiveRow) bool
	}{
		{"a partition equality prunes the other partitions",
			[]Predicate{{Column: "region", Op: "eq", Values: []any{"eu"}}},
			filesWith(func(f File) bool { return !f.Partition[0].Null && f.Partition[0].Value == "eu" }), 1,
			func(r hiveRow) bool { return r.region != nil && *r.region == "eu" }},
		{"is_null on a partition keeps only the null partition",
			[]Predicate{{Column: "region", Op: "is_null"}},
			filesWith(func(f File) bool { return f.Partition[0].Null }), 1,
			func(r hiveRow) bool { return r.region == nil }},
		{"a range on a sorted column prunes row groups by min/max",
			[]Predicate{{Column: "id", Op: "ge", Values: []any{int64(3900)}}},
			-1, 20,
			func(r hiveRow) bool { return r.id >= 3900 }},
		{"conjuncts on a partition and a column combine",
			[]Predicate{{Column: "year", Op: "eq", Values: []any{int64(2021)}}, {Column: "id", Op: "lt", Values: []any{int64(2300)}}},
			filesWith(func(f File) bool { return f.Partition[1].Value == "2021" }), 20,
			func(r hiveRow) bool { return r.year == 2021 && r.id < 2300 }},
		{"in on a float column prunes row groups",
			[]Predicate{{Column: "v", Op: "in", Values: []any{float64(10), float64(1999.5)}}},
			-1, 20,
			func(r hiveRow) bool { return r.v == 10 || r.v == 1999.5 }},
		{"a string range keeps every row group that may hold a match",
			[]Predicate{{Column: "name", Op: "gt", Values: []any{"n11"}}},
			-1, 0,
			func(r hiveRow) bool { return r.name != nil && *r.name > "n11" }},
		{"a predicate of another kind prunes nothing",
			[]Predicate{{Column: "id", Op: "eq", Values: []any{"7"}}},
			0, 0,
			func(r hiveRow) bool { return true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, st := readTable(t, mem, tab, tab.Schema, c.preds, 0)
			if st.Files != len(tab.Files) || st.RowGroups == 0 {
				t.Errorf("stats %+v", st)
			}
			if c.filesPruned >= 0 && st.FilesPruned != c.filesPruned {
				t.Errorf("pruned %d files, want %d (%+v)", st.FilesPruned, c.filesPruned, st)
			}
			if st.RowGroupsPruned < c.minRGPruned {
				t.Errorf("pruned %d row groups, want at least %d (%+v)", st.RowGroupsPruned, c.minRGPruned, st)
			}
			var filtered []hiveRow
			for _, r := range rowsOf(t, got) {
				if c.match(r) {
					filtered = append(filtered, r)
				}
			}
			var want []hiveRow
			for _, r := range allRows {
				if c.match(r) {
					want = append(want, r)
				}
			}
			if len(filtered) != len(want) {
				t.Fatalf("%d matching rows after pruning, %d without", len(filtered), len(want))
			}
			for i := range want {
				if !sameRow(filtered[i], want[i]) {
					t.Fatalf("row %d: %+v, want %+v", i, filtered[i], want[i])
				}
			}
		})
	}

	t.Run("random predicates never lose a matching row", func(t *testing.T) {
		seed := int64(20261123)
		rng := rand.New(rand.NewSource(seed))
		t.Logf("seed %d", seed)
		ops := []string{"eq", "ne", "lt", "le", "gt", "ge", "in", "is_null", "is_not_null"}
		for k := 0; k < 40; k++ {
			op := ops[rng.Intn(len(ops))]
			x := int64(rng.Intn(hiveRows + 200))
			p := Predicate{Column: "id", Op: op, Values: []any{x}}
			if op == "in" {
				p.Values = append(p.Values, int64(rng.Intn(hiveRows)))
			}
			match := func(r hiveRow) bool {
				switch op {
				case "eq":
					return r.id == x
				case "ne":
					return r.id != x
				case "lt":
					return r.id < x
				case "le":
					return r.id <= x
				case "gt":
					return r.id > x
				case "ge":
					return r.id >= x
				case "in":
					return r.id == x || r.id == p.Values[1].(int64)
				case "is_null":
					return false
				}
				return true
			}
			got, _ := readTable(t, mem, tab, project(t, tab.Schema, "id", "v", "name", "region", "year"), []Predicate{p}, 0)
			n := 0
			for _, r := range rowsOf(t, got) {
				if match(r) {
					n++
				}
			}
			w := 0
			for _, r := range allRows {
				if match(r) {
					w++
				}
			}
			if n != w {
				t.Fatalf("seed %d, %+v: %d matching rows after pruning, want %d", seed, p, n, w)
			}
		}
	})
}

func TestPartitionTypeInference(t *testing.T) {
	pv := func(vals ...string) []PartitionValue {
		var out []PartitionValue
		for _, v := range vals {
			if v == hiveNull {
				out = append(out, PartitionValue{Null: true})
			} else {
				out = append(out, PartitionValue{Value: v})
			}
		}
		return out
	}
	cases := []struct {
		vals []PartitionValue
		want arrow.DataType
	}{
		{pv("1", "-20", hiveNull), arrow.PrimitiveTypes.Int64},
		{pv("2024-01-31", "1999-12-01"), arrow.FixedWidthTypes.Date32},
		{pv("2024-01-31", "7"), arrow.BinaryTypes.String},
		{pv("eu", "1"), arrow.BinaryTypes.String},
		{pv(hiveNull), arrow.BinaryTypes.String},
	}
	for _, c := range cases {
		if got := partitionType(c.vals); !arrow.TypeEqual(got, c.want) {
			t.Errorf("partitionType(%v) = %s, want %s", c.vals, got, c.want)
		}
	}
}

func TestUnescapePartitionValues(t *testing.T) {
	for in, want := range map[string]string{
		"us%20west%2F1": "us west/1",
		"a+b":           "a+b",
		"100%":          "100%",
		"%zz%4":         "%zz%4",
		"%3D%3d":        "==",
		"plain":         "plain",
	} {
		if got := unescapePath(in); got != want {
			t.Errorf("unescapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

const pageIndexScript = `
import sys
import pyarrow as pa, pyarrow.parquet as pq
v = list(range(0, 1000)) + list(range(2000, 3000))
t = pa.table({"v": pa.array(v, pa.int64()), "s": ["x%05d" % i for i in v]})
pq.write_table(t, sys.argv[1], row_group_size=len(v), data_page_size=1024, write_batch_size=100,
               write_page_index=True, use_dictionary=False)
print("ok")
`

func TestColumnIndexPrunesValuesBetweenPages(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	path := filepath.Join(t.TempDir(), "paged.parquet")
	testenv.RunPython(t, pageIndexScript, path)
	tab, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Files[0].meta.colIndex == nil {
		t.Fatal("page index not read")
	}
	cases := []struct {
		pred   Predicate
		pruned int
		rows   int
	}{
		// 1500 lies within the chunk's [0, 2999] but in no page's range.
		{Predicate{Column: "v", Op: "eq", Values: []any{int64(1500)}}, 1, 0},
		{Predicate{Column: "s", Op: "eq", Values: []any{"x01500"}}, 1, 0},
		{Predicate{Column: "v", Op: "in", Values: []any{int64(1200), int64(1800)}}, 1, 0},
		{Predicate{Column: "v", Op: "eq", Values: []any{int64(500)}}, 0, 1},
		{Predicate{Column: "v", Op: "in", Values: []any{int64(1200), int64(2500)}}, 0, 1},
	}
	for _, c := range cases {
		got, st := readTable(t, mem, tab, tab.Schema, []Predicate{c.pred}, 0)
		if st.RowGroupsPruned != c.pruned {
			t.Errorf("%+v: pruned %d row groups, want %d", c.pred, st.RowGroupsPruned, c.pruned)
		}
		n := 0
		for i, v := range got["v"] {
			x, _ := strconv.ParseInt(v.(string), 10, 64)
			if (c.pred.Op == "eq" && x == c.pred.Values[0].(int64)) ||
				(c.pred.Op == "eq" && got["s"][i] == c.pred.Values[0]) ||
				(c.pred.Op == "in" && (x == c.pred.Values[0].(int64) || x == c.pred.Values[1].(int64))) {
				n++
			}
		}
		if n != c.rows {
			t.Errorf("%+v: %d matching rows, want %d", c.pred, n, c.rows)
		}
	}
}
