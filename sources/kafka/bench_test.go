package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/kafka"
)

const benchOrders = 200_000

var benchOrderSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "customer", Type: arrow.BinaryTypes.String},
	{Name: "region", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

// benchCluster holds benchOrders JSON orders in 4 partitions.
func benchCluster(b *testing.B) (*kfake.Cluster, string) {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"))
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	regions := []string{"emea", "amer", "apac", "latam", "anz"}
	for i := range benchOrders {
		v := fmt.Sprintf(`{"order_id":%d,"customer":"c-%d","region":%q,"amount":"%d.%02d","ts":%d}`,
			i, i%1000, regions[i%5], i%500, i%100, int64(1793491200000)+int64(i))
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i % 1000)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				panic(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c, "orders"
}

func benchRead(b *testing.B, value *arrow.Schema) {
	c, topic := benchCluster(b)
	defer c.Close()
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Topics: []string{topic}, ValueSchema: value})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	start, err := s.Initial(ctx)
	if err != nil {
		b.Fatal(err)
	}
	end, err := s.Latest(ctx, start)
	if err != nil {
		b.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(b, 0)
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		n := readCount(b, s, mem, start, end)
		if n != benchOrders {
			b.Fatalf("%d rows, want %d", n, benchOrders)
		}
	}
	b.ReportMetric(float64(benchOrders*b.N)/time.Since(t0).Seconds(), "records/s")
}

func readCount(b *testing.B, s *kafka.Source, mem memory.Allocator, start, end sources.Offset) int64 {
	splits, err := s.Splits(context.Background(), start, end)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, sp := range splits {
		if err := sp.Read(context.Background(), mem, func(r arrow.Record) error {
			n += r.NumRows()
			r.Release()
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkReadJSON: Split.Read decoding JSON orders into Arrow columns.
func BenchmarkReadJSON(b *testing.B) { benchRead(b, benchOrderSchema) }

// BenchmarkReadRaw: Split.Read with key/value bytes only.
func BenchmarkReadRaw(b *testing.B) { benchRead(b, nil) }

// BenchmarkFranzConsume: the baseline, a plain franz-go consume loop over
// the same records that touches every value and builds nothing.
func BenchmarkFranzConsume(b *testing.B) {
	c, topic := benchCluster(b)
	defer c.Close()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {
				0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0), 2: kgo.NewOffset().At(0), 3: kgo.NewOffset().At(0)}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		if err != nil {
			b.Fatal(err)
		}
		var n, bytes int
		for n < benchOrders {
			fs := cl.PollFetches(context.Background())
			if err := fs.Err(); err != nil {
				b.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { n++; bytes += len(r.Value) })
		}
		cl.Close()
	}
	b.ReportMetric(float64(benchOrders*b.N)/time.Since(t0).Seconds(), "records/s")
}
