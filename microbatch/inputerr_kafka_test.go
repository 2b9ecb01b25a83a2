package microbatch_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
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

// A cast error in a stream over Kafka names the split it read the bad value
// from: topic, partition and offset range, as well as value and expression.
func TestKafkaRuntimeErrorNamesTopicPartitionAndOffsets(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, v := range []string{"1", "2", "3"} {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte(`{"qty":"` + v + `"}`)})
	}
	for _, v := range []string{"4", "5", "6", "many", "7"} { // offset 3 of partition 1
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 1, Value: []byte(`{"qty":"` + v + `"}`)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "qty", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: c.ListenAddrs(), Topics: []string{"orders"},
		ValueSchema: schema, FetchMaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	job := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2}).
		Select(dataset.Col("qty").Cast(dataset.Type(arrow.PrimitiveTypes.Int64)).As("qty"))
	q, err := microbatch.WriteStream(job, newRecordingSink()).Checkpoint("/ckpt").FS(vfs.NewMem()).OutputMode(sinks.Append).
		Logger(slog.New(slog.NewTextHandler(io.Discard, nil))).Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = q.AwaitTermination()
	if err == nil {
		t.Fatal(`the cast of "many" did not fail the batch`)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"orders/1[0,5)", "'many'", "CAST(qty AS int64)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "orders/0[") {
		t.Errorf("the error names partition 0, which has no bad value: %v", err)
	}
}
