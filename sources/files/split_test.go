package files

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/sourcetest"
)

// twoFiles puts a.parquet (5 rows, 3 row groups) and b.parquet into f's
// directory and returns the splits of the batch that logs them.
func twoFiles(t *testing.T, f *fixture, s *Source) []sources.Split {
	t.Helper()
	end := latest(t, s, `{"files":0}`)
	splits, err := s.Splits(context.Background(), sources.Offset(`{"files":0}`), sources.Offset(end))
	if err != nil {
		t.Fatal(err)
	}
	if len(splits) != 2 {
		t.Fatalf("%d splits, want one per file", len(splits))
	}
	return splits
}

func putTwo(t *testing.T, dir string) {
	put(t, dir, "a.parquet", 0, rows("a", 1, 2, 3, 4, 5)...)
	put(t, dir, "b.parquet", time.Second, rows("b", 6, 7)...)
}

func TestSplitsRoundTripThroughBytes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	putTwo(t, f.dir)
	// An executor's source, built before the driver logged the batch: it
	// decodes without the log.
	executor := f.open(t, nil)
	driver := f.open(t, nil)
	splits := twoFiles(t, f, driver)

	// A copy of the files elsewhere: a decoded split reads the decoding
	// source's Dir, not a path the driver saw.
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(copyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	putTwo(t, copyDir)
	elsewhere := f.open(t, func(c *Config) { c.Dir, c.LogDir = copyDir, filepath.Join(copyDir, "_log") })

	for _, c := range []struct {
		name string
		dec  *Source
	}{
		{"splits decode on the source that made them", driver},
		{"splits decode on a source built from the same config that never saw the batch", executor},
		{"splits decode on a source whose Dir holds a copy of the files", elsewhere},
	} {
		t.Run(c.name, func(t *testing.T) {
			sourcetest.CheckRoundTrip(t, mem, splits, c.dec)
		})
	}
}

func TestDecodeSplitRefusesBytesItDidNotMake(t *testing.T) {
	f := newFixture(t)
	putTwo(t, f.dir)
	s := f.open(t, nil)
	good, err := twoFiles(t, f, s)[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	body := func(file string, rgs []int, rows int64) []byte {
		b, err := sources.MarshalSplit("files", "files", splitBody{File: file, RowGroups: rgs, Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sourcetest.CheckRefused(t, s, "files", good, map[string][]byte{
		"a file outside the directory is refused": body("../a.parquet", []int{0}, 2),
		"a path into a subdirectory is refused":   body("sub/a.parquet", []int{0}, 2),
		"the directory itself is refused":         body(".", []int{0}, 2),
		"a split without a file is refused":       body("", []int{0}, 2),
		"a split without row groups is refused":   body("a.parquet", nil, 2),
		"row groups out of order are refused":     body("a.parquet", []int{1, 0}, 2),
		"a negative row group is refused":         body("a.parquet", []int{-1}, 2),
		"a negative row count is refused":         body("a.parquet", []int{0}, -2),
	})
}

func TestADecodedSplitOfADeletedFileIsGone(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	putTwo(t, f.dir)
	s := f.open(t, nil)
	b, err := twoFiles(t, f, s)[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.dir, "a.parquet")); err != nil {
		t.Fatal(err)
	}
	sp, err := f.open(t, nil).DecodeSplit(b)
	if err != nil {
		t.Fatalf("decode: %v (reading is what fails)", err)
	}
	err = sp.Read(context.Background(), mem, func(r arrow.Record) error { r.Release(); return nil })
	if !errors.Is(err, sources.ErrOffsetGone) {
		t.Fatalf("read a split of a deleted file: %v, want ErrOffsetGone", err)
	}
}

// A query that reads some of a file's columns decodes only those: a column
// it does not read cannot fail it (a nested one, which the reader refuses,
// asking to project it away), and the record holds the columns asked for,
// in the order asked.
func TestReadColumnsDecodesOnlyTheColumnsAsked(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	put(t, f.dir, "n.parquet", 0, nestedRow{ID: 1, Tags: []tag{{"x"}}}, nestedRow{ID: 2}, nestedRow{ID: 3, Tags: []tag{{"y"}, {"z"}}})
	s := f.open(t, nil)
	end := latest(t, s, `{"files":0}`)
	splits, err := s.Splits(context.Background(), sources.Offset(`{"files":0}`), sources.Offset(end))
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range splits {
		if err := sp.Read(context.Background(), mem, func(r arrow.Record) error { r.Release(); return nil }); err == nil || !strings.Contains(err.Error(), "project it away") {
			t.Fatalf("reading every column of %s: %v, want the nested column refused", sp, err)
		}
	}
	var ids []int64
	for _, sp := range splits {
		err := sp.(sources.ColumnReader).ReadColumns(context.Background(), mem, []string{"id"}, func(r arrow.Record) error {
			defer r.Release()
			if r.NumCols() != 1 || r.ColumnName(0) != "id" {
				t.Errorf("columns %v, want [id]", r.Schema())
			}
			ids = append(ids, r.Column(0).(*array.Int64).Int64Values()...)
			return nil
		})
		if err != nil {
			t.Fatalf("reading id of %s: %v", sp, err)
		}
	}
	if want := []int64{1, 2, 3}; !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if err := splits[0].(sources.ColumnReader).ReadColumns(context.Background(), mem, []string{"nope"}, func(r arrow.Record) error { r.Release(); return nil }); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("an unknown column: %v, want an error naming it", err)
	}

	// The order asked is the order given, and the positions still name
	// the file.
	f = newFixture(t)
	putTwo(t, f.dir)
	s = f.open(t, nil)
	var cells []string
	for _, sp := range twoFiles(t, f, s) {
		err := sp.(sources.PositionReader).ReadAt(context.Background(), mem, []string{"name", "id"}, func(r arrow.Record, at func() string) error {
			defer r.Release()
			if r.ColumnName(0) != "name" || r.ColumnName(1) != "id" {
				t.Errorf("columns %v, want [name id]", r.Schema())
			}
			if !strings.Contains(at(), ".parquet, row group") {
				t.Errorf("position %q names no file and row group", at())
			}
			for i := 0; i < int(r.NumRows()); i++ {
				cells = append(cells, r.Column(0).ValueStr(i)+":"+r.Column(1).ValueStr(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := "a1:1 a2:2 a3:3 a4:4 a5:5 b6:6 b7:7"; strings.Join(cells, " ") != want {
		t.Errorf("rows %q, want %q", strings.Join(cells, " "), want)
	}
}

// nestedRow's tags are a list of structs, which the reader cannot read yet.
type nestedRow struct {
	ID   int64 `parquet:"id"`
	Tags []tag `parquet:"tags,list"`
}

type tag struct {
	K string `parquet:"k"`
}
