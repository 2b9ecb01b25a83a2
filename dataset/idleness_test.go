package dataset_test

import (
	"errors"
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

// WithIdleness sets the idleness of the watermark declaration it follows:
// the compiled spec carries it with the names of the streams the
// declaration reads (what the driver watches), EXPLAIN shows it, the spec
// round-trips, and a declaration without it is as before.
func TestWithIdlenessReachesTheSpec(t *testing.T) {
	_, cfg := checked(t)
	sch := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}}, {Name: "k", Type: arrow.BinaryTypes.String}}, nil)
	a, _ := srcmem.New(srcmem.Config{Name: "a", Schema: sch})
	defer a.Close()
	b, _ := srcmem.New(srcmem.Config{Name: "b", Schema: sch})
	defer b.Close()
	ds := dataset.ReadStream(a).WithConfig(cfg).WithWatermark("ts", 5*time.Second).WithIdleness(time.Minute).
		Union(dataset.ReadStream(b).WithConfig(cfg).WithWatermark("ts", 5*time.Second)).
		GroupBy(dataset.Window("ts", 10*time.Second), "k").Agg(dataset.CountAll().As("n"))
	sink, err := sinkmem.New(sinkmem.Config{Name: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	q, err := ds.CompileStream(sink, dataset.StreamOptions{KeyGroups: 8, Emit: sinks.Append})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	wms := q.Spec().Watermarks
	if len(wms) != 2 {
		t.Fatalf("spec watermarks %+v, want two", wms)
	}
	var idle, plain *plan.WatermarkSpec
	for i := range wms {
		if wms[i].IdleMicros > 0 {
			idle = &wms[i]
		} else {
			plain = &wms[i]
		}
	}
	if idle == nil || idle.IdleMicros != time.Minute.Microseconds() || !slices.Equal(idle.Sources, []string{"a"}) {
		t.Fatalf("spec watermarks %+v; want one with a minute of idleness over source a", wms)
	}
	if plain == nil || plain.Sources != nil {
		t.Fatalf("spec watermarks %+v; want the other without idleness or sources", wms)
	}
	if got := q.Explain(); !strings.Contains(got, "Watermark ts delay=5s idle=1m0s\n") || !strings.Contains(got, "Watermark ts delay=5s\n") {
		t.Fatalf("EXPLAIN does not show a's idleness and b's lack of it:\n%s", got)
	}
	roundTrip(t, q.Spec())
}

func TestWithIdlenessRefusesWhatItCannotApplyTo(t *testing.T) {
	_, cfg := checked(t)
	sch := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}}}, nil)
	a, _ := srcmem.New(srcmem.Config{Name: "a", Schema: sch})
	defer a.Close()
	in := dataset.ReadStream(a).WithConfig(cfg)
	for name, tc := range map[string]struct {
		ds   *dataset.Dataset
		want string
	}{
		"without WithWatermark": {in.WithIdleness(time.Minute), "WithIdleness: plan: invalid plan: the Dataset is not the result of WithWatermark"},
		"after another step":    {in.WithWatermark("ts", time.Second).Filter(dataset.Col("ts").IsNotNull()).WithIdleness(time.Minute), "not the result of WithWatermark"},
		"zero":                  {in.WithWatermark("ts", time.Second).WithIdleness(0), "WithIdleness(0s): plan: invalid plan: must be positive"},
		"negative":              {in.WithWatermark("ts", time.Second).WithIdleness(-time.Second), "WithIdleness(-1s): plan: invalid plan: must be positive"},
	} {
		err := tc.ds.Err()
		if !errors.Is(err, plan.ErrPlan) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrPlan saying %q", name, err, tc.want)
		}
	}
}
