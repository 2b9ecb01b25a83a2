package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cluster-results pairs local and cluster runs per query, takes medians,
// judges the ratio and the one-row latency against the targets, and
// replaces only the cluster section of RESULTS.md; results keeps it.
func TestClusterResultsComparesAndKeepsItsSection(t *testing.T) {
	lines := strings.Join([]string{
		`{"query":"q5","events":1000,"output_rows":7,"seconds":1,"cpu_seconds":2,"events_per_cpu_second":1000}`,
		`{"query":"q5","events":1000,"output_rows":7,"seconds":1,"cpu_seconds":2,"events_per_cpu_second":600,"executors":2,"driver_cpu_seconds":0.5,"executor_cpu_seconds":2.5,"shuffle_bytes":100,"shuffle_bytes_per_cpu_second":40,"task_attempts":9}`,
		`{"query":"q5","events":1000,"output_rows":7,"seconds":1,"cpu_seconds":2,"events_per_cpu_second":900}`,
		`{"query":"q5","events":1000,"output_rows":7,"seconds":1,"cpu_seconds":2,"events_per_cpu_second":720,"executors":2,"shuffle_bytes":100,"task_attempts":9}`,
		`{"query":"q0","events":1000,"output_rows":920,"seconds":1,"cpu_seconds":1,"events_per_cpu_second":1000}`,
		`{"query":"q0","events":1000,"output_rows":920,"seconds":1,"cpu_seconds":1,"events_per_cpu_second":800,"executors":2}`,
		`{"events":10,"empty_batches":50,"empty_fresh_batch_p50_ms":9,"empty_fresh_batch_p99_ms":30,"empty_batch_p50_ms":12,"empty_batch_p99_ms":40}`,
		`{"events":10,"empty_batches":50,"empty_fresh_batch_p50_ms":16,"empty_fresh_batch_p99_ms":50,"empty_batch_p50_ms":20,"empty_batch_p99_ms":60,"executors":2}`,
	}, "\n")
	dir := t.TempDir()
	md := filepath.Join(dir, "RESULTS.md")
	old := "# Nexmark results\n\nmain table\n\n" + clusterHeading + "\n\nold cluster rows\n\n## Later\n\nkept\n"
	if err := os.WriteFile(md, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeClusterResults(strings.NewReader(lines), &out, md, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var cmps []comparison
	var lats []latencyLine
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"latency"`) {
			var l latencyLine
			json.Unmarshal(sc.Bytes(), &l)
			lats = append(lats, l)
			continue
		}
		var c comparison
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cmps = append(cmps, c)
	}
	if len(cmps) != 2 || cmps[0].Query != "q5" || cmps[1].Query != "q0" {
		t.Fatalf("comparisons %+v, want q5 then q0", cmps)
	}
	q5 := cmps[0]
	// Nearest-rank medians of two runs are the lower: 900 and 600.
	if q5.Runs != 2 || q5.LocalEventsPerCPUSecond != 900 || q5.ClusterEventsPerCPUSecond != 600 || q5.Met ||
		q5.RatioMin != 0.6 || q5.RatioMax != 0.8 || q5.ShuffleBytes != 100 || q5.TaskAttempts != 9 {
		t.Errorf("q5 %+v", q5)
	}
	if !cmps[1].Met || cmps[1].Ratio != 0.8 {
		t.Errorf("q0 ratio %v met %v, want 0.8 met", cmps[1].Ratio, cmps[1].Met)
	}
	if len(lats) != 2 || lats[0].Mode != "local" || lats[0].Met != nil || lats[1].Mode != "cluster" || lats[1].Met == nil || *lats[1].Met || lats[1].FreshP99 != 50 {
		t.Errorf("latency lines %+v", lats)
	}
	b, _ := os.ReadFile(md)
	doc := string(b)
	if strings.Contains(doc, "old cluster rows") || !strings.Contains(doc, "main table") || !strings.HasSuffix(doc, "\n## Later\n\nkept\n") ||
		!strings.Contains(doc, "| q5 | 1000 | 2 |") || !strings.Contains(doc, "| cluster (2 executors) | 1 | 50 | 16.0 | 50.0 | 20.0 | 60.0 | missed |") {
		t.Fatalf("RESULTS.md after cluster-results:\n%s", doc)
	}

	// results rewrites the main table and keeps the cluster section.
	in := filepath.Join(dir, "local.jsonl")
	os.WriteFile(in, []byte(`{"query":"q1","events":5,"seconds":1,"cpu_seconds":1,"events_per_cpu_second":5}`+"\n"+
		`{"query":"q1","events":5,"seconds":1,"cpu_seconds":1,"events_per_cpu_second":4,"executors":2}`+"\n"), 0o644)
	if err := cli(t.Context(), []string{"results", "--in", in, "--out", md}, &out, &out); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(md)
	doc = string(b)
	if strings.Contains(doc, "main table") || !strings.Contains(doc, "| q1 | 5 |") || strings.Count(doc, "| q1 |") != 1 ||
		!strings.Contains(doc, section(string(b), clusterHeading)) || !strings.Contains(doc, "| q5 | 1000 | 2 |") {
		t.Fatalf("RESULTS.md after results:\n%s", doc)
	}
}

// A query with only local (or only cluster) runs cannot be compared.
func TestClusterResultsWantsBothModes(t *testing.T) {
	err := writeClusterResults(strings.NewReader(`{"query":"q5","events":1000,"events_per_cpu_second":1000}`), &strings.Builder{}, "", time.Now())
	if err == nil || !strings.Contains(err.Error(), "1 local and 0 cluster runs") {
		t.Fatalf("err %v", err)
	}
}
