package exec

import (
	"context"
	"io"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var limitTestSchema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)

// int64RecordsForLimitTest returns records of the given sizes numbering rows 0, 1, ...
func int64RecordsForLimitTest(mem memory.Allocator, sizes ...int) []arrow.Record {
	var out []arrow.Record
	next := int64(0)
	for _, n := range sizes {
		b := array.NewInt64Builder(mem)
		for i := 0; i < n; i++ {
			b.Append(next)
			next++
		}
		col := b.NewArray()
		out = append(out, array.NewRecord(limitTestSchema, []arrow.Array{col}, int64(n)))
		col.Release()
		b.Release()
	}
	return out
}

func TestLimitSlicesAndStopsPulling(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tc := range []struct {
		n         int64
		wantSizes []int64
		wantPulls int
	}{
		{n: 0, wantSizes: nil, wantPulls: 0},
		{n: -1, wantSizes: nil, wantPulls: 0},
		{n: 3, wantSizes: []int64{3}, wantPulls: 1},
		{n: 10, wantSizes: []int64{10}, wantPulls: 1},
		{n: 12, wantSizes: []int64{10, 2}, wantPulls: 3}, // the empty record is skipped
		{n: 25, wantSizes: []int64{10, 10, 5}, wantPulls: 4},
		{n: 100, wantSizes: []int64{10, 10, 5}, wantPulls: 5},
	} {
		in := newRecordsOpForSortTest(limitTestSchema, int64RecordsForLimitTest(mem, 10, 0, 10, 5)...)
		op := NewLimit(in, tc.n)
		out := drainForSortTest(t, op)
		var sizes []int64
		want := int64(0)
		for _, r := range out {
			sizes = append(sizes, r.NumRows())
			xs := r.Column(0).(*array.Int64).Int64Values()
			for _, x := range xs {
				if x != want {
					t.Fatalf("limit %d: row %d is %d", tc.n, want, x)
				}
				want++
			}
		}
		releaseAllForSortTest(out)
		if len(sizes) != len(tc.wantSizes) {
			t.Fatalf("limit %d: sizes %v, want %v", tc.n, sizes, tc.wantSizes)
		}
		for i := range sizes {
			if sizes[i] != tc.wantSizes[i] {
				t.Fatalf("limit %d: sizes %v, want %v", tc.n, sizes, tc.wantSizes)
			}
		}
		// drain calls Next once more after EOF; a limit that ended early must
		// not pull again then.
		if in.pulls != tc.wantPulls {
			t.Fatalf("limit %d: %d pulls, want %d", tc.n, in.pulls, tc.wantPulls)
		}
		if in.closed != 1 {
			t.Fatalf("limit %d: input closed %d times", tc.n, in.closed)
		}
	}
}

func TestLimitNextAfterCloseFails(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	op := NewLimit(newRecordsOpForSortTest(limitTestSchema, int64RecordsForLimitTest(mem, 4)...), 2)
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Next(context.Background()); err == nil || err == io.EOF {
		t.Fatalf("Next after Close: %v", err)
	}
}
