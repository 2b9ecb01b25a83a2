package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/nexmarkfiles"
)

// sluice nexmark generate writes the three tables (1 person, 3 auctions and
// 46 bids in every 50 events) and the config, and refuses a non-empty
// directory.
func TestNexmarkGenerateWritesTheThreeTables(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "nexmark")
	if err := run(ctx, []string{"nexmark", "generate", "--events", "10000", "--out", out, "--event-rate", "1000"}); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int64{"person": 200, "auction": 600, "bid": 9200} {
		n, err := dataset.Read(filepath.Join(out, kind)).Count(ctx)
		if err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", kind, n, err, want)
		}
	}
	m, err := nexmarkfiles.ReadMeta(out)
	if err != nil || m.Events != 10000 || m.EventRate != 1000 || m.Seed != 20261101 {
		t.Errorf("meta %+v, %v", m, err)
	}
	err = run(ctx, []string{"nexmark", "generate", "--events", "10", "--out", out})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("generate into a non-empty directory: %v", err)
	}
}

// sluice nexmark run runs a query through the benchmark runner and prints
// its report; a failing query is an error naming the runner.
func TestNexmarkRunReportsAQuery(t *testing.T) {
	ctx := context.Background()
	var out, errs strings.Builder
	if err := nexmarkTo(ctx, []string{"run", "--query", "q2", "--events", "100000", "--json"}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var rep struct {
		Query              string  `json:"query"`
		Events             int64   `json:"events"`
		EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Query != "q2" || rep.Events != 100000 || rep.EventsPerCPUSecond <= 0 {
		t.Fatalf("report %q: %+v, %v", out.String(), rep, err)
	}
	err := nexmarkTo(ctx, []string{"run", "--query", "q99"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "benchmarks/nexmark") || !strings.Contains(errs.String(), "q99") {
		t.Fatalf("an unknown query: %v\n%s", err, errs.String())
	}
}
