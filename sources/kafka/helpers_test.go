package kafka_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/kafka"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("time.Sleep"))
}

// backend is a Kafka to test against: an in-process kfake cluster, and a
// real broker when SLUICE_KAFKA_BROKERS is set (scripts/kafka).
type backend struct {
	name    string
	brokers []string
	adm     *kadm.Client
	cl      *kgo.Client
	prefix  string
}

var topicSeq atomic.Int64

// eachBackend runs fn against kfake and, when SLUICE_KAFKA_BROKERS is set,
// against that broker too.
func eachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fn(t, newBackend(t, "kfake", c.ListenAddrs()))
	})
	if env := os.Getenv("SLUICE_KAFKA_BROKERS"); env != "" {
		t.Run("broker", func(t *testing.T) {
			fn(t, newBackend(t, "broker", strings.Split(env, ",")))
		})
	}
}

func newBackend(t *testing.T, name string, brokers []string) *backend {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	safe := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	return &backend{name: name, brokers: brokers, adm: kadm.NewClient(cl), cl: cl,
		prefix: fmt.Sprintf("%s-%d-%d-", safe, time.Now().UnixNano()%1e9, topicSeq.Add(1))}
}

// topic creates a topic of n partitions and returns its (unique) name.
func (b *backend) topic(t *testing.T, name string, n int32) string {
	t.Helper()
	full := b.prefix + name
	resp, err := b.adm.CreateTopic(context.Background(), n, 1, nil, full)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", full, err)
	}
	return full
}

// produce writes records synchronously, refreshing metadata while a new
// partition is not known yet.
func (b *backend) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	for i := 0; ; i++ {
		err := b.cl.ProduceSync(context.Background(), recs...).FirstErr()
		if err == nil {
			return
		}
		if i > 50 || !strings.Contains(err.Error(), "invalid record partitioning") {
			t.Fatal(err)
		}
		b.cl.ForceMetadataRefresh()
		time.Sleep(50 * time.Millisecond)
	}
}

// txn produces recs in one transaction, committed or aborted.
func (b *backend) txn(t *testing.T, commit bool, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.TransactionalID(fmt.Sprintf("%stx-%d", b.prefix, topicSeq.Add(1))), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

func rec(topic string, p int32, value string) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: p, Value: []byte(value)}
}

func newSource(t *testing.T, b *backend, cfg kafka.Config) *kafka.Source {
	t.Helper()
	cfg.Brokers = b.brokers
	cfg.FetchMaxWait = 50 * time.Millisecond
	s, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// read reads (start, end] twice (the second time through fresh splits, as
// a re-run would) and returns the rows as "topic/partition@offset=value"
// with the topic's test prefix removed.
func read(t *testing.T, b *backend, s *kafka.Source, start, end sources.Offset) []string {
	t.Helper()
	first, err := tryRead(b, s, start, end)
	if err != nil {
		t.Fatalf("read %s .. %s: %v", start, end, err)
	}
	again, err := tryRead(b, s, start, end)
	if err != nil {
		t.Fatalf("re-read %s .. %s: %v", start, end, err)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("re-read differs:\n%v\n%v", first, again)
	}
	return first
}

func tryRead(b *backend, s *kafka.Source, start, end sources.Offset) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer func() {
		if n := mem.CurrentAlloc(); n != 0 {
			panic(fmt.Sprintf("%d bytes leaked", n))
		}
	}()
	splits, err := s.Splits(ctx, start, end)
	if err != nil {
		return nil, err
	}
	var rows []string
	for _, sp := range splits {
		err := sp.Read(ctx, mem, func(r arrow.Record) error {
			defer r.Release()
			if !r.Schema().Equal(s.Schema()) {
				return fmt.Errorf("record schema %s, want %s", r.Schema(), s.Schema())
			}
			rows = append(rows, format(b, r)...)
			return nil
		})
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// format renders raw rows as topic/partition@offset=value, and decoded
// rows with the value columns as JSON-ish cells.
func format(b *backend, r arrow.Record) []string {
	sch := r.Schema()
	col := func(name string) arrow.Array { return r.Column(sch.FieldIndices(name)[0]) }
	topic := col("topic").(*array.String)
	part := col("partition").(*array.Int32)
	off := col("offset").(*array.Int64)
	var vc *array.Binary
	if sch.HasField("value") {
		vc, _ = col("value").(*array.Binary)
	}
	var out []string
	for i := 0; i < int(r.NumRows()); i++ {
		var v string
		if vc != nil {
			v = string(vc.Value(i))
			if vc.IsNull(i) {
				v = "<null>"
			}
		} else {
			var cells []string
			for j, f := range sch.Fields() {
				switch f.Name {
				case "key", "topic", "partition", "offset", "timestamp", "headers":
					continue
				}
				cells = append(cells, f.Name+":"+r.Column(j).ValueStr(i))
			}
			v = strings.Join(cells, " ")
		}
		out = append(out, fmt.Sprintf("%s/%d@%d=%s", strings.TrimPrefix(topic.Value(i), b.prefix), part.Value(i), off.Value(i), v))
	}
	return out
}

// batch runs one batch from start as the driver does and returns its end
// and rows.
func batch(t *testing.T, b *backend, s *kafka.Source, start sources.Offset) (sources.Offset, []string) {
	t.Helper()
	end, err := s.Latest(context.Background(), start)
	if err != nil {
		t.Fatalf("latest(%s): %v", start, err)
	}
	return end, read(t, b, s, start, end)
}

// batchUntil is batch retried (up to 10 s) until it returns n rows: a
// real broker writes transaction markers, and so moves the last stable
// offset, asynchronously after EndTransaction returns.
func batchUntil(t *testing.T, b *backend, s *kafka.Source, start sources.Offset, n int) (sources.Offset, []string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		end, rows := batch(t, b, s, start)
		if len(rows) >= n || time.Now().After(deadline) {
			return end, rows
		}
	}
}

func initial(t *testing.T, s *kafka.Source) sources.Offset {
	t.Helper()
	o, err := s.Initial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// unprefix removes the backend's topic prefix from an offset for comparing.
func unprefix(b *backend, o sources.Offset) string {
	return strings.ReplaceAll(string(o), b.prefix, "")
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

// exactOffsets: kfake writes transaction markers synchronously, so tests may
// pin exact offsets there; a real broker writes them after EndTransaction
// returns, so a record produced right after can land before a marker.
func (b *backend) exactOffsets() bool { return b.name == "kfake" }

var offsetInRow = regexp.MustCompile(`@\d+=`)

// want compares rows, ignoring offsets where they are not exact.
func (b *backend) want(t *testing.T, what string, got, wantRows []string) {
	t.Helper()
	if !b.exactOffsets() {
		strip := func(rows []string) []string {
			out := make([]string, len(rows))
			for i, r := range rows {
				out[i] = offsetInRow.ReplaceAllString(r, "=")
			}
			return out
		}
		got, wantRows = strip(got), strip(wantRows)
	}
	want(t, what, got, wantRows)
}

func want(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}
