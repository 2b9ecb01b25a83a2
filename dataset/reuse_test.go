package dataset_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// readers counts, per stage, the stages that read its output.
func readers(spec *plan.Spec) map[int]int {
	n := map[int]int{}
	for _, st := range spec.Stages {
		for _, d := range st.Deps {
			n[d]++
		}
	}
	return n
}

// q5's shape: counts per sliding window, their max per window, joined back.
func hotItems(t *testing.T, cfg dataset.Config, keep func(*dataset.Dataset) *dataset.Dataset) *dataset.StreamQuery {
	t.Helper()
	src, err := srcmem.New(srcmem.Config{Name: "bids", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "auction", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	counts := dataset.ReadStream(src).WithConfig(cfg).WithWatermark("ts", 4*time.Second).
		GroupBy(dataset.SlidingWindow("ts", 10*time.Second, 2*time.Second), "auction").
		Agg(dataset.CountAll().As("num"))
	maxes := counts.GroupBy(dataset.WindowStart, dataset.WindowEnd).Agg(dataset.Max(dataset.Col("num")).As("maxn"))
	hot := keep(counts).JoinWhere(maxes, []string{dataset.WindowStart, dataset.WindowEnd}, dataset.Inner, dataset.Col("num").Ge(dataset.Col("maxn")))
	sink, err := sinkmem.New(sinkmem.Config{Name: "out"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	q, err := hot.CompileStream(sink, dataset.StreamOptions{KeyGroups: 8, Emit: sinks.Append})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	roundTrip(t, q.Spec())
	return q
}

// stagesOf returns the stages holding stateful operator op, and those that
// read the stream.
func stagesOf(spec *plan.Spec, op string) (holding, scanning []*plan.Stage) {
	for _, st := range spec.Stages {
		if len(st.Leaves()) > 0 {
			scanning = append(scanning, st)
		}
		has := false
		st.Root.Walk(func(n *plan.Node) { has = has || n.State != nil && n.State.Operator == op })
		if has {
			holding = append(holding, st)
		}
	}
	return holding, scanning
}

func statefulIDs(spec *plan.Spec) []string {
	var ops []string
	for _, op := range spec.Stateful {
		ops = append(ops, op.ID)
	}
	return ops
}

// A streaming aggregate used twice (q5's counts, under their max and under
// the join back to it) is one operator: one stage reads the stream and one
// keeps the counts' state, whose output both consumers read. The stream's
// rows are counted once, and late rows once, for that operator.
func TestAnAggregateUsedTwiceIsOneOperator(t *testing.T) {
	_, cfg := checked(t)
	q := hotItems(t, cfg, func(d *dataset.Dataset) *dataset.Dataset { return d })
	spec := q.Spec()
	holding, scanning := stagesOf(spec, "agg-0")
	if len(scanning) != 1 || len(holding) != 1 {
		t.Fatalf("%d stages read the stream and %d keep the counts, want 1 and 1:\n%s", len(scanning), len(holding), q.Explain())
	}
	if n := readers(spec)[holding[0].ID]; n != 2 {
		t.Fatalf("the counts' stage is read by %d stages, want 2 (the max and the join):\n%s", n, q.Explain())
	}
	var counted int
	var late []string
	scanning[0].Root.Walk(func(n *plan.Node) {
		if n.Kind == plan.KindScan && n.Scan.Count {
			counted++
		}
		if n.Late != nil {
			late = append(append(late, n.Late.Operator), n.Late.Also...)
		}
	})
	if counted != 1 {
		t.Errorf("%d scans count the stream's rows, want 1", counted)
	}
	if !slices.Equal(late, []string{"agg-0"}) {
		t.Errorf("the late filter before the counts counts for %v, want [agg-0] once", late)
	}
	if want := []string{"agg-0", "agg-2", "join-3-left", "join-3-right"}; !slices.Equal(statefulIDs(spec), want) {
		t.Errorf("stateful operators %v, want %v", statefulIDs(spec), want)
	}
}

// Copies of an aggregate that are not equal (a filter on a group key pushed
// into one of them) keep their own operators and state.
func TestUnequalCopiesOfAnAggregateStayApart(t *testing.T) {
	_, cfg := checked(t)
	q := hotItems(t, cfg, func(d *dataset.Dataset) *dataset.Dataset {
		return d.Where(dataset.Col("auction").Gt(dataset.Lit(int64(5))))
	})
	spec := q.Spec()
	if want := []string{"agg-0", "agg-1", "agg-2", "join-3-left", "join-3-right"}; !slices.Equal(statefulIDs(spec), want) {
		t.Fatalf("stateful operators %v, want %v:\n%s", statefulIDs(spec), want, q.Explain())
	}
	for _, op := range []string{"agg-0", "agg-1"} {
		if holding, _ := stagesOf(spec, op); len(holding) != 1 {
			t.Errorf("%d stages keep %s, want 1", len(holding), op)
		}
	}
}

// A batch self-join of an aggregate reads the aggregate's exchange once,
// and answers as the join of two separately computed copies does.
func TestABatchSelfJoinSharesItsExchange(t *testing.T) {
	_, cfg := checked(t)
	type sale struct {
		Shop   string
		Amount int64
	}
	var data []sale
	for i := range 40 {
		data = append(data, sale{Shop: string(rune('a' + i%5)), Amount: int64(i)})
	}
	totals := dataset.FromStructs(data).WithConfig(cfg).GroupBy("shop").Agg(dataset.Sum(dataset.Col("amount")).As("total"))
	twice := totals.Join(totals.Select(dataset.Col("shop"), dataset.Col("total").As("again")), []string{"shop"}, dataset.Inner)
	spec, err := twice.Compile()
	if err != nil {
		t.Fatal(err)
	}
	shared := false
	for _, n := range readers(spec) {
		shared = shared || n > 1
	}
	var deps [][]int
	for _, st := range spec.Stages {
		deps = append(deps, st.Deps)
	}
	if !shared {
		t.Fatalf("no stage is read twice (deps %v)", deps)
	}
	got := rows(t, twice.OrderBy(dataset.Asc(dataset.Col("shop"))))
	want := []string{"a|140|140", "b|148|148", "c|156|156", "d|164|164", "e|172|172"}
	if !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}
