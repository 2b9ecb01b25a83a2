package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/kafka"
	"github.com/sluicedata/sluice/sources/sourcetest"
)

// An executor builds its own Source from the job's Config and only decodes
// and reads splits; it must read what the driver's splits read.
func TestSplitsDecodeOnAFreshSourceThatNeverPlanned(t *testing.T) {
	values := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	for _, c := range []struct {
		name string
		txn  bool // also write an aborted and a committed transaction
		cfg  func(topic string) kafka.Config
	}{
		{"raw values split every 2 offsets, around transaction markers and aborted records", true, func(tp string) kafka.Config {
			return kafka.Config{Name: "orders", Topics: []string{tp}, MaxOffsetsPerSplit: 2}
		}},
		{"JSON values decoded into a value schema", false, func(tp string) kafka.Config {
			return kafka.Config{Name: "orders", Topics: []string{tp}, ValueSchema: values, RecordRows: 2}
		}},
		{"topics chosen by a regex", false, func(tp string) kafka.Config {
			return kafka.Config{Name: "orders", TopicRegex: strings.ReplaceAll(tp, "-", "[-]") + "|nothing", MaxOffsetsPerSplit: 3}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b *backend) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				tp := b.topic(t, "split", 2)
				b.produce(t, rec(tp, 0, `{"n":1}`), rec(tp, 0, `{"n":2}`), rec(tp, 1, `{"n":3}`))
				b.txn(t, false, rec(tp, 0, `{"n":-1}`))                      // aborted, and its marker
				b.txn(t, true, rec(tp, 0, `{"n":4}`), rec(tp, 1, `{"n":5}`)) // committed, and markers
				b.produce(t, rec(tp, 0, `{"n":6}`), rec(tp, 1, `{"n":7}`))

				driver := newSource(t, b, c.cfg(tp))
				start := initial(t, driver)
				var splits []sources.Split
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					// A real broker moves the last stable offset after the
					// transaction markers are written, asynchronously.
					end, err := driver.Latest(context.Background(), start)
					if err != nil {
						t.Fatal(err)
					}
					splits = mustSplits(t, driver, start, end)
					if len(sourcetest.Read(t, mem, splits)) >= 7 || time.Now().After(deadline) {
						break
					}
				}
				executor := newSource(t, b, c.cfg(tp)) // no Initial, Latest or Splits
				sourcetest.CheckRoundTrip(t, mem, splits, driver, executor)
				if got := len(sourcetest.Read(t, mem, splits)); got != 7 {
					t.Errorf("read %d rows, want 7 (aborted records skipped)", got)
				}
			})
		})
	}
}

func mustSplits(t *testing.T, s *kafka.Source, start, end sources.Offset) []sources.Split {
	t.Helper()
	splits, err := s.Splits(context.Background(), start, end)
	if err != nil {
		t.Fatal(err)
	}
	return splits
}

func TestDecodeSplitRefusesBytesItDidNotMake(t *testing.T) {
	s, err := kafka.New(kafka.Config{Name: "orders", Brokers: []string{"127.0.0.1:1"}, Topics: []string{"orders", "refunds"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := func(topic string, p int32, start, end int64) []byte {
		b, err := sources.MarshalSplit("kafka", "orders", &kafka.Split{Topic: topic, Partition: p, Start: start, End: end})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := body("orders", 1, 10, 20)
	sourcetest.CheckRefused(t, s, "kafka", good, map[string][]byte{
		"a topic the source does not read is refused": body("payments", 0, 0, 5),
		"a split without a topic is refused":          body("", 0, 0, 5),
		"a negative partition is refused":             body("orders", -1, 0, 5),
		"a negative offset is refused":                body("orders", 0, -2, 5),
		"an end before the start is refused":          body("orders", 0, 9, 5),
	})
}

func TestASplitDecodedByAClosedSourceFailsToRead(t *testing.T) {
	s, err := kafka.New(kafka.Config{Name: "orders", Brokers: []string{"127.0.0.1:1"}, Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sources.MarshalSplit("kafka", "orders", &kafka.Split{Topic: "orders", Start: 0, End: 5})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := s.DecodeSplit(b)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	err = sp.Read(context.Background(), memory.DefaultAllocator, func(r arrow.Record) error { r.Release(); return nil })
	if !errors.Is(err, kafka.ErrClosed) {
		t.Fatalf("read through a closed source: %v, want ErrClosed", err)
	}
}
