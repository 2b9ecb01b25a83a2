package dataset_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// opText renders a StatefulOp for comparison; schemas as name:type, "?"
// marking a nullable field.
func opText(op plan.StatefulOp) string {
	sch := func(s *arrow.Schema) string {
		if s == nil {
			return "nil"
		}
		var fs []string
		for _, f := range s.Fields() {
			n := ""
			if f.Nullable {
				n = "?"
			}
			fs = append(fs, f.Name+":"+f.Type.String()+n)
		}
		return "[" + strings.Join(fs, " ") + "]"
	}
	s := fmt.Sprintf("%s %s key=%s value=%s", op.ID, op.Kind, sch(op.KeySchema), sch(op.ValueSchema))
	if op.Aggregates != nil {
		s += " aggs=" + strings.Join(op.Aggregates, ",")
	}
	if op.StateType != "" {
		s += " state=" + op.StateType
	}
	return s
}

// statefulOps compiles ds as a streaming query in update mode (the mode
// that refuses least; it never changes what an operator keeps) and returns
// its compiled spec's stateful operators, as a checkpoint's identity reads
// them.
func statefulOps(t *testing.T, ds *dataset.Dataset, keyGroups int) []plan.StatefulOp {
	t.Helper()
	sink, err := sinkmem.New(sinkmem.Config{Name: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	q, err := ds.CompileStream(sink, dataset.StreamOptions{KeyGroups: keyGroups, Emit: sinks.Update})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	return q.Spec().Stateful
}

// The stateful operators of a streaming query are typed facts derived from
// its physical plan: one per stateful operator (one per side of a stream
// join), with what the state is keyed by and what it keeps.
func TestStatefulOperatorsOfEachKind(t *testing.T) {
	ts := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	clicks, _ := srcmem.New(srcmem.Config{Name: "clicks", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "user", Type: arrow.BinaryTypes.String}, {Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "ts", Type: ts}}, nil)})
	defer clicks.Close()
	buys, _ := srcmem.New(srcmem.Config{Name: "buys", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "user", Type: arrow.BinaryTypes.String}, {Name: "paid", Type: arrow.PrimitiveTypes.Int64}, {Name: "bought_at", Type: ts}}, nil)})
	defer buys.Close()
	c := dataset.ReadStream(clicks)
	wc := c.WithWatermark("ts", 10*time.Second)
	wb := dataset.ReadStream(buys).WithWatermark("bought_at", 10*time.Second)
	tests := []struct {
		name string
		ds   *dataset.Dataset
		want []string
	}{
		{"a stateless query has none", c.Filter(dataset.Col("id").Gt(3)), nil},
		{"an aggregation keeps partial aggregates by group key", c.GroupBy("user").Agg(dataset.Sum(dataset.Col("id")).As("total"), dataset.CountAll().As("n")),
			[]string{"agg-0 aggregate key=[user:utf8?] value=[total:int64? n:int64] aggs=sum,count"}},
		{"a filter before it changes nothing the state keeps", c.Filter(dataset.Col("id").Gt(3)).GroupBy("user").Agg(dataset.Sum(dataset.Col("id")).As("total"), dataset.CountAll().As("n")),
			[]string{"agg-0 aggregate key=[user:utf8?] value=[total:int64? n:int64] aggs=sum,count"}},
		{"a windowed aggregation is keyed by the window too", wc.GroupBy(dataset.Window("ts", time.Minute), "user").Count(),
			[]string{"agg-0 aggregate key=[window_start:timestamp[ms, tz=UTC]? window_end:timestamp[ms, tz=UTC]? user:utf8?] value=[count:int64] aggs=count"}},
		{"a session aggregation keeps the session end with the partials", wc.GroupBy(dataset.SessionWindow("ts", time.Minute), "user").Count(),
			[]string{"agg-0 session-aggregate key=[window_start:timestamp[ms, tz=UTC]? user:utf8?] value=[window_end:timestamp[ms, tz=UTC]? count:int64] aggs=count"}},
		{"drop duplicates keeps keys only", c.DropDuplicates("user", "id"),
			[]string{"dedup-0 drop-duplicates key=[user:utf8 id:int64] value=[]"}},
		{"a stream-stream join keeps each side's rows by its join keys", wc.JoinWhere(wb, []string{"user"}, dataset.Inner,
			dataset.Col("bought_at").Between(dataset.Col("ts"), dataset.AddDuration(dataset.Col("ts"), 0, int64(time.Hour)))),
			[]string{
				"join-0-left stream-join key=[user:utf8] value=[user:utf8 id:int64 ts:timestamp[ms, tz=UTC]]",
				// The join renames the right side's clashing columns before it stores them.
				"join-0-right stream-join key=[__right.user:utf8] value=[__right.user:utf8 paid:int64 bought_at:timestamp[ms, tz=UTC]]",
			}},
		{"flatMapGroupsWithState keeps its state type", c.GroupByKey("user").FlatMapGroupsWithState("test.identityCount", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs)),
			[]string{"groups-0 flat-map-groups-with-state key=[user:utf8] value=nil state=dataset_test.groupCount"}},
		{"chained operators are numbered in planning order", wc.DropDuplicates("user", "ts").GroupBy(dataset.Window("ts", time.Minute)).Count(),
			[]string{
				"dedup-0 drop-duplicates key=[user:utf8 ts:timestamp[ms, tz=UTC]] value=[]",
				"agg-1 aggregate key=[window_start:timestamp[ms, tz=UTC]? window_end:timestamp[ms, tz=UTC]?] value=[count:int64] aggs=count",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, op := range statefulOps(t, tt.ds, 16) {
				got = append(got, opText(op))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A query whose state would differ gets other facts: the facts, not the
// plan's text, are what a checkpoint compares.
func TestStatefulOperatorsChangeWithWhatTheStateKeeps(t *testing.T) {
	src, _ := srcmem.New(srcmem.Config{Name: "s", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.BinaryTypes.String}, {Name: "k2", Type: arrow.PrimitiveTypes.Int32}, {Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)})
	defer src.Close()
	ds := dataset.ReadStream(src)
	facts := func(d *dataset.Dataset) string {
		t.Helper()
		var s []string
		for _, op := range statefulOps(t, d, 8) {
			s = append(s, opText(op))
		}
		return strings.Join(s, "; ")
	}
	base := facts(ds.GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("total")))
	for name, other := range map[string]*dataset.Dataset{
		"another key":         ds.GroupBy("k2").Agg(dataset.Sum(dataset.Col("v")).As("total")),
		"another aggregate":   ds.GroupBy("k").Agg(dataset.Max(dataset.Col("v")).As("total")),
		"another output name": ds.GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("sum")),
		"one more aggregate":  ds.GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("total"), dataset.CountAll().As("n")),
	} {
		if got := facts(other); got == base {
			t.Errorf("%s: same facts %q as the base query", name, got)
		}
	}
	if got := facts(ds.Select("k", "v").GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("total"))); got != base {
		t.Errorf("a projection before the aggregate changed the facts: %q, base %q", got, base)
	}
}
