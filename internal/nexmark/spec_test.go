package nexmark

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sources/generate"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Every Nexmark query compiles, as the streaming query the benchmark runs,
// into a spec that encodes to bytes and decodes to an equal spec (the same
// EXPLAIN, the same bytes again); the EXPLAIN is pinned in testdata/spec.
func TestEveryNexmarkQuerySpecRoundTripsThroughBytes(t *testing.T) {
	cfg := generate.NexmarkConfig{Seed: DefaultSeed, EventRate: 10_000, Events: testEvents}
	for _, name := range QueryNames() {
		t.Run(name, func(t *testing.T) {
			ds := map[string]*dataset.Dataset{}
			for _, k := range Kinds {
				src, err := generate.NewNexmarkStream(cfg, k.Name)
				if err != nil {
					t.Fatal(err)
				}
				ds[k.Name] = dataset.ReadStream(src).WithConfig(dataset.Config{ShufflePartitions: 4})
			}
			out := queries[name](Streams{Person: ds["person"], Auction: ds["auction"], Bid: ds["bid"], Config: cfg})
			sink, err := sinkmem.New(sinkmem.Config{Name: "out"})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			mode := sinks.Append
			if updating[name] {
				mode = sinks.Update
			}
			q, err := out.CompileStream(sink, dataset.StreamOptions{KeyGroups: 128, Emit: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			spec := q.Spec()
			b, err := spec.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := plan.DecodeSpec(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if g, w := got.Explain(), spec.Explain(); g != w {
				t.Fatalf("decoded spec explains as\n%s\nwant\n%s", g, w)
			}
			if b2, err := got.Encode(); err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("spec encodes differently after a round trip (%v)", err)
			}
			path := filepath.Join("testdata", "spec", name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(spec.Explain()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if spec.Explain() != string(want) {
				t.Fatalf("%s's plan changed (run with -update if intended):\n%s\nwant:\n%s", name, spec.Explain(), want)
			}
		})
	}
}
