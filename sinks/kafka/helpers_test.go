package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is where a test's topic lives: an in-process kfake cluster, or
// the real brokers of SLUICE_KAFKA_BROKERS (scripts/kafka).
type backend struct {
	name string
	real []string // brokers of a real cluster; nil for kfake
}

// backends returns kfake, and the real cluster when SLUICE_KAFKA_BROKERS is
// set, so every test runs against both.
func backends() []backend {
	bs := []backend{{name: "kfake"}}
	if env := os.Getenv("SLUICE_KAFKA_BROKERS"); env != "" {
		bs = append(bs, backend{name: "real", real: strings.Split(env, ",")})
	}
	return bs
}

// eachBackend runs f as a subtest per backend.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// topic makes a fresh topic of n partitions and returns the brokers and its
// name: a new kfake cluster seeded with it, or a uniquely named topic on the
// real cluster, deleted at cleanup.
func (b backend) topic(t testing.TB, partitions int32) (brokers []string, topic string) {
	t.Helper()
	topic = "out-" + unique()
	if b.real == nil {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs(), topic
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.real...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		cl.Close()
		t.Fatalf("create topic %s on %v: %v", topic, b.real, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
		_, _ = adm.DeleteGroup(ctx, GroupName(topic))
		cl.Close()
	})
	return b.real, topic
}

func unique() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSink makes a sink closed at cleanup.
func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// readTopic returns every record of topic a read_committed consumer sees,
// from the start of each partition to its last stable offset, markers
// included (the caller filters with IsMarker). Control records are kept
// while reading only to know when a partition is done: a committed
// transaction always ends with one, so the last offset below the LSO is
// often a control record.
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	// A broker that created the topic a moment ago may not host its
	// partitions yet (a fresh KRaft broker propagates metadata
	// asynchronously): ask again for a while, as a producer waits for
	// metadata, before calling it an error.
	var ends kadm.ListedOffsets
	for {
		ends, err = kadm.NewClient(admCl).ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	admCl.Close()
	if err != nil {
		t.Fatalf("list committed offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	for p, o := range ends[topic] {
		if o.Offset > 0 {
			want[p] = o.Offset
			start[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: still waiting for partitions %v: %v", topic, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("read %s[%d]: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// dataRecords drops the markers of empty batches.
func dataRecords(recs []*kgo.Record) []*kgo.Record {
	var out []*kgo.Record
	for _, r := range recs {
		if !IsMarker(r) {
			out = append(out, r)
		}
	}
	return out
}
