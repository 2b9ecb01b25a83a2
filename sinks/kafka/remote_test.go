package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/sinks"
)

var remoteSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "v", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "h", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.Binary), Nullable: true},
}, nil)

// remoteRows builds n rows of batch id for task: keys, values and headers,
// with null keys, tombstones, empty values and header values among them.
func remoteRows(mem memory.Allocator, id int64, task, n int) arrow.Record {
	rb := array.NewRecordBuilder(mem, remoteSchema)
	defer rb.Release()
	kb := rb.Field(0).(*array.StringBuilder)
	vb := rb.Field(1).(*array.BinaryBuilder)
	hb := rb.Field(2).(*array.MapBuilder)
	for i := range n {
		switch i % 5 {
		case 0:
			kb.AppendNull()
		default:
			kb.Append(fmt.Sprintf("k%d", i%7))
		}
		switch i % 4 {
		case 1:
			vb.AppendNull() // a tombstone
		case 2:
			vb.Append([]byte{})
		default:
			vb.Append(fmt.Appendf(nil, "b%d-t%d-r%d", id, task, i))
		}
		switch i % 3 {
		case 0:
			hb.AppendNull()
		default:
			hb.Append(true)
			for j := range i % 3 {
				hb.KeyBuilder().(*array.StringBuilder).Append(fmt.Sprintf("h%d", j))
				if j == 1 {
					hb.ItemBuilder().(*array.BinaryBuilder).Append([]byte{})
				} else {
					hb.ItemBuilder().(*array.BinaryBuilder).Append([]byte{byte(i), 0, 0xff})
				}
			}
		}
	}
	return rb.NewRecord()
}

// renderRecords renders what a reader sees of each record: keyed ones
// with their partition, in (partition, offset) order; those without a key,
// which the sticky partitioner places at random, sorted, without it;
// markers (whose value names the query) as "marker".
func renderRecords(recs []*kgo.Record) []string {
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	q := func(b []byte) string {
		if b == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", b)
	}
	var keyed, unkeyed []string
	for _, r := range recs {
		if IsMarker(r) {
			keyed = append(keyed, fmt.Sprintf("p%d marker", r.Partition))
			continue
		}
		line := fmt.Sprintf("key=%s value=%s", q(r.Key), q(r.Value))
		for _, h := range r.Headers {
			line += fmt.Sprintf(" %s:%s", h.Key, q(h.Value))
		}
		if r.Key == nil {
			unkeyed = append(unkeyed, line)
		} else {
			keyed = append(keyed, fmt.Sprintf("p%d %s", r.Partition, line))
		}
	}
	slices.Sort(unkeyed)
	return append(keyed, unkeyed...)
}

// TestRemoteTasksCommitOnTheDriversInstance plays a cluster: tasks encode
// on an executor's Sink with a WithRemote ctx, and the driver's Sink
// (another instance, same config) produces their records in its
// transaction. A read_committed reader must see exactly what a local run
// writes, and committing a batch again (on the same driver, or on a
// restarted one) must change nothing.
func TestRemoteTasksCommitOnTheDriversInstance(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk backend) {
		run := func(t *testing.T, remote bool) []string {
			brokers, topic := bk.topic(t, 3)
			cfg := Config{Brokers: brokers, Topic: topic, QueryID: "q-" + topic, KeyColumn: "k", ValueColumn: "v", HeadersColumn: "h"}
			driver, executor := newSink(t, cfg), newSink(t, cfg)
			ctx, writeOn := context.Background(), driver
			if remote {
				ctx, writeOn = sinks.WithRemote(ctx), executor
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			tasks := [][]int{{7, 3}, {}, {11}} // per batch: rows per task
			for id := range int64(3) {
				b := sinks.Batch{ID: id, Mode: sinks.Append, Schema: remoteSchema}
				var msgs []sinks.CommitMessage
				for task, n := range tasks[id] {
					w, err := writeOn.NewWriter(ctx, b, task)
					if err != nil {
						t.Fatal(err)
					}
					rec := remoteRows(mem, id, task, n)
					err = w.Write(rec)
					rec.Release()
					if err != nil {
						t.Fatal(err)
					}
					msg, err := w.Prepare()
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(string(msg), `"rows"`) != remote {
						t.Fatalf("remote=%v, commit message %.200s", remote, msg)
					}
					msgs = append(msgs, msg)
				}
				commit(t, driver, b, msgs...)
				commit(t, driver, b, msgs...) // a second Commit: nothing changes
			}
			if got := lastCommitted(t, driver); got != 2 {
				t.Fatalf("last committed batch %d, want 2", got)
			}
			out := renderRecords(readTopic(t, brokers, topic))
			// A restarted driver (a new instance) committing batch 2 again
			// writes nothing either: the batch id is in Kafka.
			if remote {
				b := sinks.Batch{ID: 2, Mode: sinks.Append, Schema: remoteSchema}
				w, err := executor.NewWriter(ctx, b, 0)
				if err != nil {
					t.Fatal(err)
				}
				rec := remoteRows(mem, 2, 0, 11)
				err = w.Write(rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				msg, err := w.Prepare()
				if err != nil {
					t.Fatal(err)
				}
				driver.Close()
				commit(t, newSink(t, cfg), b, msg)
				if again := renderRecords(readTopic(t, brokers, topic)); !slices.Equal(again, out) {
					t.Fatalf("a restarted driver's Commit of batch 2 changed the topic:\n%s\nwas:\n%s", strings.Join(again, "\n"), strings.Join(out, "\n"))
				}
			}
			return out
		}
		local, remote := run(t, false), run(t, true)
		if len(local) != 7+3+1+11 { // batch 1 writes a marker
			t.Fatalf("the local run wrote %d records:\n%s", len(local), strings.Join(local, "\n"))
		}
		if !slices.Equal(remote, local) {
			t.Errorf("remote run wrote:\n%s\nlocal run wrote:\n%s", strings.Join(remote, "\n"), strings.Join(local, "\n"))
		}
	})
}

func TestInlineRecordsRoundTripAndRefuseCorruption(t *testing.T) {
	recs := []*kgo.Record{
		{Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "a", Value: []byte{1}}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}},
		{Key: nil, Value: nil},
		{Key: []byte{}, Value: []byte{}},
	}
	b := appendInline(nil, recs)
	if len(b) > inlineSize(recs) {
		t.Fatalf("inlineSize %d < %d encoded bytes", inlineSize(recs), len(b))
	}
	got, err := parseInline(b)
	if err != nil {
		t.Fatal(err)
	}
	if a, w := renderRecords(slices.Clone(got)), renderRecords(slices.Clone(recs)); !slices.Equal(a, w) {
		t.Fatalf("round trip:\n%s\nwant:\n%s", strings.Join(a, "\n"), strings.Join(w, "\n"))
	}
	if got[1].Key != nil || got[1].Value != nil || got[2].Key == nil || got[0].Headers[1].Value != nil || got[0].Headers[2].Value == nil {
		t.Fatal("null and empty keys, values or header values are not told apart")
	}
	// Every truncation, and every byte changed, is an error or decodes;
	// never a panic. Truncations are always errors.
	for n := range len(b) {
		if _, err := parseInline(b[:n]); err == nil {
			t.Errorf("%d of %d bytes decoded", n, len(b))
		}
		c := slices.Clone(b)
		c[n] ^= 0xa5
		_, _ = parseInline(c)
	}
}

func TestACorruptRemoteMessageIsAClearError(t *testing.T) {
	s := newSink(t, Config{Name: "orders-out", Brokers: []string{"127.0.0.1:1"}, Topic: "t", QueryID: "q"})
	b := rowBatch(5)
	w, err := s.NewWriter(sinks.WithRemote(context.Background()), b, 2)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	var m message
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(m *message)
		want error
		text string
	}{
		{"truncated records", func(m *message) { m.Rows = m.Rows[:1] }, ErrCorruptMessage, "sink orders-out, task 2: records: count"},
		{"a record count that does not match", func(m *message) { m.Records = 3 }, ErrCorruptMessage, "0 records, the message says 3"},
		{"another version of the form", func(m *message) { m.Rows = []byte{9, 0} }, ErrCorruptMessage, "not version 1"},
		{"a message of another batch", func(m *message) { m.Batch = 4 }, ErrUnknownMessage, "a message of batch 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := m
			c.edit(&bad)
			raw, err := json.Marshal(bad)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = s.collect(b, []sinks.CommitMessage{raw})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("collect = %v, want %v naming %q", err, c.want, c.text)
			}
		})
	}
	if recs, _, err := s.collect(b, []sinks.CommitMessage{msg}); err != nil || len(recs) != 0 {
		t.Fatalf("collect of the good empty message = %d records, %v", len(recs), err)
	}
}
