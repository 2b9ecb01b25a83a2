package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/sinktest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// renderJSONRows renders records written with sinktest.Schema and the
// default JSON value as sinktest.Render would render the Arrow rows.
func renderJSONRows(t *testing.T, recs []*kgo.Record) [][]string {
	t.Helper()
	var rows [][]string
	for _, r := range dataRecords(recs) {
		var v struct {
			ID   *json.Number `json:"id"`
			Name *string      `json:"name"`
		}
		d := json.NewDecoder(bytes.NewReader(r.Value))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("record %s[%d]@%d: value %q: %v", r.Topic, r.Partition, r.Offset, r.Value, err)
		}
		row := []string{array.NullValueStr, array.NullValueStr}
		if v.ID != nil {
			row[0] = v.ID.String()
		}
		if v.Name != nil {
			row[1] = *v.Name
		}
		rows = append(rows, row)
	}
	return rows
}

func TestContract(t *testing.T) {
	for _, sem := range []Semantics{ExactlyOnce, AtLeastOnce} {
		t.Run(string(sem), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				sinktest.Run(t, func(t *testing.T, mem memory.Allocator) sinktest.Harness {
					brokers, topic := b.topic(t, 3)
					s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, Semantics: sem})
					return sinktest.Harness{
						Sink:        s,
						Rows:        func(t *testing.T) [][]string { return renderJSONRows(t, readTopic(t, brokers, topic)) },
						Unsupported: []sinks.Mode{sinks.Update, sinks.Complete},
					}
				})
			})
		})
	}
}

var rowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func rowBatch(id int64) sinks.Batch {
	return sinks.Batch{ID: id, Mode: sinks.Append, Schema: rowSchema}
}

// writeTask writes rows ids (key "k<id%keys>") as one task of b on a
// checked allocator and returns the commit message.
func writeTask(t testing.TB, s *Sink, b sinks.Batch, task int, ids []int64, keys int64) sinks.CommitMessage {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, err := s.NewWriter(context.Background(), b, task)
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(mem, rowSchema)
	defer rb.Release()
	for _, id := range ids {
		rb.Field(0).(*array.Int64Builder).Append(id)
		rb.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("k%d", id%keys))
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
	return msg
}

func commit(t testing.TB, s *Sink, b sinks.Batch, msgs ...sinks.CommitMessage) {
	t.Helper()
	if err := s.Commit(context.Background(), b, msgs); err != nil {
		t.Fatalf("Commit(batch %d): %v", b.ID, err)
	}
}

func span(lo, hi int64) []int64 {
	var ids []int64
	for i := lo; i < hi; i++ {
		ids = append(ids, i)
	}
	return ids
}

// ids returns the sorted "id" of every data record.
func ids(t testing.TB, recs []*kgo.Record) []int64 {
	t.Helper()
	var out []int64
	for _, r := range dataRecords(recs) {
		var v struct{ ID int64 }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("value %q: %v", r.Value, err)
		}
		out = append(out, v.ID)
	}
	slices.Sort(out)
	return out
}

func expectIDs(t testing.TB, what string, brokers []string, topic string, want []int64) {
	t.Helper()
	if got := ids(t, readTopic(t, brokers, topic)); !slices.Equal(got, want) {
		t.Errorf("%s: ids\n got %v\nwant %v", what, got, want)
	}
}

func lastCommitted(t testing.TB, s *Sink) int64 {
	t.Helper()
	n, err := s.LastCommitted(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRestartCommitsABatchOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 2)
		cfg := Config{Brokers: brokers, Topic: topic, QueryID: topic, KeyColumn: "key"}
		a := newSink(t, cfg)
		commit(t, a, rowBatch(0), writeTask(t, a, rowBatch(0), 0, span(0, 5), 3))
		commit(t, a, rowBatch(1), writeTask(t, a, rowBatch(1), 0, span(5, 8), 3), writeTask(t, a, rowBatch(1), 1, span(8, 10), 3))
		_ = a.Close()

		// The driver crashed after the sink commit, before commits/1: a new
		// process re-runs batch 1 with new writers and commits it again.
		s := newSink(t, cfg)
		if got := lastCommitted(t, s); got != 1 {
			t.Errorf("LastCommitted after restart = %d, want 1", got)
		}
		commit(t, s, rowBatch(1), writeTask(t, s, rowBatch(1), 0, span(5, 10), 3))
		commit(t, s, rowBatch(0), writeTask(t, s, rowBatch(0), 0, span(0, 5), 3))
		expectIDs(t, "after re-committing batches 0 and 1", brokers, topic, span(0, 10))
		commit(t, s, rowBatch(2), writeTask(t, s, rowBatch(2), 0, span(10, 12), 3))
		expectIDs(t, "after batch 2", brokers, topic, span(0, 12))
		if got := lastCommitted(t, s); got != 2 {
			t.Errorf("LastCommitted = %d, want 2", got)
		}
	})
}

func TestHungDriversTransactionIsAbortedAndFenced(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 2)
		cfg := Config{Brokers: brokers, Topic: topic, QueryID: topic}
		zombie := newSink(t, cfg)
		commit(t, zombie, rowBatch(0), writeTask(t, zombie, rowBatch(0), 0, span(0, 3), 1))
		// Batch 1: records produced and the batch id offset added, then the
		// driver hangs before EndTransaction; its transaction stays open.
		inside, resume := make(chan struct{}), make(chan struct{})
		zombie.testHookBeforeEnd = func() { close(inside); <-resume }
		msg := writeTask(t, zombie, rowBatch(1), 0, span(100, 110), 1)
		zombieErr := make(chan error, 1)
		go func() { zombieErr <- zombie.Commit(context.Background(), rowBatch(1), []sinks.CommitMessage{msg}) }()
		<-inside

		// A new driver takes over with the same QueryID: connecting fences
		// the zombie and aborts its open transaction, so batch 1 is not
		// committed and read_committed readers are not stalled.
		s := newSink(t, cfg)
		if got := lastCommitted(t, s); got != 0 {
			t.Errorf("LastCommitted with the zombie's batch 1 open = %d, want 0", got)
		}
		expectIDs(t, "after the new sink fenced the zombie", brokers, topic, span(0, 3))
		commit(t, s, rowBatch(1), writeTask(t, s, rowBatch(1), 0, span(3, 6), 1))
		expectIDs(t, "after the re-run of batch 1", brokers, topic, span(0, 6))

		// The zombie wakes up and commits its transaction: fenced.
		close(resume)
		if err := <-zombieErr; !errors.Is(err, ErrFenced) {
			t.Errorf("zombie's Commit of batch 1 = %v, want ErrFenced", err)
		} else {
			t.Logf("zombie: %v", err)
		}
		err := zombie.Commit(context.Background(), rowBatch(2), []sinks.CommitMessage{writeTask(t, zombie, rowBatch(2), 0, span(200, 210), 1)})
		if !errors.Is(err, ErrFenced) {
			t.Errorf("zombie's next Commit = %v, want ErrFenced", err)
		}
		expectIDs(t, "after the zombie woke up", brokers, topic, span(0, 6))
		commit(t, s, rowBatch(2), writeTask(t, s, rowBatch(2), 0, span(6, 8), 1))
		expectIDs(t, "after batch 2", brokers, topic, span(0, 8))
	})
}

func TestAbandonedTransactionOfAnotherClientIsAborted(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 1)
		cfg := Config{Brokers: brokers, Topic: topic, QueryID: topic}
		// A plain franz-go producer with the query's transactional id opens
		// a transaction and never ends it (a process killed mid-commit).
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(GroupName(topic)), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"id":999}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		s := newSink(t, cfg)
		if err := s.Abort(context.Background(), rowBatch(0), nil); err != nil { // connects: fences
			t.Fatal(err)
		}
		expectIDs(t, "after Abort fenced the open transaction", brokers, topic, nil)
		commit(t, s, rowBatch(0), writeTask(t, s, rowBatch(0), 0, span(0, 2), 1))
		expectIDs(t, "after batch 0", brokers, topic, span(0, 2))
	})
}

func TestEmptyBatchCommitsItsID(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 2)
		cfg := Config{Brokers: brokers, Topic: topic, QueryID: topic}
		s := newSink(t, cfg)
		commit(t, s, rowBatch(0))
		if got := lastCommitted(t, s); got != 0 {
			t.Fatalf("LastCommitted after an empty batch 0 = %d, want 0", got)
		}
		// A writer that wrote nothing is an empty batch too.
		w, err := s.NewWriter(context.Background(), rowBatch(1), 0)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := w.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		commit(t, s, rowBatch(1), msg)
		// After a restart, a re-run of batch 1 that now has rows (it must
		// not, runs are deterministic, but if it did) writes nothing.
		s2 := newSink(t, cfg)
		if got := lastCommitted(t, s2); got != 1 {
			t.Fatalf("LastCommitted after empty batches 0, 1 = %d, want 1", got)
		}
		commit(t, s2, rowBatch(1), writeTask(t, s2, rowBatch(1), 0, span(0, 3), 1))
		all := readTopic(t, brokers, topic)
		if got := ids(t, all); len(got) != 0 {
			t.Errorf("rows after empty batches: %v, want none", got)
		}
		markers := 0
		for _, r := range all {
			if IsMarker(r) {
				markers++
			}
		}
		if markers != 2 {
			t.Errorf("%d marker records, want one per empty batch (2)", markers)
		}
	})
}

// murmur2 is Kafka's Utils.murmur2, to check the hash partitioner places
// keys where a Java producer would.
func murmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func TestMurmur2MatchesJava(t *testing.T) {
	// From Kafka's UtilsTest.testMurmur2.
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestKeysLandInTheirMurmur2Partition(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const parts = 4
		brokers, topic := b.topic(t, parts)
		s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, KeyColumn: "key"})
		commit(t, s, rowBatch(0), writeTask(t, s, rowBatch(0), 0, span(0, 200), 17), writeTask(t, s, rowBatch(0), 1, span(200, 400), 17))
		recs := dataRecords(readTopic(t, brokers, topic))
		if len(recs) != 400 {
			t.Fatalf("%d records, want 400", len(recs))
		}
		used := map[int32]bool{}
		for _, r := range recs {
			want := (murmur2(r.Key) & 0x7fffffff) % parts
			if r.Partition != want {
				t.Errorf("key %q in partition %d, want %d (murmur2, as Kafka's default partitioner)", r.Key, r.Partition, want)
			}
			used[r.Partition] = true
		}
		if len(used) < 2 {
			t.Errorf("17 keys all in partitions %v", used)
		}
	})
}

func TestAtLeastOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 2)
		cfg := Config{Brokers: brokers, Topic: topic, Semantics: AtLeastOnce}
		s := newSink(t, cfg)
		commit(t, s, rowBatch(0), writeTask(t, s, rowBatch(0), 0, span(0, 3), 1))
		commit(t, s, rowBatch(0)) // remembered in this process: a no-op
		expectIDs(t, "after batch 0", brokers, topic, span(0, 3))
		commit(t, s, rowBatch(1)) // empty: no marker, no transaction
		if n := len(readTopic(t, brokers, topic)); n != 3 {
			t.Errorf("%d records after an empty batch, want 3 (no marker)", n)
		}
		// A new process re-running batch 0 writes it again: at least once.
		s2 := newSink(t, cfg)
		commit(t, s2, rowBatch(0), writeTask(t, s2, rowBatch(0), 0, span(0, 3), 1))
		expectIDs(t, "after a re-run in a new process", brokers, topic, []int64{0, 0, 1, 1, 2, 2})
		if _, err := s2.LastCommitted(context.Background()); err == nil {
			t.Error("LastCommitted in at-least-once mode: want an error")
		}
	})
}

func TestErrorsNameBrokersAndTopic(t *testing.T) {
	t.Run("unreachable brokers", func(t *testing.T) {
		s := newSink(t, Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", QueryID: "q", Timeout: 300 * time.Millisecond})
		start := time.Now()
		err := s.Commit(context.Background(), rowBatch(0), nil)
		t.Logf("unreachable: %v", err)
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "300ms") {
			t.Errorf("Commit = %v, want ErrUnreachable naming the broker and the timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Commit took %s with a 300ms timeout", d)
		}
	})
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 2)
		t.Run("missing topic", func(t *testing.T) {
			s := newSink(t, Config{Brokers: brokers, Topic: "no-such-" + topic, QueryID: topic})
			err := s.Commit(context.Background(), rowBatch(0), nil)
			t.Logf("missing topic: %v", err)
			if !errors.Is(err, ErrTopicMissing) || !strings.Contains(err.Error(), "no-such-"+topic) {
				t.Errorf("Commit = %v, want ErrTopicMissing naming the topic", err)
			}
		})
		t.Run("record too large", func(t *testing.T) {
			s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, MaxRecordBytes: 1000, ValueColumn: "key"})
			big := sinks.Batch{ID: 0, Mode: sinks.Append, Schema: rowSchema}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			w, err := s.NewWriter(context.Background(), big, 0)
			if err != nil {
				t.Fatal(err)
			}
			msg := sinktest.WriteJSON(t, w, mem, rowSchema, `[{"id": 1, "key": "`+strings.Repeat("x", 5000)+`"}]`)
			err = s.Commit(context.Background(), big, []sinks.CommitMessage{msg})
			t.Logf("too large: %v", err)
			if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), topic+"[") {
				t.Fatalf("Commit = %v, want ErrRecordTooLarge naming topic[partition]", err)
			}
			// The default policy ("fail") names the batch and the record.
			if !strings.Contains(err.Error(), "commit batch 0, task 0 record 0 (null key)") {
				t.Fatalf("Commit = %v, want it to name batch 0, task 0 record 0 and its key", err)
			}
			// The failed transaction was aborted; the next batch commits.
			commit(t, s, rowBatch(0), writeTask(t, s, rowBatch(0), 0, span(0, 2), 1))
			if got := len(dataRecords(readTopic(t, brokers, topic))); got != 2 {
				t.Errorf("%d records after the retry, want 2", got)
			}
		})
	})
}

func TestValueAndHeadersColumns(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		brokers, topic := b.topic(t, 1)
		schema := arrow.NewSchema([]arrow.Field{
			{Name: "k", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			{Name: "v", Type: arrow.BinaryTypes.Binary, Nullable: true},
			{Name: "h", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		}, nil)
		s := newSink(t, Config{Brokers: brokers, Topic: topic, QueryID: topic, KeyColumn: "k", ValueColumn: "v", HeadersColumn: "h"})
		bt := sinks.Batch{ID: 0, Mode: sinks.Update, Schema: schema}
		if err := s.Check(sinks.Update, schema); err != nil {
			t.Fatalf("Check(update) with a key column: %v", err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		rb := array.NewRecordBuilder(mem, schema)
		defer rb.Release()
		kb := rb.Field(0).(*array.Int32Builder)
		vb := rb.Field(1).(*array.BinaryBuilder)
		hb := rb.Field(2).(*array.MapBuilder)
		kb.Append(7)
		vb.Append([]byte{0, 1, 2})
		hb.Append(true)
		hb.KeyBuilder().(*array.StringBuilder).Append("trace")
		hb.ItemBuilder().(*array.StringBuilder).Append("abc")
		kb.AppendNull()
		vb.AppendNull() // a tombstone
		hb.AppendNull()
		rec := rb.NewRecord()
		w, err := s.NewWriter(context.Background(), bt, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		msg, err := w.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		commit(t, s, bt, msg)
		recs := dataRecords(readTopic(t, brokers, topic))
		if len(recs) != 2 {
			t.Fatalf("%d records, want 2", len(recs))
		}
		slices.SortFunc(recs, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
		r := recs[0]
		if string(r.Key) != "7" || !bytes.Equal(r.Value, []byte{0, 1, 2}) || len(r.Headers) != 1 || r.Headers[0].Key != "trace" || string(r.Headers[0].Value) != "abc" {
			t.Errorf("record 0: key %q value %v headers %v", r.Key, r.Value, r.Headers)
		}
		r = recs[1]
		if r.Key != nil || r.Value != nil || len(r.Headers) != 0 {
			t.Errorf("record 1: key %q value %v headers %v, want nil key, tombstone, no headers", r.Key, r.Value, r.Headers)
		}
	})
}

func TestCheckRejectsBadSchemas(t *testing.T) {
	s := newSink(t, Config{Brokers: []string{"x:1"}, Topic: "t", QueryID: "q", KeyColumn: "nope"})
	if err := s.Check(sinks.Append, rowSchema); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Check with a missing key column = %v", err)
	}
	s = newSink(t, Config{Brokers: []string{"x:1"}, Topic: "t", QueryID: "q", HeadersColumn: "id"})
	if err := s.Check(sinks.Append, rowSchema); !errors.Is(err, ErrSchema) {
		t.Errorf("Check with an int headers column = %v", err)
	}
	s = newSink(t, Config{Brokers: []string{"x:1"}, Topic: "t", QueryID: "q"})
	if _, err := s.NewWriter(context.Background(), sinks.Batch{Mode: sinks.Complete, Schema: rowSchema}, 0); err == nil {
		t.Error("NewWriter in complete mode: want an error")
	}
}

func TestMaxPendingBytes(t *testing.T) {
	s := newSink(t, Config{Brokers: []string{"x:1"}, Topic: "t", QueryID: "q", MaxPendingBytes: 100})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rb := array.NewRecordBuilder(mem, rowSchema)
	defer rb.Release()
	for i := range 10 {
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		rb.Field(1).(*array.StringBuilder).Append("some key")
	}
	rec := rb.NewRecord()
	defer rec.Release()
	w, err := s.NewWriter(context.Background(), rowBatch(0), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); !errors.Is(err, ErrPendingFull) {
		t.Errorf("Write past MaxPendingBytes = %v, want ErrPendingFull", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"b:9092"}, Topic: "t", QueryID: "q"}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"a minimal exactly-once config is valid", func(*Config) {}, ""},
		{"at-least-once needs no query id", func(c *Config) { c.QueryID = ""; c.Semantics = AtLeastOnce }, ""},
		{"exactly-once needs a query id", func(c *Config) { c.QueryID = "" }, "QueryID"},
		{"brokers are required", func(c *Config) { c.Brokers = nil }, "Brokers"},
		{"a topic is required", func(c *Config) { c.Topic = "" }, "Topic"},
		{"unknown semantics are refused", func(c *Config) { c.Semantics = "maybe-once" }, "maybe-once"},
		{"unknown partitioners are refused", func(c *Config) { c.Partitioner = "random" }, "random"},
		{"one column cannot be key and value", func(c *Config) { c.KeyColumn, c.ValueColumn = "a", "a" }, `"a"`},
		{"negative limits are refused", func(c *Config) { c.Timeout = -1 }, "negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate = %v", err)
			case c.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate = %v, want ErrConfig mentioning %q", err, c.want)
			}
		})
	}
	if s := ok.String(); !strings.Contains(s, "exactly-once") || !strings.Contains(s, "hash") {
		t.Errorf("String() = %s", s)
	}
}
