package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sinks/sinktest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// valueOfSize returns a value for which the record {key, value} has
// sizeOf == size.
func valueOfSize(t *testing.T, key []byte, size int64) []byte {
	t.Helper()
	for n := int(size) - 100; n <= int(size); n++ {
		if sizeOf(&kgo.Record{Key: key, Value: make([]byte, n)}) == size {
			return []byte(strings.Repeat("v", n))
		}
	}
	t.Fatalf("no value gives a record of %d bytes", size)
	return nil
}

// sizeOf is exactly where the producer and the broker draw the line: a
// record whose batch is MaxRecordBytes goes through, one byte more is
// refused by franz-go (so the dead-letter policy catches every record the
// producer would fail), and a broker refuses a batch over max.message.bytes
// + 4 (so MaxRecordBytes <= max.message.bytes is enough).
func TestSizeOfIsWhereProducerAndBrokerRefuse(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		const limit = 5000
		brokers := be.real
		if brokers == nil {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			brokers = c.ListenAddrs()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer admCl.Close()
		adm := kadm.NewClient(admCl)
		small, big := "small-"+unique(), "big-"+unique()
		maxMsg := strconv.Itoa(limit - 4)
		for topic, cfg := range map[string]map[string]*string{small: {"max.message.bytes": &maxMsg}, big: nil} {
			if _, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil {
				t.Fatal(err)
			}
			if be.real != nil {
				t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
			}
		}
		key := []byte("some key")
		produce := func(topic string, maxBytes int32, size int64) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchMaxBytes(maxBytes), kgo.RecordRetries(1),
				// The broker measures the batch as sent; the sink's snappy
				// only ever makes it smaller than sizeOf.
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			r := &kgo.Record{Key: key, Value: valueOfSize(t, key, size), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
			r.Value = r.Value[:len(r.Value)-sizeOfHeaders(r)] // keep sizeOf(r) == size with the header
			if got := sizeOf(r); got != size {
				t.Fatalf("sizeOf = %d, want %d", got, size)
			}
			return cl.ProduceSync(ctx, r).FirstErr()
		}
		if err := produce(big, limit, limit); err != nil {
			t.Errorf("franz-go refused a record of sizeOf == ProducerBatchMaxBytes: %v", err)
		}
		if err := produce(big, limit, limit+1); !errors.Is(err, kerr.MessageTooLarge) {
			t.Errorf("franz-go: a record of sizeOf == ProducerBatchMaxBytes+1: %v, want MESSAGE_TOO_LARGE", err)
		}
		if err := produce(small, 1<<20, limit); err != nil {
			t.Errorf("broker refused a record of sizeOf == max.message.bytes+4: %v", err)
		}
		if err := produce(small, 1<<20, limit+1); !errors.Is(err, kerr.MessageTooLarge) {
			t.Errorf("broker: a record of sizeOf == max.message.bytes+5: %v, want MESSAGE_TOO_LARGE", err)
		}
	})
}

// sizeOfHeaders is what r's headers add to sizeOf.
func sizeOfHeaders(r *kgo.Record) int {
	without := *r
	without.Headers = nil
	return int(sizeOf(r) - sizeOf(&without))
}

// deadLetterSink is a memory sink for dead letters, closed at cleanup.
func deadLetterSink(t *testing.T, mem memory.Allocator) *sinkmem.Sink { return deadLetterSinkB(t, mem) }

func deadLetterSinkB(t testing.TB, mem memory.Allocator) *sinkmem.Sink {
	t.Helper()
	dl, err := sinkmem.New(sinkmem.Config{Name: "dead", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	return dl
}

// deadRows renders the dead-letter sink's rows.
func deadRows(dl *sinkmem.Sink) [][]string {
	recs := dl.Rows()
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	return sinktest.Render(recs...)
}

// writeRows writes rows (id, key) as one task of b and returns its
// message; remote marks the task's ctx WithRemote.
func writeRows(t *testing.T, s *Sink, b sinks.Batch, task int, remote bool, ids []int64, keys []string) (sinks.CommitMessage, sinks.Writer) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	if remote {
		ctx = sinks.WithRemote(ctx)
	}
	w, err := s.NewWriter(ctx, b, task)
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(mem, rowSchema)
	defer rb.Release()
	for i, id := range ids {
		rb.Field(0).(*array.Int64Builder).Append(id)
		rb.Field(1).(*array.StringBuilder).Append(keys[i])
	}
	rec := rb.NewRecord()
	err = w.Write(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	return msg, w
}

// Under "dead-letter", a row whose record is over MaxRecordBytes goes to
// the dead-letter sink with its batch, sink, task, position and reason;
// the others reach the topic; a repeated Commit and a re-run of the batch
// write neither again; tasks beside the driver and remote ones alike.
func TestTooLargeRowsAreDeadLettered(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote=%v", remote), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, be backend) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				t.Cleanup(func() { mem.AssertSize(t, 0) }) // after the sinks' cleanups
				brokers, topic := be.topic(t, 2)
				dl := deadLetterSink(t, mem)
				s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, MaxRecordBytes: 2000,
					BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: dl, Mem: mem})
				big := strings.Repeat("x", 3000)
				run := func() {
					b := rowBatch(0)
					m0, w0 := writeRows(t, s, b, 0, remote, []int64{1, 2, 3}, []string{"a", big, "c"})
					m1, w1 := writeRows(t, s, b, 1, remote, []int64{4, 5}, []string{"d", "e"})
					if n := w0.(sinks.BadRecordCounter).DeadLettered(); n != 1 {
						t.Errorf("task 0 dead-lettered %d rows, want 1", n)
					}
					if n := w1.(sinks.BadRecordCounter).DeadLettered(); n != 0 {
						t.Errorf("task 1 dead-lettered %d rows, want 0", n)
					}
					commit(t, s, b, m0, m1)
					commit(t, s, b, m0, m1) // a repeated Commit
				}
				run()
				run() // a re-run of batch 0 (a crash before commits/0)
				// A restarted driver: a new sink instance re-runs the batch.
				s = newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, MaxRecordBytes: 2000,
					BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: dl, Mem: mem})
				run()
				expectIDs(t, "topic", brokers, topic, []int64{1, 3, 4, 5})
				got := deadRows(dl)
				if len(got) != 1 {
					t.Fatalf("%d dead letters, want 1", len(got))
				}
				row := got[0]
				want := []string{"2", big, "0", s.Name(), "0", "1"}
				if !slices.Equal(row[:6], want) {
					t.Errorf("dead letter %.200v, want %.200v", row[:6], want)
				}
				if why := row[6]; !strings.Contains(why, ErrRecordTooLarge.Error()) || !strings.Contains(why, "MaxRecordBytes 2000") || !strings.Contains(why, topic) {
					t.Errorf("reason %q, want ErrRecordTooLarge naming MaxRecordBytes 2000 and topic %s", why, topic)
				}
			})
		})
	}
}

// A batch without dead letters commits nothing to the dead-letter sink,
// and Abort reaches the dead-letter writers' output.
func TestDeadLetterSinkOnlyCommitsBatchesWithDeadLetters(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	brokers, topic := backend{name: "kfake"}.topic(t, 1)
	dl := deadLetterSink(t, mem)
	s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, MaxRecordBytes: 2000,
		BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: dl, Mem: mem})
	m, _ := writeRows(t, s, rowBatch(0), 0, false, []int64{1}, []string{"a"})
	commit(t, s, rowBatch(0), m)
	m, _ = writeRows(t, s, rowBatch(1), 0, false, []int64{2}, []string{strings.Repeat("x", 3000)})
	if err := s.Abort(context.Background(), rowBatch(1), []sinks.CommitMessage{m}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Commit(context.Background(), sinks.Batch{ID: 1, Mode: sinks.Append}, nil); err != nil {
		t.Fatal(err)
	}
	if got := deadRows(dl); len(got) != 0 {
		t.Errorf("dead letters %v after an empty batch and an aborted one, want none", got)
	}
}

// Under "dead-letter", a topic whose max.message.bytes is below
// MaxRecordBytes is refused at the first Commit: records between the two
// would fail their batch on every run.
func TestDeadLetterRefusesATopicWithALowerLimit(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v := "3000"
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &v}, "t"); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	s := newSink(t, Config{Brokers: c.ListenAddrs(), Topic: "t", QueryID: "q", MaxRecordBytes: 4000,
		BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: deadLetterSink(t, mem)})
	err = s.Commit(context.Background(), rowBatch(0), nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "3000") || !strings.Contains(err.Error(), "4000") {
		t.Errorf("Commit = %v, want ErrConfig naming max.message.bytes 3000 and MaxRecordBytes 4000", err)
	}
	s = newSink(t, Config{Brokers: c.ListenAddrs(), Topic: "t", QueryID: "q", MaxRecordBytes: 3000,
		BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: deadLetterSink(t, mem)})
	commit(t, s, rowBatch(0))
}

func TestBadRecordsConfig(t *testing.T) {
	base := Config{Brokers: []string{"b:9092"}, Topic: "t", QueryID: "q"}
	c := base
	c.BadRecords = sinks.BadRecordsDeadLetter
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "DeadLetter") {
		t.Errorf("dead-letter without DeadLetter: %v", err)
	}
	c.BadRecords = "skip"
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"skip"`) {
		t.Errorf("skip: %v", err)
	}
	// The dead letters add columns; an output that has one is refused.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	c = base
	c.BadRecords, c.DeadLetter = sinks.BadRecordsDeadLetter, deadLetterSink(t, mem)
	s := newSink(t, c)
	if err := s.Check(sinks.Append, rowSchema); err != nil {
		t.Errorf("Check: %v", err)
	}
	clash, err := sinks.DeadLetterSchema(rowSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(sinks.Append, clash); err == nil || !strings.Contains(err.Error(), sinks.DeadLetterBatch) {
		t.Errorf("Check of a schema with %s: %v, want an error naming it", sinks.DeadLetterBatch, err)
	}
}

// With the dead-letter policy and nothing to reject, the sink still passes
// the sink contract, and its dead-letter sink receives nothing.
func TestContractUnderDeadLetterPolicy(t *testing.T) {
	sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
		brokers, topic := backend{name: "kfake"}.topic(t, 3)
		dl := deadLetterSink(t, mem)
		s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic,
			BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: dl, Mem: mem})
		return sinktest.Harness{
			Sink: s,
			Rows: func(t *testing.T) [][]string {
				if got := deadRows(dl); len(got) != 0 {
					t.Errorf("dead letters %v, want none", got)
				}
				return renderJSONRows(t, readTopic(t, brokers, topic))
			},
			Unsupported: []sinks.Mode{sinks.Update, sinks.Complete},
		}
	})
}
