package dataset_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checked returns a checked allocator and a config that runs many small tasks
// so shuffles and merges are exercised even on small inputs.
func checked(t *testing.T) (*memory.CheckedAllocator, dataset.Config) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem, dataset.Config{Allocator: mem, Parallelism: 3, ShufflePartitions: 4, BatchRows: 7}
}

// rows runs ds and renders every row as "v1|v2|..." using the engine's value
// formatter, so expected values read like the table a user sees.
func rows(t *testing.T, ds *dataset.Dataset) []string {
	t.Helper()
	recs, err := ds.CollectRecords(context.Background())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	var out []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			cells := make([]string, r.NumCols())
			for c := range cells {
				cells[c] = exec.FormatValue(r.Column(c), i)
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

type order struct {
	ID       int64
	Customer string
	Region   *string
	Amount   *float64
	Qty      int32
}

func ptr[T any](v T) *T { return &v }

func orders() []order {
	return []order{
		{1, "ann", ptr("emea"), ptr(10.5), 1},
		{2, "bob", ptr("amer"), ptr(3.0), 2},
		{3, "ann", ptr("emea"), nil, 3},
		{4, "cid", nil, ptr(7.25), 4},
		{5, "bob", ptr("amer"), ptr(1.0), 5},
		{6, "dan", ptr("apac"), ptr(100.0), 6},
		{7, "ann", ptr("emea"), ptr(2.5), 7},
		{8, "eve", nil, nil, 8},
	}
}

func TestSelectFilterAndWithColumnFollowSQLNullRules(t *testing.T) {
	_, cfg := checked(t)
	ds := dataset.FromStructs(orders()).WithConfig(cfg)
	got := rows(t, ds.
		Filter(dataset.Col("amount").Gt(2.0).And(dataset.Col("region").Ne("apac"))).
		WithColumn("double", dataset.Col("amount").Mul(2)).
		Select("id", "region", "double"))
	// amount null (3, 8) and region null (4) rows fail the predicate: null is not true.
	want := []string{"1|emea|21", "2|amer|6", "7|emea|5"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = rows(t, ds.Filter(dataset.Col("region").IsNull().Or(dataset.Col("amount").IsNull())).Select("id"))
	if want := []string{"3", "4", "8"}; !slices.Equal(got, want) {
		t.Fatalf("IS NULL OR: got %q, want %q", got, want)
	}
	got = rows(t, ds.Filter(dataset.Col("region").In("emea", nil).Not()).Select("id"))
	// NOT (region IN ('emea', NULL)) is null for every non-emea row, false for emea: no rows.
	if len(got) != 0 {
		t.Fatalf("NOT IN with a null in the list: got %q, want no rows", got)
	}
}

func TestGroupByAggregatesMatchAPlainGoComputation(t *testing.T) {
	mem, cfg := checked(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	type acc struct {
		rows, n  int64
		sum      int64
		min, max int64
		fsum     float64
		fn       int64
		distinct map[int64]bool
		has      bool
	}
	want := map[string]*acc{}
	var recs []arrow.Record
	for b := 0; b < 9; b++ {
		bld := array.NewRecordBuilder(mem, schema)
		for i := 0; i < 1+r.IntN(500); i++ {
			key := fmt.Sprintf("k%d", r.IntN(12))
			knull := r.IntN(20) == 0
			if knull {
				bld.Field(0).AppendNull()
				key = "null"
			} else {
				bld.Field(0).(*array.StringBuilder).Append(key)
			}
			a := want[key]
			if a == nil {
				a = &acc{distinct: map[int64]bool{}}
				want[key] = a
			}
			a.rows++
			if r.IntN(7) == 0 {
				bld.Field(1).AppendNull()
			} else {
				v := r.Int64N(1000) - 500
				bld.Field(1).(*array.Int64Builder).Append(v)
				a.n++
				a.sum += v
				a.distinct[v] = true
				if !a.has || v < a.min {
					a.min = v
				}
				if !a.has || v > a.max {
					a.max = v
				}
				a.has = true
			}
			if r.IntN(5) == 0 {
				bld.Field(2).AppendNull()
			} else {
				f := float64(r.IntN(1000)) / 4
				bld.Field(2).(*array.Float64Builder).Append(f)
				a.fsum += f
				a.fn++
			}
		}
		recs = append(recs, bld.NewRecord())
		bld.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	ds := dataset.FromRecords(schema, recs...).WithConfig(cfg).
		GroupBy("k").
		Agg(dataset.CountAll().As("rows"), dataset.Count(dataset.Col("v")).As("n"),
			dataset.Sum(dataset.Col("v")).As("sum"), dataset.Min(dataset.Col("v")).As("min"),
			dataset.Max(dataset.Col("v")).As("max"), dataset.CountDistinct(dataset.Col("v")).As("nd"),
			dataset.Avg(dataset.Col("f")).As("avg"))
	var expected []string
	for k, a := range want {
		avg := "null"
		if a.fn > 0 {
			avg = exec.FormatValue(floatArray(mem, a.fsum/float64(a.fn)), 0)
		}
		sum, mn, mx := "null", "null", "null"
		if a.has {
			sum, mn, mx = fmt.Sprint(a.sum), fmt.Sprint(a.min), fmt.Sprint(a.max)
		}
		expected = append(expected, fmt.Sprintf("%s|%d|%d|%s|%s|%s|%d|%s", k, a.rows, a.n, sum, mn, mx, len(a.distinct), avg))
	}
	got := rows(t, ds)
	if g, w := sorted(got), sorted(expected); !slices.Equal(g, w) {
		t.Fatalf("seed %d:\ngot  %q\nwant %q", seed, g, w)
	}
	// Global aggregate over nothing: one row, count 0, sum null.
	got = rows(t, dataset.FromRecords(schema, recs...).WithConfig(cfg).
		Filter(dataset.Col("v").Gt(1_000_000)).
		Agg(dataset.CountAll().As("c"), dataset.Sum(dataset.Col("v")).As("s")))
	if want := []string{"0|null"}; !slices.Equal(got, want) {
		t.Fatalf("empty global aggregate: got %q, want %q", got, want)
	}
}

func floatArray(mem memory.Allocator, f float64) arrow.Array {
	b := array.NewFloat64Builder(memory.NewGoAllocator())
	b.Append(f)
	return b.NewArray()
}

type person struct {
	ID   *int64
	Name string
}

type purchase struct {
	ID    *int64
	Item  string
	Price float64
}

func TestJoinsMatchANestedLoopReference(t *testing.T) {
	_, cfg := checked(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	var people []person
	for i := 0; i < 40; i++ {
		var id *int64
		if r.IntN(8) != 0 {
			id = ptr(r.Int64N(25))
		}
		people = append(people, person{id, fmt.Sprintf("p%d", i)})
	}
	var buys []purchase
	for i := 0; i < 60; i++ {
		var id *int64
		if r.IntN(8) != 0 {
			id = ptr(r.Int64N(30))
		}
		buys = append(buys, purchase{id, fmt.Sprintf("i%d", i), float64(i)})
	}
	str := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	// Both build sides (the smaller side is built), with and without a
	// residual condition on columns of both sides.
	for _, nbuys := range []int{60, 20} {
		for _, where := range []bool{false, true} {
			buys := buys[:nbuys]
			left := dataset.FromStructs(people).WithConfig(cfg)
			right := dataset.FromStructs(buys).WithConfig(cfg)
			cond := func(p person, b purchase) bool { return !where || b.Price < float64(2**p.ID) }
			for _, how := range []dataset.JoinType{dataset.Inner, dataset.Left, dataset.Right, dataset.Full, dataset.Semi, dataset.Anti} {
				t.Run(fmt.Sprintf("%s/buys=%d/where=%v", how, nbuys, where), func(t *testing.T) {
					var want []string
					rightMatched := make([]bool, len(buys))
					for _, p := range people {
						matched := false
						for j, b := range buys {
							if p.ID != nil && b.ID != nil && *p.ID == *b.ID && cond(p, b) {
								matched = true
								rightMatched[j] = true
								if how != dataset.Semi && how != dataset.Anti {
									want = append(want, fmt.Sprintf("%d|%s|%s|%s", *p.ID, p.Name, b.Item, exec.FormatValue(floatArray(nil, b.Price), 0)))
								}
							}
						}
						switch {
						case how == dataset.Semi && matched, how == dataset.Anti && !matched:
							want = append(want, fmt.Sprintf("%s|%s", str(p.ID), p.Name))
						case !matched && (how == dataset.Left || how == dataset.Full):
							want = append(want, fmt.Sprintf("%s|%s|null|null", str(p.ID), p.Name))
						}
					}
					if how == dataset.Right || how == dataset.Full {
						for j, b := range buys {
							if !rightMatched[j] {
								want = append(want, fmt.Sprintf("%s|null|%s|%s", str(b.ID), b.Item, exec.FormatValue(floatArray(nil, b.Price), 0)))
							}
						}
					}
					joined := left.Join(right, []string{"id"}, how)
					if where {
						joined = left.JoinWhere(right, []string{"id"}, how, dataset.Col("price").Lt(dataset.Col("id").Mul(dataset.Lit(2.0))))
					}
					got := rows(t, joined)
					if g, w := sorted(got), sorted(want); !slices.Equal(g, w) {
						t.Fatalf("seed %d: %s join\ngot  %q\nwant %q", seed, how, g, w)
					}
				})
			}
		}
	}
}

func TestUnionDistinctOrderByAndLimit(t *testing.T) {
	_, cfg := checked(t)
	a := dataset.FromStructs(orders()).WithConfig(cfg).Select("customer", "qty")
	b := dataset.FromStructs(orders()[:3]).WithConfig(cfg).Select("qty", "customer") // other column order
	u := a.Union(b)
	if n, err := u.Count(context.Background()); err != nil || n != 11 {
		t.Fatalf("union count = %d, %v; want 11", n, err)
	}
	got := rows(t, u.Distinct().OrderBy(dataset.Desc("qty"), dataset.Asc("customer")))
	want := []string{"eve|8", "ann|7", "dan|6", "bob|5", "cid|4", "ann|3", "bob|2", "ann|1"}
	if !slices.Equal(got, want) {
		t.Fatalf("distinct order by: got %q, want %q", got, want)
	}
	got = rows(t, u.OrderBy(dataset.Asc("qty")).Limit(4))
	if want := []string{"ann|1", "ann|1", "bob|2", "bob|2"}; !slices.Equal(got, want) {
		t.Fatalf("top 4: got %q, want %q", got, want)
	}
	// Nulls first ascending (Spark default), last when asked.
	got = rows(t, dataset.FromStructs(orders()).WithConfig(cfg).OrderBy(dataset.Asc("amount").NullsLast(), dataset.Asc("id")).Select("id"))
	if want := []string{"5", "7", "2", "4", "1", "6", "3", "8"}; !slices.Equal(got, want) {
		t.Fatalf("nulls last: got %q, want %q", got, want)
	}
}

func TestMapBatchesRunsUserCodeAndReportsItsPanics(t *testing.T) {
	_, cfg := checked(t)
	ds := dataset.FromStructs(orders()).WithConfig(cfg).Select("id")
	doubled := ds.MapBatches("double-id", nil, func(mem memory.Allocator, in arrow.Record) (arrow.Record, error) {
		ids := in.Column(0).(*array.Int64)
		b := array.NewInt64Builder(mem)
		defer b.Release()
		for _, v := range ids.Int64Values() {
			b.Append(v * 2)
		}
		col := b.NewArray()
		defer col.Release()
		return array.NewRecord(in.Schema(), []arrow.Array{col}, in.NumRows()), nil
	})
	got := rows(t, doubled.OrderBy("id"))
	if want := []string{"2", "4", "6", "8", "10", "12", "14", "16"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	boom := ds.MapBatches("boom", nil, func(memory.Allocator, arrow.Record) (arrow.Record, error) { panic("user bug") })
	_, err := boom.CollectRecords(context.Background())
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "user bug") {
		t.Fatalf("want an error naming the function and the panic, got %v", err)
	}
}

func TestCollectStructsRoundTripsFromStructs(t *testing.T) {
	_, cfg := checked(t)
	in := orders()
	out, err := dataset.CollectStructs[order](context.Background(), dataset.FromStructs(in).WithConfig(cfg).OrderBy("id"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d rows, want %d", len(out), len(in))
	}
	for i := range in {
		if fmt.Sprint(deref(in[i])) != fmt.Sprint(deref(out[i])) {
			t.Fatalf("row %d: got %v, want %v", i, deref(out[i]), deref(in[i]))
		}
	}
}

func deref(o order) []any {
	v := []any{o.ID, o.Customer, o.Qty}
	if o.Region != nil {
		v = append(v, *o.Region)
	}
	if o.Amount != nil {
		v = append(v, *o.Amount)
	}
	return v
}

func TestErrorsNameWhatIsWrong(t *testing.T) {
	_, cfg := checked(t)
	ds := dataset.FromStructs(orders()).WithConfig(cfg)
	dir := t.TempDir()
	notParquet := filepath.Join(dir, "x.parquet")
	os.WriteFile(notParquet, []byte("this is not parquet at all, just text"), 0o644)
	cases := []struct {
		name string
		ds   *dataset.Dataset
		want []string
	}{
		{"an unknown column names it and the columns there are", ds.Select("amt"), []string{"amt", "amount"}},
		{"a type error names the expression", ds.Filter(dataset.Col("customer").Add(1).Gt(3)), []string{"customer"}},
		{"a non-boolean filter says so", ds.Filter(dataset.Col("id")), []string{"id", "bool"}},
		{"a missing path names the path", dataset.Read(filepath.Join(dir, "nope")), []string{"nope"}},
		{"a file that is not parquet names the file", dataset.Read(notParquet), []string{"x.parquet"}},
		{"joining on a missing column names it", ds.Join(ds.Select("id"), []string{"zzz"}, dataset.Inner), []string{"zzz"}},
		{"a union of different columns names them", ds.Select("id").Union(ds.Select("qty")), []string{"id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.ds.CollectRecords(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestShowPrintsAnAlignedTable(t *testing.T) {
	_, cfg := checked(t)
	var b strings.Builder
	err := dataset.FromStructs(orders()).WithConfig(cfg).Select("id", "customer", "amount").OrderBy("id").ShowTo(context.Background(), &b, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := `+---+--------+------+
| id|customer|amount|
+---+--------+------+
|  1|ann     |  10.5|
|  2|bob     |     3|
|  3|ann     |  null|
+---+--------+------+
only showing top 3 rows
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestAvgOfFloatsIsExact(t *testing.T) {
	_, cfg := checked(t)
	got := rows(t, dataset.FromStructs(orders()).WithConfig(cfg).Agg(dataset.Avg(dataset.Col("amount")).As("a")))
	want := (10.5 + 3 + 7.25 + 1 + 100 + 2.5) / 6
	if len(got) != 1 || math.Abs(parseF(got[0])-want) > 1e-12 {
		t.Fatalf("avg = %q, want %v", got, want)
	}
}

func parseF(s string) float64 { var f float64; fmt.Sscan(s, &f); return f }

func TestDropDuplicatesKeepsTheFirstRowOfEachKey(t *testing.T) {
	_, cfg := checked(t)
	got := rows(t, dataset.FromStructs(orders()).WithConfig(cfg).DropDuplicates("customer").Select("id", "customer").OrderBy("id"))
	// First row of each customer in input order: ann 1, bob 2, cid 4, dan 6, eve 8.
	if want := []string{"1|ann", "2|bob", "4|cid", "6|dan", "8|eve"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = rows(t, dataset.FromStructs(append(orders(), orders()...)).WithConfig(cfg).DropDuplicates().Select("id").OrderBy("id"))
	if want := []string{"1", "2", "3", "4", "5", "6", "7", "8"}; !slices.Equal(got, want) {
		t.Fatalf("all columns: got %q, want %q", got, want)
	}
}
