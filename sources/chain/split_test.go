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

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/chain"
	memsrc "github.com/sluicedata/sluice/sources/memory"
	"github.com/sluicedata/sluice/sources/sourcetest"
)

// batchSplits drives c as the driver does and returns each batch's splits.
func batchSplits(t *testing.T, c *chain.Chain) [][]sources.Split {
	t.Helper()
	ctx := context.Background()
	start, err := c.Initial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]sources.Split
	for range 50 {
		end, err := c.Latest(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(end, start) {
			return out
		}
		splits, err := c.Splits(ctx, start, end)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, splits)
		start = end
	}
	t.Fatal("Latest never stopped moving")
	return nil
}

func TestSplitsRoundTripThroughBytes(t *testing.T) {
	for _, c := range []struct {
		name    string
		handoff chain.Handoff
	}{
		{"history and live splits decode on the chain that made them and on a fresh chain that never handed off, live stream from the offsets file", chain.OffsetsFile()},
		{"history and live splits decode on the chain that made them and on a fresh chain that never handed off, live stream from the history's max event time", chain.MaxEventTime("ts")},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			mem := checked(t)
			driver := f.chain(t, c.handoff, 2)
			batches := batchSplits(t, driver)
			// The executor's chain is built before it decodes anything: it
			// builds its live stream for the handoff the splits name.
			executor := f.chain(t, c.handoff, 2)
			var phases []string
			for _, splits := range batches {
				phases = append(phases, splits[0].(*chain.Split).Phase)
				sourcetest.CheckRoundTrip(t, mem, splits, driver, executor)
			}
			if got := strings.Join(phases, ","); got != "history,history,live" {
				t.Fatalf("batch phases %s: the case should cover both phases", got)
			}
		})
	}
}

func TestDecodeSplitRefusesBytesItDidNotMake(t *testing.T) {
	f := newFixture(t)
	c := f.chain(t, chain.OffsetsFile(), 2)
	batches := batchSplits(t, c) // the live stream is built
	hist, err := batches[0][0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	live, err := batches[len(batches)-1][0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	// edit rewrites the body of a chain split.
	edit := func(b []byte, fn func(body map[string]json.RawMessage)) []byte {
		var env struct {
			V     int                        `json:"v"`
			Kind  string                     `json:"kind"`
			Name  string                     `json:"name"`
			Split map[string]json.RawMessage `json:"split"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		fn(env.Split)
		out, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kafkaSplit := json.RawMessage(`{"v":1,"kind":"kafka","name":"kafka","split":{"topic":"orders","partition":0,"start":0,"end":3}}`)
	sourcetest.CheckRefused(t, c, "chain", hist, map[string][]byte{
		"a split of an unknown phase is refused": edit(hist, func(b map[string]json.RawMessage) { b["phase"] = json.RawMessage(`"future"`) }),
		"a split without an inner split is refused": edit(hist, func(b map[string]json.RawMessage) {
			delete(b, "inner")
		}),
		"a history split holding a Kafka split is refused": edit(hist, func(b map[string]json.RawMessage) { b["inner"] = kafkaSplit }),
		"a live split holding a history split is refused":  edit(live, func(b map[string]json.RawMessage) { b["inner"] = hist }),
		"a live split without its handoff is refused": edit(live, func(b map[string]json.RawMessage) {
			delete(b, "h")
		}),
		"a live split handing off at another history offset is refused": edit(live, func(b map[string]json.RawMessage) {
			b["h"] = json.RawMessage(`{"split":1,"files":"0123"}`)
		}),
		"a history split naming a handoff is refused": edit(hist, func(b map[string]json.RawMessage) { b["h"] = b["inner"] }),
	})
}

// A chain that has not built its live stream checks a live split's
// envelope at DecodeSplit and its inner split at Read.
func TestALiveSplitDecodedBeforeTheHandoffIsCheckedAtRead(t *testing.T) {
	f := newFixture(t)
	mem := checked(t)
	batches := batchSplits(t, f.chain(t, chain.OffsetsFile(), 0))
	live, err := batches[len(batches)-1][0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(live, []byte(`"kind":"kafka"`), []byte(`"kind":"files"`), 1)
	if bytes.Equal(bad, live) {
		t.Fatalf("no Kafka split in %s", live)
	}
	sp, err := f.chain(t, chain.OffsetsFile(), 0).DecodeSplit(bad)
	if err != nil {
		t.Fatalf("decode before the handoff: %v (its inner split is checked at Read)", err)
	}
	err = sp.Read(context.Background(), mem, func(r arrow.Record) error { r.Release(); return nil })
	if !errors.Is(err, sources.ErrBadSplit) || !strings.Contains(err.Error(), `kafka "kafka"`) || !strings.Contains(err.Error(), `chain "chain"`) {
		t.Fatalf("read a live split holding another source's split: %v, want ErrBadSplit naming the chain and its live source", err)
	}
}

func TestAHistorySplitOfOtherFilesIsGone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h, err := chain.NewHistory(ctx, chain.HistoryConfig{Dir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	start, _ := h.Initial(ctx)
	end, _ := h.Latest(ctx, start)
	splits, err := h.Splits(ctx, start, end)
	if err != nil {
		t.Fatal(err)
	}
	b, err := splits[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The executor lists the directory after a file more was written.
	src, err := os.ReadFile(splits[0].(*chain.HistorySplit).Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "part-z.parquet"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	later, err := chain.NewHistory(ctx, chain.HistoryConfig{Dir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = later.DecodeSplit(b)
	if !errors.Is(err, sources.ErrBadSplit) || !errors.Is(err, sources.ErrOffsetGone) || !strings.Contains(err.Error(), fmt.Sprintf(`history %q`, "history")) {
		t.Fatalf("decode a split of other files: %v, want ErrBadSplit and ErrOffsetGone naming the history", err)
	}
}

func TestAChainWorksInOneProcessWhenItsHistoryDoes(t *testing.T) {
	f := newFixture(t)
	if why := f.chain(t, chain.OffsetsFile(), 0).InProcess(); why != "" {
		t.Errorf("a Parquet then Kafka chain says it works in one process: %s", why)
	}
	mem, err := memsrc.New(memsrc.Config{Name: "h", Schema: histSchema})
	if err != nil {
		t.Fatal(err)
	}
	// A memory split carries its rows, so a memory history works anywhere;
	// a history that holds data in one process only is a test double.
	for _, c := range []struct {
		hist sources.Stream
		want string
	}{{mem, ""}, {inProcess{mem}, `stream "h": its data is in this process`}} {
		ch, err := chain.New(chain.Config{History: c.hist, Live: func(context.Context, sources.Offset) (sources.Stream, error) {
			return nil, errors.New("not reached")
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if why := ch.InProcess(); (why == "") != (c.want == "") || !strings.Contains(why, c.want) {
			t.Errorf("a chain over history %T: InProcess() = %q, want %q", c.hist, why, c.want)
		}
	}
}

// inProcess is a stream whose data lives in one process only.
type inProcess struct{ *memsrc.Source }

func (inProcess) InProcess() string { return "its data is in this process" }

// ReadAt names where each record comes from, for a task's errors: a history
// file's row group and rows, a live record's topic, partition and offsets.
func TestReadAtNamesWhereEachRecordComesFrom(t *testing.T) {
	f := newFixture(t)
	mem := checked(t)
	c := f.chain(t, chain.OffsetsFile(), 0)
	var got []string
	for _, splits := range batchSplits(t, c) {
		for _, sp := range splits {
			err := sp.(sources.PositionReader).ReadAt(context.Background(), mem, nil, func(rec arrow.Record, atf func() string) error {
				defer rec.Release()
				at := atf()
				got = append(got, strings.ReplaceAll(at, f.dir+"/", ""))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(got)
	want := []string{
		"history, file part-a-00000.parquet, row group 0, file rows 0-1",
		"history, file part-b-00000.parquet, row group 0, file rows 0-1",
		"history, file part-c-00000.parquet, row group 0, file rows 0-1",
		"live, topic " + topic + ", partition 0, offsets 3-5 (split " + topic + "/0[3,6))",
		"live, topic " + topic + ", partition 1, offsets 3-5 (split " + topic + "/1[3,6))",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("positions\n%q\nwant\n%q", got, want)
	}
}
