package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The checkpoint tools on the demo's checkpoints, through the built
// binary. Both demo queries read the in-process Kafka, which is gone once
// the demo exits: inspect and verify work, but a replay must refuse,
// saying the input is gone (the hourly query) or that the sink cannot
// read back what it committed (totals: console and a Kafka topic). The
// test job's tests (microbatch/jobcli) prove replays that succeed.
func TestTheCheckpointToolsOnTheDemosCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the demo")
	}
	bin := buildSluice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	mustRun(t, ctx, bin, "demo", "--duration", "10s", "--rate", "3000", "--dir", dir, "--rows", "1")
	hourly := filepath.Join(dir, "checkpoints", "hourly")

	out := mustRun(t, ctx, bin, "checkpoint", "inspect", hourly)
	for _, want := range []string{"checkpoint   " + hourly, "sink=parquet:" + filepath.Join(dir, "hourly"), "sources      orders: kafka topics=orders", "batches      committed 0..", "agg-0"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	if out := mustRun(t, ctx, bin, "checkpoint", "verify", hourly); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("verify of the demo's checkpoint:\n%s", out)
	}

	// Several queries: replay asks which.
	p := startProc(t, ctx, bin, "checkpoint", "replay", "--batch", "0", "--dir", dir)
	var exit *exec.ExitError
	if err := p.wait(ctx); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(p.stderr.String(), "say which with --query (totals, hourly)") {
		t.Errorf("replay without --query: %v, want exit 2 naming the queries\n%s", err, p.stderr.String())
	}
	errs := mustFail(t, ctx, bin, "checkpoint", "replay", "--query", "hourly", "--batch", "0", "--dir", dir)
	for _, want := range []string{"query hourly (checkpoint " + hourly + ")", "batch cannot be replayed: batch 0: a source no longer holds its input",
		`kafka "orders": topic "orders" partition`, "no longer exist"} {
		if !strings.Contains(errs, want) {
			t.Errorf("replay of the hourly query's batch 0 lacks %q:\n%s", want, errs)
		}
	}
	errs = mustFail(t, ctx, bin, "checkpoint", "replay", "--query", "totals", "--batch", "0", "--dir", dir)
	if !strings.Contains(errs, "sink tee(console, kafka:order-totals) cannot read back its committed batches") {
		t.Errorf("replay of the totals query does not say its sink cannot read back:\n%s", errs)
	}
}
