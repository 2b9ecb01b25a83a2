package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/nexmarkfiles"
	"github.com/sluicedata/sluice/sources/generate"
)

// nexmark runs `sluice nexmark generate`. The queries and their runner are
// benchmark definitions in benchmarks/nexmark, which nothing outside
// benchmarks/ may import (internal/archtest): `sluice nexmark run` says
// where they run.
func nexmark(ctx context.Context, args []string) error {
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
		return errors.New("nexmark run: the queries are benchmark definitions in benchmarks/nexmark; run them with " +
			"go run ./benchmarks/nexmark run --query qN --events N [--input DIR] [--out DIR] [--json]")
	}
	return fmt.Errorf("nexmark: unknown subcommand %q (generate)", args[0])
}
