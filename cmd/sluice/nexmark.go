package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	nexmarklib "github.com/sluicedata/sluice/internal/nexmark"
	"github.com/sluicedata/sluice/microbatch/jobcli"
)

// nexmarkTo runs `sluice nexmark generate|run` in this process through the
// Nexmark library (internal/nexmark), so an installed binary needs no Go
// toolchain; run --cluster N starts N executor processes of this binary as
// `sluice nexmark executor ...`, a hidden subcommand serving the Nexmark
// job (the built-in jobs' `sluice executor` does not know it).
func nexmarkTo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := nexmarkCommands(stdout, stderr)
	if len(args) == 0 {
		nexmarkUsage(stderr)
		return jobcli.Usage(errors.New("no subcommand (generate, run)"))
	}
	var err error
	switch args[0] {
	case "generate":
		err = c.Generate(ctx, args[1:])
	case "run":
		err = c.Run(ctx, args[1:])
	case "executor": // started by run --cluster (internal/localcluster)
		err = c.Executor(ctx, args[1:])
	case "help", "-h", "--help":
		nexmarkUsage(stdout)
		return nil
	default:
		nexmarkUsage(stderr)
		return jobcli.Usage(fmt.Errorf("unknown subcommand %q (generate, run)", args[0]))
	}
	// The library's errors start with the subcommand ("run: ..."), the
	// CLI adds the command: "sluice: nexmark: run: ...".
	return err
}

func nexmarkCommands(stdout, stderr io.Writer) nexmarklib.Commands {
	return nexmarklib.Commands{Prog: "sluice nexmark", ExecutorArgs: []string{"nexmark"}, Stdout: stdout, Stderr: stderr}
}

func nexmarkUsage(w io.Writer) {
	fmt.Fprint(w, "usage: sluice nexmark <command> [flags]\n\ncommands:\n")
	nexmarkCommands(w, w).Usage(w)
}
