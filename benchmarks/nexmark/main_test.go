package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/nexmark"
)

// The benchmark's run is internal/nexmark's: the one JSON line results
// reads back, with the fields RESULTS.md's table shows.
func TestRunIsTheLibrarysRunner(t *testing.T) {
	var out, errs strings.Builder
	if err := cli(context.Background(), []string{"run", "--query", "q1", "--events", "50000", "--json"}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var r report
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if r.Query != "q1" || r.Events != 50000 || r.Bids != 46000 || r.OutputRows != 46000 || r.EventsPerCPUSecond <= 0 {
		t.Fatalf("report %+v", r)
	}
	var md strings.Builder
	if err := writeResults(strings.NewReader(out.String()), &md, time.Now()); err != nil || !strings.Contains(md.String(), "| q1 | 50000 |") {
		t.Fatalf("results of the line: %v\n%s", err, md.String())
	}
	err := cli(context.Background(), []string{"run", "--query", "q99"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), `unknown query "q99"`) || !strings.Contains(err.Error(), strings.Join(nexmark.QueryNames(), ", ")) {
		t.Fatalf("an unknown query: %v", err)
	}
}

// TestResultsKeepsOtherSections: rewriting RESULTS.md with results --out
// replaces the main table and keeps every "## " section other targets
// wrote (the cluster section, the Spark peers section, ...).
func TestResultsKeepsOtherSections(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "runs.jsonl"), filepath.Join(dir, "RESULTS.md")
	line := `{"query":"q1","events":50000,"bids":46000,"output_rows":46000,"seconds":1,"cpu_seconds":1,"events_per_cpu_second":50000,"batches":1}`
	if err := os.WriteFile(in, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := "# Nexmark results\n\nold main table\n\n" + clusterHeading + "\n\ncluster rows\n\n## Peers: Spark\n\nspark rows\n\n## Overhead of metrics and logging\n\noverhead rows\n"
	if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if err := cli(context.Background(), []string{"results", "--in", in, "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("results: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{"| q1 | 50000 |", "cluster rows", "## Peers: Spark\n\nspark rows", "## Overhead of metrics and logging\n\noverhead rows"} {
		if !strings.Contains(doc, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "old main table") {
		t.Errorf("the old main table is still there:\n%s", doc)
	}
}
