package dataset_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
)

// addToID returns a BatchFunc adding n to the single int64 column "id".
// Every call returns a new closure of one function literal: nothing but the
// registration can tell two of them apart.
func addToID(n int64) func(memory.Allocator, arrow.Record) (arrow.Record, error) {
	return func(mem memory.Allocator, in arrow.Record) (arrow.Record, error) {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		for _, v := range in.Column(0).(*array.Int64).Int64Values() {
			b.Append(v + n)
		}
		col := b.NewArray()
		defer col.Release()
		return array.NewRecord(in.Schema(), []arrow.Array{col}, in.NumRows()), nil
	}
}

// A Dataset runs the function it was given, whatever another Dataset later
// registers under the same name (issue 9: the last registration used to win
// process-wide, so a ran f2).
func TestMapBatchesRunsTheFunctionItWasGivenNotALaterOneOfTheSameName(t *testing.T) {
	_, cfg := checked(t)
	base := dataset.FromStructs(orders()).WithConfig(cfg).Select("id")
	a := base.MapBatches("tag", nil, addToID(100))
	b := base.MapBatches("tag", nil, addToID(200))
	if got, want := sorted(rows(t, a)), sorted([]string{"101", "102", "103", "104", "105", "106", "107", "108"}); !slices.Equal(got, want) {
		t.Fatalf("a: got %q, want %q", got, want)
	}
	if got, want := sorted(rows(t, b)), sorted([]string{"201", "202", "203", "204", "205", "206", "207", "208"}); !slices.Equal(got, want) {
		t.Fatalf("b: got %q, want %q", got, want)
	}
}

// Within one plan a name means one registration: a second registration of
// a name the plan already has, in one lineage or brought in by Union or
// Join, is an error that names the function and both places.
func TestANameRegisteredTwiceInOnePlanIsAnErrorNamingBothPlaces(t *testing.T) {
	_, cfg := checked(t)
	base := dataset.FromStructs(orders()).WithConfig(cfg).Select("id")
	a := base.MapBatches("tag", nil, addToID(1))
	b := base.MapBatches("tag", nil, addToID(2))
	for name, ds := range map[string]*dataset.Dataset{
		"in one lineage": a.MapBatches("tag", nil, addToID(2)),
		"by a union":     a.Union(b),
		"by a join":      a.Join(b, []string{"id"}, dataset.Inner),
		"by a union the other way round, after other steps": b.Filter(dataset.Col("id").Gt(2)).Union(a.Select("id")),
	} {
		t.Run(name, func(t *testing.T) {
			err := ds.Err()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, `"tag"`) || !strings.Contains(msg, "registered twice") || strings.Count(msg, "funcs_test.go:") != 2 {
				t.Fatalf("error %q should name the function %q, say it is registered twice and give both places", msg, "tag")
			}
			if _, err := ds.CollectRecords(context.Background()); err == nil || err.Error() != msg {
				t.Fatalf("collect: %v; want the Dataset's error", err)
			}
		})
	}
}

// The same registration reached twice (a Dataset joined or unioned with
// itself) is one function, not a clash.
func TestASelfUnionAndSelfJoinOfOneRegistrationRun(t *testing.T) {
	_, cfg := checked(t)
	a := dataset.FromStructs(orders()).WithConfig(cfg).Select("id").MapBatches("tag", nil, addToID(10))
	got := sorted(rows(t, a.Union(a, a.Filter(dataset.Col("id").Lt(13)))))
	want := sorted([]string{"11", "11", "11", "12", "12", "12", "13", "13", "14", "14", "15", "15", "16", "16", "17", "17", "18", "18"})
	if !slices.Equal(got, want) {
		t.Fatalf("self-union: got %q, want %q", got, want)
	}
	got = sorted(rows(t, a.Join(a, []string{"id"}, dataset.Inner)))
	want = sorted([]string{"11", "12", "13", "14", "15", "16", "17", "18"})
	if !slices.Equal(got, want) {
		t.Fatalf("self-join: got %q, want %q", got, want)
	}
}

// countFrom returns a state function emitting start + the number of rows
// so far; every call is a new closure of one function literal.
func countFrom(start int64) dataset.GroupFunc {
	return dataset.StateFunc(func(key dataset.Key, rows arrow.Record, st *dataset.State[groupCount], out *array.RecordBuilder) error {
		s, _ := st.Get()
		s.N += int64(rows.NumRows())
		st.Update(s)
		out.Field(0).(*array.StringBuilder).Append(key[0].(string))
		out.Field(1).(*array.Int64Builder).Append(start + s.N)
		out.Field(2).(*array.StringBuilder).Append("")
		return nil
	})
}

// FlatMapGroupsWithState follows the rule of MapBatches: a Dataset runs the
// function it was given; a name registered twice in one plan is an error
// naming both places; one registration reached twice is fine.
func TestFlatMapGroupsWithStateFunctionsBelongToTheirPlan(t *testing.T) {
	_, cfg := checked(t)
	sch := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "user", Type: arrow.BinaryTypes.String}}, nil)
	mem := cfg.Allocator
	bld := array.NewRecordBuilder(mem, sch)
	bld.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	bld.Field(1).(*array.StringBuilder).AppendValues([]string{"a", "b", "a"}, nil)
	rec := bld.NewRecord()
	bld.Release()
	defer rec.Release()
	keyed := dataset.FromRecords(sch, rec).WithConfig(cfg).GroupByKey("user")

	a := keyed.FlatMapGroupsWithState("test.countFrom", groupOut, dataset.NoTimeout, countFrom(1000))
	b := keyed.FlatMapGroupsWithState("test.countFrom", groupOut, dataset.NoTimeout, countFrom(2000))
	if got, want := sorted(rows(t, a)), []string{"a|1002|", "b|1001|"}; !slices.Equal(got, want) {
		t.Fatalf("a: got %q, want %q", got, want)
	}
	if got, want := sorted(rows(t, b)), []string{"a|2002|", "b|2001|"}; !slices.Equal(got, want) {
		t.Fatalf("b: got %q, want %q", got, want)
	}
	if got, want := sorted(rows(t, a.Union(a))), []string{"a|1002|", "a|1002|", "b|1001|", "b|1001|"}; !slices.Equal(got, want) {
		t.Fatalf("a self-union: got %q, want %q", got, want)
	}
	for name, ds := range map[string]*dataset.Dataset{
		"by a union":     a.Union(b),
		"in one lineage": a.GroupByKey("user").FlatMapGroupsWithState("test.countFrom", groupOut, dataset.NoTimeout, countFrom(3000)),
		"as a MapBatches of the same name": a.Select("n").
			MapBatches("test.countFrom", nil, func(mem memory.Allocator, in arrow.Record) (arrow.Record, error) { in.Retain(); return in, nil }),
	} {
		err := ds.Err()
		if err == nil || !strings.Contains(err.Error(), `"test.countFrom"`) || !strings.Contains(err.Error(), "registered twice") ||
			strings.Count(err.Error(), "funcs_test.go:") != 2 {
			t.Errorf("%s: error %v; want it to name %q, say it is registered twice and give both places", name, err, "test.countFrom")
		}
	}
}
