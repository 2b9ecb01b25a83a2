package exec

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestPartitionRecordRoutesEveryRowOnce(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	seed := uint64(11)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	rec := randRecordForTest(mem, rng, 1000, 30, 10)
	defer rec.Release()
	keyCols := []int{11, 4, 15} // str, i64, dec
	hashes := make([]uint64, rec.NumRows())
	HashColumns([]arrow.Array{rec.Column(11), rec.Column(4), rec.Column(15)}, hashes)
	for _, n := range []int{1, 3, 8, 2000} {
		parts, err := PartitionRecord(mem, rec, keyCols, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != n {
			t.Fatalf("%d partitions, want %d", len(parts), n)
		}
		// Expected: the input rows with hash % n == p, in input order.
		want := make([][]string, n)
		for i := 0; i < int(rec.NumRows()); i++ {
			p := hashes[i] % uint64(n)
			want[p] = append(want[p], rowKeyForTest(rec.Columns(), i))
		}
		for p, part := range parts {
			if part == nil {
				if len(want[p]) != 0 {
					t.Fatalf("n=%d: partition %d nil, want %d rows", n, p, len(want[p]))
				}
				continue
			}
			if !part.Schema().Equal(rec.Schema()) {
				t.Fatalf("partition schema %s", part.Schema())
			}
			if int(part.NumRows()) != len(want[p]) {
				t.Fatalf("n=%d: partition %d has %d rows, want %d", n, p, part.NumRows(), len(want[p]))
			}
			for i := 0; i < int(part.NumRows()); i++ {
				if got := rowKeyForTest(part.Columns(), i); got != want[p][i] {
					t.Fatalf("n=%d: partition %d row %d = %s, want %s", n, p, i, got, want[p][i])
				}
			}
		}
		releaseRecs(parts)
	}
	if _, err := PartitionRecord(mem, rec, keyCols, 0); err == nil {
		t.Fatal("no error for 0 partitions")
	}
	if _, err := PartitionRecord(mem, rec, []int{99}, 2); err == nil {
		t.Fatal("no error for a bad key column")
	}
}
