package localcluster

import (
	"os"
	"testing"
	"time"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/internal/measure"
)

// /proc/<pid>/stat gives this process's CPU time as getrusage does, to its
// 10 ms ticks.
func TestProcCPUSecondsAgreesWithGetrusage(t *testing.T) {
	// Burn 0.3 s of CPU (the machine may be busy: bounded by 10 s of wall).
	start, deadline := measure.CPUSeconds(), time.Now().Add(10*time.Second)
	for measure.CPUSeconds() < start+0.3 && time.Now().Before(deadline) {
	}
	got, err := procCPUSeconds(os.Getpid())
	want := measure.CPUSeconds()
	if err != nil {
		t.Fatal(err)
	}
	if got < start+0.25 || got > want+0.02 || got < want-0.05 {
		t.Fatalf("/proc says %.3f s of CPU, getrusage %.3f s (%.3f s before a 0.3 s busy loop)", got, want, start)
	}
	if rss := procPeakRSS(os.Getpid()); rss < 1<<20 || rss > 1<<40 {
		t.Fatalf("peak RSS %d bytes", rss)
	}
	if _, err := procCPUSeconds(-1); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

// Between subtracts each executor's counters and sums them.
func TestBetweenSumsTheExecutorsDeltas(t *testing.T) {
	before := Sample{CPUSeconds: 1, Stats: map[string]cluster.ExecutorStats{"a": {Tasks: 2, BytesServed: 10}}}
	after := Sample{CPUSeconds: 3.5, PeakRSSBytes: 7, Stats: map[string]cluster.ExecutorStats{
		"a": {Tasks: 5, BytesServed: 30, Gets: 1, BlocksServed: 4}, "b": {Tasks: 1, TasksFailed: 1}}}
	w := Between(before, after)
	want := Work{CPUSeconds: 2.5, PeakRSSBytes: 7, Tasks: 4, TasksFailed: 1, Gets: 1, Blocks: 4, Bytes: 20}
	if w != want {
		t.Fatalf("Between = %+v, want %+v", w, want)
	}
}
