package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	sinkpq "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/chain"
	"github.com/sluicedata/sluice/sources/kafka"
	memsrc "github.com/sluicedata/sluice/sources/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("time.Sleep"))
}

const topic = "orders"

var (
	base = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// outSchema is what the chain yields in most tests.
	outSchema = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	// histSchema is the archive's: the value columns and the event time.
	histSchema = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
)

// fixture: a kfake topic of 2 partitions holding ids 0..total-1 (id i in
// partition i%2 at offset i/2, timestamp base+i s), and a Parquet history
// of ids 0..histRows-1 in files of 2 rows, with _kafka_offsets.json.
type fixture struct {
	dir     string
	brokers []string
	cl      *kgo.Client
}

const (
	histRows = 6
	total    = 12
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f := &fixture{dir: t.TempDir(), brokers: c.ListenAddrs(), cl: cl}
	f.produce(t, 0, total)

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for file := 0; file < histRows/2; file++ {
		w, err := sinkpq.NewFileWriter(mem, f.dir, fmt.Sprintf("part-%c", 'a'+file), histSchema, sinkpq.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rec := histRecord(mem, int64(2*file), int64(2*file+2))
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The history holds offsets 0..2 of both partitions.
	f.writeOffsets(t, fmt.Sprintf(`{%q:{"0":3,"1":3}}`, topic))
	return f
}

func (f *fixture) writeOffsets(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, chain.OffsetsFileName), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) produce(t *testing.T, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{
			Topic: topic, Partition: int32(i % 2), Timestamp: base.Add(time.Duration(i) * time.Second),
			Value: fmt.Appendf(nil, `{"id":%d,"name":"n%d"}`, i, i),
		})
	}
	if err := f.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func histRecord(mem memory.Allocator, from, to int64) arrow.Record {
	b := array.NewRecordBuilder(mem, histSchema)
	defer b.Release()
	for i := from; i < to; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("n%d", i))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(base.Add(time.Duration(i) * time.Second).UnixMilli()))
	}
	return b.NewRecord()
}

func (f *fixture) kcfg() kafka.Config {
	return kafka.Config{
		Brokers: f.brokers, Topics: []string{topic}, FetchMaxWait: 50 * time.Millisecond,
		ValueSchema: outSchema,
	}
}

func (f *fixture) chain(t *testing.T, h chain.Handoff, maxSplits int) *chain.Chain {
	t.Helper()
	c, err := chain.NewParquetKafka(context.Background(), chain.ParquetKafkaConfig{
		Dir: f.dir, Kafka: f.kcfg(), Handoff: h, Schema: outSchema, MaxSplitsPerBatch: maxSplits,
		Mem: checked(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checked is an allocator asserted empty when the test ends.
func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

type batch struct {
	start, end sources.Offset
	phase      string
	ids        []int64
}

// run drives c as the driver does until Latest stops moving.
func run(t *testing.T, c *chain.Chain, mem memory.Allocator) []batch {
	t.Helper()
	ctx := context.Background()
	start, err := c.Initial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []batch
	for range 50 {
		end, err := c.Latest(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(end, start) {
			return out
		}
		b := read(t, c, mem, start, end)
		out = append(out, b)
		start = end
	}
	t.Fatal("Latest never stopped moving")
	return nil
}

func read(t *testing.T, c *chain.Chain, mem memory.Allocator, start, end sources.Offset) batch {
	t.Helper()
	ctx := context.Background()
	splits, err := c.Splits(ctx, start, end)
	if err != nil {
		t.Fatal(err)
	}
	b := batch{start: start, end: end}
	for _, sp := range splits {
		cs := sp.(*chain.Split)
		if b.phase != "" && b.phase != cs.Phase {
			t.Fatalf("batch (%s, %s] mixes phases %s and %s", start, end, b.phase, cs.Phase)
		}
		b.phase = cs.Phase
		err := sp.Read(ctx, mem, func(rec arrow.Record) error {
			defer rec.Release()
			if !rec.Schema().Equal(outSchema) {
				t.Errorf("record schema %s, want %s", rec.Schema(), outSchema)
			}
			ids := rec.Column(0).(*array.Int64)
			names := rec.Column(1).(*array.String)
			for i := range int(rec.NumRows()) {
				if want := fmt.Sprintf("n%d", ids.Value(i)); names.Value(i) != want {
					t.Errorf("row id %d has name %q", ids.Value(i), names.Value(i))
				}
				b.ids = append(b.ids, ids.Value(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func allIDs(bs []batch) []int64 {
	var out []int64
	for _, b := range bs {
		out = append(out, b.ids...)
	}
	return out
}

func ids(vs ...int64) []int64 { return vs }

// The live rows in split order: partition 0 then partition 1.
var wantAll = ids(0, 1, 2, 3, 4, 5, 6, 8, 10, 7, 9, 11)

func TestHistoryThenKafka(t *testing.T) {
	cases := []struct {
		name    string
		handoff func(f *fixture) chain.Handoff
	}{
		{"from the offsets recorded with the history", func(*fixture) chain.Handoff { return chain.OffsetsFile() }},
		{"from a timestamp", func(*fixture) chain.Handoff { return chain.Timestamp(base.Add(histRows * time.Second)) }},
		{"from the history's max event time", func(*fixture) chain.Handoff { return chain.MaxEventTime("ts") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			mem := checked(t)
			c := f.chain(t, tc.handoff(f), 1)
			bs := run(t, c, mem)
			if got := allIDs(bs); !slices.Equal(got, wantAll) {
				t.Fatalf("rows %v, want %v", got, wantAll)
			}
			// 3 history files, one split per batch, then one live batch;
			// the last history batch ends at the live phase's first offset.
			var phases []string
			for _, b := range bs {
				phases = append(phases, b.phase)
			}
			if want := []string{"history", "history", "history", "live"}; !slices.Equal(phases, want) {
				t.Fatalf("batch phases %v, want %v", phases, want)
			}
			if !bytes.HasPrefix(bs[2].end, []byte(`{"phase":"live","h":{"split":3,`)) {
				t.Errorf("the batch finishing the history ends at %s, want the live phase's first offset", bs[2].end)
			}
			t.Logf("handoff offset: %s", bs[2].end)
		})
	}
}

func TestRestartReadsRecordedOffsets(t *testing.T) {
	f := newFixture(t)
	mem := checked(t)
	c := f.chain(t, chain.OffsetsFile(), 2)
	bs := run(t, c, mem)
	c.Close()

	// More data arrives, and the offsets file is rewritten: neither may
	// change what recorded offsets read.
	f.produce(t, total, total+4)
	f.writeOffsets(t, fmt.Sprintf(`{%q:{"0":0,"1":0}}`, topic))

	c2 := f.chain(t, chain.OffsetsFile(), 2)
	for _, b := range bs {
		again := read(t, c2, mem, b.start, b.end)
		if !slices.Equal(again.ids, b.ids) || again.phase != b.phase {
			t.Errorf("batch (%s, %s]: rows %v (%s) after restart, %v (%s) before", b.start, b.end, again.ids, again.phase, b.ids, b.phase)
		}
	}
	// And the restarted chain continues from the last recorded end.
	last := bs[len(bs)-1].end
	end, err := c2.Latest(context.Background(), last)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, c2, mem, last, end).ids; !slices.Equal(got, ids(12, 14, 13, 15)) {
		t.Errorf("after restart the next batch reads %v, want [12 14 13 15]", got)
	}
}

// The generic chain over two memory streams: the live stream has its
// columns in another order and one more, projected away by Config.Schema;
// Commit reaches the live stream; an empty history hands off at Initial.
func TestGenericChain(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	liveSchema := arrow.NewSchema([]arrow.Field{
		{Name: "extra", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	liveRecord := func(from, to int64) arrow.Record {
		b := array.NewRecordBuilder(mem, liveSchema)
		defer b.Release()
		for i := from; i < to; i++ {
			b.Field(0).(*array.BooleanBuilder).Append(true)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("n%d", i))
			b.Field(2).(*array.Int64Builder).Append(i)
		}
		return b.NewRecord()
	}
	newChain := func(t *testing.T, histRows int64) (*chain.Chain, *memsrc.Source) {
		hist, err := memsrc.New(memsrc.Config{Name: "h", Schema: histSchema, MaxRowsPerBatch: 2})
		if err != nil {
			t.Fatal(err)
		}
		if histRows > 0 {
			r := histRecord(mem, 0, histRows)
			hist.Append(r)
			r.Release()
		}
		live, err := memsrc.New(memsrc.Config{Name: "l", Schema: liveSchema})
		if err != nil {
			t.Fatal(err)
		}
		r := liveRecord(histRows, histRows+3)
		live.Append(r)
		r.Release()
		var handoffs []string
		c, err := chain.New(chain.Config{History: hist, Schema: outSchema, LiveSchema: liveSchema,
			Live: func(_ context.Context, h sources.Offset) (sources.Stream, error) {
				handoffs = append(handoffs, string(h))
				return live, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Error(err)
			}
			if len(handoffs) != 1 {
				t.Errorf("Live called for handoffs %v, want once", handoffs)
			}
		})
		return c, live
	}

	t.Run("history then live, projected", func(t *testing.T) {
		c, live := newChain(t, 3)
		bs := run(t, c, mem)
		if got := allIDs(bs); !slices.Equal(got, ids(0, 1, 2, 3, 4, 5)) {
			t.Fatalf("rows %v", got)
		}
		last := bs[len(bs)-1].end
		if err := c.Commit(ctx, last); err != nil {
			t.Fatal(err)
		}
		// The memory stream dropped what the commit passed.
		if _, err := live.Splits(ctx, sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":3}`)); !errors.Is(err, sources.ErrOffsetGone) {
			t.Errorf("live stream after Commit: %v, want its rows dropped", err)
		}
	})
	t.Run("an empty history hands off at Initial", func(t *testing.T) {
		c, _ := newChain(t, 0)
		start, err := c.Initial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"phase":"live","h":{"pos":0},"l":{"pos":0}}`; string(start) != want {
			t.Fatalf("Initial %s, want %s", start, want)
		}
		bs := run(t, c, mem)
		if len(bs) != 1 || bs[0].phase != "live" || !slices.Equal(bs[0].ids, ids(0, 1, 2)) {
			t.Fatalf("batches %+v", bs)
		}
	})
}

func TestSchemaMismatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		cfg   func() chain.ParquetKafkaConfig
		wants []string
	}{
		{"a column of another type in Config.Schema", func() chain.ParquetKafkaConfig {
			s := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int32}}, nil)
			return chain.ParquetKafkaConfig{Dir: f.dir, Kafka: f.kcfg(), Handoff: chain.OffsetsFile(), Schema: s}
		}, []string{`"id"`, "int32", "int64"}},
		{"a column of another type in the live stream", func() chain.ParquetKafkaConfig {
			k := f.kcfg()
			k.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil)
			return chain.ParquetKafkaConfig{Dir: f.dir, Kafka: k, Handoff: chain.OffsetsFile(), Schema: outSchema}
		}, []string{`"id"`, "int64", "utf8", "live"}},
		{"no Config.Schema and the live stream lacks a history column", func() chain.ParquetKafkaConfig {
			return chain.ParquetKafkaConfig{Dir: f.dir, Kafka: f.kcfg(), Handoff: chain.OffsetsFile()}
		}, []string{`"ts"`, "timestamp", "missing from the live stream"}},
		{"a Config.Schema column the history lacks", func() chain.ParquetKafkaConfig {
			s := arrow.NewSchema([]arrow.Field{{Name: "price", Type: arrow.PrimitiveTypes.Float64}}, nil)
			return chain.ParquetKafkaConfig{Dir: f.dir, Kafka: f.kcfg(), Handoff: chain.OffsetsFile(), Schema: s}
		}, []string{`"price"`, "float64", "history"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chain.NewParquetKafka(ctx, tc.cfg())
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, chain.ErrSchemaMismatch) {
				t.Errorf("error %v does not wrap ErrSchemaMismatch", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			t.Log(err)
		})
	}
}

// A live stream whose schema is only known at the handoff is checked there.
func TestSchemaMismatchAtHandoff(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	hist, err := chain.NewHistory(ctx, chain.HistoryConfig{Dir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	k := f.kcfg()
	k.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int32}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil)
	c, err := chain.New(chain.Config{History: hist, Schema: outSchema, Live: func(context.Context, sources.Offset) (sources.Stream, error) {
		return kafka.New(k)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start, _ := c.Initial(ctx)
	_, err = c.Latest(ctx, start)
	if !errors.Is(err, chain.ErrSchemaMismatch) || !strings.Contains(err.Error(), `"id" is int64 in Config.Schema but int32 in the live stream`) {
		t.Fatalf("Latest at the handoff: %v", err)
	}
}

func TestBadOffsets(t *testing.T) {
	f := newFixture(t)
	mem := checked(t)
	ctx := context.Background()
	c := f.chain(t, chain.OffsetsFile(), 0)
	bs := run(t, c, mem)
	if len(bs) != 2 {
		t.Fatalf("%d batches, want 2 (the history, then Kafka)", len(bs))
	}
	hist, live := bs[0].start, bs[1].end
	cases := []struct {
		name       string
		start, end string
		want       error
	}{
		{"not JSON", "nope", string(live), sources.ErrBadOffset},
		{"an unknown phase", `{"phase":"later","h":{}}`, string(live), sources.ErrBadOffset},
		{"a live offset without the live position", `{"phase":"live","h":{"split":0,"files":"x"}}`, string(live), sources.ErrBadOffset},
		{"a history offset with a live position", `{"phase":"history","h":{},"l":{}}`, string(live), sources.ErrBadOffset},
		{"an unknown field", `{"phase":"history","h":{},"x":1}`, string(live), sources.ErrBadOffset},
		{"a live start before a history end", string(live), string(hist), sources.ErrBadOffset},
		{"live offsets handing off at another history offset", strings.Replace(string(live), `"split":3`, `"split":2`, 1), string(live), sources.ErrBadOffset},
		{"a history offset over other files", strings.Replace(string(hist), `"files":"`, `"files":"00`, 1), string(live), sources.ErrOffsetGone},
		{"a history offset past the history", strings.Replace(string(hist), `"split":0`, `"split":9`, 1), string(live), sources.ErrBadOffset},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Splits(ctx, sources.Offset(tc.start), sources.Offset(tc.end))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Splits: %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
	if _, err := c.Latest(ctx, sources.Offset(`{"phase":"live","h":{"split":1,"files":"x"},"l":{"t":{}}}`)); !errors.Is(err, sources.ErrBadOffset) {
		t.Errorf("Latest with another handoff: %v", err)
	}
}

func TestOffsetsFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name, body string
	}{
		{"missing", ""},
		{"not JSON", "{"},
		{"no topic", "{}"},
		{"another topic only", `{"payments":{"0":3}}`},
		{"a negative offset", `{"orders":{"0":-1}}`},
		{"a partition that is not a number", `{"orders":{"p0":3}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(f.dir, chain.OffsetsFileName))
			if tc.body != "" {
				f.writeOffsets(t, tc.body)
			}
			c, err := chain.NewParquetKafka(ctx, chain.ParquetKafkaConfig{Dir: f.dir, Kafka: f.kcfg(), Handoff: chain.OffsetsFile(), Schema: outSchema})
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, chain.ErrHandoff) {
				t.Errorf("error %v does not wrap ErrHandoff", err)
			}
			t.Log(err)
		})
	}
	t.Run("stored in order", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "o.json")
		os.WriteFile(p, []byte(`{"b":{"10":5,"2":1},"a":{"0":7}}`), 0o644)
		got, err := chain.ReadOffsetsFile(p, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"a":{"0":7},"b":{"2":1,"10":5}}`; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
		var m map[string]map[string]int64
		if err := json.Unmarshal([]byte(got), &m); err != nil {
			t.Error(err)
		}
	})
}

// Bound ends the live phase at what Kafka held at the handoff.
func TestBound(t *testing.T) {
	f := newFixture(t)
	mem := checked(t)
	ctx := context.Background()
	c := f.chain(t, chain.OffsetsFile(), 0)
	if err := c.Bound(ctx); err != nil {
		t.Fatal(err)
	}
	start, err := c.Initial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end, err := c.Latest(ctx, start) // the whole history; Kafka bounded now
	if err != nil {
		t.Fatal(err)
	}
	read(t, c, mem, start, end)
	f.produce(t, total, total+2)
	start = end
	var got []int64
	for range 5 {
		end, err = c.Latest(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, read(t, c, mem, start, end).ids...)
		start = end
	}
	if want := ids(6, 8, 10, 7, 9, 11); !slices.Equal(got, want) {
		t.Errorf("bounded live rows %v, want %v", got, want)
	}
}

// The live Kafka split's skipped records are counted through the chain's
// split (sources.BadRecordCounter), read by read.
func TestTheLiveSplitsBadRecordsAreCounted(t *testing.T) {
	f := newFixture(t)
	mem := checked(t)
	bad := []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("not json")}, {Topic: topic, Partition: 1, Value: []byte(`{"id":"x"}`)}}
	if err := f.cl.ProduceSync(context.Background(), bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	kc := f.kcfg()
	kc.BadRecords = kafka.BadRecordsSkip
	c, err := chain.NewParquetKafka(context.Background(), chain.ParquetKafkaConfig{Dir: f.dir, Kafka: kc, Handoff: chain.OffsetsFile(),
		Schema: outSchema, Mem: checked(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	start, err := c.Initial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var skipped, rows int64
	for range 50 {
		end, err := c.Latest(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(end, start) {
			break
		}
		splits, err := c.Splits(ctx, start, end)
		if err != nil {
			t.Fatal(err)
		}
		for _, sp := range splits {
			for range 2 { // a re-read counts its own read only
				n := int64(0)
				if err := sp.Read(ctx, mem, func(r arrow.Record) error { n += r.NumRows(); r.Release(); return nil }); err != nil {
					t.Fatal(err)
				}
				bc, ok := sp.(sources.BadRecordCounter)
				if !ok {
					t.Fatalf("a chain split (%T) does not count bad records", sp)
				}
				sk, dl := bc.BadRecordCounts()
				if dl != 0 {
					t.Errorf("%d dead-lettered under skip", dl)
				}
				skipped, rows = skipped+sk, rows+n
			}
		}
		start = end
	}
	if skipped != 2*2 || rows != 2*total {
		t.Errorf("two reads of every split skipped %d and read %d rows; want 4 and %d", skipped, rows, 2*total)
	}
}
