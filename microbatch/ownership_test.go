package microbatch_test

// Checkpoints that know whose they are: what a new user tried, and what a
// start must refuse (naming the file and what differs) without changing a
// byte of the checkpoint.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/files"
	"github.com/sluicedata/sluice/sources/generate"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// dirSnapshot is every file under dir (relative path -> content).
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mustBeUnchanged fails unless dir holds exactly the files of before.
func mustBeUnchanged(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := dirSnapshot(t, dir)
	if !maps.Equal(before, after) {
		t.Fatalf("a refused start changed the checkpoint: files before %v, after %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
}

// refused starts w, expects a refusal wrapping target whose text holds
// every string of want, and checks that dir did not change.
func refused(t *testing.T, w *microbatch.StreamWriter, dir string, target error, want ...string) {
	t.Helper()
	before := dirSnapshot(t, dir)
	q, err := w.Start(context.Background())
	if err == nil {
		q.Stop()
		t.Fatal("started")
	}
	t.Logf("refused: %v", err)
	if !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %q", err, target)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	mustBeUnchanged(t, dir, before)
}

// runToEnd runs w with the AvailableNow trigger to its end.
func runAll(t *testing.T, w *microbatch.StreamWriter) *microbatch.Query {
	t.Helper()
	q, err := w.Trigger(microbatch.AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	return q
}

// ordersStream is total orders in batches of 100.
func ordersStream(t *testing.T, seed uint64, total int64) *generate.OrdersStream {
	t.Helper()
	s, err := generate.NewOrdersStream(generate.OrdersStreamConfig{Orders: generate.Orders{Seed: seed, Customers: 7}, Total: total, MaxRowsPerBatch: 100})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// perCustomer is the stateful query the scenarios run: totals per customer.
func perCustomer(src sources.Stream) *dataset.Dataset {
	return dataset.ReadStream(src).GroupBy("customer").Agg(dataset.CountAll().As("orders"))
}

// (a) A valid offsets/N copied from another query's checkpoint (of the same
// job over the same source) is refused: before, the aggregation re-read its
// input from the other query's offsets and every total came out wrong.
func TestAStartRefusesAnOffsetsFileCopiedFromAnotherQuery(t *testing.T) {
	root := t.TempDir()
	mine, theirs := filepath.Join(root, "mine"), filepath.Join(root, "theirs")
	run := func(dir string, total int64) *microbatch.Query {
		return runAll(t, microbatch.WriteStream(perCustomer(ordersStream(t, 1, total)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update))
	}
	myID := run(mine, 400).ID()      // batches 0..3
	theirID := run(theirs, 500).ID() // batches 0..4 of the same orders
	for _, tt := range []struct {
		name  string
		batch int
	}{
		{"as the last committed batch", 3},
		{"as a batch to re-run", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(root, fmt.Sprintf("copy%d", tt.batch))
			if err := os.CopyFS(dir, os.DirFS(mine)); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join("offsets", fmt.Sprintf("%d.json", tt.batch))
			data, err := os.ReadFile(filepath.Join(theirs, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
			w := microbatch.WriteStream(perCustomer(ordersStream(t, 1, 400)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update)
			refused(t, w, dir, microbatch.ErrIncompatibleCheckpoint, filepath.Join(dir, name),
				fmt.Sprintf(`query_id is %q, metadata.json's is %q`, theirID, myID))
		})
	}
}

// (b) The same query restarted on other data under the same source name:
// another Kafka topic, another files directory, another generator seed.
func TestAStartRefusesTheSameQueryOnOtherData(t *testing.T) {
	t.Run("kafka topic", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", "orders2"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := range 20 {
			for _, topic := range []string{"orders", "orders2"} {
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "order %d", i)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
		dir := filepath.Join(t.TempDir(), "ckpt")
		query := func(topic string) *microbatch.StreamWriter {
			src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: c.ListenAddrs(), Topics: []string{topic}, MaxOffsetsPerBatch: 8})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { src.Close() })
			ds := dataset.ReadStream(src).GroupBy("partition").Agg(dataset.CountAll().As("n"))
			return microbatch.WriteStream(ds, newRecordingSink()).OutputMode(sinks.Update).Checkpoint(dir)
		}
		if p := runAll(t, query("orders")).RecentProgress(); len(p) < 2 {
			t.Fatalf("the first run made %d batches; want several", len(p))
		}
		refused(t, query("orders2"), dir, microbatch.ErrIncompatibleCheckpoint,
			filepath.Join(dir, "metadata.json"),
			`source "orders": identity was "kafka topics=orders" and is now "kafka topics=orders2"`)
		// The same topic starts (and finds nothing new).
		runAll(t, query("orders"))
	})

	t.Run("files directory", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "ckpt")
		query := func(in string) *microbatch.StreamWriter {
			os.MkdirAll(in, 0o755)
			src, err := files.New(files.Config{Name: "drops", Dir: in, LogDir: filepath.Join(dir, "sources", "drops"),
				Schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)})
			if err != nil {
				t.Fatal(err)
			}
			return microbatch.WriteStream(dataset.ReadStream(src).DropDuplicates("id"), newRecordingSink()).Checkpoint(dir)
		}
		runAll(t, query(filepath.Join(root, "in")))
		before := dirSnapshot(t, dir)
		w := query(filepath.Join(root, "elsewhere"))
		mustBeUnchanged(t, dir, before) // opening the source read its log only
		refused(t, w, dir, microbatch.ErrIncompatibleCheckpoint, filepath.Join(dir, "metadata.json"),
			fmt.Sprintf(`source "drops": identity was "files dir=%s" and is now "files dir=%s"`, filepath.Join(root, "in"), filepath.Join(root, "elsewhere")))
	})

	t.Run("generator seed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ckpt")
		runAll(t, microbatch.WriteStream(perCustomer(ordersStream(t, 1, 400)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update))
		refused(t, microbatch.WriteStream(perCustomer(ordersStream(t, 2, 400)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update),
			dir, microbatch.ErrIncompatibleCheckpoint, filepath.Join(dir, "metadata.json"),
			`source "orders": identity was "orders seed=1 customers=7`, `and is now "orders seed=2 customers=7`)
	})

	t.Run("stateful operator", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ckpt")
		runAll(t, microbatch.WriteStream(perCustomer(ordersStream(t, 1, 400)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update))
		byRegion := dataset.ReadStream(ordersStream(t, 1, 400)).GroupBy("region").Agg(dataset.CountAll().As("orders"))
		refused(t, microbatch.WriteStream(byRegion, newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update),
			dir, microbatch.ErrIncompatibleCheckpoint, filepath.Join(dir, "metadata.json"),
			`operator agg-0: key schema was "customer: utf8" and is now "region: utf8"`)
	})
}

// An old-format checkpoint (version 1: no identity, offsets that do not
// name their query) is refused with both versions named, not upgraded.
func TestAStartRefusesAVersion1Checkpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	v1 := func(body string) []byte {
		return append(fmt.Appendf(nil, "v1 crc32c=%08x\n", crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli))), body...)
	}
	os.MkdirAll(filepath.Join(dir, "offsets"), 0o755)
	os.MkdirAll(filepath.Join(dir, "commits"), 0o755)
	os.WriteFile(filepath.Join(dir, "metadata.json"), v1(`{"query_id": "0123abcd", "format_version": 1, "key_groups": 128, "plan_fingerprint": "9f2c4e1d8a7b6c5d"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "offsets", "0.json"), v1(`{"batch": 0, "sources": {"orders": {"start": {"rows": 0}, "end": {"rows": 100}}}, "watermark_us": -9223372036854775808, "timestamp_us": 0}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "commits", "0.json"), v1(`{"batch": 0, "next_watermark_us": -9223372036854775808}`+"\n"), 0o644)
	refused(t, microbatch.WriteStream(perCustomer(ordersStream(t, 1, 400)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update),
		dir, checkpoint.ErrVersion, filepath.Join(dir, "metadata.json"),
		"format version 1, written by an older sluice; this build reads only version 2 and does not upgrade checkpoints")
}

// ownerChildEnv makes this test binary a process that runs perCustomer on
// the checkpoint it names, says "owner: running" once all its input is
// committed, and idles until killed (see TestMain).
const ownerChildEnv = "SLUICE_OWNER_CHILD"

func exitIfOwnerChild() {
	dir := os.Getenv(ownerChildEnv)
	if dir == "" {
		return
	}
	// ordersStream(t, 1, 400) without a t.
	src, err := generate.NewOrdersStream(generate.OrdersStreamConfig{Orders: generate.Orders{Seed: 1, Customers: 7}, Total: 400, MaxRowsPerBatch: 100})
	if err != nil {
		fmt.Println("owner: error:", err)
		os.Exit(1)
	}
	q, err := microbatch.WriteStream(perCustomer(src), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update).
		Trigger(microbatch.ProcessingTime(10 * time.Millisecond)).Start(context.Background())
	if err != nil {
		fmt.Println("owner: error:", err)
		os.Exit(1)
	}
	for len(q.RecentProgress()) < 4 {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("owner: running")
	// Until killed, or until the parent goes away (its end of our stdin
	// closes), so a parent that dies never leaves this query running.
	io.Copy(io.Discard, os.Stdin)
	q.Stop()
	os.Exit(1)
}

// (c) Two instances of one query on one checkpoint: the second is refused
// while the first runs, in this process or another, and a crashed owner
// (SIGKILL) does not block the next start.
func TestOneOwnerAtATime(t *testing.T) {
	query := func(dir string, trigger microbatch.Trigger) *microbatch.StreamWriter {
		return microbatch.WriteStream(perCustomer(ordersStream(t, 1, 400)), newRecordingSink()).Checkpoint(dir).OutputMode(sinks.Update).Trigger(trigger)
	}
	t.Run("in one process", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ckpt")
		first, err := query(dir, microbatch.ProcessingTime(10*time.Millisecond)).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for len(first.RecentProgress()) < 4 || first.Status().BatchActive {
			time.Sleep(5 * time.Millisecond)
		}
		refused(t, query(dir, microbatch.Once()), dir, checkpoint.ErrLocked,
			dir, fmt.Sprintf("lock %s: held by pid %d", filepath.Join(dir, "lock"), os.Getpid()))
		if err := first.Stop(); err != nil {
			t.Fatal(err)
		}
		runAll(t, query(dir, microbatch.AvailableNow()))
	})

	t.Run("a failed query releases it", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ckpt")
		sink := newRecordingSink()
		sink.failNext = errors.New("sink down")
		q, err := microbatch.WriteStream(perCustomer(ordersStream(t, 1, 400)), sink).Checkpoint(dir).OutputMode(sinks.Update).
			Trigger(microbatch.ProcessingTime(10 * time.Millisecond)).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err == nil || !strings.Contains(err.Error(), "sink down") {
			t.Fatalf("query ended with %v; want the sink's failure", err)
		}
		runAll(t, query(dir, microbatch.AvailableNow()))
	})

	t.Run("across processes, the first SIGKILLed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ckpt")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), ownerChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe() // closed when this process exits: the child's cue to exit too
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
		}()
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "owner: running\n" {
			t.Fatalf("child said %q, %v", line, err)
		}
		refused(t, query(dir, microbatch.Once()), dir, checkpoint.ErrLocked,
			fmt.Sprintf("lock %s: held by pid %d", filepath.Join(dir, "lock"), cmd.Process.Pid))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		// The kernel released the dead owner's lock: a restart runs, and
		// finds every batch already committed.
		q := runAll(t, query(dir, microbatch.AvailableNow()))
		if p := q.RecentProgress(); len(p) != 0 {
			t.Fatalf("the restart ran %d batches; the killed owner had committed all of them", len(p))
		}
	})
}
