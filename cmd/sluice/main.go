// Command sluice is the sluice CLI. Today it runs the demo job; later it
// gains run, executor, checkpoint inspect and nexmark subcommands.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: sluice <command> [flags]

commands:
  demo    generate a small orders dataset as Parquet, aggregate it, print the result
`)
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage()
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		rows := fs.Int64("rows", 200_000, "orders to generate")
		dir := fs.String("dir", "", "directory for the generated Parquet (default: a temp dir, removed at exit)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return demo(ctx, os.Stdout, *rows, *dir)
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}
