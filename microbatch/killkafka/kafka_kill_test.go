// Package killkafka holds a kill test of the whole Kafka path: a Kafka
// source, a windowed aggregation with a watermark and the transactional
// Kafka sink, run as a separate process that is killed with SIGKILL at
// seeded random points and restarted. It has no non-test code.
package killkafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/killtest"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sources/generate"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// The test re-executes its own binary as the query process: TestMain sees
// childEnv (a JSON child) and runs the query instead of the tests.
const (
	childEnv = "SLUICE_KAFKAKILL_CHILD"
	// seedEnv replays a run's seed: the same orders and the same kill
	// delays (where the kills land still depends on the machine's speed).
	seedEnv = "SLUICE_KAFKAKILL_SEED"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	// Or an executor of the cluster test (cluster_kill_test.go).
	clustertest.Main(m, executorJob)
}

// The input: orders one second apart in event time, each moved back by up
// to maxDelay, written round-robin (order i to partition i%partitions) so
// that the source's lag-proportional batches keep every partition at the
// same point in event time; the watermark's delay covers maxDelay and that
// spread, so no row is ever late and the windows the final watermark closes
// equal a plain computation over all orders.
const (
	orders         = 3_000
	partitions     = 3
	customers      = 20
	interval       = time.Second
	maxDelay       = 3 * time.Second
	watermarkDelay = 10 * time.Second
	windowSize     = time.Minute
	// offsetsPerBatch makes orders/offsetsPerBatch = 30 data batches.
	offsetsPerBatch = 100
)

// start is the event time of order 0.
var start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func ordersGen(seed uint64) generate.Orders {
	return generate.Orders{Seed: seed, Customers: customers, Start: start, Interval: interval, MaxDelay: maxDelay}
}

// valueSchema is what the source decodes each JSON value into.
var valueSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "customer", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

// child is what the child process runs: the input topic through job into
// the output topic, with the AvailableNow trigger.
type child struct {
	Brokers    []string `json:"brokers"`
	In         string   `json:"in"`
	Out        string   `json:"out"`
	QueryID    string   `json:"query_id"`
	Checkpoint string   `json:"checkpoint"`
	// Cluster, when set, runs the query's tasks on a cluster's executors.
	Cluster *clustertest.Join `json:"cluster,omitempty"`
}

// job counts and sums each customer's orders per one-minute window; append
// mode emits each window once, when the watermark passes its end.
func job(ds *dataset.Dataset) *dataset.Dataset {
	return ds.Select("order_id", "customer", "amount", "ts").
		WithWatermark("ts", watermarkDelay).
		GroupBy(dataset.Window("ts", windowSize), "customer").
		Agg(dataset.CountAll().As("orders"), dataset.Sum(dataset.Col("amount")).As("total"))
}

// kafkaJob is the job's code as a function of its parameters: the driver
// and every executor build it alike.
func kafkaJob(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	brokers := strings.Split(p["brokers"], ",")
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: brokers, Topics: []string{p["in"]},
		ValueSchema: valueSchema, MaxOffsetsPerBatch: offsetsPerBatch, FetchMaxWait: 50 * time.Millisecond})
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	sink, err := sinkkafka.New(sinkkafka.Config{Brokers: brokers, Topic: p["out"], KeyColumn: "customer", QueryID: p["query_id"]})
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("sink: %w", err)
	}
	return []sinks.Sink{sink}, []*dataset.Dataset{job(dataset.ReadStream(src))}, nil
}

// runChild runs the child query to its end and returns the process's exit
// status. On success it prints one line the parent parses:
// "kafkakill: <batches> batches in <µs>us from <unix µs>".
func runChild(cfgJSON string) int {
	var c child
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintf(os.Stderr, "kafkakill child: bad %s: %v\n", childEnv, err)
		return 2
	}
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "kafkakill child: %s: %v\n", what, err)
		return 1
	}
	began := time.Now()
	params := map[string]string{"brokers": strings.Join(c.Brokers, ","), "in": c.In, "out": c.Out, "query_id": c.QueryID}
	outs, dss, err := kafkaJob(params)
	if err != nil {
		return fail("job", err)
	}
	src, sink := dss[0].Streams()[0].(*srckafka.Source), outs[0].(*sinkkafka.Sink)
	defer src.Close()
	defer sink.Close()
	cfg := dataset.Config{Parallelism: 2, ShufflePartitions: 3}
	if c.Cluster != nil {
		d, err := c.Cluster.Driver()
		if err != nil {
			return fail("cluster", err)
		}
		defer d.Close()
		cfg.Cluster, cfg.Params = d, params
	}
	ds := dss[0].WithConfig(cfg)
	q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(c.Checkpoint).OutputMode(sinks.Append).Start(context.Background())
	if err != nil {
		return fail("start", err)
	}
	if err := q.AwaitTermination(); err != nil {
		return fail("query", err)
	}
	fmt.Printf("kafkakill: %d batches in %dus from %d\n", len(q.RecentProgress()), time.Since(began).Microseconds(), began.UnixMicro())
	return 0
}

// cluster is where the topics live: a kfake cluster the parent runs, or a
// real one.
type kafkaCluster struct {
	brokers []string
	adm     *kadm.Client
	cl      *kgo.Client
}

func newCluster(t *testing.T, brokers []string) *kafkaCluster {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafkaCluster{brokers: brokers, adm: kadm.NewClient(cl), cl: cl}
}

// createTopic creates topic with n partitions; on a real cluster it is
// deleted (with the sink's group) at cleanup.
func (c *kafkaCluster) createTopic(t *testing.T, topic string, n int32, real bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.adm.CreateTopic(ctx, n, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s on %v: %v", topic, c.brokers, err)
	}
	if real {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = c.adm.DeleteTopics(ctx, topic)
			_, _ = c.adm.DeleteGroup(ctx, sinkkafka.GroupName(topic))
		})
	}
}

// produceOrders writes orders 0..n-1 as JSON values keyed by customer,
// order i to partition i%partitions.
func (c *kafkaCluster) produceOrders(t *testing.T, topic string, gen generate.Orders, n int64) {
	t.Helper()
	rec := gen.Record(memory.NewGoAllocator(), 0, n)
	defer rec.Release()
	ids := rec.Column(0).(*array.Int64)
	cust := rec.Column(1).(*array.String)
	amt := rec.Column(3).(*array.Decimal128)
	ts := rec.Column(4).(*array.Timestamp)
	scale := amt.DataType().(*arrow.Decimal128Type).Scale
	recs := make([]*kgo.Record, 0, n)
	for i := 0; i < int(n); i++ {
		v := fmt.Sprintf(`{"order_id":%d,"customer":%q,"amount":%q,"ts":%d}`,
			ids.Value(i), cust.Value(i), amt.Value(i).ToString(scale), int64(ts.Value(i)))
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte(cust.Value(i)), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce orders to %s: %v", topic, err)
	}
}

// outRecord is one record of the output topic, as bytes.
type outRecord struct{ key, value string }

// readTopic returns every data record a read_committed consumer sees from
// the start of each partition up to its last stable offset, markers of
// empty batches skipped (sinks/kafka.IsMarker).
func (c *kafkaCluster) readTopic(t *testing.T, topic string) []outRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := c.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list last stable offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	for p, o := range ends[topic] {
		if o.Offset > 0 {
			want[p] = o.Offset
			from[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records show where a partition ends: a committed
		// transaction's last offset is its commit marker.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []outRecord
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: still waiting for partitions %v: %v", topic, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("read %s[%d]: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() && !sinkkafka.IsMarker(r) {
				out = append(out, outRecord{key: string(r.Key), value: string(r.Value)})
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// window is one output row: a customer's orders in one window.
type window struct {
	start, end time.Time
	customer   string
	orders     int64
	cents      int64
}

func (w window) String() string {
	return fmt.Sprintf("%s|%s|%s|%d|%d.%02d", w.start.Format(time.RFC3339), w.end.Format(time.RFC3339), w.customer, w.orders, w.cents/100, w.cents%100)
}

// expectedWindows is the plain computation: every customer's count and sum
// per window over orders 0..n-1, for the windows ending at or before wm
// (µs since the epoch), sorted by String.
func expectedWindows(seed uint64, n int64, wm int64) []string {
	rec := ordersGen(seed).Record(memory.NewGoAllocator(), 0, n)
	defer rec.Release()
	cust := rec.Column(1).(*array.String)
	amt := rec.Column(3).(*array.Decimal128)
	ts := rec.Column(4).(*array.Timestamp)
	type key struct {
		start    int64
		customer string
	}
	size := windowSize.Milliseconds()
	groups := map[key]*window{}
	for i := 0; i < int(n); i++ {
		t := int64(ts.Value(i))
		ws := t - ((t%size)+size)%size
		k := key{ws, cust.Value(i)}
		w := groups[k]
		if w == nil {
			w = &window{start: time.UnixMilli(ws).UTC(), end: time.UnixMilli(ws + size).UTC(), customer: k.customer}
			groups[k] = w
		}
		w.orders++
		w.cents += int64(amt.Value(i).LowBits()) // scale 2, positive and small
	}
	var out []string
	for _, w := range groups {
		if wm != math.MinInt64 && w.end.UnixMicro() <= wm {
			out = append(out, w.String())
		}
	}
	slices.Sort(out)
	return out
}

// parseWindows decodes the output records (the sink's JSON rows, keyed by
// customer) into windows rendered like expectedWindows, sorted.
func parseWindows(t *testing.T, recs []outRecord) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		var v struct {
			Start    string      `json:"window_start"`
			End      string      `json:"window_end"`
			Customer string      `json:"customer"`
			Orders   json.Number `json:"orders"`
			Total    string      `json:"total"`
		}
		d := json.NewDecoder(strings.NewReader(r.value))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("output record %q: %v", r.value, err)
		}
		if r.key != v.Customer {
			t.Fatalf("output record key %q, its row's customer %q", r.key, v.Customer)
		}
		var w window
		var err error
		if w.start, err = time.Parse(time.RFC3339Nano, v.Start); err != nil {
			t.Fatalf("output record %q: window_start: %v", r.value, err)
		}
		if w.end, err = time.Parse(time.RFC3339Nano, v.End); err != nil {
			t.Fatalf("output record %q: window_end: %v", r.value, err)
		}
		w.start, w.end, w.customer = w.start.UTC(), w.end.UTC(), v.Customer
		if w.orders, err = v.Orders.Int64(); err != nil {
			t.Fatalf("output record %q: orders: %v", r.value, err)
		}
		whole, frac, _ := strings.Cut(v.Total, ".")
		units, err1 := strconv.ParseInt(whole, 10, 64)
		cents, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil || len(frac) != 2 {
			t.Fatalf("output record %q: total %q is not a decimal with 2 places", r.value, v.Total)
		}
		w.cents = units*100 + cents
		out = append(out, w.String())
	}
	slices.Sort(out)
	return out
}

// diffSorted explains the first way sorted got differs from sorted want: a
// duplicate, a lost or an extra row.
func diffSorted(got, want []string) string {
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			return fmt.Sprintf("%q is there twice", got[i])
		}
	}
	i, j := 0, 0
	for i < len(got) && j < len(want) {
		switch c := strings.Compare(got[i], want[j]); {
		case c < 0:
			return fmt.Sprintf("%q is extra", got[i])
		case c > 0:
			return fmt.Sprintf("%q is lost", want[j])
		}
		i++
		j++
	}
	switch {
	case i < len(got):
		return fmt.Sprintf("%q is extra (%d rows, want %d)", got[i], len(got), len(want))
	case j < len(want):
		return fmt.Sprintf("%q is lost (%d rows, want %d)", want[j], len(got), len(want))
	}
	return ""
}

func recordStrings(recs []outRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.key + "\x00" + r.value
	}
	slices.Sort(out)
	return out
}

// killState is where a kill left the query, from its checkpoint.
type killState struct {
	lastOffsets, lastCommit int64 // -1 = none
	watermarks              map[int64]int64
}

func readKillState(t *testing.T, dir string) killState {
	t.Helper()
	s := killState{lastOffsets: -1, lastCommit: -1, watermarks: map[int64]int64{}}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return s
	}
	cp, err := checkpoint.Open(vfs.OS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok, err := cp.LatestCommit(); err != nil {
		t.Fatalf("checkpoint %s after a kill: %v", dir, err)
	} else if ok {
		s.lastCommit = c.Batch
	}
	if o, ok, err := cp.LatestOffsets(); err != nil {
		t.Fatalf("checkpoint %s after a kill: %v", dir, err)
	} else if ok {
		s.lastOffsets = o.Batch
	}
	for b := max(s.lastCommit, 0); b <= s.lastOffsets; b++ {
		o, err := cp.Offsets(b)
		if err != nil {
			t.Fatalf("checkpoint %s after a kill: %v", dir, err)
		}
		s.watermarks[b] = o.Watermark
	}
	return s
}

func (s killState) phase() string {
	switch {
	case s.lastOffsets < 0:
		return "before the first batch"
	case s.lastOffsets == s.lastCommit:
		return "between batches"
	default:
		return "in a batch"
	}
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%x", prefix, os.Getpid(), rand.Uint64()&0xffffffff)
}

// A Kafka source -> windowed aggregation -> transactional Kafka sink query
// runs as a separate process, is killed with SIGKILL at seeded random
// points and restarted until it finishes; a read_committed consumer of its
// output topic then sees exactly the records of a run never killed, which
// are exactly the windows the final watermark closes. At every kill the
// output holds exactly the windows of the batches committed so far. It
// repeats with a fresh output topic and checkpoint until at least minKills
// kills have landed.
func TestKafkaQueryKilledAtRandomPointsWritesEveryWindowExactlyOnce(t *testing.T) {
	onEachBroker(t, killTest)
}

// onEachBroker runs test on an in-process kfake broker (topics "orders"
// and "out-reference" made) and, when $SLUICE_KAFKA_BROKERS names one, on
// a real Kafka (real: test makes its own topics).
func onEachBroker(t *testing.T, test func(t *testing.T, c *kafkaCluster, real bool)) {
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "orders", "out-reference"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		test(t, newCluster(t, c.ListenAddrs()), false)
	})
	t.Run("apache-kafka", func(t *testing.T) {
		if os.Getenv(testenv.KafkaBrokersEnv) == "" {
			t.Skipf("%s unset: run scripts/kafka up and export the line it prints to run against a real broker", testenv.KafkaBrokersEnv)
		}
		test(t, newCluster(t, testenv.KafkaSeeds(t)), true)
	})
}

// runSeed is $SLUICE_KAFKAKILL_SEED, or else the time; it is logged so a
// failing run can be replayed.
func runSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	return seed
}

func killTest(t *testing.T, c *kafkaCluster, real bool) {
	const (
		minKills = 24
		// stalled kills in a row without a new commit double the kill
		// delays: start-up may have grown slower than it was measured.
		stalled = 10
	)
	seed := runSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x6b61666b61))

	in, refOut := "orders", "out-reference"
	if real {
		in, refOut = uniqueName("sluice-killkafka-in"), uniqueName("sluice-killkafka-ref")
		c.createTopic(t, in, partitions, true)
		c.createTopic(t, refOut, partitions, true)
	}
	c.produceOrders(t, in, ordersGen(seed), orders)
	runCfg := func(out string) child {
		return child{Brokers: c.brokers, In: in, Out: out, QueryID: out, Checkpoint: filepath.Join(t.TempDir(), "checkpoint")}
	}

	// The reference: a run never killed. It also measures a process's
	// start-up and a batch's time, which set the kill delays.
	ref := runCfg(refOut)
	began := time.Now()
	r := killtest.Start(t, childEnv, ref)
	if r.RunOrKill(t, 5*time.Minute) {
		t.Fatal("reference run was killed")
	}
	var batches int
	var runUs, startUs int64
	if _, err := fmt.Sscanf(r.Stdout(), "kafkakill: %d batches in %dus from %d", &batches, &runUs, &startUs); err != nil {
		t.Fatalf("reference run printed %q: %v", r.Stdout(), err)
	}
	// 30 data batches and one more that runs only for the watermark.
	if want := (orders+offsetsPerBatch-1)/offsetsPerBatch + 1; batches != want {
		t.Fatalf("reference run: %d batches, want %d", batches, want)
	}
	batchTime := time.Duration(runUs) * time.Microsecond / time.Duration(batches)
	startup := max(time.UnixMicro(startUs).Sub(began), time.Millisecond)
	refState := readKillState(t, ref.Checkpoint)
	finalWM := refState.watermarks[refState.lastOffsets]
	refRecs := recordStrings(c.readTopic(t, refOut))
	wantWindows := expectedWindows(seed, orders, finalWM)
	t.Logf("reference: %d records in %d batches, final watermark %v; process start-up %v, a batch %v",
		len(refRecs), batches, time.UnixMicro(finalWM).UTC(), startup.Round(time.Millisecond), batchTime.Round(time.Microsecond))
	// The final watermark is the largest event time less the delay.
	if last := start.Add((orders - 1) * interval); finalWM > last.Add(-watermarkDelay).UnixMicro() || finalWM < last.Add(-watermarkDelay-maxDelay).UnixMicro() {
		t.Fatalf("final watermark %v: want the last order's time (%v, less up to %v) less %v", time.UnixMicro(finalWM).UTC(), last, maxDelay, watermarkDelay)
	}
	if len(wantWindows) < 500 {
		t.Fatalf("only %d closed windows: the test needs more data", len(wantWindows))
	}
	refParsed := parseWindows(t, c.readTopic(t, refOut))
	if d := diffSorted(refParsed, wantWindows); d != "" {
		t.Fatalf("seed %d: the never-killed run's output (%d records) differs from the windows computed in Go (%d): %s", seed, len(refParsed), len(wantWindows), d)
	}

	// checkVisible checks what a reader sees after a kill: exactly the
	// windows closed by batches 0..k, for k the last committed batch or the
	// one after it (killed between the sink's transaction and commits/N).
	// A real broker writes a transaction's markers to the partitions just
	// after it answers EndTxn, so a mismatch is read again for a while.
	checkVisible := func(run, kill int, out string, s killState) {
		t.Helper()
		var cands []int64
		for k := s.lastCommit; k <= s.lastOffsets && k <= s.lastCommit+1; k++ {
			cands = append(cands, k)
		}
		if len(cands) == 0 {
			cands = []int64{-1}
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			got := parseWindows(t, c.readTopic(t, out))
			var diffs []string
			for _, k := range cands {
				wm := int64(math.MinInt64)
				if k >= 0 {
					wm = s.watermarks[k]
				}
				d := diffSorted(got, expectedWindows(seed, orders, wm))
				if d == "" {
					return
				}
				diffs = append(diffs, fmt.Sprintf("as of batch %d: %s", k, d))
			}
			if time.Now().After(deadline) {
				t.Fatalf("seed %d: run %d, kill %d (%s; offsets up to batch %d, commits up to %d): the output topic (%d records) holds no committed prefix of batches: %s",
					seed, run, kill, s.phase(), s.lastOffsets, s.lastCommit, len(got), strings.Join(diffs, "; "))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// sinkBatch is the last batch the sink committed, from the batch id in
	// its group's committed offset; it must be the last committed batch or
	// the one after it. The offset commit becomes readable just after a
	// real broker answers EndTxn, so a mismatch is read again for a while.
	sinkBatch := func(run, kill int, out string, s killState) int64 {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := c.adm.FetchOffsets(ctx, sinkkafka.GroupName(out))
			cancel()
			last := int64(-1)
			if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
				t.Fatalf("committed offsets of group %s: %v", sinkkafka.GroupName(out), err)
			}
			if o, ok := resp.Lookup(out, 0); ok && o.Err == nil {
				last = o.At - 1
			}
			if last == s.lastCommit || (last == s.lastCommit+1 && last == s.lastOffsets) {
				return last
			}
			if time.Now().After(deadline) {
				t.Fatalf("seed %d: run %d, kill %d: the sink's group records batch %d, with offsets up to %d and commits up to %d", seed, run, kill, last, s.lastOffsets, s.lastCommit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Kills land from the process's start to two batches after its
	// start-up (a restart first re-runs the batch a kill interrupted).
	maxDelay := startup + 2*batchTime
	kills, runs, reruns := 0, 0, 0
	phases := map[string]int{}
	for kills < minKills {
		runs++
		out := fmt.Sprintf("out-run%d", runs)
		if real {
			out = uniqueName(fmt.Sprintf("sluice-killkafka-run%d", runs))
		}
		c.createTopic(t, out, partitions, real)
		cfg := runCfg(out)
		killed, lastCommit, noProgress := 0, int64(-1), 0
		for {
			delay := time.Duration(rng.Int64N(int64(maxDelay)))
			r := killtest.Start(t, childEnv, cfg)
			if !r.RunOrKill(t, delay) {
				break
			}
			killed++
			s := readKillState(t, cfg.Checkpoint)
			if s.lastOffsets > s.lastCommit {
				reruns++
			}
			if sinkBatch(runs, killed, out, s) > s.lastCommit {
				phases["after the sink's transaction, before commits/N"]++
			} else {
				phases[s.phase()]++
			}
			checkVisible(runs, killed, out, s)
			if s.lastCommit > lastCommit {
				lastCommit, noProgress = s.lastCommit, 0
			} else if noProgress++; noProgress == stalled {
				maxDelay *= 2
				noProgress = 0
				t.Logf("run %d: %d kills without a new commit, kill delays now up to %v", runs, stalled, maxDelay)
			}
		}
		kills += killed
		got := recordStrings(c.readTopic(t, out))
		if d := diffSorted(got, refRecs); d != "" {
			t.Fatalf("seed %d: run %d, killed %d times: the output topic (%d records) differs from the never-killed run's (%d): %s", seed, runs, killed, len(got), len(refRecs), d)
		}
		if d := diffSorted(parseWindows(t, c.readTopic(t, out)), wantWindows); d != "" {
			t.Fatalf("seed %d: run %d, killed %d times: the output differs from the windows computed in Go: %s", seed, runs, killed, d)
		}
		t.Logf("run %d: %d kills, output equals the reference (%d records)", runs, killed, len(got))
	}
	t.Logf("%d kills over %d runs in %v; kills landed %v", kills, runs, time.Since(began).Round(time.Millisecond), phases)
	if reruns == 0 {
		t.Fatalf("none of %d kills left a batch to re-run (kill delays up to %v)", kills, maxDelay)
	}
}
