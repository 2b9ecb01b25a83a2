package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/microbatch/checkpoint"
)

// The checkpoint tools on the demo's checkpoints, through the built
// binary. Both demo queries read the in-process Kafka, which is gone once
// the demo exits: inspect and verify work, but a replay must refuse,
// saying the input is gone (the hourly query) or that the sink cannot
// read back what it committed (totals: console and a Kafka topic).
// TestTheDemoReplaysOnAKafkaThatOutlivesIt replays for real.
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
	if err := p.Wait(ctx); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(p.Stderr.String(), "say which with --query (totals, hourly)") {
		t.Errorf("replay without --query: %v, want exit 2 naming the queries\n%s", err, p.Stderr.String())
	}
	errs := mustFail(t, ctx, bin, "checkpoint", "replay", "--query", "hourly", "--batch", "0", "--dir", dir)
	for _, want := range []string{"query hourly (checkpoint " + hourly + ")", "batch cannot be replayed: batch 0: a source no longer holds its input",
		`kafka "orders": topic "orders" partition`, "no longer exist"} {
		if !strings.Contains(errs, want) {
			t.Errorf("replay of the hourly query's batch 0 lacks %q:\n%s", want, errs)
		}
	}
	errs = mustFail(t, ctx, bin, "checkpoint", "replay", "--query", "totals", "--batch", "0", "--dir", dir)
	if !strings.Contains(errs, "query totals") || !strings.Contains(errs, "kafka:order-totals) cannot read back its committed batches") {
		t.Errorf("replay of the totals query does not say its sink cannot read back:\n%s", errs)
	}
}

// With --brokers the demo's input outlives it (here a Kafka of the test's
// own, as `make kafka-up` would be), so the hourly query's batches replay:
// each committed batch re-runs from its recorded offsets and state into
// the rows its Parquet files hold.
func TestTheDemoReplaysOnAKafkaThatOutlivesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the demo")
	}
	bin := buildSluice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := strings.Join(kc.ListenAddrs(), ",")
	ck := t.TempDir()
	mustRun(t, ctx, bin, "stream", "--brokers", brokers, "--checkpoint-dir", ck, "--duration", "12s", "--rate", "3000", "--rows", "1")

	var s checkpoint.Summary
	if err := json.Unmarshal([]byte(mustRun(t, ctx, bin, "checkpoint", "inspect", "--json", filepath.Join(ck, "hourly"))), &s); err != nil || s.Committed == nil {
		t.Fatalf("inspect --json of the hourly query: %v, %+v", err, s.Committed)
	}
	rows := 0
	for b := s.Committed.First; b <= s.Committed.Last; b++ {
		out := mustRun(t, ctx, bin, "checkpoint", "replay", "--brokers", brokers, "--checkpoint-dir", ck, "--query", "hourly", "--batch", strconv.FormatInt(b, 10))
		if !strings.Contains(out, fmt.Sprintf("identical: batch %d replays to the output and state it committed", b)) {
			t.Errorf("replay of batch %d:\n%s", b, out)
		}
		var n int
		if i := strings.Index(out, "rows identical: "); i >= 0 {
			if _, err := fmt.Sscanf(out[i:], "rows identical: %d rows replayed", &n); err == nil {
				rows += n
			}
		}
	}
	if rows == 0 {
		t.Errorf("batches %d..%d replayed no row: no hour closed, the test proves little", s.Committed.First, s.Committed.Last)
	}
}
