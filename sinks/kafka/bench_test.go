package kafka

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
)

var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "user", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
}, nil)

func benchRecord(mem memory.Allocator, n int) arrow.Record {
	b := array.NewRecordBuilder(mem, benchSchema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("user-%d", i%1000))
		b.Field(2).(*array.Float64Builder).Append(float64(i) * 0.25)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + int64(i)))
	}
	return b.NewRecord()
}

// BenchmarkCommit measures rows/s from Write to a committed transaction on
// kfake (and the real broker of SLUICE_KAFKA_BROKERS): 4 tasks of 25 000
// rows per batch, keyed by user, JSON values.
func BenchmarkCommit(b *testing.B) {
	for _, be := range backends() {
		for _, sem := range []Semantics{ExactlyOnce, AtLeastOnce} {
			b.Run(be.name+"/"+string(sem), func(b *testing.B) { benchCommit(b, be, sem) })
		}
	}
}

func benchCommit(b *testing.B, be backend, sem Semantics) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	const tasks, rows = 4, 25_000
	rec := benchRecord(mem, rows)
	defer rec.Release()
	brokers, topic := be.topic(b, 8)
	s := newSink(b, Config{Brokers: brokers, Topic: topic, QueryID: topic, KeyColumn: "user", Semantics: sem, MaxPendingBytes: 1 << 30})
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		bt := sinks.Batch{ID: int64(i), Mode: sinks.Append, Schema: benchSchema}
		var msgs []sinks.CommitMessage
		for task := range tasks {
			w, err := s.NewWriter(ctx, bt, task)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Write(rec); err != nil {
				b.Fatal(err)
			}
			msg, err := w.Prepare()
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, msg)
		}
		if err := s.Commit(ctx, bt, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*tasks*rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkEncode measures Write alone: rows to Kafka records (JSON).
func BenchmarkEncode(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	rec := benchRecord(mem, 100_000)
	defer rec.Release()
	l, err := newLayout(Config{KeyColumn: "user"}, benchSchema)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := l.encode(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100_000)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWrite measures a task's Write (encoding, and under the
// dead-letter policy the size of every record) of 100 000 rows that all
// fit, under each bad-record policy.
func BenchmarkWrite(b *testing.B) {
	for _, policy := range []string{sinks.BadRecordsFail, sinks.BadRecordsDeadLetter} {
		b.Run(policy, func(b *testing.B) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(b, 0)
			rec := benchRecord(mem, 100_000)
			defer rec.Release()
			var dl sinks.Sink
			if policy == sinks.BadRecordsDeadLetter {
				dl = deadLetterSinkB(b, mem)
			}
			s := newSink(b, Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", QueryID: "q", KeyColumn: "user",
				BadRecords: policy, DeadLetter: dl, MaxPendingBytes: 1 << 30})
			bt := sinks.Batch{ID: 0, Mode: sinks.Append, Schema: benchSchema}
			b.ResetTimer()
			for range b.N {
				w, err := s.NewWriter(context.Background(), bt, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Write(rec); err != nil {
					b.Fatal(err)
				}
				w.Abort()
			}
			b.ReportMetric(float64(b.N*100_000)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
