package nexmark

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sources/generate"
)

const testEvents = 1_000_000

// rowStrings renders every row of recs as one string, sorted.
func rowStrings(recs []arrow.Record) []string {
	var out []string
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			var b strings.Builder
			for j, c := range r.Columns() {
				if j > 0 {
					b.WriteByte('|')
				}
				b.WriteString(c.ValueStr(i))
			}
			out = append(out, b.String())
		}
	}
	slices.Sort(out)
	return out
}

// collector is a ForeachBatch sink that keeps every batch's rows as strings.
type collector struct {
	mu   sync.Mutex
	rows []string
}

func (c *collector) fn(ctx context.Context, _ int64, ds *dataset.Dataset) error {
	recs, err := ds.CollectRecords(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, rowStrings(recs)...)
	return nil
}

// batchRows runs the batch Dataset ds and renders its rows, sorted.
func batchRows(t *testing.T, ctx context.Context, ds *dataset.Dataset) ([]string, *arrow.Schema) {
	t.Helper()
	recs, err := ds.CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	return rowStrings(recs), ds.Schema()
}

// batchStreams reads a generated directory as batch Datasets.
func batchStreams(t *testing.T, dir string) Streams {
	t.Helper()
	s, err := readStreams(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// baseline computes query name over the bids in dir with a plain Go loop.
func baseline(t *testing.T, ctx context.Context, name, dir string) []string {
	t.Helper()
	recs, err := dataset.Read(dir).CollectRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		auction := r.Column(0).(*array.Int64)
		price := r.Column(2).(*array.Int64)
		str := func(j, i int) string { return r.Column(j).ValueStr(i) }
		for i := 0; i < int(r.NumRows()); i++ {
			switch name {
			case "q0":
				out = append(out, strings.Join([]string{str(0, i), str(1, i), str(2, i), str(3, i), str(4, i), str(5, i), str(6, i)}, "|"))
			case "q1":
				euros := strconv.FormatFloat(float64(price.Value(i))*0.908, 'g', -1, 64)
				out = append(out, strings.Join([]string{str(0, i), str(1, i), euros, str(5, i), str(6, i)}, "|"))
			case "q2":
				if auction.Value(i)%123 == 0 {
					out = append(out, str(0, i)+"|"+str(2, i))
				}
			}
		}
		r.Release()
	}
	slices.Sort(out)
	return out
}

func compareRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: sorted row %d is\n  %s\nwant\n  %s", what, i, got[i], want[i])
		}
	}
}

// TestStreamEqualsBatch: each query as a stream over the in-process
// generator (several micro-batches) gives the rows the same query gives as a
// batch over the generated Parquet of the same events; so does the stream
// over that Parquet into a Parquet sink. In the cluster pass the batch
// queries and streams also run on the package's cluster and must give the
// local batch query's rows.
func TestStreamEqualsBatch(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	if err := WriteFiles(ctx, gen, generate.NexmarkConfig{Seed: DefaultSeed}, testEvents, mem, nil); err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]string{
		"q0": "auction:int64 bidder:int64 price:int64 channel:utf8 url:utf8 dateTime:timestamp[ms, tz=UTC] extra:utf8",
		"q1": "auction:int64 bidder:int64 price:float64 dateTime:timestamp[ms, tz=UTC] extra:utf8",
		"q2": "auction:int64 price:int64",
	}
	for _, name := range []string{"q0", "q1", "q2"} {
		t.Run(name, func(t *testing.T) {
			want, schema := batchRows(t, ctx, queries[name](batchStreams(t, gen)))
			var types []string
			for _, f := range schema.Fields() {
				types = append(types, f.Name+":"+f.Type.String())
			}
			if got := strings.Join(types, " "); got != wantTypes[name] {
				t.Errorf("schema %s, want %s", got, wantTypes[name])
			}
			if len(want) == 0 {
				t.Fatal("the batch query returned no rows")
			}
			compareRows(t, "batch against a Go loop", want, baseline(t, ctx, name, filepath.Join(gen, "bid")))
			if testCluster != nil {
				got := clusterBatch(t, ctx, "batch "+name, gen)
				compareRows(t, "batch on the cluster against the local batch", rowStrings(got.recs), want)
				got.release()
			}

			c := &collector{}
			o := Options{Query: name, Events: testEvents, BatchEvents: 30_000, Seed: DefaultSeed, Mem: mem}
			sent := onCluster(t, &o)
			o.Sink = microbatch.ForeachBatch(c.fn)
			rep, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			sent("stream over the generator")
			if want := int((testEvents + 30_000 - 1) / 30_000); rep.Batches != want || rep.Bids != bidsIn(testEvents) {
				t.Errorf("generator stream: %d batches and %d bids, want %d and %d", rep.Batches, rep.Bids, want, bidsIn(testEvents))
			}
			slices.Sort(c.rows)
			compareRows(t, "stream over the generator", c.rows, want)

			// Batches of two of the bid file's row groups (128 Ki rows
			// each): most end inside the file.
			out := filepath.Join(dir, "out-"+name)
			o = Options{Query: name, Input: gen, Out: out, BatchEvents: 300_000, Mem: mem}
			sent = onCluster(t, &o)
			rep, err = Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			sent("stream over Parquet into Parquet")
			if rep.Events != testEvents || rep.Bids != bidsIn(testEvents) || rep.OutputRows != int64(len(want)) {
				t.Errorf("Parquet stream: %d events, %d bids, %d output rows; want %d, %d, %d",
					rep.Events, rep.Bids, rep.OutputRows, testEvents, bidsIn(testEvents), len(want))
			}
			if want := int((bidsIn(testEvents) + 2<<17 - 1) / (2 << 17)); rep.Batches < want {
				t.Errorf("Parquet stream: %d batches, want at least %d of 2 row groups", rep.Batches, want)
			}
			got, _ := batchRows(t, ctx, dataset.Read(out))
			compareRows(t, "stream over Parquet into Parquet", got, want)
		})
	}
}

// TestDiscardingRun: the run command's default run counts the query's rows.
func TestDiscardingRun(t *testing.T) {
	var b, errs strings.Builder
	c := Commands{Prog: "nexmark", Stdout: &b, Stderr: &errs}
	if err := c.Run(context.Background(), []string{"--query", "q2", "--events", "100000", "--json"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"query":"q2"`, `"events":100000`, `"events_per_cpu_second":`, `"batch_p99_ms":`, `"peak_rss_bytes":`, `"cpu_seconds":`} {
		if !strings.Contains(b.String(), k) {
			t.Errorf("report %s lacks %s", b.String(), k)
		}
	}
}

func TestBidsIn(t *testing.T) {
	for _, n := range []int64{0, 1, 4, 5, 49, 50, 51, 54, 55, 1000, 123457} {
		var want int64
		for e := int64(0); e < n; e++ {
			if e%50 >= 4 {
				want++
			}
		}
		if got := bidsIn(n); got != want {
			t.Errorf("bidsIn(%d) = %d, want %d", n, got, want)
		}
	}
}
