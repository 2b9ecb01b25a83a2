package dataset_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/testenv"
)

// sparkNaN is testdata/spark_nan.json, Spark's answers written by
// testdata/spark_nan.py (its header says how to regenerate it).
type sparkNaN struct {
	Spark  string            `json:"spark"`
	Values []string          `json:"values"`
	Exprs  map[string]string `json:"exprs"`
	Types  map[string]struct {
		Rows          []map[string]any `json:"rows"`
		Join          [][2]string      `json:"join"`
		Groups        [][2]any         `json:"groups"`
		Min           string           `json:"min"`
		Max           string           `json:"max"`
		CountDistinct int64            `json:"count_distinct"`
		Order         []string         `json:"order"`
	} `json:"types"`
}

// nanExprs are spark_nan.py's EXPRS through the Dataset API, by name.
func nanExprs() map[string]*dataset.Expr {
	a, b := dataset.Col("a"), dataset.Col("b")
	nan, inf, negZero := dataset.Lit(math.NaN()), dataset.Lit(math.Inf(1)), dataset.Lit(math.Copysign(0, -1))
	return map[string]*dataset.Expr{
		"eq":            a.Eq(b),
		"ne":            a.Ne(b),
		"lt":            a.Lt(b),
		"le":            a.Le(b),
		"gt":            a.Gt(b),
		"ge":            a.Ge(b),
		"not_gt":        dataset.Not(a.Gt(b)),
		"eq_nan":        a.Eq(nan),
		"ne_nan":        a.Ne(nan),
		"lt_nan":        a.Lt(nan),
		"ge_nan":        a.Ge(nan),
		"nan_gt":        nan.Gt(a),
		"gt_zero":       a.Gt(0),
		"le_inf":        a.Le(inf),
		"eq_negzero":    a.Eq(negZero),
		"in_nan":        a.In(math.NaN(), 1.0),
		"in_zero":       a.In(0.0),
		"between_b_nan": a.Between(b, nan),
		"between_lit":   a.Between(-1.0, 1.0),
		"case": dataset.When(a.Eq(b), "eq").When(a.Gt(b), "gt").When(a.Lt(b), "lt").
			Else("none"),
	}
}

func sparkValue(s string) (float64, bool) {
	switch s {
	case "null":
		return 0, false
	case "NaN":
		return math.NaN(), true
	case "Inf":
		return math.Inf(1), true
	case "-Inf":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f, true
}

// sparkString renders a float as spark_nan.py's fmt does.
func sparkString(arr arrow.Array, i int) string {
	if arr.IsNull(i) {
		return "null"
	}
	var f float64
	switch a := arr.(type) {
	case *array.Float32:
		f = float64(a.Value(i))
	case *array.Float64:
		f = a.Value(i)
	}
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case f == 0 && math.Signbit(f):
		return "-0.0"
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !slices.Contains([]byte(s), '.') {
		s += ".0"
	}
	return s
}

func floatColumn(mem memory.Allocator, typ string, vals []string) arrow.Array {
	if typ == "float" {
		b := array.NewFloat32Builder(mem)
		defer b.Release()
		for _, s := range vals {
			f, ok := sparkValue(s)
			b.AppendValues([]float32{float32(f)}, []bool{ok})
		}
		return b.NewArray()
	}
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	for _, s := range vals {
		f, ok := sparkValue(s)
		b.AppendValues([]float64{f}, []bool{ok})
	}
	return b.NewArray()
}

func int32Column(mem memory.Allocator, from, n int) arrow.Array {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	for i := range n {
		b.Append(int32(from + i))
	}
	return b.NewArray()
}

func recordOf(names []string, cols ...arrow.Array) arrow.Record {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: names[i], Type: c.DataType(), Nullable: true}
	}
	rec := array.NewRecord(arrow.NewSchema(fields, nil), cols, int64(cols[0].Len()))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func collectRecords(t *testing.T, ds *dataset.Dataset) []arrow.Record {
	t.Helper()
	recs, err := ds.CollectRecords(t.Context())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return recs
}

// TestSparkNaN compares sluice with Spark's answers for NaN, -0.0, +-Inf and
// null in comparisons, IN, BETWEEN, CASE, equi-joins, grouping, count
// distinct, min/max and sort, on float and double columns.
func TestSparkNaN(t *testing.T) {
	raw, err := os.ReadFile("testdata/spark_nan.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden sparkNaN
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatalf("testdata/spark_nan.json: %v", err)
	}
	exprs := nanExprs()
	for name := range golden.Exprs {
		if exprs[name] == nil {
			t.Fatalf("spark_nan.json has expression %q that nanExprs lacks", name)
		}
	}
	for _, typ := range []string{"float", "double"} {
		want := golden.Types[typ]
		t.Run(typ, func(t *testing.T) {
			mem, cfg := checked(t)
			var as, bs []string
			for _, r := range want.Rows {
				as, bs = append(as, r["a"].(string)), append(bs, r["b"].(string))
			}
			rec := recordOf([]string{"id", "a", "b"}, int32Column(mem, 0, len(as)),
				floatColumn(mem, typ, as), floatColumn(mem, typ, bs))
			defer rec.Release()
			ds := dataset.FromRecords(rec.Schema(), rec).WithConfig(cfg)

			t.Run("expressions", func(t *testing.T) {
				names := make([]string, 0, len(golden.Exprs))
				cols := []any{"id"}
				for name := range golden.Exprs {
					names = append(names, name)
				}
				slices.Sort(names)
				for _, name := range names {
					cols = append(cols, exprs[name].As(name))
				}
				seen := 0
				for _, r := range collectRecords(t, ds.Select(cols...)) {
					ids := r.Column(0).(*array.Int32)
					for i := range int(r.NumRows()) {
						row := want.Rows[ids.Value(i)]
						seen++
						for c, name := range names {
							var got any
							switch col := r.Column(c + 1).(type) {
							case *array.Boolean:
								if col.IsValid(i) {
									got = col.Value(i)
								}
							case *array.String:
								if col.IsValid(i) {
									got = col.Value(i)
								}
							default:
								t.Fatalf("%s: result type %s", name, col.DataType())
							}
							if got != row[name] {
								t.Errorf("%s a=%s b=%s: sluice %v, Spark %s %v (%s)",
									name, row["a"], row["b"], got, golden.Spark, row[name], golden.Exprs[name])
							}
						}
					}
				}
				if seen != len(want.Rows) {
					t.Fatalf("got %d rows, want %d", seen, len(want.Rows))
				}
			})

			side := func(from int, vals []string, id string) *dataset.Dataset {
				r := recordOf([]string{id, "k"}, int32Column(mem, from, len(vals)), floatColumn(mem, typ, vals))
				t.Cleanup(r.Release)
				return dataset.FromRecords(r.Schema(), r).WithConfig(cfg)
			}
			t.Run("join", func(t *testing.T) {
				l, r := side(0, golden.Values, "id"), side(100, golden.Values, "rid")
				var got [][2]string
				for _, rec := range collectRecords(t, l.Join(r, []string{"k"}, dataset.Inner).Select("id", "rid")) {
					ids, rids := rec.Column(0).(*array.Int32), rec.Column(1).(*array.Int32)
					for i := range int(rec.NumRows()) {
						got = append(got, [2]string{golden.Values[ids.Value(i)], golden.Values[rids.Value(i)-100]})
					}
				}
				slices.SortFunc(got, func(x, y [2]string) int {
					if c := cmpString(x[0], y[0]); c != 0 {
						return c
					}
					return cmpString(x[1], y[1])
				})
				if !slices.Equal(got, want.Join) {
					t.Fatalf("join on k: sluice %q, Spark %q", got, want.Join)
				}
			})

			many := append(slices.Clone(golden.Values), golden.Values...)
			t.Run("group by", func(t *testing.T) {
				var got [][2]any
				for _, rec := range collectRecords(t, side(0, many, "id").GroupBy("k").Agg(dataset.CountAll().As("n"))) {
					n := rec.Column(1).(*array.Int64)
					for i := range int(rec.NumRows()) {
						got = append(got, [2]any{sparkString(rec.Column(0), i), float64(n.Value(i))})
					}
				}
				wantGroups := slices.Clone(want.Groups)
				byKey := func(x, y [2]any) int { return cmpString(x[0].(string), y[0].(string)) }
				slices.SortFunc(got, byKey)
				slices.SortFunc(wantGroups, byKey)
				if !slices.Equal(got, wantGroups) {
					t.Fatalf("group by k: sluice %v, Spark %v", got, wantGroups)
				}
			})
			t.Run("min max count distinct", func(t *testing.T) {
				recs := collectRecords(t, side(0, many, "id").Agg(dataset.Min(dataset.Col("k")), dataset.Max(dataset.Col("k")),
					dataset.CountDistinct(dataset.Col("k"))))
				r := recs[0]
				got := []any{sparkString(r.Column(0), 0), sparkString(r.Column(1), 0), r.Column(2).(*array.Int64).Value(0)}
				if w := []any{want.Min, want.Max, want.CountDistinct}; !slices.Equal(got, w) {
					t.Fatalf("min, max, count distinct: sluice %v, Spark %v", got, w)
				}
			})
			t.Run("order by", func(t *testing.T) {
				var got []string
				for _, rec := range collectRecords(t, side(0, many, "id").OrderBy("k").Select("k")) {
					for i := range int(rec.NumRows()) {
						got = append(got, sparkString(rec.Column(0), i))
					}
				}
				// Spark does not order -0.0 and 0.0 (they are equal), nor do we.
				zero := func(s []string) []string {
					s = slices.Clone(s)
					for i := range s {
						if s[i] == "-0.0" {
							s[i] = "0.0"
						}
					}
					return s
				}
				if !slices.Equal(zero(got), zero(want.Order)) {
					t.Fatalf("order by k: sluice %q, Spark %q", got, want.Order)
				}
			})
		})
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pyarrow (like parquet-mr) leaves NaN out of a column chunk's min and max,
// so a filter that NaN satisfies (x > 5: NaN is greater than every number)
// must not prune a row group on its max: the NaN row would be lost. The
// files are pyarrow's, with row groups of 2 rows, NaN beside -1.0 in one.
func TestParquetPruningKeepsNaNRows(t *testing.T) {
	_, cfg := checked(t)
	dir := t.TempDir()
	testenv.RunPython(t, `
import sys, pyarrow as pa, pyarrow.parquet as pq
vals = [1.0, 2.0, float("nan"), -1.0, 0.0, 1.0, float("nan"), 2.0]
for name, typ in (("float", pa.float32()), ("double", pa.float64())):
    pq.write_table(pa.table({"x": pa.array(vals, typ)}), sys.argv[1] + "/" + name + ".parquet", row_group_size=2)
`, dir)
	for _, typ := range []string{"float", "double"} {
		t.Run(typ, func(t *testing.T) {
			for _, c := range []struct {
				cond *dataset.Expr
				want int64
			}{
				{dataset.Col("x").Gt(5.0), 2},
				{dataset.Col("x").Ge(5.0), 2},
				{dataset.Col("x").Ne(-1.0), 7},
				{dataset.Col("x").Gt(-1.0).And(dataset.Col("x").Lt(0.5)), 1},
				{dataset.Col("x").Lt(5.0), 6},
				{dataset.Col("x").Eq(math.NaN()), 2},
				{dataset.Col("x").In(math.NaN()), 2},
				{dataset.Col("x").Between(5.0, math.NaN()), 2},
			} {
				n, err := dataset.Read(filepath.Join(dir, typ+".parquet")).WithConfig(cfg).Filter(c.cond).Count(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if n != c.want {
					t.Errorf("%s: %d rows, want %d", c.cond, n, c.want)
				}
			}
		})
	}
}
