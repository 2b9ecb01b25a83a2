package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// tiny is 20,000 orders 100 ms apart (33 min of event time: 4 ten-minute
// windows) over 50 customers in 4 partitions, read in 5 batches.
func tiny() options {
	return options{records: 20_000, partitions: 4, batchRecords: 4_000, customers: 50, interval: 100 * time.Millisecond,
		maxDelay: 5 * time.Second, window: 10 * time.Minute, watermarkDelay: time.Minute, seed: defaultSeed,
		parallelism: 2, json: true}
}

// The benchmark at tiny scale against kfake: one JSON line per
// measurement, every field filled in, both checks ok, no Arrow memory leaked.
func TestTinyRunAgainstKfake(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := tiny()
	o.mem = mem
	var out bytes.Buffer
	code, err := run(context.Background(), o, &out)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v\n%s", code, err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	got := map[string]map[string]any{}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, l)
		}
		got[r["measurement"].(string)] = r
	}
	for _, m := range []string{"produce", "raw_consume", "source", "end_to_end"} {
		r, ok := got[m]
		if !ok {
			t.Fatalf("no %s line in\n%s", m, out.String())
		}
		for _, k := range []string{"seconds", "records_per_sec", "cpu_seconds", "peak_rss_bytes"} {
			if v, ok := r[k].(float64); !ok || v <= 0 {
				t.Errorf("%s: %s = %v, want a positive number", m, k, r[k])
			}
		}
		if r["cluster"] != "kfake" || r["records"] != 20000.0 {
			t.Errorf("%s: cluster %v, records %v", m, r["cluster"], r["records"])
		}
	}
	if s := got["source"]; s["check"] != "ok" || s["ratio_to_raw"].(float64) <= 0 || s["splits"] != 4.0 {
		t.Errorf("source: check %v, ratio %v, splits %v", s["check"], s["ratio_to_raw"], s["splits"])
	}
	e := got["end_to_end"]
	// 5 data batches and one for the final watermark; 50 customers in at
	// most 5 ten-minute windows.
	if e["check"] != "ok" || e["batches"] != 6.0 || e["dropped_late"] != 0.0 || e["progress_missing"] != 0.0 {
		t.Errorf("end_to_end: check %v, %v batches, %v late, %v missed", e["check"], e["batches"], e["dropped_late"], e["progress_missing"])
	}
	if g := e["groups"].(float64); g < 100 || g > 250 {
		t.Errorf("end_to_end: %v groups, want 50 customers in 4-5 windows", g)
	}
	for _, k := range []string{"batch_p50_ms", "batch_p99_ms", "output_records"} {
		if v, ok := e[k].(float64); !ok || v <= 0 {
			t.Errorf("end_to_end: %s = %v, want a positive number", k, e[k])
		}
	}
	t.Logf("%s", out.String())
}

// A wrong answer is caught: compareWindows names the groups that differ.
func TestCompareWindowsFindsDifferences(t *testing.T) {
	want := map[windowKey]windowAgg{{0, "c-0001"}: {3, 1000}, {0, "c-0002"}: {1, 500}}
	if err := compareWindows(want, want); err != nil {
		t.Fatalf("equal maps differ: %v", err)
	}
	got := map[windowKey]windowAgg{{0, "c-0001"}: {3, 1000}, {0, "c-0002"}: {1, 501}}
	if err := compareWindows(got, want); err == nil || !strings.Contains(err.Error(), `"c-0002"`) {
		t.Fatalf("compareWindows = %v, want a difference naming c-0002", err)
	}
	delete(got, windowKey{0, "c-0002"})
	got[windowKey{3_600_000, "c-0002"}] = windowAgg{1, 500}
	if err := compareWindows(got, want); err == nil || !strings.Contains(err.Error(), "2 of 2 groups differ") {
		t.Fatalf("compareWindows = %v, want a missing and an extra group", err)
	}
}

// The JSON values the benchmark produces render the generated orders.
func TestAppendValue(t *testing.T) {
	rec := ordersGen(tiny()).Record(memory.NewGoAllocator(), 7, 1)
	defer rec.Release()
	cust := rec.Column(1).(*array.String)
	reg := rec.Column(2).(*array.String)
	amt := rec.Column(3).(*array.Decimal128)
	ts := rec.Column(4).(*array.Timestamp)
	got := string(appendValue(nil, rec.Column(0).(*array.Int64), cust, reg, amt, ts, 0))
	want := fmt.Sprintf(`{"order_id":7,"customer":%q,"region":%q,"amount":%s,"ts":%d}`,
		cust.Value(0), reg.Value(0), amt.Value(0).ToString(2), int64(ts.Value(0)))
	if got != want {
		t.Fatalf("value %s, want %s", got, want)
	}
}
