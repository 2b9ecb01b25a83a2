package microbatch_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// The corpus is STYLE.md's habit 9: every query below runs as a batch job
// and as a stream fed four ways (one-row micro-batches, random batch cuts,
// random arrivals between Once triggers, a restart every k batches), and
// every stream must give the batch job's result. In the cluster pass
// (SLUICE_TEST_CLUSTER=3, cluster_test.go) the batch job and the streams
// run on the package's cluster and must give the local batch job's result.
//
// Replay a failure with SLUICE_CORPUS_SEED=<seed printed by the test>.

var corpusSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: "user", Type: arrow.BinaryTypes.String},
	{Name: "region", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

const (
	// 240 rows keep the one-row runs (a batch per row, per query) within
	// the file's time budget.
	corpusRows = 240
	// corpusDelay exceeds the input's disorder (< 3 s), so no cut of the
	// input makes a row late: the stream must drop nothing the batch job counts.
	corpusDelay = 5 * time.Second
)

// corpusCompare says how a stream's sink output becomes comparable with the
// batch job's rows.
type corpusCompare int

const (
	// inOrder: every appended row, in order of batch then row; stateless
	// plans keep input order.
	inOrder corpusCompare = iota
	// bySource: a union's rows in the order of each source (column 0 names
	// the source); how the two interleave depends on the cuts.
	bySource
	// lastPerKey: update mode folded to the last row per key, sorted.
	lastPerKey
	// lastBatch: complete mode's last batch, sorted.
	lastBatch
	// closedWindows: append mode with windows, sorted, against the batch
	// job's windows ending at or before the final watermark.
	closedWindows
	// allRowsSorted: every appended row, sorted (the order of a stateful
	// operator's output depends on its partitions).
	allRowsSorted
)

type corpusQuery struct {
	name    string
	mode    sinks.Mode
	compare corpusCompare
	keys    int  // lastPerKey: the number of leading key columns
	union   bool // reads two sources: "orders" and "returns"
	job     func(in []*dataset.Dataset) *dataset.Dataset
	// bug, when set, skips the streaming runs: the engine is known to fail
	// them (see the test it names).
	bug string
}

var corpusQueries = []corpusQuery{
	{
		name: "a compound filter keeps the matching rows in input order",
		mode: sinks.Append, compare: inOrder,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].Filter(dataset.Col("amount").Gt(40).And(dataset.Col("region").IsNotNull()).
				Or(dataset.Col("price").IsNull()).
				Or(dataset.Col("user").In("u3").And(dataset.Col("amount").Between(10, 20)))).
				Select("id", "user", "region", "amount", "price")
		},
	},
	{
		name: "a projection computes, casts and renames columns",
		mode: sinks.Append, compare: inOrder,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].
				WithColumn("cents", dataset.Col("price").Mul(100).Cast(dataset.Type(arrow.PrimitiveTypes.Int64))).
				WithColumn("amount_f", dataset.Col("amount").Cast(dataset.Type(arrow.PrimitiveTypes.Float64)).Div(4)).
				WithColumn("rest", dataset.Col("amount").Mod(7).Neg().Add(dataset.Col("id"))).
				WithColumn("id_s", dataset.Col("id").Cast(dataset.Type(arrow.BinaryTypes.String))).
				WithColumnRenamed("user", "customer").
				Drop("note", "ts")
		},
	},
	{
		name: "string functions rewrite text and keep nulls",
		mode: sinks.Append, compare: inOrder,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			note := dataset.Col("note")
			return in[0].Filter(dataset.Not(dataset.Contains(dataset.Coalesce(note, dataset.Lit("")), "GREEN"))).Select(
				dataset.Col("id"),
				dataset.Upper(dataset.Col("user")).As("upper_user"),
				dataset.Lower(note).As("lower_note"),
				dataset.Concat(dataset.Col("user"), dataset.Lit("@"), dataset.Coalesce(dataset.Col("region"), dataset.Lit("nowhere"))).As("address"),
				dataset.Substr(note, 5, 3).As("sku"),
				dataset.Length(note).As("len"),
				dataset.SplitPart(note, "/", 2).As("colour"),
				dataset.RegexpExtract(note, `-(\d+)/`, 1).As("digits"),
				dataset.Contains(note, "e").As("has_e"),
				dataset.StartsWith(dataset.Col("region"), "am").As("am"),
			)
		},
	},
	{
		name: "time functions truncate, extract and shift event times",
		mode: sinks.Append, compare: inOrder,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			ts := dataset.Col("ts")
			return in[0].Select(
				dataset.Col("id"),
				dataset.DateTrunc("minute", ts).As("minute"),
				dataset.Extract("second", ts).As("second"),
				dataset.Extract("epoch", ts).As("epoch"),
				dataset.Extract("dayofweek", ts).As("dow"),
				dataset.AddDuration(ts, 1, int64(90*time.Minute)).As("later"),
				ts.Cast(dataset.Type(arrow.BinaryTypes.String)).As("ts_s"),
			).Filter(dataset.Col("second").Lt(45))
		},
	},
	{
		name: "CASE buckets rows, nulls falling to the else branch",
		mode: sinks.Append, compare: inOrder,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].Select(
				dataset.Col("id"),
				dataset.When(dataset.Col("amount").Lt(20), "small").
					When(dataset.Col("amount").Lt(70), "medium").
					When(dataset.Col("amount").IsNotNull(), "large").
					Else("unknown").As("size"),
				dataset.When(dataset.Col("region").Eq("emea"), dataset.Col("price").Mul(2)).End().As("emea_double"),
				dataset.Hash(dataset.Col("user"), dataset.Col("region")).As("h"),
			)
		},
	},
	{
		name: "a union of two streams keeps every row of each in its order",
		mode: sinks.Append, compare: bySource, union: true,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].WithColumn("src", dataset.Lit("orders")).
				Union(in[1].Filter(dataset.Col("amount").IsNotNull()).WithColumn("src", dataset.Lit("returns"))).
				Select("src", "id", "user", "amount")
		},
	},
	{
		name: "a global aggregate over every row (complete mode)",
		mode: sinks.Complete, compare: lastBatch,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].Agg(
				dataset.CountAll().As("n"),
				dataset.Count(dataset.Col("amount")).As("n_amount"),
				dataset.Sum(dataset.Col("amount")).As("sum_amount"),
				dataset.Sum(dataset.Col("price")).As("sum_price"),
				dataset.Avg(dataset.Col("price")).As("avg_price"),
				dataset.Min(dataset.Col("ts")).As("first_ts"),
				dataset.Max(dataset.Col("note")).As("max_note"),
				dataset.First(dataset.Col("id")).As("first_id"),
				dataset.Last(dataset.Col("note")).As("last_note"),
			)
		},
	},
	{
		name: "every streaming aggregate grouped by a nullable key (update mode)",
		mode: sinks.Update, compare: lastPerKey, keys: 1,
		job: groupedAggs,
	},
	{
		name: "every streaming aggregate grouped by a nullable key (complete mode)",
		mode: sinks.Complete, compare: lastBatch,
		job: groupedAggs,
	},
	{
		name: "an aggregate grouped by a column and an expression (update mode)",
		mode: sinks.Update, compare: lastPerKey, keys: 2,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].Filter(dataset.Col("price").IsNotNull()).
				GroupBy("user", dataset.Col("id").Mod(4).As("bucket")).
				Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("price")).As("total"), dataset.Max(dataset.Col("ts")).As("latest"))
		},
	},
	{
		name: "an aggregate over a union of two streams (update mode)",
		mode: sinks.Update, compare: lastPerKey, keys: 1, union: true,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			// No first/last: the order across two sources depends on the cuts.
			return in[0].Union(in[1]).GroupBy("user").
				Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("amount")).As("total"), dataset.Min(dataset.Col("price")).As("cheapest"))
		},
	},
	{
		name: "a tumbling window aggregate with a watermark (append mode)",
		mode: sinks.Append, compare: closedWindows,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].WithWatermark("ts", corpusDelay).
				GroupBy(dataset.Window("ts", 10*time.Second), "user").
				Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("amount")).As("total"),
					dataset.Max(dataset.Col("price")).As("top"), dataset.First(dataset.Col("id")).As("first_id"),
					dataset.Last(dataset.Col("amount")).As("last_amount"))
		},
	},
	{
		name: "a sliding window aggregate with a watermark (append mode)",
		mode: sinks.Append, compare: closedWindows,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].WithWatermark("ts", corpusDelay).
				GroupBy(dataset.SlidingWindow("ts", 15*time.Second, 5*time.Second), "region").
				Agg(dataset.CountAll().As("n"), dataset.Count(dataset.Col("note")).As("notes"),
					dataset.Avg(dataset.Col("amount")).As("avg_amount"), dataset.Min(dataset.Col("ts")).As("earliest"))
		},
	},
	{
		name: "a session window aggregate with a watermark (append mode)",
		mode: sinks.Append, compare: closedWindows,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			// Sessions of one user need a gap larger than the time between that
			// user's rows to span several rows, and smaller to end.
			return in[0].WithWatermark("ts", corpusDelay).
				GroupBy(dataset.SessionWindow("ts", 4*time.Second), "user").
				Agg(dataset.CountAll().As("n"), dataset.Sum(dataset.Col("amount")).As("total"),
					dataset.Max(dataset.Col("ts")).As("latest"))
		},
	},
	{
		name: "DropDuplicates keeps the first row of each key",
		mode: sinks.Append, compare: allRowsSorted,
		job: func(in []*dataset.Dataset) *dataset.Dataset {
			return in[0].DropDuplicates("user", "amount").Select("user", "amount", "id", "region")
		},
	},
}

func groupedAggs(in []*dataset.Dataset) *dataset.Dataset {
	return in[0].GroupBy("region").Agg(
		dataset.CountAll().As("n"),
		dataset.Count(dataset.Col("note")).As("n_note"),
		dataset.Sum(dataset.Col("amount")).As("sum_amount"),
		dataset.Sum(dataset.Col("price")).As("sum_price"),
		dataset.Avg(dataset.Col("amount")).As("avg_amount"),
		dataset.Min(dataset.Col("price")).As("min_price"),
		dataset.Max(dataset.Col("amount")).As("max_amount"),
		dataset.Min(dataset.Col("user")).As("min_user"),
		dataset.Max(dataset.Col("ts")).As("max_ts"),
		dataset.First(dataset.Col("note")).As("first_note"),
		dataset.Last(dataset.Col("price")).As("last_price"),
	)
}

// corpusRun is one way of feeding the input to a streaming query.
type corpusRun struct {
	name    string
	maxRows int64 // per source and batch; 0 = all available
	chunks  int   // > 0: append the input in random slices of up to chunks rows, triggering Once after each
	restart int   // > 0: a new StreamWriter every restart batches, each batch its own Once start
}

func corpusRuns(r *rand.Rand) []corpusRun {
	return []corpusRun{
		{name: "one-row micro-batches", maxRows: 1},
		{name: "random batch cuts", maxRows: 2 + r.Int64N(40)},
		{name: "random arrivals between Once triggers", chunks: 1 + r.IntN(40)},
		{name: "a restart every k batches", maxRows: 1 + r.Int64N(25), restart: 1 + r.IntN(4)},
	}
}

// corpusData is the seeded input: every row in records of random sizes, and
// the same rows split between two sources for the unions.
type corpusData struct {
	all   []arrow.Record
	split [2][]arrow.Record
	maxTS time.Time
}

func corpusInput(mem memory.Allocator, seed uint64) *corpusData {
	r := rand.New(rand.NewPCG(seed, 0xc0))
	type row struct {
		id     int64
		ts     time.Time
		user   string
		region *string
		amount *int64
		price  *float64
		note   *string
	}
	regions := []string{"emea", "amer", "apac"}
	colours := []string{"red", "Blue", "GREEN"}
	d := &corpusData{}
	var rows []row
	for i := range corpusRows {
		x := row{id: int64(i), user: fmt.Sprintf("u%d", r.IntN(4)),
			// One row a second, up to 3 s out of order.
			ts: t0.Add(time.Duration(i)*time.Second - time.Duration(r.IntN(3000))*time.Millisecond)}
		if r.IntN(8) != 0 {
			x.region = &regions[r.IntN(3)]
		}
		if r.IntN(7) != 0 {
			v := int64(r.IntN(100))
			x.amount = &v
		}
		if r.IntN(9) != 0 {
			v := float64(r.IntN(8000)) / 8 // exact in binary: sums do not depend on order
			x.price = &v
		}
		if r.IntN(6) != 0 {
			v := fmt.Sprintf("SKU-%03d/%s", r.IntN(1000), colours[r.IntN(3)])
			x.note = &v
		}
		if x.ts.After(d.maxTS) {
			d.maxTS = x.ts
		}
		rows = append(rows, x)
	}
	build := func(rows []row) []arrow.Record {
		var out []arrow.Record
		for len(rows) > 0 {
			n := min(len(rows), 1+r.IntN(20))
			b := array.NewRecordBuilder(mem, corpusSchema)
			for _, x := range rows[:n] {
				b.Field(0).(*array.Int64Builder).Append(x.id)
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(x.ts.UnixMilli()))
				b.Field(2).(*array.StringBuilder).Append(x.user)
				if x.region == nil {
					b.Field(3).AppendNull()
				} else {
					b.Field(3).(*array.StringBuilder).Append(*x.region)
				}
				if x.amount == nil {
					b.Field(4).AppendNull()
				} else {
					b.Field(4).(*array.Int64Builder).Append(*x.amount)
				}
				if x.price == nil {
					b.Field(5).AppendNull()
				} else {
					b.Field(5).(*array.Float64Builder).Append(*x.price)
				}
				if x.note == nil {
					b.Field(6).AppendNull()
				} else {
					b.Field(6).(*array.StringBuilder).Append(*x.note)
				}
			}
			out = append(out, b.NewRecord())
			b.Release()
			rows = rows[n:]
		}
		return out
	}
	d.all = build(rows)
	var parts [2][]row
	for _, x := range rows {
		k := r.IntN(2)
		parts[k] = append(parts[k], x)
	}
	d.split = [2][]arrow.Record{build(parts[0]), build(parts[1])}
	return d
}

func (d *corpusData) release() {
	for _, r := range slices.Concat(d.all, d.split[0], d.split[1]) {
		r.Release()
	}
}

// inputs is each source's name and records for q.
func (d *corpusData) inputs(q corpusQuery) ([]string, [][]arrow.Record) {
	if q.union {
		return q.sourceNames(), d.split[:]
	}
	return q.sourceNames(), [][]arrow.Record{d.all}
}

func corpusSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CORPUS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SLUICE_CORPUS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with SLUICE_CORPUS_SEED=%d)", seed, seed)
	return seed
}

func TestCorpusStreamsEqualTheBatchJob(t *testing.T) {
	seed := corpusSeed(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	data := corpusInput(mem, seed)
	defer data.release()
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	// Windows ending at or before the last batch's watermark are closed.
	finalWM := data.maxTS.Add(-corpusDelay)
	if testCluster != nil {
		t.Logf("the batch jobs and streams run on the package's cluster (%d executors); the answers they must give are the local batch jobs'", len(testCluster.Live()))
	}

	for _, q := range corpusQueries {
		t.Run(q.name, func(t *testing.T) {
			names, recs := data.inputs(q)
			batchJob := func(cfg dataset.Config) *dataset.Dataset {
				var ins []*dataset.Dataset
				for _, rs := range recs {
					ins = append(ins, dataset.FromRecords(corpusSchema, rs...).WithConfig(cfg))
				}
				return q.job(ins)
			}
			want := corpusComparable(t, q, collectInOrder(t, batchJob(cfg)), finalWM)
			if len(want) == 0 || q.compare != lastPerKey && q.compare != lastBatch && len(want) < 20 {
				t.Fatalf("seed %d: the batch job gave only %d rows; the query tests too little", seed, len(want))
			}
			scfg := cfg
			if testCluster != nil {
				ccfg, sent := onCluster(t, cfg, map[string]string{"query": q.clusterName()})
				got := corpusComparable(t, q, collectInOrder(t, batchJob(ccfg)), finalWM)
				sent("the batch job")
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d: the batch job on the cluster gave %d rows, locally %d; first difference at %d\n%s",
						seed, len(got), len(want), firstDiff(got, want), corpusDiff(got, want))
				}
				scfg = ccfg
			}
			if q.bug != "" {
				t.Skip("bug: " + q.bug)
			}
			r := rand.New(rand.NewPCG(seed, corpusHash(q.name)))
			for _, run := range corpusRuns(r) {
				t.Run(run.name, func(t *testing.T) {
					var sent func(string)
					if testCluster != nil {
						scfg, sent = onCluster(t, scfg, scfg.Params)
					}
					sink, batches := corpusStream(t, q, run, names, recs, scfg, rand.New(rand.NewPCG(seed, corpusHash(q.name+run.name))))
					if sent != nil {
						sent("the stream")
					}
					var raw []string
					if q.compare == lastBatch {
						raw = sink.lastBatch()
					} else {
						raw = sink.rows()
					}
					t.Logf("%+v: %d batches", run, batches)
					got := corpusComparable(t, q, raw, finalWM)
					if !slices.Equal(got, want) {
						t.Fatalf("seed %d, %+v, %d batches: the stream gave %d rows, the batch job %d; first difference at %d\n%s",
							seed, run, batches, len(got), len(want), firstDiff(got, want), corpusDiff(got, want))
					}
					// Each source moves one row a batch.
					var rows int
					for _, rs := range recs {
						n := 0
						for _, rec := range rs {
							n += int(rec.NumRows())
						}
						rows = max(rows, n)
					}
					if run.maxRows == 1 && batches < rows {
						t.Fatalf("%d batches for %d rows in one-row micro-batches", batches, rows)
					}
				})
			}
		})
	}
}

// clusterName is q's name in clusterJobs.
func (q corpusQuery) clusterName() string { return "corpus: " + q.name }

// sourceNames are the memory sources q reads.
func (q corpusQuery) sourceNames() []string {
	if q.union {
		return []string{"orders", "returns"}
	}
	return []string{"orders"}
}

// clusterJob is q as a cluster executor builds it from a task's
// parameters: the stream the test builds (q.job over memory sources of the
// same names and schema, whose splits carry their rows) into a recording
// sink (whose remote writers ship their rows in commit messages). A batch
// job of q needs nothing of it: its in-memory scans come from the driver.
func (q corpusQuery) clusterJob(map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	var ins []*dataset.Dataset
	for _, name := range q.sourceNames() {
		src, err := srcmem.New(srcmem.Config{Name: name, Schema: corpusSchema})
		if err != nil {
			return nil, nil, err
		}
		ins = append(ins, dataset.ReadStream(src))
	}
	return []sinks.Sink{newRecordingSink()}, []*dataset.Dataset{q.job(ins)}, nil
}

// The minimal reproduction of the corpus's global aggregate failure: Start
// accepts a streaming aggregate with no group keys, then its first batch
// fails with "state: config: KeySchema needs at least one field" (the
// stateful aggregate opens a state store keyed by zero columns).
func TestAStreamingGlobalAggregateRuns(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	data := corpusInput(mem, 1)
	defer data.release()
	for _, mode := range []sinks.Mode{sinks.Complete, sinks.Update} {
		t.Run(string(mode), func(t *testing.T) {
			src, err := srcmem.New(srcmem.Config{Name: "orders", Schema: corpusSchema})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if err := src.Append(data.all...); err != nil {
				t.Fatal(err)
			}
			sink := newRecordingSink()
			ds := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem}).Agg(dataset.CountAll().As("n"))
			q, err := microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(vfs.NewMem()).OutputMode(mode).Trigger(microbatch.Once()).Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(); err != nil {
				t.Fatal(err)
			}
			if got, want := sink.rows(), []string{strconv.Itoa(corpusRows)}; !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// corpusStream runs q as a stream fed as run says and returns the sink and
// the number of batches committed. With cfg.Cluster set the checkpoint is
// a directory of the OS's filesystem, which the cluster's executors open
// too; otherwise it is in memory.
// corpusBackend is the state backend corpus streams run with ("":
// memory; TestCorpusStreamsOnTheDiskStateBackend sets it).
var corpusBackend string

func corpusStream(t *testing.T, q corpusQuery, run corpusRun, names []string, recs [][]arrow.Record, cfg dataset.Config, r *rand.Rand) (*recordingSink, int) {
	t.Helper()
	srcs := make([]*srcmem.Source, len(names))
	for i, name := range names {
		src, err := srcmem.New(srcmem.Config{Name: name, Schema: corpusSchema, MaxRowsPerBatch: run.maxRows})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		srcs[i] = src
		if run.chunks == 0 {
			if err := src.Append(recs[i]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	sink := newRecordingSink()
	var fs vfs.FS = vfs.NewMem()
	ckpt := "/ckpt"
	if cfg.Cluster != nil {
		fs, ckpt = vfs.OS{}, t.TempDir()
	}
	localDir := t.TempDir()
	writer := func(trigger microbatch.Trigger) *microbatch.StreamWriter {
		ins := make([]*dataset.Dataset, len(srcs))
		for i, src := range srcs {
			ins[i] = dataset.ReadStream(src).WithConfig(cfg)
		}
		return microbatch.WriteStream(q.job(ins), sink).Checkpoint(ckpt).FS(fs).OutputMode(q.mode).Trigger(trigger).
			StateBackend(corpusBackend, localDir)
	}
	// once starts w for one batch; false: there was nothing to run.
	once := func(w *microbatch.StreamWriter) bool {
		qy, err := w.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := qy.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
		return qy.LastProgress() != nil
	}
	const maxStarts = 4 * corpusRows
	switch {
	case run.chunks > 0:
		// Slices of the input arrive one at a time, a batch each (and a
		// no-data batch when the watermark alone closes windows).
		w := writer(microbatch.Once())
		pos := make([][2]int, len(recs)) // per source: record, row within it
		starts := 0
		for {
			var open []int
			for i := range recs {
				if pos[i][0] < len(recs[i]) {
					open = append(open, i)
				}
			}
			if len(open) == 0 {
				break
			}
			i := open[r.IntN(len(open))]
			for n := 1 + r.IntN(run.chunks); n > 0 && pos[i][0] < len(recs[i]); {
				rec := recs[i][pos[i][0]]
				k := min(int64(n), rec.NumRows()-int64(pos[i][1]))
				piece := rec.NewSlice(int64(pos[i][1]), int64(pos[i][1])+k)
				err := srcs[i].Append(piece)
				piece.Release()
				if err != nil {
					t.Fatal(err)
				}
				n -= int(k)
				if pos[i][1] += int(k); int64(pos[i][1]) == rec.NumRows() {
					pos[i] = [2]int{pos[i][0] + 1, 0}
				}
			}
			for once(w) {
				if starts++; starts > maxStarts {
					t.Fatalf("still running after %d starts", starts)
				}
			}
		}
	case run.restart > 0:
		// Each StreamWriter (a fresh plan over the same checkpoint and
		// sources, as after a process restart) runs restart batches.
		done := false
		for starts := 0; !done; {
			w := writer(microbatch.Once())
			for range run.restart {
				if !once(w) {
					done = true
					break
				}
				if starts++; starts > maxStarts {
					t.Fatalf("still running after %d starts", starts)
				}
			}
		}
	default:
		qy, err := writer(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := qy.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return sink, sink.commits
}

func collectInOrder(t *testing.T, ds *dataset.Dataset) []string {
	t.Helper()
	out, err := ds.CollectRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range out {
		rows = append(rows, render(r)...)
		r.Release()
	}
	return rows
}

// corpusComparable turns rows (the batch job's, or the stream's as its
// compare mode needs) into the form both must agree on.
func corpusComparable(t *testing.T, q corpusQuery, rows []string, finalWM time.Time) []string {
	t.Helper()
	out := slices.Clone(rows)
	switch q.compare {
	case inOrder:
	case bySource:
		slices.SortStableFunc(out, func(a, b string) int {
			return strings.Compare(strings.SplitN(a, "|", 2)[0], strings.SplitN(b, "|", 2)[0])
		})
	case lastPerKey:
		last := map[string]string{}
		for _, r := range out {
			cells := strings.Split(r, "|")
			last[strings.Join(cells[:q.keys], "|")] = r
		}
		out = out[:0]
		for _, r := range last {
			out = append(out, r)
		}
		sort.Strings(out)
	case lastBatch, allRowsSorted:
		sort.Strings(out)
	case closedWindows:
		out = out[:0]
		for _, r := range rows {
			end, err := time.Parse("2006-01-02 15:04:05.999999999", strings.Split(r, "|")[1])
			if err != nil {
				t.Fatalf("window end of %q: %v", r, err)
			}
			if !end.After(finalWM) {
				out = append(out, r)
			}
		}
		sort.Strings(out)
	}
	return out
}

func corpusHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// corpusDiff shows the rows only one side has (at most a few of each).
func corpusDiff(got, want []string) string {
	count := map[string]int{}
	for _, r := range want {
		count[r]++
	}
	for _, r := range got {
		count[r]--
	}
	var extra, missing []string
	for r, n := range count {
		for ; n < 0 && len(extra) < 5; n++ {
			extra = append(extra, r)
		}
		for ; n > 0 && len(missing) < 5; n-- {
			missing = append(missing, r)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) == 0 && len(missing) == 0 {
		return "same rows, different order"
	}
	return fmt.Sprintf("only in the stream:\n  %s\nonly in the batch job:\n  %s", strings.Join(extra, "\n  "), strings.Join(missing, "\n  "))
}
