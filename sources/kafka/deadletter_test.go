package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/sources/kafka"
)

func TestBadRecordsGoToADeadLetterTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range []string{`{"n": 1}`, `{"n": oops}`, `{"n": 3}`} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dl, dlc, err := kafka.DeadLetterTopic(c.ListenAddrs(), "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer dlc.Close()
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	src, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Topics: []string{"in"}, ValueSchema: schema, BadRecords: "dead-letter", DeadLetter: dl})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	start, err := src.Initial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end, err := src.Latest(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	splits, err := src.Splits(ctx, start, end)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rows int64
	for _, sp := range splits {
		if err := sp.Read(ctx, mem, func(r arrow.Record) error { rows += r.NumRows(); r.Release(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if rows != 2 {
		t.Fatalf("read %d good rows, want 2", rows)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := rd.PollFetches(fctx)
	var got []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	if len(got) != 1 || string(got[0].Value) != `{"n": oops}` {
		t.Fatalf("dead-letter topic holds %d records, want the one bad one", len(got))
	}
	h := map[string]string{}
	for _, x := range got[0].Headers {
		h[x.Key] = string(x.Value)
	}
	if h["sluice-topic"] != "in" || h["sluice-offset"] != "1" || !strings.Contains(h["sluice-error"], "n") {
		t.Fatalf("headers %v do not say where the record came from and why", h)
	}
}
