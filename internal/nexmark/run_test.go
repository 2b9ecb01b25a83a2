package nexmark

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources/generate"
)

// At the default event rate 200 000 events span 20 ms of event time: no
// window, session or auction closes, so the windowed queries emit nothing.
// That is a report with 0 output rows, into the counting sink and into a
// Parquet directory (whose commit log then lists no file), not an error.
func TestAWindowThatNeverClosesIsAReportOfZeroRows(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	for _, q := range []string{"q5", "q11", "q4-winning"} {
		t.Run(q, func(t *testing.T) {
			for _, out := range []string{"", filepath.Join(t.TempDir(), "out")} {
				o := Options{Query: q, Events: 200_000, BatchEvents: 100_000, Seed: DefaultSeed, Mem: mem, Out: out}
				sent := onCluster(t, &o)
				rep, err := Run(ctx, o)
				if err != nil {
					t.Fatalf("into %q: %v", out, err)
				}
				sent(q + " into " + out)
				if rep.OutputRows != 0 || rep.Bids != bidsIn(200_000) || rep.Batches < 2 || rep.Events != 200_000 {
					t.Fatalf("into %q: %d output rows, %d bids, %d batches, %d events; want 0, %d, at least 2, 200000",
						out, rep.OutputRows, rep.Bids, rep.Batches, rep.Events, bidsIn(200_000))
				}
			}
		})
	}
	var b strings.Builder
	c := Commands{Prog: "nexmark", Stdout: &b, Stderr: io.Discard}
	if err := c.Run(ctx, []string{"--query", "q7", "--events", "100000"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "92000 bids), 0 output rows") {
		t.Fatalf("text report:\n%s", b.String())
	}
}

// A directory that is not a generated one stays an error naming it.
func TestRunOverADirectoryThatIsNotGeneratedFails(t *testing.T) {
	dir := t.TempDir()
	_, err := Run(context.Background(), Options{Query: "q0", Input: dir, BatchEvents: 1})
	if err == nil || !strings.Contains(err.Error(), dir+" is not a generated Nexmark directory") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("run over %s: %v", dir, err)
	}
}

// generate draws a bar of events done of the total, with the rate, on a
// terminal, and writes nothing to a pipe or a file.
func TestGenerateDrawsAProgressBarOnlyOnATerminal(t *testing.T) {
	ctx := context.Background()
	for _, terminal := range []bool{false, true} {
		saved := isTerminal
		isTerminal = func(io.Writer) bool { return terminal }
		var stdout, stderr strings.Builder
		c := Commands{Prog: "nexmark", Stdout: &stdout, Stderr: &stderr}
		out := filepath.Join(t.TempDir(), "gen")
		err := c.Generate(ctx, []string{"--events", "2500000", "--out", out, "--event-rate", "1000"})
		isTerminal = saved
		if err != nil {
			t.Fatal(err)
		}
		if m, err := ReadMeta(out); err != nil || m.Events != 2_500_000 {
			t.Fatalf("meta %+v, %v", m, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("generate wrote to stdout: %q", stdout.String())
		}
		bar := stderr.String()
		if !terminal {
			if bar != "" {
				t.Errorf("not a terminal, yet stderr got %q", bar)
			}
			continue
		}
		for _, want := range []string{"generate", "100%", "2500000/2500000", "events/s", "\r"} {
			if !strings.Contains(bar, want) {
				t.Errorf("the bar %q lacks %q", bar, want)
			}
		}
		if !strings.HasSuffix(bar, "\n") {
			t.Errorf("the finished bar %q does not end its line", bar)
		}
	}
}

// WriteFiles reports its progress after every chunk, ending at the total.
func TestWriteFilesReportsProgress(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	var seen []int64
	err := WriteFiles(context.Background(), filepath.Join(t.TempDir(), "gen"), generate.NexmarkConfig{Seed: DefaultSeed}, 2_300_000, mem,
		func(done int64) { seen = append(seen, done) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1_000_000, 2_000_000, 2_300_000}; !slices.Equal(seen, want) {
		t.Fatalf("progress %v, want %v", seen, want)
	}
}
