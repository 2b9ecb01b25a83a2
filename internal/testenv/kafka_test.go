package testenv_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/testenv"
)

// TestKafkaBrokerTransactions checks that the broker named by
// SLUICE_KAFKA_BROKERS (scripts/kafka up) does what the Kafka sink relies on:
// explicit topic creation, transactional produce (commit and abort), and a
// read_committed consumer in a group that sees exactly the committed records.
func TestKafkaBrokerTransactions(t *testing.T) {
	seeds := testenv.KafkaSeeds(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topic := fmt.Sprintf("sluice-testenv-%d", time.Now().UnixNano())

	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	start := time.Now()
	created, err := adm.CreateTopics(ctx, 1, 1, nil, topic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Logf("created topic %s in %v", topic, time.Since(start))
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		if _, err := adm.DeleteTopics(dctx, topic); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	}()

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.TransactionalID("sluice-testenv-"+topic),
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(30*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(commit kgo.TransactionEndTry, values ...string) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction: %v", err)
		}
		for _, v := range values {
			if err := prod.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("produce %q: %v", v, err)
			}
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction (commit=%v): %v", commit, err)
		}
	}
	start = time.Now()
	txn(kgo.TryCommit, "c0", "c1", "c2")
	txn(kgo.TryAbort, "aborted")
	txn(kgo.TryCommit, "c3")
	t.Logf("three transactions (commit, abort, commit) in %v", time.Since(start))

	consume := func(want int, iso kgo.IsolationLevel, group string) []string {
		t.Helper()
		opts := []kgo.Opt{
			kgo.SeedBrokers(seeds...),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(iso),
		}
		if group != "" {
			opts = append(opts, kgo.ConsumerGroup(group))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var got []string
		for len(got) < want {
			fetches := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %q, want %d records: %v", got, want, err)
			}
			fetches.EachError(func(tp string, p int32, err error) {
				t.Fatalf("fetch %s[%d]: %v", tp, p, err)
			})
			fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if group != "" {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit offsets of group %s: %v", group, err)
			}
		}
		return got
	}

	start = time.Now()
	committed := consume(4, kgo.ReadCommitted(), "sluice-testenv-"+topic)
	t.Logf("read_committed group consumer got %q in %v", committed, time.Since(start))
	if want := []string{"c0", "c1", "c2", "c3"}; !slices.Equal(committed, want) {
		t.Fatalf("read_committed got %q, want %q", committed, want)
	}
	// The aborted record is in the log; only read_uncommitted sees it.
	all := consume(5, kgo.ReadUncommitted(), "")
	if !slices.Contains(all, "aborted") {
		t.Fatalf("read_uncommitted got %q, want the aborted record among them", all)
	}
}
