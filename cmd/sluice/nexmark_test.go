package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/dataset"
	nexmarklib "github.com/sluicedata/sluice/internal/nexmark"
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
	m, err := nexmarklib.ReadMeta(out)
	if err != nil || m.Events != 10000 || m.EventRate != 1000 || m.Seed != 20261101 {
		t.Errorf("meta %+v, %v", m, err)
	}
	err = run(ctx, []string{"nexmark", "generate", "--events", "10", "--out", out})
	if err == nil || !strings.Contains(err.Error(), "nexmark: generate: "+out+" is not empty") {
		t.Errorf("generate into a non-empty directory: %v", err)
	}
}

// sluice nexmark run runs a query in this process and prints its report;
// an unknown query is an error naming it and the runnable ones; -h is not
// an error.
func TestNexmarkRunReportsAQuery(t *testing.T) {
	ctx := context.Background()
	var out, errs strings.Builder
	if err := nexmarkTo(ctx, []string{"run", "--query", "q2", "--events", "100000", "--json"}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var rep nexmarklib.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Query != "q2" || rep.Events != 100000 || rep.Bids != 92000 || rep.EventsPerCPUSecond <= 0 {
		t.Fatalf("report %q: %+v, %v", out.String(), rep, err)
	}
	err := nexmarkTo(ctx, []string{"run", "--query", "q99"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), `run: unknown query "q99" (want one of q0, q1, q2, q3, q4, q4-winning, q5, q7, q8, q11)`) {
		t.Fatalf("an unknown query: %v", err)
	}
	errs.Reset()
	if err := nexmarkTo(ctx, []string{"run", "-h"}, &out, &errs); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errs.String(), "-query") {
		t.Fatalf("run -h: %v\n%s", err, errs.String())
	}
}

// The installed binary runs Nexmark with no Go toolchain: the sluice binary
// built here, run from a directory outside the module with a PATH that
// holds no go, runs q0 (every bid out), q5 and q11 at the default event
// rate (no window closes: 0 rows, into the counting sink and into a
// Parquet directory, exit 0), and q0 on two executor processes of itself.
// generate draws its progress bar on a terminal (script(1) gives it one)
// and writes nothing when stderr is a pipe.
func TestNexmarkFromTheInstalledBinaryWithoutGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs queries and a cluster of processes")
	}
	bin := buildSluice(t)
	noGo, work := t.TempDir(), t.TempDir()
	env := []string{"PATH=" + noGo, "HOME=" + work, "TMPDIR=" + os.TempDir()}
	if ents, err := os.ReadDir(noGo); err != nil || len(ents) != 0 {
		t.Fatalf("the PATH dir %s is not empty: %v %v", noGo, ents, err)
	}
	sluice := func(t *testing.T, timeout time.Duration, args ...string) (stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir, cmd.Env = work, env
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("sluice %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), tail(e.String()))
		}
		return o.String(), e.String()
	}
	report := func(t *testing.T, line string) nexmarklib.Report {
		t.Helper()
		var r nexmarklib.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("report %q: %v", line, err)
		}
		return r
	}

	t.Run("q0 reports every bid", func(t *testing.T) {
		out, _ := sluice(t, 2*time.Minute, "nexmark", "run", "--query", "q0", "--events", "200000", "--json")
		r := report(t, out)
		if r.Query != "q0" || r.Events != 200000 || r.Bids != 184000 || r.InputRows != 184000 || r.OutputRows != 184000 ||
			r.Batches == 0 || r.CPUSeconds <= 0 || r.EventsPerCPUSecond <= 0 || r.PeakRSSBytes <= 0 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("windows that never close are 0 rows, not an error", func(t *testing.T) {
		out, _ := sluice(t, 2*time.Minute, "nexmark", "run", "--query", "q5", "--events", "200000", "--json")
		if r := report(t, out); r.Query != "q5" || r.Events != 200000 || r.Bids != 184000 || r.OutputRows != 0 {
			t.Fatalf("q5 report %+v", r)
		}
		dir := filepath.Join(work, "q11-out")
		out, _ = sluice(t, 2*time.Minute, "nexmark", "run", "--query", "q11", "--events", "200000", "--out", dir, "--json")
		if r := report(t, out); r.Query != "q11" || r.Sink != dir || r.Bids != 184000 || r.OutputRows != 0 {
			t.Fatalf("q11 into Parquet report %+v", r)
		}
		out, _ = sluice(t, 2*time.Minute, "nexmark", "run", "--query", "q7", "--events", "100000")
		if !strings.Contains(out, "92000 bids), 0 output rows") {
			t.Fatalf("q7 text report:\n%s", out)
		}
	})
	t.Run("q0 on two executor processes of the binary", func(t *testing.T) {
		out, _ := sluice(t, 3*time.Minute, "nexmark", "run", "--query", "q0", "--events", "200000", "--batch-events", "50000",
			"--cluster", "2", "--executor-slots", "1", "--json")
		r := report(t, out)
		if r.Executors != 2 || r.OutputRows != 184000 || r.Bids != 184000 || r.TaskAttempts == 0 || r.ExecutorCPUSeconds <= 0 ||
			r.CPUSeconds != r.DriverCPUSeconds+r.ExecutorCPUSeconds {
			t.Fatalf("cluster report %+v", r)
		}
	})
	t.Run("generate: a progress bar on a terminal only", func(t *testing.T) {
		dir := filepath.Join(work, "gen-pipe")
		out, errs := sluice(t, 2*time.Minute, "nexmark", "generate", "--events", "2000000", "--out", dir)
		if out != "" || errs != "" {
			t.Fatalf("generate into pipes wrote stdout %q, stderr %q", out, errs)
		}
		if m, err := nexmarklib.ReadMeta(dir); err != nil || m.Events != 2_000_000 {
			t.Fatalf("meta %+v, %v", m, err)
		}
		script, err := exec.LookPath("script")
		if err != nil {
			t.Skipf("script(1) is not installed to give generate a terminal: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		line := bin + " nexmark generate --events 2000000 --out " + filepath.Join(work, "gen-tty")
		cmd := exec.CommandContext(ctx, script, "-qefc", line, "/dev/null")
		cmd.Dir, cmd.Env = work, append(env, "SHELL=/bin/sh", "TERM=xterm")
		tty, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("script -c %q: %v\n%s", line, err, tty)
		}
		for _, want := range []string{"generate", "100%", "2000000/2000000", "events/s"} {
			if !strings.Contains(string(tty), want) {
				t.Errorf("the terminal shows %q, without %q", tty, want)
			}
		}
	})
}
