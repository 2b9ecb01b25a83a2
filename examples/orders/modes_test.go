package main

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/files"
	"github.com/sluicedata/sluice/sources/generate"
	"github.com/sluicedata/sluice/sources/kafka"
)

func renderTable(recs []arrow.Record) []string {
	var out []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			cells := make([]string, r.NumCols())
			for c := range cells {
				cells[c] = exec.FormatValue(r.Column(c), i)
			}
			out = append(out, strings.Join(cells, "|"))
		}
		r.Release()
	}
	sort.Strings(out)
	return out
}

// One job function, three modes: a batch job over a Parquet history, a
// backfill (AvailableNow) over the same files as a directory stream, and a
// stream over a Kafka topic holding the same orders give the same hourly
// totals.
func TestTheJobGivesTheSameTotalsAsBatchBackfillAndStream(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 2}
	gen := generate.Orders{Seed: 11, Interval: 20 * time.Second, MaxDelay: 10 * time.Minute, Customers: 30}
	var recs []arrow.Record
	for from := int64(0); from < 3000; from += 500 {
		recs = append(recs, gen.Record(mem, from, 500))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	dir := t.TempDir() + "/history"
	for i, r := range recs { // several files, as a history would arrive
		if err := dataset.FromRecords(generate.OrdersSchema, r).WithConfig(cfg).Write(context.Background(), dir,
			dataset.WriteOptions{Mode: map[bool]parquet.Mode{true: parquet.ErrorIfExists, false: parquet.Append}[i == 0]}); err != nil {
			t.Fatal(err)
		}
	}
	// Batch.
	out, err := HourlyTotals(dataset.Read(dir).WithConfig(cfg)).CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	batch := renderTable(out)
	if len(batch) < 100 {
		t.Fatalf("only %d totals", len(batch))
	}
	runStream := func(t *testing.T, ds *dataset.Dataset) []string {
		t.Helper()
		sink, err := sinkmem.New(sinkmem.Config{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		q, err := microbatch.WriteStream(HourlyTotals(ds.WithConfig(cfg)), sink).Checkpoint("/ckpt").FS(vfs.NewMem()).
			OutputMode(sinks.Complete).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		if len(q.RecentProgress()) < 2 {
			t.Fatalf("%d batches; the test wants several", len(q.RecentProgress()))
		}
		return renderTable(sink.Rows())
	}
	// Backfill: the history directory as a stream, drained in small batches.
	t.Run("backfill", func(t *testing.T) {
		src, err := files.New(files.Config{Dir: dir, LogDir: "/ckpt/files", FS: vfs.NewMem(), MaxFilesPerBatch: 2, SettleDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if got := runStream(t, dataset.ReadStream(src)); !slices.Equal(got, batch) {
			t.Fatalf("backfill: %d totals, batch %d", len(got), len(batch))
		}
	})
	// Stream: the same orders as JSON in a Kafka topic.
	t.Run("kafka stream", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for _, r := range recs {
			ids := r.Column(0).(*array.Int64)
			cust := r.Column(1).(*array.String)
			reg := r.Column(2).(*array.String)
			amt := r.Column(3).(*array.Decimal128)
			ts := r.Column(4).(*array.Timestamp)
			var krs []*kgo.Record
			for i := 0; i < int(r.NumRows()); i++ {
				v, _ := json.Marshal(map[string]any{"order_id": ids.Value(i), "customer": cust.Value(i), "region": reg.Value(i),
					"amount": amt.Value(i).ToString(2), "ts": int64(ts.Value(i))})
				krs = append(krs, &kgo.Record{Key: []byte(cust.Value(i)), Value: v})
			}
			if err := cl.ProduceSync(context.Background(), krs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		src, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Topics: []string{"orders"}, ValueSchema: generate.OrdersSchema, MaxOffsetsPerBatch: 700})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		ds := dataset.ReadStream(src).Select("order_id", "customer", "region", "amount", "ts")
		if got := runStream(t, ds); !slices.Equal(got, batch) {
			t.Fatalf("kafka stream: %d totals, batch %d", len(got), len(batch))
		}
	})
}
