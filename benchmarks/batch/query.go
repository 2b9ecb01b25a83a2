package main

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	ds "github.com/sluicedata/sluice/dataset"
)

// Query constants (TPC-H 2.4.1 and 2.4.6 with the validation parameters).
var (
	q1Cutoff = days(1998, 12, 1) - 90 // date '1998-12-01' - interval '90' day = 1998-09-02
	q6From   = days(1994, 1, 1)
	q6To     = days(1995, 1, 1)
)

const (
	q6DiscLo = 0.05 // 0.06 - 0.01, written as the literal so both sides compare the same double
	q6DiscHi = 0.07
	q6Qty    = 24.0
)

// query is one benchmark query: its Dataset plan, the columns the hand loop
// decodes, the hand loop itself, and how to read the engine's answer.
type query struct {
	name    string
	columns []string
	plan    func(in *ds.Dataset) *ds.Dataset
	// loop computes the answer over decoded records (one column per entry
	// of columns, in that order) with plain Go over typed slices.
	loop func(recs []arrow.Record, workers int) (answer, error)
}

// answer is a query result reduced to comparable numbers: one row per
// group, keyed by the group's text, in output order.
type answer struct {
	keys   []string
	sums   [][]float64 // per row, the float columns (sums and averages)
	counts [][]int64   // per row, the integer columns
	names  []string    // float column names, then integer column names
}

func date32Lit(d int32) *ds.Expr { return ds.TypedLit(arrow.FixedWidthTypes.Date32, int64(d)) }

var queries = map[string]query{
	"q1": {
		name: "q1",
		columns: []string{"l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice",
			"l_discount", "l_tax", "l_shipdate"},
		plan: func(in *ds.Dataset) *ds.Dataset {
			col := ds.Col
			discPrice := col("l_extendedprice").Mul(ds.Lit(1.0).Sub(col("l_discount")))
			charge := col("l_extendedprice").Mul(ds.Lit(1.0).Sub(col("l_discount"))).Mul(ds.Lit(1.0).Add(col("l_tax")))
			return in.Filter(col("l_shipdate").Le(date32Lit(q1Cutoff))).
				GroupBy("l_returnflag", "l_linestatus").
				Agg(
					ds.Sum(col("l_quantity")).As("sum_qty"),
					ds.Sum(col("l_extendedprice")).As("sum_base_price"),
					ds.Sum(discPrice).As("sum_disc_price"),
					ds.Sum(charge).As("sum_charge"),
					ds.Avg(col("l_quantity")).As("avg_qty"),
					ds.Avg(col("l_extendedprice")).As("avg_price"),
					ds.Avg(col("l_discount")).As("avg_disc"),
					ds.CountAll().As("count_order"),
				).
				OrderBy("l_returnflag", "l_linestatus")
		},
		loop: q1Loop,
	},
	"q6": {
		name:    "q6",
		columns: []string{"l_shipdate", "l_discount", "l_quantity", "l_extendedprice"},
		plan: func(in *ds.Dataset) *ds.Dataset {
			col := ds.Col
			return in.Filter(ds.And(
				col("l_shipdate").Ge(date32Lit(q6From)),
				col("l_shipdate").Lt(date32Lit(q6To)),
				col("l_discount").Between(q6DiscLo, q6DiscHi),
				col("l_quantity").Lt(q6Qty),
			)).Agg(ds.Sum(col("l_extendedprice").Mul(col("l_discount"))).As("revenue"))
		},
		loop: q6Loop,
	},
}

var (
	q1Floats = []string{"sum_qty", "sum_base_price", "sum_disc_price", "sum_charge", "avg_qty", "avg_price", "avg_disc"}
	q1Ints   = []string{"count_order"}
	q6Floats = []string{"revenue"}
)

// engineAnswer reads the engine's result records into an answer. Key
// columns are the string columns; every other column must be float64 or
// int64 and named in floats or ints. A null float (sum over no rows) is NaN.
func engineAnswer(schema *arrow.Schema, recs []arrow.Record, floats, ints []string) (answer, error) {
	a := answer{names: append(append([]string(nil), floats...), ints...)}
	idx := func(name string) (int, error) {
		i := schema.FieldIndices(name)
		if len(i) != 1 {
			return 0, fmt.Errorf("result has no column %q (schema %s)", name, schema)
		}
		return i[0], nil
	}
	var keyCols []int
	for i, f := range schema.Fields() {
		if f.Type.ID() == arrow.STRING {
			keyCols = append(keyCols, i)
		}
	}
	for _, rec := range recs {
		for r := 0; r < int(rec.NumRows()); r++ {
			key := ""
			for _, k := range keyCols {
				key += rec.Column(k).(*array.String).Value(r) + "|"
			}
			var fs []float64
			for _, n := range floats {
				i, err := idx(n)
				if err != nil {
					return a, err
				}
				c, ok := rec.Column(i).(*array.Float64)
				if !ok {
					return a, fmt.Errorf("result column %q is %s, want float64", n, rec.Column(i).DataType())
				}
				v := math.NaN()
				if c.IsValid(r) {
					v = c.Value(r)
				}
				fs = append(fs, v)
			}
			var is []int64
			for _, n := range ints {
				i, err := idx(n)
				if err != nil {
					return a, err
				}
				c, ok := rec.Column(i).(*array.Int64)
				if !ok {
					return a, fmt.Errorf("result column %q is %s, want int64", n, rec.Column(i).DataType())
				}
				if c.IsNull(r) {
					return a, fmt.Errorf("result column %q is null in row %d", n, r)
				}
				is = append(is, c.Value(r))
			}
			a.keys = append(a.keys, key)
			a.sums = append(a.sums, fs)
			a.counts = append(a.counts, is)
		}
	}
	return a, nil
}

// relTol is the tolerance on float results: engine and hand loop add the
// same doubles in different orders, which moves only the last few bits.
const relTol = 1e-9

// compare returns nil when got (engine) equals want (hand loop): same keys
// in the same order, exact counts, floats within relTol (NaN equals NaN).
func compare(got, want answer) error {
	if len(got.keys) != len(want.keys) {
		return fmt.Errorf("engine returned %d rows, hand loop %d (engine keys %q, hand loop %q)", len(got.keys), len(want.keys), got.keys, want.keys)
	}
	for r := range got.keys {
		if got.keys[r] != want.keys[r] {
			return fmt.Errorf("row %d: engine key %q, hand loop %q", r, got.keys[r], want.keys[r])
		}
		for i, g := range got.sums[r] {
			w := want.sums[r][i]
			if math.IsNaN(g) && math.IsNaN(w) {
				continue
			}
			if math.IsNaN(g) || math.IsNaN(w) || math.Abs(g-w) > relTol*math.Max(math.Abs(g), math.Abs(w)) {
				return fmt.Errorf("row %d (%s) %s: engine %.17g, hand loop %.17g", r, got.keys[r], got.names[i], g, w)
			}
		}
		for i, g := range got.counts[r] {
			if w := want.counts[r][i]; g != w {
				return fmt.Errorf("row %d (%s) %s: engine %d, hand loop %d", r, got.keys[r], got.names[len(got.sums[r])+i], g, w)
			}
		}
	}
	return nil
}

// runEngine runs q end to end from the Parquet files: open footers, plan,
// scan, filter, aggregate, sort. The caller releases the records.
func runEngine(ctx context.Context, q query, files []string, cfg ds.Config) (*arrow.Schema, []arrow.Record, error) {
	d := q.plan(ds.Read(files...).WithConfig(cfg))
	if err := d.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: plan: %w", q.name, err)
	}
	recs, err := d.CollectRecords(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", q.name, err)
	}
	return d.Schema(), recs, nil
}

func (q query) resultColumns() (floats, ints []string) {
	if q.name == "q1" {
		return q1Floats, q1Ints
	}
	return q6Floats, nil
}
