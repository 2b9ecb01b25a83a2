package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/nexmarkfiles"
	"github.com/sluicedata/sluice/sources/generate"
)

// nexmark runs `sluice nexmark generate`, and `sluice nexmark run` by
// running the benchmark runner: the queries are benchmark definitions in
// benchmarks/nexmark, which nothing outside benchmarks/ may import
// (internal/archtest), so run starts `go run <module>/benchmarks/nexmark run
// ...` with the same flags (the Go toolchain builds it; its report,
// CPU time included, is the child's own).
func nexmark(ctx context.Context, args []string) error {
	return nexmarkTo(ctx, args, os.Stdout, os.Stderr)
}

func nexmarkTo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage()
		return errors.New("nexmark: no subcommand (generate)")
	}
	switch args[0] {
	case "generate":
		fs := flag.NewFlagSet("nexmark generate", flag.ContinueOnError)
		events := fs.Int64("events", 10_000_000, "events to generate (all kinds)")
		out := fs.String("out", "", "output directory (required; must not exist or be empty)")
		seed := fs.Uint64("seed", 20261101, "generator seed")
		rate := fs.Float64("event-rate", 0, "events per second of event time (default 10 000 000)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("nexmark generate: --out is required")
		}
		return nexmarkfiles.Write(ctx, *out, generate.NexmarkConfig{Seed: *seed, EventRate: *rate}, *events, memory.DefaultAllocator)
	case "run":
		gobin, err := exec.LookPath("go")
		if err != nil {
			return fmt.Errorf("nexmark run: it runs the benchmark runner with the Go toolchain, and go is not on PATH: %w", err)
		}
		cmd := exec.CommandContext(ctx, gobin, append([]string{"run", runnerPackage, "run"}, args[1:]...)...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nexmark run: go run %s: %w", runnerPackage, err)
		}
		return nil
	}
	return fmt.Errorf("nexmark: unknown subcommand %q (generate)", args[0])
}

// runnerPackage is the Nexmark runner `sluice nexmark run` starts.
const runnerPackage = "github.com/sluicedata/sluice/benchmarks/nexmark"
