// Package killdeadletter holds a kill test of the Kafka sink's dead-letter
// policy: a query whose input has records too large for the output topic
// runs as a separate process, SIGKILLed at seeded random points and
// restarted; the topic must hold every other record once and the
// dead-letter Parquet table every poison record once. It has no non-test
// code.
package killdeadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sinks/parquet"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

const (
	childEnv = "SLUICE_DEADLETTERKILL_CHILD"
	seedEnv  = "SLUICE_DEADLETTERKILL_SEED"

	orders     = 2000
	perBatch   = 10  // offsets per batch: 200 batches
	maxRecord  = 800 // MaxRecordBytes of the output topic's records
	poisonSize = 1000
)

// poison says whether order i is too large for the output topic.
func poison(i int) bool { return i%37 == 5 }

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

type child struct {
	Brokers    []string `json:"brokers"`
	Checkpoint string   `json:"checkpoint"`
	Dead       string   `json:"dead"`
}

var valueSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "payload", Type: arrow.BinaryTypes.String},
}, nil)

// slowCommit widens the windows around the dead-letter commit, where a
// kill finds one of the batch's two commits done and the other not.
type slowCommit struct{ *parquet.StreamSink }

func (s slowCommit) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	time.Sleep(20 * time.Millisecond)
	err := s.StreamSink.Commit(ctx, b, msgs)
	time.Sleep(20 * time.Millisecond)
	return err
}

// runChild runs the query over topic "in" into topic "out" with the
// AvailableNow trigger, dead letters to the Parquet table c.Dead.
func runChild(cfgJSON string) int {
	var c child
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintf(os.Stderr, "child: bad %s: %v\n", childEnv, err)
		return 2
	}
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "child: %s: %v\n", what, err)
		return 1
	}
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: c.Brokers, Topics: []string{"in"},
		ValueSchema: valueSchema, MaxOffsetsPerBatch: perBatch, FetchMaxWait: 50 * time.Millisecond})
	if err != nil {
		return fail("source", err)
	}
	defer src.Close()
	dead, err := parquet.NewStream(parquet.StreamConfig{Dir: c.Dead})
	if err != nil {
		return fail("dead-letter sink", err)
	}
	sink, err := sinkkafka.New(sinkkafka.Config{Brokers: c.Brokers, Topic: "out", QueryID: "deadletter-kill",
		MaxRecordBytes: maxRecord, BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: slowCommit{dead}})
	if err != nil {
		return fail("sink", err)
	}
	defer sink.Close()
	ds := dataset.ReadStream(src).WithConfig(dataset.Config{Parallelism: 2}).Select("id", "payload")
	q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).Checkpoint(c.Checkpoint).
		OutputMode(sinks.Append).Start(context.Background())
	if err != nil {
		return fail("start", err)
	}
	if err := q.AwaitTermination(); err != nil {
		return fail("query", err)
	}
	return 0
}

// Kill the query at random points until it ends; the topic has every
// order that fits once, the dead-letter table every poison order once.
func TestKilledQueryDeadLettersOnce(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out"))
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
	var want, wantDead []int64
	for i := range orders {
		payload := "p" + strconv.Itoa(i)
		if poison(i) {
			payload = strings.Repeat("x", poisonSize)
			wantDead = append(wantDead, int64(i))
		} else {
			want = append(want, int64(i))
		}
		recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(i % 2), Value: fmt.Appendf(nil, `{"id":%d,"payload":%q}`, i, payload)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := child{Brokers: c.ListenAddrs(), Checkpoint: filepath.Join(dir, "ckpt"), Dead: filepath.Join(dir, "dead")}
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatalf("the query did not finish within 3 minutes (%d kills)", kills)
		}
		ch := killtest.Start(t, childEnv, cfg)
		if kills >= 12 {
			done = ch.Wait(t, time.Minute)
			if !done {
				t.Fatal("the last run did not end within a minute")
			}
			continue
		}
		if ch.RunOrKill(t, time.Duration(30+rng.IntN(300))*time.Millisecond) {
			kills++
		} else {
			done = true
		}
	}
	t.Logf("%d kills", kills)
	if kills < 6 {
		t.Errorf("only %d kills landed before the query ended: the test exercised little", kills)
	}

	if got := outIDs(t, c.ListenAddrs()); !slices.Equal(got, want) {
		t.Errorf("topic out: %d orders, want %d once each; extra or missing: %v", len(got), len(want), diff(got, want))
	}
	if got := deadIDs(t, cfg.Dead); !slices.Equal(got, wantDead) {
		t.Errorf("dead letters %v, want %v once each", got, wantDead)
	}
}

// diff lists what got has more (+) or less (-) than want, both sorted.
func diff(got, want []int64) []string {
	count := map[int64]int{}
	for _, v := range got {
		count[v]++
	}
	for _, v := range want {
		count[v]--
	}
	var out []string
	for v, n := range count {
		if n != 0 {
			out = append(out, fmt.Sprintf("%+d×%d", n, v))
		}
	}
	slices.Sort(out)
	return out
}

// outIDs returns the ids of the orders a read_committed consumer sees on
// "out", sorted.
func outIDs(t *testing.T, brokers []string) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(admCl).ListCommittedOffsets(ctx, "out")
	admCl.Close()
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ids []int64
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read out: partitions %v not read to their end", left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() || sinkkafka.IsMarker(r) {
				return
			}
			var v struct{ ID int64 }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("value %.80q: %v", r.Value, err)
			}
			ids = append(ids, v.ID)
		})
	}
	slices.Sort(ids)
	return ids
}

// deadIDs returns the ids in the committed batches of the dead-letter
// table, sorted.
func deadIDs(t *testing.T, dir string) []int64 {
	t.Helper()
	dead, err := parquet.NewStream(parquet.StreamConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var ids []int64
	for b := range int64(orders / perBatch * 2) {
		recs, err := dead.ReadBatch(context.Background(), sinks.Batch{ID: b}, mem)
		if errors.Is(err, sinks.ErrBatchNotCommitted) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			for i := range int(r.NumRows()) {
				id, err := strconv.ParseInt(r.Column(0).ValueStr(i), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				if got := r.Column(r.Schema().FieldIndices(sinks.DeadLetterBatch)[0]).ValueStr(i); got != strconv.FormatInt(b, 10) {
					t.Errorf("dead letter of order %d in batch %d says batch %s", id, b, got)
				}
				ids = append(ids, id)
			}
			r.Release()
		}
	}
	slices.Sort(ids)
	return ids
}
