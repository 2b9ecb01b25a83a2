package exec

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
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

func TestPartitionRecordNestedColumns(t *testing.T) {
	// Partial count_distinct state (list) and a struct column cross shuffles.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(12, 12))
	in := randRecordForTest(mem, rng, 300, 10, 10)
	defer in.Release()
	aggs := []Agg{{Func: AggCountDistinct, Arg: expr.Col("str"), Name: "d"}}
	partial := runAggForTest(t, mem, in.Schema(), []arrow.Record{in}, colsForTest("i8"), aggs, AggPartial)
	defer releaseRecs(partial)
	rec := partial[0]

	st := arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	sb := array.NewStructBuilder(mem, st)
	for i := 0; i < int(rec.NumRows()); i++ {
		if i%4 == 0 {
			sb.AppendNull()
			continue
		}
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int64Builder).Append(int64(i))
	}
	sc := sb.NewArray()
	sb.Release()
	schema := arrow.NewSchema(append(rec.Schema().Fields(), arrow.Field{Name: "s", Type: st, Nullable: true}), nil)
	withStruct := array.NewRecord(schema, append(append([]arrow.Array(nil), rec.Columns()...), sc), rec.NumRows())
	sc.Release()
	defer withStruct.Release()

	parts, err := PartitionRecord(mem, withStruct, []int{0}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseRecs(parts)
	want := map[string]string{}
	for i := 0; i < int(withStruct.NumRows()); i++ {
		want[rowKeyForTest(withStruct.Columns()[:2], i)] = withStruct.Column(2).ValueStr(i)
	}
	n := 0
	for _, p := range parts {
		if p == nil {
			continue
		}
		for i := 0; i < int(p.NumRows()); i++ {
			k := rowKeyForTest(p.Columns()[:2], i)
			if w, ok := want[k]; !ok || w != p.Column(2).ValueStr(i) {
				t.Fatalf("row %s / %s not in input (want %q)", k, p.Column(2).ValueStr(i), w)
			}
			n++
		}
	}
	if n != int(withStruct.NumRows()) {
		t.Fatalf("%d rows routed, want %d", n, withStruct.NumRows())
	}
}

func TestPartitionRecordGoldenRouting(t *testing.T) {
	// Pinned: executors of different builds must route keys identically.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewInt64Builder(mem)
	for i := int64(0); i < 12; i++ {
		b.Append(i)
	}
	col := b.NewArray()
	b.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecord(schema, []arrow.Array{col}, 12)
	col.Release()
	defer rec.Release()
	parts, err := PartitionRecord(mem, rec, []int{0}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseRecs(parts)
	got := make([]string, len(parts))
	for p, r := range parts {
		if r != nil {
			got[p] = fmt.Sprint(r.Column(0).(*array.Int64).Int64Values())
		}
	}
	want := []string{"[6 9 10 11]", "", "[0 2 3 5 8]", "[1 4 7]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("routing %q, pinned %q", got, want)
	}
}
