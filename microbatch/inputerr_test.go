package microbatch_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkparquet "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/files"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// A cast error in a stream over Kafka names where it read the bad value:
// topic, partition and the offsets of its record (of 2 rows here), and the
// split, as well as value and expression.
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
		ValueSchema: schema, FetchMaxWait: 20 * time.Millisecond, RecordRows: 2})
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
	for _, want := range []string{"topic orders, partition 1, offsets 2-3", "orders/1[0,5)", "'many'", "CAST(qty AS int64)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "orders/0[") {
		t.Errorf("the error names partition 0, which has no bad value: %v", err)
	}
}

// A cast error in a stream over a directory of Parquet files names the file,
// the row group and the file rows of the record that held the bad value.
func TestFilesRuntimeErrorNamesFileAndRowGroup(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := dataset.Config{Allocator: mem, Parallelism: 2}
	schema := arrow.NewSchema([]arrow.Field{{Name: "qty", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	in := t.TempDir()
	write := func(name string, vals []string) string {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		col := b.NewArray()
		defer col.Release()
		rec := array.NewRecord(schema, []arrow.Array{col}, int64(len(vals)))
		defer rec.Release()
		dir := filepath.Join(t.TempDir(), name)
		err := dataset.FromRecords(schema, rec).WithConfig(cfg).
			Write(context.Background(), dir, dataset.WriteOptions{Options: sinkparquet.Options{RowGroupRows: 4}})
		if err != nil {
			t.Fatal(err)
		}
		parts, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
		if len(parts) != 1 {
			t.Fatalf("wrote %v, want one file", parts)
		}
		path := filepath.Join(in, name+".parquet")
		if err := os.Rename(parts[0], path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	vals := func(from int) []string {
		var out []string
		for i := range 10 {
			out = append(out, strconv.Itoa(from+i))
		}
		return out
	}
	bad := vals(100)
	bad[9] = "lots" // row group 2 (file rows 8-9)
	good := write("a", vals(0))
	badFile := write("b", bad)
	ckpt := t.TempDir()
	src, err := files.New(files.Config{Name: "drops", Dir: in, LogDir: filepath.Join(ckpt, "sources", "drops"), SettleDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	job := dataset.ReadStream(src).WithConfig(cfg).
		Select(dataset.Col("qty").Cast(dataset.Type(arrow.PrimitiveTypes.Int64)).As("qty"))
	q, err := microbatch.WriteStream(job, newRecordingSink()).Checkpoint(ckpt).OutputMode(sinks.Append).
		Logger(slog.New(slog.NewTextHandler(io.Discard, nil))).Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = q.AwaitTermination()
	if err == nil {
		t.Fatal(`the cast of "lots" did not fail the batch`)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"file " + badFile + ", row group 2, file rows 8-9", "'lots'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), good) {
		t.Errorf("the error names %s, which has no bad value: %v", good, err)
	}
}

// A split that cannot say where each record starts (an in-memory stream's)
// is named as a whole, by its encoding cut short.
func TestRuntimeErrorNamesASplitWithoutPositions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "qty", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	src, err := srcmem.New(srcmem.Config{Name: "typed", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b := array.NewStringBuilder(mem)
	b.AppendValues([]string{"1", "two"}, nil)
	col := b.NewArray()
	b.Release()
	rec := array.NewRecord(schema, []arrow.Array{col}, 2)
	col.Release()
	err = src.Append(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	job := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem}).
		Select(dataset.Col("qty").Cast(dataset.Type(arrow.PrimitiveTypes.Int64)).As("qty"))
	q, err := microbatch.WriteStream(job, newRecordingSink()).Checkpoint("/ckpt").FS(vfs.NewMem()).OutputMode(sinks.Append).
		Logger(slog.New(slog.NewTextHandler(io.Discard, nil))).Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = q.AwaitTermination()
	if err == nil {
		t.Fatal(`the cast of "two" did not fail the batch`)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), `input stream typed, split {"v":1,"kind":"memory","name":"typed"`) || !strings.Contains(err.Error(), "'two'") {
		t.Errorf("the error does not name the split and the value: %v", err)
	}
}
