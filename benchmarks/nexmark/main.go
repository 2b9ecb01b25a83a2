package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sluicedata/sluice/internal/nexmark"
)

// report is one run --json line (internal/nexmark's Report).
type report = nexmark.Report

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
}

// commands are generate, run and the hidden executor (internal/nexmark);
// run --cluster starts executors as `<this binary> executor ...`.
func commands(stdout, stderr io.Writer) nexmark.Commands {
	return nexmark.Commands{Prog: "nexmark", Stdout: stdout, Stderr: stderr}
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: go run ./benchmarks/nexmark <command> [flags]\n\ncommands:\n")
	commands(w, w).Usage(w)
	fmt.Fprint(w, `
  nexmark results --in FILE [--out FILE.md]
        turn run --json lines into the Markdown table of benchmarks/RESULTS.md, with the
        machine (nproc, CPU model, Go version) and the date (keeping the file's cluster section)

  nexmark cluster-results --in FILE [--results FILE.md]
        pair the local and --cluster run --json lines of FILE per query (and summarise the
        benchmarks/streaming -json lines' one-row batch latency per mode): print one JSON line
        each with the cluster/local ratio of events per CPU-second, and write them as the
        "Cluster mode" section of FILE.md
`)
}

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command")
	}
	c := commands(stdout, stderr)
	switch args[0] {
	case "generate":
		return c.Generate(ctx, args[1:])
	case "run":
		return c.Run(ctx, args[1:])
	case "executor": // started by run --cluster (internal/localcluster)
		return c.Executor(ctx, args[1:])
	case "results":
		fs := flag.NewFlagSet("results", flag.ContinueOnError)
		fs.SetOutput(stderr)
		in := fs.String("in", "", "file of run --json lines (required)")
		out := fs.String("out", "", "Markdown file to write (default stdout)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *in == "" {
			return errors.New("results: --in is required")
		}
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		if *out == "" {
			return writeResults(f, stdout, time.Now())
		}
		var b strings.Builder
		if err := writeResults(f, &b, time.Now()); err != nil {
			return err
		}
		// The "## " sections are other targets' (bench-cluster's cluster
		// section, bench-peers' Spark section, measurements written by
		// hand): keep every one, in its place.
		doc := b.String()
		if old, err := os.ReadFile(*out); err == nil {
			for _, h := range headings(string(old)) {
				doc = replaceSection(doc, h, section(string(old), h))
			}
		}
		return os.WriteFile(*out, []byte(doc), 0o644)
	case "cluster-results":
		fs := flag.NewFlagSet("cluster-results", flag.ContinueOnError)
		fs.SetOutput(stderr)
		in := fs.String("in", "", "file of run --json lines, local and --cluster, and of benchmarks/streaming -json lines (required)")
		results := fs.String("results", "", "Markdown file whose cluster section to write (default: only print)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *in == "" {
			return errors.New("cluster-results: --in is required")
		}
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		return writeClusterResults(f, stdout, *results, time.Now())
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}
