package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mx "github.com/sluicedata/sluice/internal/measure"
	"hash/maphash"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/generate"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

// origin is the event time of order 0, on an hour boundary.
var origin = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func ordersGen(o options) generate.Orders {
	return generate.Orders{Seed: o.seed, Customers: o.customers, Start: origin, Interval: o.interval, MaxDelay: o.maxDelay}
}

// valueSchema is what the source decodes each JSON value into: every field
// of generate.OrdersSchema.
var valueSchema = generate.OrdersSchema

// The source's and the raw loop's fetch settings (the source's defaults).
const (
	fetchMaxBytes = 16 << 20
	fetchMaxWait  = 500 * time.Millisecond
)

// cluster is the admin and producer side of the run.
type cluster struct {
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
}

func newCluster(brokers []string) (*cluster, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &cluster{brokers: brokers, cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (c *cluster) close() { c.cl.Close() }

func (c *cluster) createTopic(ctx context.Context, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s on %v: %w", topic, c.brokers, err)
	}
	return nil
}

// deleteTopics deletes the run's topics and the sink's group (best effort:
// the in-process kfake goes away anyway).
func (c *cluster) deleteTopics(ctx context.Context, out string, topics ...string) {
	_, _ = c.adm.DeleteTopics(ctx, append([]string{out}, topics...)...)
	_, _ = c.adm.DeleteGroup(ctx, sinkkafka.GroupName(out))
}

// appendValue renders order i of rec as the JSON value
// {"order_id":1,"customer":"c-0001","region":"emea","amount":12.34,"ts":1793491200000}.
func appendValue(dst []byte, ids *array.Int64, cust, reg *array.String, amt *array.Decimal128, ts *array.Timestamp, i int) []byte {
	dst = append(dst, `{"order_id":`...)
	dst = strconv.AppendInt(dst, ids.Value(i), 10)
	dst = append(dst, `,"customer":"`...)
	dst = append(dst, cust.Value(i)...)
	dst = append(dst, `","region":"`...)
	dst = append(dst, reg.Value(i)...)
	dst = append(dst, `","amount":`...)
	cents := int64(amt.Value(i).LowBits()) // positive, scale 2
	dst = strconv.AppendInt(dst, cents/100, 10)
	dst = append(dst, '.', byte('0'+cents%100/10), byte('0'+cents%10))
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, int64(ts.Value(i)), 10)
	return append(dst, '}')
}

// produce writes orders 0..n-1 as JSON values keyed by customer, order i to
// partition i%partitions (so every partition advances through event time
// together), and returns the value bytes written.
func (c *cluster) produce(ctx context.Context, topic string, gen generate.Orders, n int64, partitions int) (int64, error) {
	const chunk = 8192
	var (
		mu       sync.Mutex
		firstErr error
		total    int64
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	mem := memory.NewGoAllocator()
	for from := int64(0); from < n; from += chunk {
		k := min(chunk, n-from)
		rec := gen.Record(mem, from, k)
		ids := rec.Column(0).(*array.Int64)
		cust := rec.Column(1).(*array.String)
		reg := rec.Column(2).(*array.String)
		amt := rec.Column(3).(*array.Decimal128)
		ts := rec.Column(4).(*array.Timestamp)
		var buf []byte
		ends := make([]int, k)
		for i := range int(k) {
			buf = appendValue(buf, ids, cust, reg, amt, ts, i)
			ends[i] = len(buf)
		}
		// Values share one buffer per chunk; slice it after it stopped growing.
		off := 0
		for i, end := range ends {
			v := buf[off:end:end]
			off = end
			total += int64(len(v))
			r := &kgo.Record{Topic: topic, Partition: int32((from + int64(i)) % int64(partitions)), Key: []byte(cust.Value(i)), Value: v}
			c.cl.Produce(ctx, r, done)
		}
		rec.Release()
		mu.Lock()
		err := firstErr
		mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	if err := c.cl.Flush(ctx); err != nil {
		return 0, err
	}
	return total, firstErr
}

// endOffsets are the partitions' high watermarks (no transactions write the
// input, so they are also the last stable offsets).
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, o := range ends[topic] {
		out[p] = o.Offset
	}
	return out, nil
}

// rawConsume is the baseline: a franz-go client consuming every partition
// from its start (ConsumePartitions, no group), read_committed and with the
// source's fetch sizes, counting records until each partition's end. Nothing
// is decoded beyond what franz-go itself does.
func rawConsume(ctx context.Context, brokers []string, topic string, partitions int) (int64, error) {
	from := map[int32]kgo.Offset{}
	for p := range partitions {
		from[int32(p)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(fetchMaxBytes), kgo.FetchMaxPartitionBytes(fetchMaxBytes), kgo.FetchMaxWait(fetchMaxWait),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	want, err := endOffsets(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return 0, err
	}
	for p, end := range want {
		if end == 0 {
			delete(want, p)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var n int64
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("still waiting for partitions %v: %w", want, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		if ferr != nil {
			return n, ferr
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			n += int64(len(fp.Records))
			if end, ok := want[fp.Partition]; ok && fp.Records[len(fp.Records)-1].Offset+1 >= end {
				delete(want, fp.Partition)
			}
		})
	}
	return n, nil
}

// sums summarise rows so that the source's output can be checked against
// the generated orders without keeping them: counts and sums of every
// column (strings hashed).
type sums struct {
	rows, ids, cents, ts, strs uint64
}

var hashSeed = maphash.MakeSeed()

func (s *sums) add(o sums) {
	s.rows += o.rows
	s.ids += o.ids
	s.cents += o.cents
	s.ts += o.ts
	s.strs += o.strs
}

func (s sums) compare(want sums) error {
	if s != want {
		return fmt.Errorf("got rows %d, sum(order_id) %d, sum(amount cents) %d, sum(ts) %d, string hash %x; want %d, %d, %d, %d, %x",
			s.rows, s.ids, s.cents, s.ts, s.strs, want.rows, want.ids, want.cents, want.ts, want.strs)
	}
	return nil
}

// sumColumns adds the order columns of one record.
func sumColumns(ids *array.Int64, cust, reg *array.String, amt *array.Decimal128, ts *array.Timestamp) sums {
	var s sums
	s.rows = uint64(ids.Len())
	for _, v := range ids.Int64Values() {
		s.ids += uint64(v)
	}
	for _, v := range ts.TimestampValues() {
		s.ts += uint64(v)
	}
	for _, v := range amt.Values() {
		s.cents += v.LowBits()
	}
	if cust == nil {
		return s
	}
	for i := range ids.Len() {
		s.strs += maphash.String(hashSeed, cust.Value(i)) ^ maphash.String(hashSeed, reg.Value(i))*31
	}
	return s
}

// withoutStrings is s without the string hash (what a measured read checks).
func (s sums) withoutStrings() sums { s.strs = 0; return s }

// expectedSums are the sums of the generated orders 0..n-1.
func expectedSums(gen generate.Orders, n int64) sums {
	var s sums
	mem := memory.NewGoAllocator()
	for from := int64(0); from < n; from += 1 << 16 {
		rec := gen.Record(mem, from, min(1<<16, n-from))
		s.add(sumColumns(rec.Column(0).(*array.Int64), rec.Column(1).(*array.String), rec.Column(2).(*array.String),
			rec.Column(3).(*array.Decimal128), rec.Column(4).(*array.Timestamp)))
		rec.Release()
	}
	return s
}

type sourceResult struct {
	splits, arrowRecords int
	sums                 sums
}

// readSource is the source alone, as the driver and its tasks use it:
// Initial, Latest, Splits, then every split read by one of o.parallelism
// goroutines, values decoded into Arrow; each record's integer columns are
// summed for the check (a few ns per row) and the record released. With
// strings, the string columns are hashed into the sums too (slower: the
// unmeasured checking pass).
func readSource(ctx context.Context, o options, brokers []string, topic string, strings bool) (sourceResult, error) {
	var res sourceResult
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: brokers, Topics: []string{topic},
		ValueSchema: valueSchema, MaxOffsetsPerSplit: o.splitOffsets})
	if err != nil {
		return res, err
	}
	defer src.Close()
	start, err := src.Initial(ctx)
	if err != nil {
		return res, err
	}
	end, err := src.Latest(ctx, start)
	if err != nil {
		return res, err
	}
	splits, err := src.Splits(ctx, start, end)
	if err != nil {
		return res, err
	}
	res.splits = len(splits)
	sc := src.Schema()
	col := func(name string) int {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			panic("source schema lacks " + name)
		}
		return idx[0]
	}
	iID, iCust, iReg, iAmt, iTS := col("order_id"), col("customer"), col("region"), col("amount"), col("ts")

	next := make(chan sources.Split)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range o.parallelism {
		wg.Go(func() {
			var s sums
			var recs int
			for sp := range next {
				err := sp.Read(ctx, o.mem, func(r arrow.Record) error {
					defer r.Release()
					recs++
					var cust, reg *array.String
					if strings {
						cust, reg = r.Column(iCust).(*array.String), r.Column(iReg).(*array.String)
					}
					s.add(sumColumns(r.Column(iID).(*array.Int64), cust, reg, r.Column(iAmt).(*array.Decimal128), r.Column(iTS).(*array.Timestamp)))
					return nil
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%v: %w", sp, err))
					mu.Unlock()
					cancel()
				}
			}
			mu.Lock()
			res.sums.add(s)
			res.arrowRecords += recs
			mu.Unlock()
		})
	}
feed:
	for _, sp := range splits {
		select {
		case next <- sp:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// job is the end-to-end query: per customer and tumbling window, the sum
// of amounts and the count of orders.
func job(ds *dataset.Dataset, o options) *dataset.Dataset {
	return ds.Select("customer", "amount", "ts").
		WithWatermark("ts", o.watermarkDelay).
		GroupBy(dataset.Window("ts", o.window), "customer").
		Agg(dataset.Sum(dataset.Col("amount")).As("total"), dataset.CountAll().As("orders"))
}

// runQuery runs job from topic in to topic out with the AvailableNow
// trigger in update mode, exactly-once, the checkpoint under dir, and
// returns the progress of every batch, oldest first, and how many batches'
// progress it missed (always 0: every batch reports through OnProgress).
func runQuery(ctx context.Context, o options, brokers []string, in, out, dir string) ([]microbatch.Progress, int, error) {
	src, err := srckafka.New(srckafka.Config{Name: "orders", Brokers: brokers, Topics: []string{in},
		ValueSchema: valueSchema, MaxOffsetsPerBatch: o.batchRecords, MaxOffsetsPerSplit: o.splitOffsets})
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()
	sink, err := sinkkafka.New(sinkkafka.Config{Brokers: brokers, Topic: out, KeyColumn: "customer", QueryID: out,
		Semantics: sinkkafka.ExactlyOnce})
	if err != nil {
		return nil, 0, err
	}
	defer sink.Close()
	ds := job(dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: o.mem, Parallelism: o.parallelism}), o)
	ps, err := mx.Run(ctx, microbatch.WriteStream(ds, sink).Trigger(microbatch.AvailableNow()).
		Checkpoint(dir+"/checkpoint").OutputMode(sinks.Update).Logger(slog.New(slog.DiscardHandler))) // the benchmark reports its own figures
	if err != nil {
		return nil, 0, err
	}
	return ps, 0, nil
}

// windowKey is one output row's identity.
type windowKey struct {
	start    int64 // window start, Unix ms
	customer string
}

// windowAgg is one output row's values.
type windowAgg struct {
	orders, cents int64
}

// readOutput reads every data record a read_committed consumer sees in out,
// from the start of each partition to its last stable offset (sink markers
// skipped), and folds them: the last value of each (window, customer) wins.
// It returns the folded rows and the number of records read.
func (c *cluster) readOutput(ctx context.Context, topic string) (map[windowKey]windowAgg, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ends, err := c.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("last stable offsets: %w", err)
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	for p, o := range ends[topic] {
		if o.Offset > 0 {
			want[p] = o.Offset
			from[p] = kgo.NewOffset().AtStart()
		}
	}
	out := map[windowKey]windowAgg{}
	if len(want) == 0 {
		return out, 0, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records show where a partition ends: a committed
		// transaction's last offset is its commit marker.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	var n int64
	var perr error
	for len(want) > 0 && perr == nil {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("still waiting for partitions %v: %w", want, err)
		}
		fs.EachError(func(t string, p int32, err error) { perr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end || perr != nil {
				return
			}
			if !r.Attrs.IsControl() && !sinkkafka.IsMarker(r) {
				n++
				k, v, err := parseOutput(r)
				if err != nil {
					perr = err
					return
				}
				out[k] = v
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	if perr != nil {
		return nil, 0, perr
	}
	return out, n, nil
}

// parseOutput decodes one output record: the sink's JSON row keyed by
// customer, {"window_start":"...","window_end":"...","customer":"...","total":"12.30","orders":3}.
func parseOutput(r *kgo.Record) (windowKey, windowAgg, error) {
	var v struct {
		Start    string          `json:"window_start"`
		Customer string          `json:"customer"`
		Orders   json.Number     `json:"orders"`
		Total    json.RawMessage `json:"total"`
	}
	d := json.NewDecoder(bytes.NewReader(r.Value))
	d.UseNumber()
	bad := func(what string, err error) (windowKey, windowAgg, error) {
		return windowKey{}, windowAgg{}, fmt.Errorf("output record %d/%d %q: %s: %v", r.Partition, r.Offset, r.Value, what, err)
	}
	if err := d.Decode(&v); err != nil {
		return bad("json", err)
	}
	if string(r.Key) != v.Customer {
		return bad("key", fmt.Errorf("key %q, row's customer %q", r.Key, v.Customer))
	}
	start, err := time.Parse(time.RFC3339Nano, v.Start)
	if err != nil {
		return bad("window_start", err)
	}
	var a windowAgg
	if a.orders, err = v.Orders.Int64(); err != nil {
		return bad("orders", err)
	}
	total := strings.Trim(string(v.Total), `"`)
	whole, frac, _ := strings.Cut(total, ".")
	units, err1 := strconv.ParseInt(whole, 10, 64)
	cents, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || len(frac) != 2 {
		return bad("total", fmt.Errorf("%s is not a decimal with 2 places", v.Total))
	}
	a.cents = units*100 + cents
	return windowKey{start: start.UnixMilli(), customer: v.Customer}, a, nil
}

// expectedWindows is the plain computation: every customer's count and sum
// of orders 0..n-1 per tumbling window.
func expectedWindows(gen generate.Orders, n int64, window time.Duration) map[windowKey]windowAgg {
	size := window.Milliseconds()
	out := map[windowKey]windowAgg{}
	mem := memory.NewGoAllocator()
	for from := int64(0); from < n; from += 1 << 16 {
		rec := gen.Record(mem, from, min(1<<16, n-from))
		cust := rec.Column(1).(*array.String)
		amt := rec.Column(3).(*array.Decimal128)
		ts := rec.Column(4).(*array.Timestamp)
		for i := range int(rec.NumRows()) {
			t := int64(ts.Value(i))
			k := windowKey{start: t - ((t%size)+size)%size, customer: cust.Value(i)}
			a, ok := out[k]
			if !ok {
				k.customer = strings.Clone(k.customer) // Value aliases the record's buffer
			}
			a.orders++
			a.cents += int64(amt.Value(i).LowBits()) // scale 2, positive and small
			out[k] = a
		}
		rec.Release()
	}
	return out
}

// compareWindows explains how got differs from want: groups missing, extra
// or with other values (the first few named).
func compareWindows(got, want map[windowKey]windowAgg) error {
	var diffs []string
	bad := 0
	note := func(s string) {
		bad++
		if len(diffs) < 5 {
			diffs = append(diffs, s)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			note(fmt.Sprintf("%s %q missing (want %+v)", time.UnixMilli(k.start).UTC().Format(time.RFC3339), k.customer, w))
		case g != w:
			note(fmt.Sprintf("%s %q: got %+v, want %+v", time.UnixMilli(k.start).UTC().Format(time.RFC3339), k.customer, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			note(fmt.Sprintf("%s %q extra (%+v)", time.UnixMilli(k.start).UTC().Format(time.RFC3339), k.customer, g))
		}
	}
	if bad > 0 {
		sort.Strings(diffs)
		return fmt.Errorf("%d of %d groups differ: %s", bad, len(want), strings.Join(diffs, "; "))
	}
	return nil
}
