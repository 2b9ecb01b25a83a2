package microbatch_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// Kafka on kfake: topic "clicks" has two partitions, of which partition 1
// never gets a record; topic "views" (a second input, unioned) gets none
// at all. An input's watermark follows the largest event time over all its
// partitions (as in Spark), so the silent partition holds nothing back;
// the silent topic does, until it has been idle for 30 s of batch time.
func TestKafkaSilentPartitionAndIdleTopic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "clicks"), kfake.SeedTopics(1, "views"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
		{Name: "user", Type: arrow.BinaryTypes.String}}, nil)
	input := func(topic string) *dataset.Dataset {
		src, err := srckafka.New(srckafka.Config{Name: topic, Brokers: c.ListenAddrs(), Topics: []string{topic},
			ValueSchema: schema, FetchMaxWait: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2}).
			WithWatermark("ts", 5*time.Second).WithIdleness(30 * time.Second)
	}
	job := input("clicks").Union(input("views")).GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.CountAll().As("n"))
	fs, sink, clock := vfs.NewMem(), newRecordingSink(), &setClock{}
	for k := 0; k < 4; k++ {
		var recs []*kgo.Record
		for _, s := range []int{10*k + 1, 10*k + 5, 10*k + 9} {
			v := fmt.Sprintf(`{"ts":%d,"user":"u"}`, at(s).UnixMilli())
			recs = append(recs, &kgo.Record{Topic: "clicks", Partition: 0, Value: []byte(v)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		clock.Set(at(10 * k))
		q, err := microbatch.WriteStream(job, sink).Checkpoint("/ckpt").FS(fs).Clock(clock).OutputMode(sinks.Append).
			Logger(slog.New(slog.NewTextHandler(io.Discard, nil))).Trigger(microbatch.Once()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		pr := q.LastProgress()
		if pr == nil || pr.Batch != int64(k) {
			t.Fatalf("step %d: progress %+v, want batch %d", k, pr, k)
		}
		if k < 3 {
			checkBatch(t, pr, time.Time{})
			if rows := sink.rows(); len(rows) != 0 {
				t.Fatalf("batch %d: windows closed while views was not idle yet: %q", k, rows)
			}
			continue
		}
		// views idle; clicks' watermark is partition 0's 29 s - 5 s,
		// partition 1 never having had a record.
		checkBatch(t, pr, at(24), "wm-1")
		want := []string{fmt.Sprintf("%s|%s|u|3", ts(0), ts(10)), fmt.Sprintf("%s|%s|u|3", ts(10), ts(20))}
		if got := sink.sortedBatches()[3]; !slices.Equal(got, want) {
			t.Fatalf("batch 3 emitted %q, want %q", got, want)
		}
	}
}
