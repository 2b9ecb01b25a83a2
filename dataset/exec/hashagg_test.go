package exec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
)

func isNumericForTest(t arrow.DataType) bool {
	_, err := sumType(Agg{}, t)
	return err == nil
}

// allAggsForTest is every applicable aggregate over every test column.
func allAggsForTest() []Agg {
	aggs := []Agg{{Func: AggCount, Name: "cnt"}}
	for _, f := range testFields {
		fns := []AggFunc{AggCount, AggMin, AggMax, AggFirst, AggLast, AggCountDistinct}
		if isNumericForTest(f.Type) {
			fns = append(fns, AggSum, AggAvg)
		}
		for _, fn := range fns {
			aggs = append(aggs, Agg{Func: fn, Arg: expr.Col(f.Name), Name: string(fn) + "_" + f.Name})
		}
	}
	return aggs
}

// refAggForTest computes aggregates with plain Go maps over the rows of recs.
func refAggForTest(recs []arrow.Record, keys []string, aggs []Agg) map[string][]any {
	type group struct{ vals map[string][]any }
	groups := map[string]*group{}
	for _, rec := range recs {
		var kcols []arrow.Array
		for _, k := range keys {
			kcols = append(kcols, rec.Column(rec.Schema().FieldIndices(k)[0]))
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k := rowKeyForTest(kcols, i)
			g := groups[k]
			if g == nil {
				g = &group{vals: map[string][]any{}}
				groups[k] = g
			}
			for c, f := range rec.Schema().Fields() {
				g.vals[f.Name] = append(g.vals[f.Name], goValueForTest(rec.Column(c), i))
			}
			g.vals["*"] = append(g.vals["*"], true)
		}
	}
	if len(keys) == 0 && len(groups) == 0 {
		groups[""] = &group{vals: map[string][]any{}}
	}
	schema := arrow.NewSchema(testFields, nil)
	out := map[string][]any{}
	for k, g := range groups {
		var res []any
		for _, a := range aggs {
			col := "*"
			var dt arrow.DataType
			if a.Arg != nil {
				col = a.Arg.Name
				dt = schema.Field(schema.FieldIndices(col)[0]).Type
			}
			vals := g.vals[col]
			var nonNull []any
			for _, v := range vals {
				if v != nil {
					nonNull = append(nonNull, v)
				}
			}
			var r any
			switch a.Func {
			case AggCount:
				r = int64(len(nonNull))
			case AggCountDistinct:
				set := map[string]bool{}
				for _, v := range nonNull {
					set[fmt.Sprintf("%#v", v)] = true
				}
				r = int64(len(set))
			case AggFirst:
				if len(vals) > 0 {
					r = vals[0]
				}
			case AggLast:
				if len(vals) > 0 {
					r = vals[len(vals)-1]
				}
			case AggMin, AggMax:
				for _, v := range nonNull {
					if r == nil || (a.Func == AggMin) == lessForTest(v, r) && fmt.Sprint(v) != fmt.Sprint(r) {
						r = v
					}
				}
			case AggSum, AggAvg:
				if len(nonNull) == 0 {
					break
				}
				var fsum float64
				var isum int64
				var usum uint64
				var dsum decimal128.Num
				for _, v := range nonNull {
					switch x := v.(type) {
					case int64:
						isum += x
						fsum += float64(x)
					case uint64:
						usum += x
						fsum += float64(x)
					case float64:
						fsum += x
					case decimal128.Num:
						dsum = dsum.Add(x)
					}
				}
				switch {
				case dt.ID() == arrow.DECIMAL128 && a.Func == AggSum:
					r = dsum
				case dt.ID() == arrow.DECIMAL128:
					r = dsum.ToFloat64(dt.(*arrow.Decimal128Type).Scale) / float64(len(nonNull))
				case a.Func == AggAvg:
					r = fsum / float64(len(nonNull))
				default:
					switch nonNull[0].(type) {
					case int64:
						r = isum
					case uint64:
						r = usum
					default:
						r = fsum
					}
				}
			}
			res = append(res, r)
		}
		out[k] = res
	}
	return out
}

// resultsForTest turns aggregation output into key -> aggregate values.
func resultsForTest(t *testing.T, recs []arrow.Record, nkeys int) map[string][]any {
	t.Helper()
	out := map[string][]any{}
	for _, rec := range recs {
		for i := 0; i < int(rec.NumRows()); i++ {
			k := rowKeyForTest(rec.Columns()[:nkeys], i)
			if _, dup := out[k]; dup {
				t.Fatalf("group %s output twice", k)
			}
			var vals []any
			for _, c := range rec.Columns()[nkeys:] {
				vals = append(vals, goValueForTest(c, i))
			}
			out[k] = vals
		}
	}
	return out
}

func compareAggForTest(t *testing.T, got, want map[string][]any, aggs []Agg, exactFloats bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("group %s missing", k)
		}
		for i, a := range aggs {
			gf, gok := g[i].(float64)
			wf, wok := w[i].(float64)
			if gok && wok && !exactFloats {
				if math.Abs(gf-wf) > 1e-9*math.Max(1, math.Abs(wf)) {
					t.Errorf("group %s %s = %v, want %v", k, a, g[i], w[i])
				}
				continue
			}
			if fmt.Sprintf("%#v", g[i]) != fmt.Sprintf("%#v", w[i]) {
				t.Errorf("group %s %s = %#v, want %#v", k, a, g[i], w[i])
			}
		}
	}
}

func runAggForTest(t *testing.T, mem memory.Allocator, schema *arrow.Schema, recs []arrow.Record, keys []*expr.Expr, aggs []Agg, mode AggMode) []arrow.Record {
	t.Helper()
	op, err := NewHashAgg(mem, newSliceOpForTest(schema, recs...), keys, aggs, mode)
	if err != nil {
		t.Fatal(err)
	}
	return drainForTest(t, op)
}

func colsForTest(names ...string) []*expr.Expr {
	var out []*expr.Expr
	for _, n := range names {
		out = append(out, expr.Col(n))
	}
	return out
}

func TestHashAggAllFuncsAllTypes(t *testing.T) {
	for _, keys := range [][]string{{"str", "i8"}, {"dec"}, {"bool", "ts", "u64"}, nil} {
		t.Run(strings.Join(keys, ","), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			seed := uint64(len(keys) + 7)
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 1))
			recs := []arrow.Record{
				randRecordForTest(mem, rng, 400, 6, 15),
				randRecordForTest(mem, rng, 1, 6, 15),
				randRecordForTest(mem, rng, 700, 9, 30),
			}
			defer releaseRecs(recs)
			schema := recs[0].Schema()
			aggs := allAggsForTest()
			want := refAggForTest(recs, keys, aggs)

			complete := runAggForTest(t, mem, schema, recs, colsForTest(keys...), aggs, AggComplete)
			defer releaseRecs(complete)
			aggSchema, err := AggSchema(schema, colsForTest(keys...), aggs)
			if err != nil {
				t.Fatal(err)
			}
			if !complete[0].Schema().Equal(aggSchema) {
				t.Fatalf("schema %s, AggSchema %s", complete[0].Schema(), aggSchema)
			}
			t.Logf("%d groups, %d aggregates", len(want), len(aggs))
			compareAggForTest(t, resultsForTest(t, complete, len(keys)), want, aggs, true)

			// Partial per split, then Final over the partials in split order.
			pschema, err := PartialSchema(schema, colsForTest(keys...), aggs)
			if err != nil {
				t.Fatal(err)
			}
			var partials []arrow.Record
			for _, r := range recs {
				p := runAggForTest(t, mem, schema, []arrow.Record{r}, colsForTest(keys...), aggs, AggPartial)
				for _, pr := range p {
					if !pr.Schema().Equal(pschema) {
						t.Fatalf("partial schema %s, PartialSchema %s", pr.Schema(), pschema)
					}
				}
				partials = append(partials, p...)
			}
			defer releaseRecs(partials)
			final := runAggForTest(t, mem, pschema, partials, colsForTest(keys...), aggs, AggFinal)
			defer releaseRecs(final)
			if !final[0].Schema().Equal(aggSchema) {
				t.Fatalf("final schema %s, AggSchema %s", final[0].Schema(), aggSchema)
			}
			compareAggForTest(t, resultsForTest(t, final, len(keys)), want, aggs, false)
		})
	}
}

func TestHashAggGlobalOnEmptyInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema(testFields, nil)
	aggs := allAggsForTest()
	want := refAggForTest(nil, nil, aggs)
	got := runAggForTest(t, mem, schema, nil, nil, aggs, AggComplete)
	defer releaseRecs(got)
	if len(got) != 1 || got[0].NumRows() != 1 {
		t.Fatalf("global aggregate on empty input: %d records, want one row", len(got))
	}
	compareAggForTest(t, resultsForTest(t, got, 0), want, aggs, true)

	partial := runAggForTest(t, mem, schema, nil, nil, aggs, AggPartial)
	if len(partial) != 0 {
		t.Fatalf("partial global aggregate on empty input gave %d records, want none", len(partial))
	}
	pschema, _ := PartialSchema(schema, nil, aggs)
	final := runAggForTest(t, mem, pschema, nil, nil, aggs, AggFinal)
	defer releaseRecs(final)
	compareAggForTest(t, resultsForTest(t, final, 0), want, aggs, true)

	// Grouped aggregation on empty input has no rows.
	grouped := runAggForTest(t, mem, schema, nil, colsForTest("str"), aggs, AggComplete)
	if len(grouped) != 0 {
		t.Fatalf("grouped aggregate on empty input gave %d records", len(grouped))
	}
}

func TestHashAggFirstLastAcrossSplits(t *testing.T) {
	// first/last keep a null row's value (ignoreNulls=false) and pick the
	// globally first/last row when Final reads partials in split order.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	mk := func(ks []string, vs []int64, valid []bool) arrow.Record {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		b.Field(0).(*array.StringBuilder).AppendValues(ks, nil)
		b.Field(1).(*array.Int64Builder).AppendValues(vs, valid)
		return b.NewRecord()
	}
	splits := []arrow.Record{
		mk([]string{"a", "b"}, []int64{0, 1}, []bool{false, true}),
		mk([]string{"a", "b", "a"}, []int64{2, 3, 4}, []bool{true, true, true}),
		mk([]string{"b"}, []int64{5}, []bool{false}),
	}
	defer releaseRecs(splits)
	aggs := []Agg{{Func: AggFirst, Arg: expr.Col("v"), Name: "f"}, {Func: AggLast, Arg: expr.Col("v"), Name: "l"}}
	pschema, _ := PartialSchema(schema, colsForTest("k"), aggs)
	var partials []arrow.Record
	for _, s := range splits {
		partials = append(partials, runAggForTest(t, mem, schema, []arrow.Record{s}, colsForTest("k"), aggs, AggPartial)...)
	}
	defer releaseRecs(partials)
	final := runAggForTest(t, mem, pschema, partials, colsForTest("k"), aggs, AggFinal)
	defer releaseRecs(final)
	got := resultsForTest(t, final, 1)
	want := map[string]string{`"a"`: "[<nil> 4]", `"b"`: "[1 <nil>]"}
	for k, w := range want {
		if fmt.Sprint(got[k]) != w {
			t.Errorf("group %s: first,last = %v, want %s", k, got[k], w)
		}
	}
}

func TestHashAggErrors(t *testing.T) {
	schema := arrow.NewSchema(testFields, nil)
	cases := []struct {
		name string
		agg  Agg
		want string
	}{
		{"sum of strings", Agg{Func: AggSum, Arg: expr.Col("str"), Name: "s"}, "sum(str)"},
		{"avg of dates", Agg{Func: AggAvg, Arg: expr.Col("date"), Name: "a"}, "avg(date)"},
		{"sum of bools", Agg{Func: AggSum, Arg: expr.Col("bool"), Name: "s"}, "sum(bool)"},
		{"unknown column", Agg{Func: AggMin, Arg: expr.Col("nope"), Name: "m"}, "nope"},
		{"min without argument", Agg{Func: AggMin, Name: "m"}, "min"},
		{"unknown function", Agg{Func: "median", Arg: expr.Col("i64"), Name: "m"}, "median"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := AggSchema(schema, nil, []Agg{c.agg})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

func TestDistinct(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 3))
	recs := []arrow.Record{randRecordForTest(mem, rng, 300, 2, 40), randRecordForTest(mem, rng, 300, 2, 40)}
	defer releaseRecs(recs)
	want := map[string]bool{}
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			want[rowKeyForTest(r.Columns(), i)] = true
		}
	}
	op, err := NewDistinct(mem, newSliceOpForTest(recs[0].Schema(), recs...))
	if err != nil {
		t.Fatal(err)
	}
	out := drainForTest(t, op)
	defer releaseRecs(out)
	got := resultsForTest(t, out, len(testFields))
	if len(got) != len(want) {
		t.Fatalf("%d distinct rows, want %d", len(got), len(want))
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Fatalf("row %s missing", k)
		}
	}
}

func TestHashAggManyGroupsChunksOutput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	n := aggOutputChunk*2 + 10
	b := array.NewInt64Builder(mem)
	for i := 0; i < n; i++ {
		b.Append(int64(i * 7919 % n))
	}
	col := b.NewArray()
	b.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecord(schema, []arrow.Array{col}, int64(n))
	col.Release()
	defer rec.Release()
	out := runAggForTest(t, mem, schema, []arrow.Record{rec, rec}, colsForTest("k"), []Agg{{Func: AggCount, Name: "c"}, {Func: AggSum, Arg: expr.Col("k"), Name: "s"}}, AggComplete)
	defer releaseRecs(out)
	rows := 0
	for _, r := range out {
		rows += int(r.NumRows())
		ks := r.Column(0).(*array.Int64).Int64Values()
		cs := r.Column(1).(*array.Int64).Int64Values()
		ss := r.Column(2).(*array.Int64).Int64Values()
		for i := range ks {
			if cs[i] != 2 || ss[i] != 2*ks[i] {
				t.Fatalf("key %d: count %d sum %d", ks[i], cs[i], ss[i])
			}
		}
	}
	if rows != n || len(out) < 3 {
		t.Fatalf("%d rows in %d records, want %d rows in >= 3", rows, len(out), n)
	}
}

// q1RecordForTest has TPC-H Q1's shape: two 1-char flags (4 combinations)
// and float64 measures; the computed measures (disc_price, charge) are
// precomputed columns so the benchmark measures the aggregation alone.
func q1RecordForTest(mem memory.Allocator, n int) arrow.Record {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "l_returnflag", Type: arrow.BinaryTypes.String},
		{Name: "l_linestatus", Type: arrow.BinaryTypes.String},
		{Name: "l_quantity", Type: arrow.PrimitiveTypes.Float64},
		{Name: "l_extendedprice", Type: arrow.PrimitiveTypes.Float64},
		{Name: "l_discount", Type: arrow.PrimitiveTypes.Float64},
		{Name: "disc_price", Type: arrow.PrimitiveTypes.Float64},
		{Name: "charge", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	rng := rand.New(rand.NewPCG(1, 1))
	flags := [][2]string{{"A", "F"}, {"N", "F"}, {"N", "O"}, {"R", "F"}}
	for i := 0; i < n; i++ {
		f := flags[rng.IntN(4)]
		q := float64(1 + rng.IntN(50))
		p := q * (900 + float64(rng.IntN(10000))/10)
		d := float64(rng.IntN(11)) / 100
		tax := float64(rng.IntN(9)) / 100
		b.Field(0).(*array.StringBuilder).Append(f[0])
		b.Field(1).(*array.StringBuilder).Append(f[1])
		b.Field(2).(*array.Float64Builder).Append(q)
		b.Field(3).(*array.Float64Builder).Append(p)
		b.Field(4).(*array.Float64Builder).Append(d)
		b.Field(5).(*array.Float64Builder).Append(p * (1 - d))
		b.Field(6).(*array.Float64Builder).Append(p * (1 - d) * (1 + tax))
	}
	return b.NewRecord()
}

// cpuSecondsForTest is the process's user+system CPU time: on a shared,
// loaded machine rows per CPU-second is steadier than rows per wall second.
func cpuSecondsForTest() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func benchAggForTest(b *testing.B, rec arrow.Record, keys []*expr.Expr, aggs []Agg) {
	mem := memory.NewGoAllocator()
	cpu0 := cpuSecondsForTest()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op, err := NewHashAgg(mem, newSliceOpForTest(rec.Schema(), rec), keys, aggs, AggComplete)
		if err != nil {
			b.Fatal(err)
		}
		releaseRecs(drainForTest(b, op))
	}
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/(cpuSecondsForTest()-cpu0), "rows/cpu-s")
}

func BenchmarkHashAggQ1(b *testing.B) {
	rec := q1RecordForTest(memory.NewGoAllocator(), 1<<20)
	defer rec.Release()
	aggs := []Agg{
		{Func: AggSum, Arg: expr.Col("l_quantity"), Name: "sum_qty"},
		{Func: AggSum, Arg: expr.Col("l_extendedprice"), Name: "sum_base_price"},
		{Func: AggSum, Arg: expr.Col("disc_price"), Name: "sum_disc_price"},
		{Func: AggSum, Arg: expr.Col("charge"), Name: "sum_charge"},
		{Func: AggAvg, Arg: expr.Col("l_quantity"), Name: "avg_qty"},
		{Func: AggAvg, Arg: expr.Col("l_extendedprice"), Name: "avg_price"},
		{Func: AggAvg, Arg: expr.Col("l_discount"), Name: "avg_disc"},
		{Func: AggCount, Name: "count_order"},
	}
	benchAggForTest(b, rec, colsForTest("l_returnflag", "l_linestatus"), aggs)
}

func BenchmarkHashAggHighCardinality(b *testing.B) {
	mem := memory.NewGoAllocator()
	n := 1 << 20
	kb, vb := array.NewInt64Builder(mem), array.NewFloat64Builder(mem)
	rng := rand.New(rand.NewPCG(2, 2))
	for _, k := range rng.Perm(n) {
		kb.Append(int64(k) * 2654435761)
		vb.Append(float64(k))
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "v", Type: arrow.PrimitiveTypes.Float64}}, nil)
	kc, vc := kb.NewArray(), vb.NewArray()
	rec := array.NewRecord(schema, []arrow.Array{kc, vc}, int64(n))
	kc.Release()
	vc.Release()
	defer rec.Release()
	benchAggForTest(b, rec, colsForTest("k"), []Agg{{Func: AggSum, Arg: expr.Col("v"), Name: "s"}, {Func: AggCount, Name: "c"}})
}

func TestHashAggExpressionKeysAndArgs(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(4, 4))
	rec := randRecordForTest(mem, rng, 500, 20, 10)
	defer rec.Release()
	keys := []*expr.Expr{expr.Col("i32").Mod(int32(3)).As("m")}
	aggs := []Agg{{Func: AggSum, Arg: expr.Col("f64").Mul(2.0), Name: "s"}, {Func: AggCount, Name: "c"}}
	out := runAggForTest(t, mem, rec.Schema(), []arrow.Record{rec}, keys, aggs, AggComplete)
	defer releaseRecs(out)
	if out[0].Schema().Field(0).Name != "m" {
		t.Fatalf("schema %s", out[0].Schema())
	}
	want := map[string][2]float64{}
	i32 := rec.Column(3).(*array.Int32)
	f64 := rec.Column(10).(*array.Float64)
	for i := 0; i < i32.Len(); i++ {
		k := "<nil>"
		if i32.IsValid(i) {
			k = fmt.Sprint(i32.Value(i) % 3)
		}
		w := want[k]
		if f64.IsValid(i) {
			w[0] += 2 * f64.Value(i)
		}
		w[1]++
		want[k] = w
	}
	got := map[string][2]float64{}
	for _, r := range out {
		for i := 0; i < int(r.NumRows()); i++ {
			k := "<nil>"
			if r.Column(0).IsValid(i) {
				k = fmt.Sprint(r.Column(0).(*array.Int32).Value(i))
			}
			got[k] = [2]float64{r.Column(1).(*array.Float64).Value(i), float64(r.Column(2).(*array.Int64).Value(i))}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// BenchmarkHashAggQ1Exprs is Q1's aggregation with its measures computed by
// expressions in the operator (expression evaluation included).
func BenchmarkHashAggQ1Exprs(b *testing.B) {
	rec := q1RecordForTest(memory.NewGoAllocator(), 1<<20)
	defer rec.Release()
	price, disc := expr.Col("l_extendedprice"), expr.Col("l_discount")
	discPrice := price.Mul(expr.Lit(1.0).Sub(disc))
	aggs := []Agg{
		{Func: AggSum, Arg: expr.Col("l_quantity"), Name: "sum_qty"},
		{Func: AggSum, Arg: price, Name: "sum_base_price"},
		{Func: AggSum, Arg: discPrice, Name: "sum_disc_price"},
		{Func: AggSum, Arg: discPrice.Mul(expr.Lit(1.0).Add(disc)), Name: "sum_charge"},
		{Func: AggAvg, Arg: expr.Col("l_quantity"), Name: "avg_qty"},
		{Func: AggAvg, Arg: price, Name: "avg_price"},
		{Func: AggAvg, Arg: disc, Name: "avg_disc"},
		{Func: AggCount, Name: "count_order"},
	}
	benchAggForTest(b, rec, colsForTest("l_returnflag", "l_linestatus"), aggs)
}

// BenchmarkGoMapGroupByBaseline is the DESIGN.md floor: a plain Go map from
// key to group index over typed slices, summing one float64 column, on the
// same data as BenchmarkHashAggHighCardinality (1 M distinct int64 keys).
func BenchmarkGoMapGroupByBaseline(b *testing.B) {
	n := 1 << 20
	rng := rand.New(rand.NewPCG(2, 2))
	keys, vals := make([]int64, n), make([]float64, n)
	for i, k := range rng.Perm(n) {
		keys[i], vals[i] = int64(k)*2654435761, float64(k)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := map[int64]int32{}
		var sums []float64
		for j, k := range keys {
			g, ok := m[k]
			if !ok {
				g = int32(len(sums))
				m[k] = g
				sums = append(sums, 0)
			}
			sums[g] += vals[j]
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func TestHashAggFloatSpecials(t *testing.T) {
	// NaN is the largest float for min/max; -0 groups with 0; NaNs are one value.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, math.NaN(), -2, math.Copysign(0, -1), 0, math.NaN()}, nil)
	b.Field(0).AppendNull()
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	aggs := []Agg{
		{Func: AggMin, Arg: expr.Col("v"), Name: "mn"},
		{Func: AggMax, Arg: expr.Col("v"), Name: "mx"},
		{Func: AggCountDistinct, Arg: expr.Col("v"), Name: "cd"},
	}
	out := runAggForTest(t, mem, schema, []arrow.Record{rec}, nil, aggs, AggComplete)
	defer releaseRecs(out)
	got := fmt.Sprint(goValueForTest(out[0].Column(0), 0), goValueForTest(out[0].Column(1), 0), goValueForTest(out[0].Column(2), 0))
	if got != "-2 NaN 4" {
		t.Fatalf("min, max, count_distinct = %s, want -2 NaN 4", got)
	}
	groups := runAggForTest(t, mem, schema, []arrow.Record{rec}, colsForTest("v"), []Agg{{Func: AggCount, Name: "c"}}, AggComplete)
	defer releaseRecs(groups)
	if n := groups[0].NumRows(); n != 5 { // 1, NaN, -2, 0, null
		t.Fatalf("%d groups, want 5", n)
	}
}

func TestHashAggFinalRejectsForeignSchema(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema(testFields, nil)
	aggs := []Agg{{Func: AggSum, Arg: expr.Col("i64"), Name: "s"}}
	// The raw input is not a partial schema: wrong column count and types.
	if _, err := NewHashAgg(mem, newSliceOpForTest(schema), colsForTest("str"), aggs, AggFinal); err == nil {
		t.Fatal("Final accepted a non-partial schema")
	}
	bad := arrow.NewSchema([]arrow.Field{{Name: "str", Type: arrow.BinaryTypes.String}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	_, err := NewHashAgg(mem, newSliceOpForTest(bad), colsForTest("str"), aggs, AggFinal)
	if err == nil || !strings.Contains(err.Error(), "sum(i64)") {
		t.Fatalf("error %v, want one naming sum(i64)", err)
	}
}
