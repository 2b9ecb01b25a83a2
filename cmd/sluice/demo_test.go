package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
	for _, want := range []string{"in-process Kafka", "web UI http://127.0.0.1:", "/metrics", "totals  batch    0 ", "hourly  batch    0 ",
		"top customers so far", "hourly totals (update)", "closed (customer, hour) totals"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s[max(0, len(s)-2000):])
		}
	}
	if strings.Contains(s, "holds 0 closed") || !strings.Contains(s, filepath.Join(dir, "hourly")+" holds") {
		t.Errorf("no hour was closed into Parquet under --dir:\n%s", s[max(0, len(s)-1000):])
	}
	// One line per batch, the top customers table every --every (5 s),
	// not per batch.
	if lines, tables := strings.Count(s, " batch "), strings.Count(s, "top customers so far"); lines < 6 || tables > 4 {
		t.Errorf("%d batch lines and %d top-customer tables in 12 s; want a line per batch and a table every 5 s (and one at the end):\n%s", lines, tables, s)
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

// Without --dir the demo's output is kept in a new directory the last
// lines name, Parquet output readable there.
func TestTheDemoKeepsItsOutputWhereItSays(t *testing.T) {
	var out strings.Builder
	err := jobcli.Run(context.Background(), sluiceJob(&demoConfig{}), []string{"demo", "--duration", "12s", "--rate", "3000", "--ui-addr", ""}, &out, io.Discard)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(\S+/hourly) holds (\d+) closed`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the demo does not say where its Parquet output is:\n%s", out.String())
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(m[1])) })
	n, err := dataset.Read(m[1]).Count(context.Background())
	if err != nil || strconv.FormatInt(n, 10) != m[2] {
		t.Fatalf("%s holds %d rows (%v); the demo said %s", m[1], n, err, m[2])
	}
	if strings.Contains(out.String(), "web UI") {
		t.Errorf("--ui-addr \"\" still served the UI:\n%s", out.String())
	}
}
