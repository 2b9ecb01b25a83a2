package files

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
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
