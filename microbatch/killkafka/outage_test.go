package killkafka

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// outageEnv sets the outage's length (a Go duration, default 40s).
const outageEnv = "SLUICE_KAFKA_OUTAGE"

// A query rides out a broker outage shorter than its clients' own retries
// (kgo's, about 25 s: a 10 s outage plus the broker's start of 8-18 s)
// without failing; a longer one fails it and its restart strategy brings
// it back. The default outage is the longer kind, so that the test checks
// the restart.
const restartingOutage = 30 * time.Second

// The real broker (Apache Kafka, a broker of the test's own: it is
// stopped) goes away after batch 5 of the kill test's query (Kafka source
// -> windowed aggregation -> transactional Kafka sink) has committed, for
// $SLUICE_KAFKA_OUTAGE (40 s), and comes back on the same data and port.
// The query, with the default restart strategy, must continue by itself
// and finish: a read_committed reader then sees exactly the windows the
// final watermark closes, each once. The log says how long the query took
// to commit a batch after the broker was back (benchmarks/RESULTS.md).
func TestAQueryContinuesByItselfAfterTheBrokerWasStoppedAndStartedAgain(t *testing.T) {
	outage := 40 * time.Second
	if v := os.Getenv(outageEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", outageEnv, v, err)
		}
		outage = d
	}
	broker := testenv.OwnKafka(t)
	c := newCluster(t, []string{broker.Addr})
	seed := runSeed(t)
	in, out := "orders-outage", "out-outage"
	c.createTopic(t, in, partitions, false)
	c.createTopic(t, out, partitions, false)
	c.produceOrders(t, in, ordersGen(seed), orders)

	brokers := []string{broker.Addr}
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: brokers, Topics: []string{in},
		ValueSchema: valueSchema, MaxOffsetsPerBatch: offsetsPerBatch, FetchMaxWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, err := sinkkafka.New(sinkkafka.Config{Brokers: brokers, Topic: out, KeyColumn: "customer", QueryID: out})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	const outageAfter = 5
	var (
		mu         sync.Mutex
		done       = map[int64]time.Time{} // batch -> when it committed (OnProgress)
		down, back time.Time
		restarted  = make(chan struct{})
		brokerErr  error // of Stop or Start, which run off the test's goroutine
	)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := filepath.Join(t.TempDir(), "checkpoint")
	ds := job(dataset.ReadStream(src)).WithConfig(dataset.Config{Parallelism: 2, ShufflePartitions: 3})
	q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).Checkpoint(dir).OutputMode(sinks.Append).
		Logger(log).OnProgress(func(p microbatch.Progress) {
		mu.Lock()
		done[p.Batch] = time.Now()
		mu.Unlock()
		if p.Batch == outageAfter {
			// On the query's goroutine: the outage begins before batch
			// outageAfter+1 is planned.
			err := broker.Stop()
			mu.Lock()
			down, brokerErr = time.Now(), err
			mu.Unlock()
			go func() {
				defer close(restarted)
				time.Sleep(outage)
				err := broker.Start()
				mu.Lock()
				back = time.Now()
				if brokerErr == nil {
					brokerErr = err
				}
				mu.Unlock()
			}()
		}
	}).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- q.AwaitTermination() }()
	// Fail before go test's timeout would: a timeout's panic skips the
	// cleanups, and the broker's JVM would outlive the test.
	wait := 5*time.Minute + outage
	if dl, ok := t.Deadline(); ok {
		wait = min(wait, time.Until(dl)-3*time.Minute)
	}
	select {
	case err = <-ended:
	case <-time.After(wait):
		st := q.Status()
		q.Stop()
		t.Fatalf("the query has not finished %v after a %s outage; status %q", wait.Round(time.Second), outage, st.Message)
	}
	select {
	case <-restarted:
	case <-time.After(2 * time.Minute):
		t.Fatal("the broker did not start again")
	}
	mu.Lock()
	berr := brokerErr
	mu.Unlock()
	if berr != nil {
		t.Fatalf("the outage: %v", berr)
	}
	if err != nil {
		t.Fatalf("the query failed after the broker outage: %v", err)
	}
	if _, ok := done[outageAfter]; !ok || down.IsZero() {
		t.Fatalf("batch %d never committed: no outage happened (batches %v)", outageAfter, len(done))
	}

	// Exactly once: the windows the final watermark closes, each once.
	s := readKillState(t, dir)
	got := parseWindows(t, c.readTopic(t, out))
	want := expectedWindows(seed, orders, s.watermarks[s.lastOffsets])
	if d := diffSorted(got, want); d != "" {
		t.Fatalf("seed %d: after the outage the output (%d windows) differs from the windows computed in Go (%d): %s", seed, len(got), len(want), d)
	}
	if wantBatches := int64((orders+offsetsPerBatch-1)/offsetsPerBatch + 1); s.lastCommit != wantBatches-1 {
		t.Fatalf("last committed batch %d, want %d", s.lastCommit, wantBatches-1)
	}

	// How long it took: the first batch committed after the broker came
	// back, and after it went away.
	mu.Lock()
	defer mu.Unlock()
	var after time.Time
	for _, at := range done {
		if at.After(back) && (after.IsZero() || at.Before(after)) {
			after = at
		}
	}
	if after.IsZero() {
		t.Fatalf("no batch committed after the broker was back (batches at %v)", done)
	}
	p := q.LastProgress()
	if outage >= restartingOutage && p.Restarts == 0 {
		t.Fatalf("a %s outage and no restart: the test did not check the restart strategy", outage)
	}
	line := fmt.Sprintf("outage=%s broker_start=%s recover_after_back=%s stall=%s restarts=%d windows=%d",
		outage, back.Sub(down.Add(outage)).Round(time.Millisecond), after.Sub(back).Round(time.Millisecond),
		after.Sub(down).Round(time.Millisecond), p.Restarts, len(got))
	// outage: how long the broker was stopped; broker_start: how long
	// scripts/kafka start took after it to have the broker ready;
	// recover_after_back: from then to the query's next committed batch;
	// stall: from the broker's stop to that batch.
	t.Log("outage-recovery: " + line)
}

// testWriter sends the query's log records (Warn and up: restarts) to the
// test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
