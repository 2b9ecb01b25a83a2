package parquet

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

const mergeScript = `
import sys, os
import pyarrow as pa, pyarrow.parquet as pq
out = sys.argv[1]
os.makedirs(out + "/ok")
os.makedirs(out + "/conflict")
pq.write_table(pa.table({"id": pa.array([1, 2, 3], pa.int64()), "x": ["a", None, "c"]}), out + "/ok/a.parquet")
pq.write_table(pa.table({"y": pa.array([0.5, 1.5], pa.float64()), "id": pa.array([4, 5], pa.int64())}), out + "/ok/b.parquet")
pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), out + "/conflict/a.parquet")
pq.write_table(pa.table({"id": pa.array(["one"], pa.string())}), out + "/conflict/b.parquet")
pq.write_table(pa.table({"id": pa.array(range(5000), pa.int64()), "s": ["v%d" % i for i in range(5000)]}),
               out + "/good.parquet", write_page_checksum=True, compression="snappy", use_dictionary=False, row_group_size=1000)
pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()),
                         "l": pa.array([[1, 2], None], pa.list_(pa.int64())),
                         "st": pa.array([{"a": 1, "b": "x"}, None], pa.struct([("a", pa.int32()), ("b", pa.string())])),
                         "m": pa.array([[("k", 1.5)], []], pa.map_(pa.string(), pa.float64())),
                         "after": ["p", None]}), out + "/nested.parquet")
pq.write_table(pa.table({"id": pa.array([i if i % 3 else None for i in range(3000)], pa.int64()),
                         "s": [("v%d" % (i % 50)) if i % 4 else None for i in range(3000)],
                         "d": pa.array([i * 0.25 for i in range(3000)], pa.float64()),
                         "b": [bytes([i % 256]) * (i % 5) for i in range(3000)]}),
               out + "/nocrc.parquet", compression="none", row_group_size=700, data_page_size=1024)
print("ok")
`

func TestSchemaMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	testenv.RunPython(t, mergeScript, dir)

	t.Run("a column missing from a file reads as nulls", func(t *testing.T) {
		tab, err := Open(context.Background(), filepath.Join(dir, "ok"))
		if err != nil {
			t.Fatal(err)
		}
		want := arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			{Name: "x", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "y", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		}, nil)
		if !tab.Schema.Equal(want) {
			t.Fatalf("schema %s, want %s", tab.Schema, want)
		}
		got, _ := readTable(t, mem, tab, tab.Schema, nil, 2)
		compareColumns(t, got, map[string][]any{
			"id": {"1", "2", "3", "4", "5"},
			"x":  {"a", nil, "c", nil, nil},
			"y":  {nil, nil, nil, "4602678819172646912", "4609434218613702656"},
		}, "id", "x", "y")
		// A predicate on a column a file lacks prunes that file: nulls never match.
		_, st := tab.Splits([]Predicate{{Column: "y", Op: "gt", Values: []any{0.0}}})
		if st.FilesPruned != 1 {
			t.Errorf("pruned %+v, want the file without y", st)
		}
	})

	t.Run("conflicting types name the column and both files", func(t *testing.T) {
		_, err := Open(context.Background(), filepath.Join(dir, "conflict"))
		if !errors.Is(err, ErrSchemaConflict) {
			t.Fatalf("err %v, want ErrSchemaConflict", err)
		}
		for _, s := range []string{`"id"`, filepath.Join("conflict", "a.parquet"), filepath.Join("conflict", "b.parquet")} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not name %s", err, s)
			}
		}
	})

	t.Run("nested columns are typed, maps refused by name when read, their neighbours read", func(t *testing.T) {
		tab, err := Open(context.Background(), filepath.Join(dir, "nested.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		want := arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
			{Name: "st", Type: arrow.StructOf(
				arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
				arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
			{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64), Nullable: true},
			{Name: "after", Type: arrow.BinaryTypes.String, Nullable: true},
		}, nil)
		if !tab.Schema.Equal(want) {
			t.Errorf("schema\n%s\nwant\n%s", tab.Schema, want)
		}
		got, _ := readTable(t, mem, tab, project(t, tab.Schema, "after", "id"), nil, 10)
		compareColumns(t, got, map[string][]any{"id": {"1", "2"}, "after": {"p", nil}}, "id", "after")
		splits, _ := tab.Splits(nil)
		err = ReadSplit(context.Background(), mem, splits[0], project(t, tab.Schema, "id", "m"), nil, 10, func(r arrow.Record) error { r.Release(); return nil })
		if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), `"m"`) || !strings.Contains(err.Error(), "nested") {
			t.Fatalf("err %v, want ErrUnsupportedType naming column m", err)
		}
	})
}

func TestBadInputIsAClearError(t *testing.T) {
	dir := t.TempDir()
	testenv.RunPython(t, mergeScript, dir)
	good, err := os.ReadFile(filepath.Join(dir, "good.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(filepath.Join(empty, "_temporary"), 0o755)
	write("empty/_SUCCESS", nil)
	write("empty/_temporary/part-0.parquet", good)

	footerLen := int(uint32(good[len(good)-8]) | uint32(good[len(good)-7])<<8 | uint32(good[len(good)-6])<<16 | uint32(good[len(good)-5])<<24)
	badFooter := append([]byte(nil), good...)
	for i := len(good) - 8 - footerLen; i < len(good)-8; i += 3 {
		badFooter[i] ^= 0x5a
	}
	hugeFooter := append([]byte(nil), good...)
	hugeFooter[len(good)-5] = 0x7f

	cases := []struct {
		name string
		path string
		want error
	}{
		{"a missing path", filepath.Join(dir, "nope.parquet"), os.ErrNotExist},
		{"a glob with no match", filepath.Join(dir, "*.nothing"), ErrNoFiles},
		{"a directory with no parquet files", empty, ErrNoFiles},
		{"a non-parquet file", write("text.parquet", []byte("id,name\n1,a\n2,b\n3,c\n")), ErrNotParquet},
		{"an empty file", write("zero.parquet", nil), ErrNotParquet},
		{"a truncated file", write("truncated.parquet", good[:len(good)/2]), ErrCorrupt},
		{"a corrupted footer", write("badfooter.parquet", badFooter), ErrCorrupt},
		{"a footer length past the start", write("hugefooter.parquet", hugeFooter), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(context.Background(), c.path)
			if !errors.Is(err, c.want) {
				t.Fatalf("Open(%s) = %v, want %v", c.path, err, c.want)
			}
			if !strings.Contains(err.Error(), strings.TrimSuffix(c.path, "*.nothing")) {
				t.Errorf("error %q does not name %s", err, c.path)
			}
		})
	}

	t.Run("a corrupted page fails ReadSplit naming file, column and row group", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		// Flip bytes inside the data pages (between the magic and the footer)
		// of a copy: the footer still opens, the pages do not decode.
		bad := append([]byte(nil), good...)
		for i := 200; i < len(good)-8-footerLen-200; i += 97 {
			bad[i] ^= 0xff
		}
		p := write("badpages.parquet", bad)
		tab, err := Open(context.Background(), p)
		if err != nil {
			t.Fatalf("the footer is intact, Open failed: %v", err)
		}
		splits, _ := tab.Splits(nil)
		var failed error
		for _, s := range splits {
			err := ReadSplit(context.Background(), mem, s, tab.Schema, nil, 333, func(r arrow.Record) error {
				r.Release()
				return nil
			})
			if err != nil {
				failed = err
				if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "row group") || !strings.Contains(err.Error(), "column") {
					t.Errorf("error %q does not name file, row group and column", err)
				}
			}
		}
		if failed == nil {
			t.Fatal("reading corrupted pages succeeded")
		}
		t.Logf("example error: %v", failed)
	})

	t.Run("ReadSplit of a missing file names it", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		p := filepath.Join(dir, "gone.parquet")
		err := ReadSplit(context.Background(), mem, Split{Path: p, RowGroups: []int{0}}, arrow.NewSchema(nil, nil), nil, 10, func(r arrow.Record) error { r.Release(); return nil })
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestRandomCorruptionNeverPanics flips bytes in the pages of a file written
// without checksums: each read must end in rows or in an error, never in a
// panic or a leak.
func TestRandomCorruptionNeverPanics(t *testing.T) {
	dir := t.TempDir()
	testenv.RunPython(t, mergeScript, dir)
	good, err := os.ReadFile(filepath.Join(dir, "nocrc.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	footerLen := int(uint32(good[len(good)-8]) | uint32(good[len(good)-7])<<8 | uint32(good[len(good)-6])<<16 | uint32(good[len(good)-5])<<24)
	pagesEnd := len(good) - 8 - footerLen
	seed := int64(42)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	failures := 0
	for k := 0; k < 300; k++ {
		bad := append([]byte(nil), good...)
		for j := 0; j < 1+rng.Intn(8); j++ {
			bad[4+rng.Intn(pagesEnd-4)] = byte(rng.Intn(256))
		}
		p := filepath.Join(dir, "fuzz.parquet")
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		tab, err := Open(context.Background(), p)
		if err != nil {
			t.Fatalf("footer intact, Open failed: %v", err)
		}
		splits, _ := tab.Splits(nil)
		for _, s := range splits {
			err := ReadSplit(context.Background(), mem, s, tab.Schema, nil, 256, func(r arrow.Record) error {
				r.Release()
				return nil
			})
			if err != nil {
				failures++
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("error %q does not name the file", err)
				}
			}
		}
	}
	t.Logf("%d of the corrupted reads failed cleanly", failures)
}

func TestReadSplitStopsOnEmitErrorAndCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	testenv.RunPython(t, mergeScript, dir)
	tab, err := Open(context.Background(), filepath.Join(dir, "good.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	splits, _ := tab.Splits(nil)
	stop := errors.New("enough")
	calls := 0
	err = ReadSplit(context.Background(), mem, splits[0], tab.Schema, nil, 100, func(r arrow.Record) error {
		r.Release()
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("err %v after %d calls, want the emit error after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = ReadSplit(ctx, mem, splits[0], tab.Schema, nil, 100, func(r arrow.Record) error {
		r.Release()
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}
