package shuffle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/scheduler"
)

func block(mem memory.Allocator, from, n int64) []arrow.Record {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Append(i)
	}
	col := b.NewArray()
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	return []arrow.Record{array.NewRecord(schema, []arrow.Array{col}, n)}
}

func sum(t *testing.T, recs []arrow.Record) int64 {
	var s int64
	for _, r := range recs {
		for _, v := range r.Column(0).(*array.Int64).Int64Values() {
			s += v
		}
		r.Release()
	}
	return s
}

func TestBlocksBeyondTheBudgetSpillToDiskAndReadBackTheSame(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	dir := filepath.Join(t.TempDir(), "run-1")
	s := &shuffle.Local{Node: "n", Dir: dir, Budget: &shuffle.Budget{Limit: 2*8192 + 100}, Mem: mem}
	var locs []scheduler.Location
	for m := 0; m < 4; m++ {
		loc, err := s.Put(0, m, 0, block(mem, int64(m*1000), 1000))
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, loc)
	}
	if s.Spilled() != 2 {
		t.Fatalf("%d blocks spilled, want 2 (the budget holds two)", s.Spilled())
	}
	recs, err := s.Fetch(context.Background(), locs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum(t, recs), int64(3999*4000/2); got != want {
		t.Fatalf("sum %d, want %d", got, want)
	}
	s.Release(0)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d files left after Release", len(ents))
	}
	if _, err := s.Fetch(context.Background(), locs[:1]); !errors.As(err, new(*scheduler.FetchError)) {
		t.Fatalf("fetch after release: %v, want a FetchError", err)
	}
	s.Close()
	mem.AssertSize(t, 0)
}

func TestASpillThatCannotBeWrittenNamesTheFile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o600)
	s := &shuffle.Local{Node: "n", Dir: file, Budget: &shuffle.Budget{Limit: 0}, Mem: mem}
	_, err := s.Put(1, 2, 3, block(mem, 0, 10))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(file, "1-2-3.arrow")) {
		t.Fatalf("err = %v, want it to name the spill file", err)
	}
	s.Close()
	mem.AssertSize(t, 0)
}
