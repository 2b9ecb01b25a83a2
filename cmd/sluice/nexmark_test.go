package main

import (
	"context"
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
	err = run(ctx, []string{"nexmark", "run", "--query", "q0"})
	if err == nil || !strings.Contains(err.Error(), "go run ./benchmarks/nexmark run") {
		t.Errorf("nexmark run: %v", err)
	}
}
