package main

import (
	"context"
	"encoding/json"
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
