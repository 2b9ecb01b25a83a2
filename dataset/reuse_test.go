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

// A streaming Dataset used twice (q5's shape: counts per window, their max
// per window, joined back) is read, windowed and partly aggregated once:
// both stateful aggregates read one stage's output. That stage counts the
// stream's rows, and its late filter counts what it drops for both.
func TestAStreamUsedTwiceIsReadOnce(t *testing.T) {
	_, cfg := checked(t)
	src, err := srcmem.New(srcmem.Config{Name: "bids", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "auction", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	counts := dataset.ReadStream(src).WithConfig(cfg).WithWatermark("ts", 4*time.Second).
		GroupBy(dataset.SlidingWindow("ts", 10*time.Second, 2*time.Second), "auction").
		Agg(dataset.CountAll().As("num"))
	maxes := counts.GroupBy(dataset.WindowStart, dataset.WindowEnd).Agg(dataset.Max(dataset.Col("num")).As("maxn"))
	hot := counts.JoinWhere(maxes, []string{dataset.WindowStart, dataset.WindowEnd}, dataset.Inner, dataset.Col("num").Ge(dataset.Col("maxn")))
	sink, err := sinkmem.New(sinkmem.Config{Name: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	q, err := hot.CompileStream(sink, dataset.StreamOptions{KeyGroups: 8, Emit: sinks.Append})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	spec := q.Spec()
	roundTrip(t, spec)
	var scans []*plan.Stage
	for _, st := range spec.Stages {
		if len(st.Leaves()) > 0 {
			scans = append(scans, st)
		}
	}
	if len(scans) != 1 {
		t.Fatalf("%d stages read the stream, want 1:\n%s", len(scans), q.Explain())
	}
	if n := readers(spec)[scans[0].ID]; n != 2 {
		t.Fatalf("the stream's stage is read by %d stages, want both aggregates:\n%s", n, q.Explain())
	}
	var counted int
	var late []string
	scans[0].Root.Walk(func(n *plan.Node) {
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
	slices.Sort(late)
	if !slices.Equal(late, []string{"agg-0", "agg-1"}) {
		t.Errorf("the shared late filter drops rows for %v, want both counts aggregates", late)
	}
	// The stateful aggregates keep their own state, as before.
	var ops []string
	for _, op := range spec.Stateful {
		ops = append(ops, op.ID)
	}
	if want := []string{"agg-0", "agg-1", "agg-2", "join-3-left", "join-3-right"}; !slices.Equal(ops, want) {
		t.Errorf("stateful operators %v, want %v", ops, want)
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
