package dataset_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// The physical plans of streaming joins: a stream-stream join's late
// filters, key-group exchanges and time range; a stream-static join's
// broadcast side and unexchanged stream.
func TestExplainStreamingJoinsGolden(t *testing.T) {
	_, cfg := checked(t)
	cfg.ShufflePartitions = 2
	ts := &arrow.TimestampType{Unit: arrow.Millisecond}
	orders, _ := srcmem.New(srcmem.Config{Name: "orders", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "ordered_at", Type: ts}, {Name: "amount", Type: arrow.PrimitiveTypes.Int64}}, nil)})
	defer orders.Close()
	payments, _ := srcmem.New(srcmem.Config{Name: "payments", Schema: arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "paid_at", Type: ts}}, nil)})
	defer payments.Close()
	o := dataset.ReadStream(orders).WithConfig(cfg).WithWatermark("ordered_at", 10*time.Second)
	p := dataset.ReadStream(payments).WithConfig(cfg).WithWatermark("paid_at", 10*time.Second)
	static := dataset.FromStructs([]struct{ OrderID int64 }{{1}, {2}}).WithConfig(cfg)
	cases := map[string]*dataset.Dataset{
		"stream_stream_left_join": o.JoinWhere(p, []string{"order_id"}, dataset.Left,
			dataset.Col("paid_at").Between(dataset.Col("ordered_at"), dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(15*time.Minute)))),
		"stream_static_semi_join": o.Join(static, []string{"order_id"}, dataset.Semi),
	}
	for name, ds := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ds.ExplainBatch(nil, &dataset.StreamState{KeyGroups: 8, Version: 3,
				Emit: "append", Watermark: 1_000_000, PrevWatermark: math.MinInt64})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "explain", name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Fatalf("plan changed (run with -update if intended):\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
