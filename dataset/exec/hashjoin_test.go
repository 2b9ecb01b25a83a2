package exec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

// joinSideForTest builds batches of (key1, key2 string, payload) with
// duplicate and null keys; key1 is int64 or int32.
func joinSideForTest(mem memory.Allocator, rng *rand.Rand, prefix string, key1 arrow.DataType, batches []int) (*arrow.Schema, []arrow.Record) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: prefix + "k", Type: key1, Nullable: true},
		{Name: prefix + "k2", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: prefix + "v", Type: arrow.BinaryTypes.String},
	}, nil)
	var recs []arrow.Record
	id := 0
	for _, n := range batches {
		b := array.NewRecordBuilder(mem, schema)
		for i := 0; i < n; i++ {
			k := rng.IntN(6)
			if rng.IntN(5) == 0 {
				b.Field(0).AppendNull()
			} else if kb, ok := b.Field(0).(*array.Int64Builder); ok {
				kb.Append(int64(k))
			} else {
				b.Field(0).(*array.Int32Builder).Append(int32(k))
			}
			if rng.IntN(8) == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.StringBuilder).Append([]string{"x", "a long key value"}[rng.IntN(2)])
			}
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("%s%d", prefix, id))
			id++
		}
		recs = append(recs, b.NewRecord())
		b.Release()
	}
	return schema, recs
}

type joinRowForTest struct {
	keys []any
	text string
}

func joinRowsForTest(recs []arrow.Record, nkeys int) []joinRowForTest {
	var out []joinRowForTest
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			var keys []any
			for c := 0; c < nkeys; c++ {
				keys = append(keys, goValueForTest(r.Column(c), i))
			}
			out = append(out, joinRowForTest{keys: keys, text: rowKeyForTest(r.Columns(), i)})
		}
	}
	return out
}

func joinMatchForTest(a, b joinRowForTest) bool {
	for i := range a.keys {
		if a.keys[i] == nil || b.keys[i] == nil || a.keys[i] != b.keys[i] {
			return false
		}
	}
	return true
}

// nestedLoopJoinForTest is the reference: every output row as text.
func nestedLoopJoinForTest(left, right []joinRowForTest, how JoinType) []string {
	nulls := func(n int) string { return strings.TrimSuffix(strings.Repeat("<nil>|", n), "|") }
	var out []string
	rightMatched := make([]bool, len(right))
	for _, l := range left {
		matched := false
		for j, r := range right {
			if joinMatchForTest(l, r) {
				matched = true
				rightMatched[j] = true
				if how != JoinSemi && how != JoinAnti {
					out = append(out, l.text+"|"+r.text)
				}
			}
		}
		switch {
		case how == JoinSemi && matched, how == JoinAnti && !matched:
			out = append(out, l.text)
		case !matched && (how == JoinLeft || how == JoinFull):
			out = append(out, l.text+"|"+nulls(3))
		}
	}
	if how == JoinRight || how == JoinFull {
		for j, r := range right {
			if !rightMatched[j] {
				out = append(out, nulls(3)+"|"+r.text)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestHashJoinAllTypesBothBuildSides(t *testing.T) {
	for _, rightKey := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32} {
		for _, nkeys := range []int{1, 2} {
			for _, how := range []JoinType{JoinInner, JoinLeft, JoinRight, JoinFull, JoinSemi, JoinAnti} {
				for _, buildRight := range []bool{true, false} {
					name := fmt.Sprintf("%s/keys=%d/right_key=%s/build_right=%v", how, nkeys, rightKey, buildRight)
					t.Run(name, func(t *testing.T) {
						mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
						defer mem.AssertSize(t, 0)
						seed := uint64(nkeys*10 + len(how))
						t.Logf("seed %d", seed)
						rng := rand.New(rand.NewPCG(seed, 9))
						ls, lrecs := joinSideForTest(mem, rng, "l", arrow.PrimitiveTypes.Int64, []int{40, 0, 25})
						rs, rrecs := joinSideForTest(mem, rng, "r", rightKey, []int{30, 17})
						defer releaseRecs(lrecs)
						defer releaseRecs(rrecs)
						lkeys, rkeys := colsForTest("lk", "lk2")[:nkeys], colsForTest("rk", "rk2")[:nkeys]
						op, err := NewHashJoin(mem, newSliceOpForTest(ls, lrecs...), newSliceOpForTest(rs, rrecs...), lkeys, rkeys, how, buildRight)
						if err != nil {
							t.Fatal(err)
						}
						out := drainForTest(t, op)
						defer releaseRecs(out)
						var got []string
						for _, r := range out {
							for i := 0; i < int(r.NumRows()); i++ {
								got = append(got, rowKeyForTest(r.Columns(), i))
							}
						}
						sort.Strings(got)
						want := nestedLoopJoinForTest(joinRowsForTest(lrecs, nkeys), joinRowsForTest(rrecs, nkeys), how)
						if strings.Join(got, "\n") != strings.Join(want, "\n") {
							t.Fatalf("got %d rows:\n%s\nwant %d rows:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
						}
						s := op.Schema()
						wantFields := 6
						if how == JoinSemi || how == JoinAnti {
							wantFields = 3
						}
						if s.NumFields() != wantFields {
							t.Fatalf("schema %s", s)
						}
						if how == JoinLeft && !s.Field(5).Nullable || how == JoinRight && !s.Field(2).Nullable {
							t.Fatalf("outer side not nullable: %s", s)
						}
					})
				}
			}
		}
	}
}

func TestHashJoinEmptySides(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(5, 5))
	ls, lrecs := joinSideForTest(mem, rng, "l", arrow.PrimitiveTypes.Int64, []int{10})
	rs, _ := joinSideForTest(mem, rng, "r", arrow.PrimitiveTypes.Int64, nil)
	defer releaseRecs(lrecs)
	for _, buildRight := range []bool{true, false} {
		for how, want := range map[JoinType]int{JoinInner: 0, JoinLeft: 10, JoinRight: 0, JoinFull: 10, JoinSemi: 0, JoinAnti: 10} {
			op, err := NewHashJoin(mem, newSliceOpForTest(ls, lrecs...), newSliceOpForTest(rs), colsForTest("lk"), colsForTest("rk"), how, buildRight)
			if err != nil {
				t.Fatal(err)
			}
			out := drainForTest(t, op)
			rows := 0
			for _, r := range out {
				rows += int(r.NumRows())
			}
			releaseRecs(out)
			if rows != want {
				t.Errorf("%s join with empty right (build right %v): %d rows, want %d", how, buildRight, rows, want)
			}
		}
	}
}

func TestHashJoinKeyTypeMismatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(6, 6))
	ls, _ := joinSideForTest(mem, rng, "l", arrow.PrimitiveTypes.Int64, nil)
	rs, _ := joinSideForTest(mem, rng, "r", arrow.PrimitiveTypes.Int64, nil)
	_, err := NewHashJoin(mem, newSliceOpForTest(ls), newSliceOpForTest(rs), colsForTest("lk"), colsForTest("rk2"), JoinInner, true)
	if err == nil || !strings.Contains(err.Error(), "lk") || !strings.Contains(err.Error(), "rk2") {
		t.Fatalf("error %v, want one naming lk and rk2", err)
	}
	_, err = NewHashJoin(mem, newSliceOpForTest(ls), newSliceOpForTest(rs), colsForTest("lk"), nil, JoinInner, true)
	if err == nil {
		t.Fatal("no error for unequal key counts")
	}
}

func BenchmarkHashJoinInner(b *testing.B) {
	mem := memory.NewGoAllocator()
	n := 1 << 20
	mk := func(name string, keys []int) arrow.Record {
		kb, vb := array.NewInt64Builder(mem), array.NewFloat64Builder(mem)
		for _, k := range keys {
			kb.Append(int64(k))
			vb.Append(float64(k))
		}
		schema := arrow.NewSchema([]arrow.Field{{Name: name + "k", Type: arrow.PrimitiveTypes.Int64}, {Name: name + "v", Type: arrow.PrimitiveTypes.Float64}}, nil)
		kc, vc := kb.NewArray(), vb.NewArray()
		defer kc.Release()
		defer vc.Release()
		return array.NewRecord(schema, []arrow.Array{kc, vc}, int64(len(keys)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	probe := mk("l", rng.Perm(n))
	build := mk("r", rng.Perm(n/8))
	defer probe.Release()
	defer build.Release()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op, err := NewHashJoin(mem, newSliceOpForTest(probe.Schema(), probe), newSliceOpForTest(build.Schema(), build), colsForTest("lk"), colsForTest("rk"), JoinInner, true)
		if err != nil {
			b.Fatal(err)
		}
		releaseRecs(drainForTest(b, op))
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "probe-rows/s")
}

func TestHashOperatorsCloseWithoutNextAndCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(8, 8))
	ls, lrecs := joinSideForTest(mem, rng, "l", arrow.PrimitiveTypes.Int64, []int{10, 10})
	rs, rrecs := joinSideForTest(mem, rng, "r", arrow.PrimitiveTypes.Int64, []int{10})
	defer releaseRecs(lrecs)
	defer releaseRecs(rrecs)
	join := func() Operator {
		op, err := NewHashJoin(mem, newSliceOpForTest(ls, lrecs...), newSliceOpForTest(rs, rrecs...), colsForTest("lk"), colsForTest("rk"), JoinFull, true)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	agg := func() Operator {
		op, err := NewHashAgg(mem, newSliceOpForTest(ls, lrecs...), colsForTest("lk2"), []Agg{{Func: AggCountDistinct, Arg: expr.Col("lv"), Name: "d"}}, AggPartial)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	for _, mk := range []func() Operator{join, agg} {
		op := mk()
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
		op = mk()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := op.Next(ctx); err != context.Canceled {
			t.Fatalf("Next on a cancelled context: %v", err)
		}
		if _, err := op.Next(context.Background()); err != context.Canceled {
			t.Fatalf("Next after an error: %v, want the same error", err)
		}
		op.Close()
		// One record read, then closed: buffered output must be released.
		op = mk()
		r, err := op.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
		op.Close()
	}
}

// A JoinTable built once and probed by several joins at the same time gives
// each of them the nested-loop result, whichever side it is, and is freed
// by its Release alone.
func TestSharedJoinTableProbedConcurrently(t *testing.T) {
	for _, nkeys := range []int{1, 2} {
		for _, how := range []JoinType{JoinInner, JoinLeft, JoinRight, JoinSemi, JoinAnti} {
			for _, tableLeft := range []bool{false, true} {
				if tableLeft && how != JoinInner && how != JoinRight {
					continue // a stream-static join probes with the stream's side
				}
				t.Run(fmt.Sprintf("%s/keys=%d/table_left=%v", how, nkeys, tableLeft), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					rng := rand.New(rand.NewPCG(uint64(nkeys), 11))
					ls, lrecs := joinSideForTest(mem, rng, "l", arrow.PrimitiveTypes.Int64, []int{40, 25})
					rs, rrecs := joinSideForTest(mem, rng, "r", arrow.PrimitiveTypes.Int64, []int{30, 17})
					defer releaseRecs(lrecs)
					defer releaseRecs(rrecs)
					lkeys, rkeys := colsForTest("lk", "lk2")[:nkeys], colsForTest("rk", "rk2")[:nkeys]
					tsch, trecs, tkeys, pkeys := rs, rrecs, rkeys, lkeys
					if tableLeft {
						tsch, trecs, tkeys, pkeys = ls, lrecs, lkeys, rkeys
					}
					table, err := NewJoinTable(context.Background(), mem, tsch, trecs, tkeys)
					if err != nil {
						t.Fatal(err)
					}
					defer table.Release()
					want := strings.Join(nestedLoopJoinForTest(joinRowsForTest(lrecs, nkeys), joinRowsForTest(rrecs, nkeys), how), "\n")
					var wg sync.WaitGroup
					errs := make([]string, 4)
					for g := range errs {
						wg.Add(1)
						go func() {
							defer wg.Done()
							var probe Operator
							if tableLeft {
								probe = newSliceOpForTest(rs, rrecs...)
							} else {
								probe = newSliceOpForTest(ls, lrecs...)
							}
							op, err := NewHashJoinTable(mem, probe, table, pkeys, how, tableLeft, nil)
							if err != nil {
								errs[g] = err.Error()
								return
							}
							defer op.Close()
							var got []string
							for {
								r, err := op.Next(context.Background())
								if err != nil {
									break
								}
								for i := 0; i < int(r.NumRows()); i++ {
									got = append(got, rowKeyForTest(r.Columns(), i))
								}
								r.Release()
							}
							sort.Strings(got)
							if res := strings.Join(got, "\n"); res != want {
								errs[g] = fmt.Sprintf("got\n%s\nwant\n%s", res, want)
							}
						}()
					}
					wg.Wait()
					for g, e := range errs {
						if e != "" {
							t.Fatalf("probe %d: %s", g, e)
						}
					}
				})
			}
		}
	}
}
