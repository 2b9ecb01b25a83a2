package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The streaming demo runs on embedded defaults, prints batches, closes hours
// into Parquet and stops by itself after --duration without an error.
func TestTheStreamingDemoRunsAndStopsByItself(t *testing.T) {
	var out strings.Builder
	start := time.Now()
	err := streamDemo(context.Background(), &out, streamOpts{duration: 12 * time.Second, rate: 3000, dir: t.TempDir(), maxRows: 3})
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
	if strings.Contains(s, "holds 0 closed") {
		t.Errorf("no hour was closed into Parquet:\n%s", s[max(0, len(s)-1000):])
	}
}

func TestTheBatchDemoPrintsRevenuePerRegion(t *testing.T) {
	var out strings.Builder
	if err := demo(context.Background(), &out, 200_000, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "revenue per region") || !strings.Contains(out.String(), "emea") {
		t.Fatalf("batch demo output:\n%s", out.String())
	}
}
