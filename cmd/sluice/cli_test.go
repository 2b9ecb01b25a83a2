package main

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every command of the built binary prints its usage on -h and exits 0
// (`sluice demo -h` exited 1 with "flag: help requested" before jobcli);
// a mistyped command or flag exits 2.
func TestEveryCommandPrintsHelpAndExits0(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildSluice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"-h"}, {"help"}, {"demo", "-h"}, {"demo-batch", "-h"}, {"batch", "-h"}, {"backfill", "-h"},
		{"stream", "-h"}, {"executor", "-h"}, {"certs", "-h"}, {"nexmark", "-h"}, {"nexmark", "generate", "-h"},
		{"config", "print", "-h"}, {"version", "-h"}} {
		cmd := exec.CommandContext(ctx, bin, args...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(strings.ToLower(string(out)), "usage") {
			t.Errorf("sluice %v: %v\n%s", args, err, out)
		}
	}
	for _, args := range [][]string{{"demo", "--nope"}, {"demo-bach"}, {"executor", "--rate", "5"}} {
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("sluice %v: %v, want exit status 2\n%s", args, err, out)
		}
	}
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "sluice ") || !strings.Contains(string(out), "go       go1.") {
		t.Errorf("sluice version: %v\n%s", err, out)
	}
	// demo is the stream role with its own default log level: help says it.
	out, err = exec.CommandContext(ctx, bin, "demo", "-h").CombinedOutput()
	if err != nil || !regexp.MustCompile(`log level: .* \(default warn\)`).Match(out) {
		t.Errorf("sluice demo -h does not give the demo's default log level (warn): %v\n%s", err, out)
	}
}
