package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch/jobcli"
)

// The streaming demo runs on embedded defaults, prints batches, closes hours
// into Parquet and stops by itself after --duration without an error.
// --checkpoint moves the checkpoints out of --dir; the Parquet stays there.
func TestTheStreamingDemoRunsAndStopsByItself(t *testing.T) {
	var out strings.Builder
	start := time.Now()
	dir, checkpoints := t.TempDir(), t.TempDir()
	err := jobcli.Run(context.Background(), sluiceJob(&demoConfig{}), []string{"demo", "--duration", "12s", "--rate", "3000",
		"--dir", dir, "--checkpoint", checkpoints, "--rows", "3"}, &out, io.Discard)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if el := time.Since(start); el > 40*time.Second {
		t.Fatalf("demo took %v to stop after a 12 s duration", el)
	}
	s := out.String()
	for _, want := range []string{"in-process Kafka", "Batch: 0", "window_start", "hourly totals (update)", "closed (customer, hour) totals"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s[max(0, len(s)-2000):])
		}
	}
	if strings.Contains(s, "holds 0 closed") || !strings.Contains(s, filepath.Join(dir, "hourly")+" holds") {
		t.Errorf("no hour was closed into Parquet under --dir:\n%s", s[max(0, len(s)-1000):])
	}
	for _, q := range []string{"totals", "hourly"} {
		if _, err := os.Stat(filepath.Join(checkpoints, q, "commits")); err != nil {
			t.Errorf("query %s committed no batch under --checkpoint: %v", q, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "checkpoints", q)); err == nil {
			t.Errorf("query %s has a checkpoint under --dir too", q)
		}
	}
}

func TestTheBatchDemoPrintsRevenuePerRegion(t *testing.T) {
	var out strings.Builder
	if err := demo(context.Background(), &out, 200_000, t.TempDir(), 20, dataset.Config{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "revenue per region") || !strings.Contains(out.String(), "emea") {
		t.Fatalf("batch demo output:\n%s", out.String())
	}
}
