package microbatch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sinks/parquet"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// poisonInput is 30 orders on topic "in" (one partition), read 10 per
// batch; orders 7 and 21 carry a payload too large for the output topic's
// records (MaxRecordBytes 2000).
func poisonInput(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"), kfake.SeedTopics(2, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 30 {
		payload := "p" + strconv.Itoa(i)
		if i == 7 || i == 21 {
			payload = strings.Repeat("x", 3000)
		}
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"name":"k%d","payload":%q}`, i, i, payload)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return c
}

var poisonSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "payload", Type: arrow.BinaryTypes.String},
}, nil)

// poisonQuery runs the orders through a Kafka sink writing topic "out"
// under policy (dead letters to dl) to the end of the input, as a
// restarted process would: new source and sink instances, the checkpoint
// in dir.
func poisonQuery(t *testing.T, c *kfake.Cluster, mem memory.Allocator, dir, policy string, dl sinks.Sink, m *microbatch.Metrics) (*microbatch.Query, error) {
	t.Helper()
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: c.ListenAddrs(), Topics: []string{"in"},
		ValueSchema: poisonSchema, MaxOffsetsPerBatch: 10, FetchMaxWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, err := sinkkafka.New(sinkkafka.Config{Brokers: c.ListenAddrs(), Topic: "out", KeyColumn: "name", QueryID: "poison",
		MaxRecordBytes: 2000, BadRecords: policy, DeadLetter: dl, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ds := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2}).Select("id", "name", "payload")
	w := microbatch.WriteStream(ds, sink).Checkpoint(dir).Trigger(microbatch.AvailableNow()).OutputMode(sinks.Append)
	if m != nil {
		w = w.Metrics(m).QueryName("poison")
	}
	q, err := w.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.AwaitTermination() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		q.Stop()
		t.Fatalf("the query did not end within 60s: %v", q.Status())
	}
	return q, err
}

// outIDs returns the ids of the orders a read_committed consumer sees on
// "out", sorted.
func outIDs(t *testing.T, c *kfake.Cluster) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(admCl).ListCommittedOffsets(ctx, "out")
	admCl.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ids []int64
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read out: partitions %v not read to their end", want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() || sinkkafka.IsMarker(r) {
				return
			}
			var id int64
			if _, err := fmt.Sscanf(string(r.Value), `{"id":%d`, &id); err != nil {
				t.Fatalf("value %.80q: %v", r.Value, err)
			}
			ids = append(ids, id)
		})
	}
	slices.Sort(ids)
	return ids
}

// deadLetters reads the dead-letter table's rows of batches 0..99 as
// "id batch sink task row" and the reasons.
func deadLetters(t *testing.T, dl *parquet.StreamSink) (rows []string, reasons []string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for b := range int64(100) {
		recs, err := dl.ReadBatch(context.Background(), sinks.Batch{ID: b}, mem)
		if errors.Is(err, sinks.ErrBatchNotCommitted) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			col := func(name string) arrow.Array { return r.Column(r.Schema().FieldIndices(name)[0]) }
			for i := range int(r.NumRows()) {
				rows = append(rows, fmt.Sprintf("%s %s %s %s %s", col("id").ValueStr(i), col(sinks.DeadLetterBatch).ValueStr(i),
					col(sinks.DeadLetterSink).ValueStr(i), col(sinks.DeadLetterTask).ValueStr(i), col(sinks.DeadLetterRow).ValueStr(i)))
				reasons = append(reasons, col(sinks.DeadLetterError).(*array.String).Value(i))
				if p := col("payload").ValueStr(i); len(p) != 3000 {
					t.Errorf("dead letter of order %s: a payload of %d bytes, want the row's 3000", col("id").ValueStr(i), len(p))
				}
			}
			r.Release()
		}
	}
	return rows, reasons
}

// Under the dead-letter policy, a streaming query writes every order but
// the two too large for the topic, exactly once, and those two, with their
// reason, to the dead-letter Parquet table, counted in progress and
// metrics; a re-run of the last batch (a crash between the sinks' commit
// and the checkpoint's commit) duplicates neither.
func TestStreamDeadLettersRecordsTheTopicRefuses(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := poisonInput(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	dl, err := parquet.NewStream(parquet.StreamConfig{Dir: filepath.Join(t.TempDir(), "dead")})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := microbatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := poisonQuery(t, c, mem, dir, sinks.BadRecordsDeadLetter, dl, m)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	check := func(when string) { checkPoisonOutput(t, c, dl, when) }
	check("after the run")
	var dead []int64
	for _, p := range q.RecentProgress() {
		dead = append(dead, p.Sink.DeadLettered)
	}
	if !slices.Equal(dead, []int64{1, 0, 1}) {
		t.Errorf("progress: dead-lettered rows per batch %v, want [1 0 1]", dead)
	}
	if js, err := q.RecentProgress()[0].MarshalJSON(); err != nil || !strings.Contains(string(js), `"numDeadLetteredRows":"1"`) {
		t.Errorf("progress JSON %s (%v): want sink.metrics.numDeadLetteredRows 1", js, err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, f := range fams {
		if f.GetName() == "sluice_sink_bad_records_total" {
			for _, mt := range f.GetMetric() {
				counted += mt.GetCounter().GetValue()
			}
		}
	}
	if counted != 2 {
		t.Errorf("sluice_sink_bad_records_total = %v, want 2", counted)
	}

	// A crash after the sinks committed batch 2 and before commits/2: the
	// restarted query runs batch 2 again.
	if err := os.Remove(filepath.Join(dir, "commits", "2.json")); err != nil {
		t.Fatal(err)
	}
	q, err = poisonQuery(t, c, mem, dir, sinks.BadRecordsDeadLetter, dl, nil)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if ps := q.RecentProgress(); len(ps) != 1 || ps[0].Batch != 2 || ps[0].Sink.DeadLettered != 1 {
		t.Errorf("the restarted query ran %+v, want batch 2 again, dead-lettering 1 row", ps)
	}
	check("after the re-run of batch 2")
}

// Under the default policy, the query stops at the first batch with a
// record too large, naming topic and partition, the batch, the record's
// place and its key; nothing of the batch reaches the topic.
func TestStreamFailsOnARecordTheTopicRefuses(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := poisonInput(t)
	_, err := poisonQuery(t, c, mem, filepath.Join(t.TempDir(), "ckpt"), "", nil, nil)
	if !errors.Is(err, sinkkafka.ErrRecordTooLarge) {
		t.Fatalf("query = %v, want ErrRecordTooLarge", err)
	}
	for _, want := range []string{"out[", "batch 0", "record 7", `key "k7"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := outIDs(t, c); len(got) != 0 {
		t.Errorf("topic out has orders %v after the failed batch 0, want none", got)
	}
}

// checkPoisonOutput checks topic "out" has every order but 7 and 21 once,
// and the dead-letter table those two once, with their reason.
func checkPoisonOutput(t *testing.T, c *kfake.Cluster, dl *parquet.StreamSink, when string) {
	t.Helper()
	var all []int64
	for i := range 30 {
		if i != 7 && i != 21 {
			all = append(all, int64(i))
		}
	}
	if got := outIDs(t, c); !slices.Equal(got, all) {
		t.Errorf("%s: topic out has orders %v, want %v", when, got, all)
	}
	rows, reasons := deadLetters(t, dl)
	slices.Sort(rows)
	want := []string{"21 2 kafka:out 0 1", "7 0 kafka:out 0 7"}
	if !slices.Equal(rows, want) {
		t.Errorf("%s: dead letters (id batch sink task row) %q, want %q", when, rows, want)
	}
	for _, r := range reasons {
		if !strings.Contains(r, sinkkafka.ErrRecordTooLarge.Error()) || !strings.Contains(r, "MaxRecordBytes 2000") {
			t.Errorf("%s: reason %q, want it to say the record is over MaxRecordBytes 2000", when, r)
		}
	}
}

// failingCommit is a dead-letter sink whose first Commit fails: a driver
// that dies, or a store that refuses, after the tasks prepared.
type failingCommit struct {
	*parquet.StreamSink
	failed bool
}

func (f *failingCommit) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	if !f.failed {
		f.failed = true
		return errors.New("dead-letter store unavailable")
	}
	return f.StreamSink.Commit(ctx, b, msgs)
}

// A dead-letter sink that fails its commit fails the batch, before the
// batch's rows reach the topic; the restarted query writes the rows and
// the dead letters once, losing neither.
func TestStreamDeadLettersSurviveAFailedCommit(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := poisonInput(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	ps, err := parquet.NewStream(parquet.StreamConfig{Dir: filepath.Join(t.TempDir(), "dead")})
	if err != nil {
		t.Fatal(err)
	}
	dl := &failingCommit{StreamSink: ps}
	_, err = poisonQuery(t, c, mem, dir, sinks.BadRecordsDeadLetter, dl, nil)
	if err == nil || !strings.Contains(err.Error(), "dead-letter store unavailable") || !strings.Contains(err.Error(), "batch 0") {
		t.Fatalf("query = %v, want batch 0 failed by the dead-letter sink", err)
	}
	if _, err := poisonQuery(t, c, mem, dir, sinks.BadRecordsDeadLetter, dl, nil); err != nil {
		t.Fatalf("restart: %v", err)
	}
	checkPoisonOutput(t, c, ps, "after the restart")
}
