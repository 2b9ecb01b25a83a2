package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/proctest"
)

// The cluster as docs/cluster.md runs it on one machine: the sluice binary
// built here, `sluice certs`, two `sluice executor` processes and `sluice
// demo --cluster-join`, every process on 127.0.0.1 with ports chosen now.
func TestClusterModeFromTheCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a cluster of processes")
	}
	bin := buildSluice(t)

	t.Run("a demo on two executors prints batches and the executors run its tasks", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		dir := t.TempDir()
		certDir := filepath.Join(dir, "certs")
		certsOut := mustRun(t, ctx, bin, "certs", "--dir", certDir)
		for _, f := range []string{"ca.pem", "ca-key.pem", "driver.pem", "driver-key.pem", "executor.pem", "executor-key.pem", "gossip.key"} {
			if !strings.Contains(certsOut, filepath.Join(certDir, f)) {
				t.Errorf("sluice certs does not list %s:\n%s", f, certsOut)
			}
		}
		g1, f1, g2, f2 := proctest.FreePort(t, true), proctest.FreePort(t, false), proctest.FreePort(t, true), proctest.FreePort(t, false)
		seed := "127.0.0.1:" + g1
		key := func(role string) []string {
			return []string{"--gossip-key-file", filepath.Join(certDir, "gossip.key"), "--tls-ca", filepath.Join(certDir, "ca.pem"),
				"--tls-cert", filepath.Join(certDir, role+".pem"), "--tls-key", filepath.Join(certDir, role+"-key.pem")}
		}
		var execs []*proctest.Proc
		for i, p := range [][2]string{{g1, f1}, {g2, f2}} {
			args := append([]string{"executor", "--join", seed, "--bind", "127.0.0.1:" + p[0], "--flight", "127.0.0.1:" + p[1],
				"--slots", "2", "--work-dir", filepath.Join(dir, fmt.Sprintf("spill%d", i+1))}, key("executor")...)
			e := startProc(t, ctx, bin, args...)
			e.WaitFor(t, e.Stderr, "executor ready", 1, 30*time.Second)
			execs = append(execs, e)
		}

		demoDir := filepath.Join(dir, "demo")
		demo := startProc(t, ctx, bin, append(append([]string{"demo", "--cluster-join", seed}, key("driver")...),
			"--dir", demoDir, "--duration", "8s", "--log-level", "info")...)
		if err := demo.Wait(ctx); err != nil {
			t.Fatalf("sluice demo: %v\nstdout:\n%s\nstderr:\n%s", err, tail(demo.Stdout.String()), demo.Stderr.String())
		}
		out := demo.Stdout.String()
		for _, want := range []string{"cluster mode: driver", "totals  batch    0 ", "top customers so far", "hourly totals (update)", "closed hours (append)"} {
			if !strings.Contains(out, want) {
				t.Errorf("demo output lacks %q:\n%s", want, tail(out))
			}
		}
		if m := regexp.MustCompile(`hourly totals \(update\) +(\d+) batches, (\d+) orders read`).FindStringSubmatch(out); m == nil || m[1] == "0" || m[2] == "0" {
			t.Errorf("the totals query read no orders in cluster mode:\n%s", tail(out))
		}
		if m := regexp.MustCompile(`(\d+) task attempts sent to executors`).FindStringSubmatch(out); m == nil || m[1] == "0" {
			t.Errorf("the driver sent no task to an executor:\n%s", tail(out))
		}
		for _, q := range []string{"totals", "hourly"} {
			if _, err := os.Stat(filepath.Join(demoDir, "checkpoints", q, "commits")); err != nil {
				t.Errorf("query %s committed no batch: %v", q, err)
			}
		}
		if n := strings.Count(demo.Stderr.String(), `msg="executor joined"`); n != 2 {
			t.Errorf("the driver logged %d executors joining, want 2:\n%s", n, demo.Stderr.String())
		}

		// SIGTERM (what Kubernetes sends): each executor leaves, says how
		// many tasks it ran, and exits 0.
		for i, e := range execs {
			e.Cmd.Process.Signal(syscall.SIGTERM)
			if err := e.Wait(ctx); err != nil {
				t.Errorf("executor %d after SIGTERM: %v\n%s", i+1, err, e.Stderr.String())
			}
			m := regexp.MustCompile(`msg="executor stopped" node=\S+ tasks=(\d+)`).FindStringSubmatch(e.Stderr.String())
			if m == nil || m[1] == "0" {
				t.Errorf("executor %d ran no task of the demo:\n%s", i+1, e.Stderr.String())
			}
		}
	})

	t.Run("bad key material and seeds are refused with the flag and file or seed named", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		dir := t.TempDir()
		good, other := filepath.Join(dir, "certs"), filepath.Join(dir, "other")
		mustRun(t, ctx, bin, "certs", "--dir", good)
		mustRun(t, ctx, bin, "certs", "--dir", other)
		// Run again on the same directory: refused, the CA kept.
		caKey := filepath.Join(good, "ca-key.pem")
		before, _ := os.ReadFile(caKey)
		msg := mustFail(t, ctx, bin, "certs", "--dir", good)
		if after, _ := os.ReadFile(caKey); !strings.Contains(msg, caKey+" exists") || string(after) != string(before) {
			t.Errorf("certs over an existing CA: %q (CA key kept: %v)", msg, string(after) == string(before))
		}

		files := func(keyFile, cert, key string) []string {
			return []string{"--gossip-key-file", keyFile, "--tls-ca", filepath.Join(good, "ca.pem"), "--tls-cert", cert, "--tls-key", key}
		}
		goodKey, goodCert := filepath.Join(good, "gossip.key"), filepath.Join(good, "executor.pem")
		goodTLSKey := filepath.Join(good, "executor-key.pem")
		goodFiles := files(goodKey, goodCert, goodTLSKey)
		g, f := proctest.FreePort(t, true), proctest.FreePort(t, false)
		seed := "127.0.0.1:" + g
		e := startProc(t, ctx, bin, append([]string{"executor", "--bind", seed, "--flight", "127.0.0.1:" + f, "--work-dir", filepath.Join(dir, "spill")}, goodFiles...)...)
		e.WaitFor(t, e.Stderr, "executor ready", 1, 30*time.Second)

		for _, c := range []struct {
			name string
			args []string
			want []string
		}{
			{"a gossip key other than the seed's",
				append([]string{"executor", "--join", seed, "--bind", "127.0.0.1:" + proctest.FreePort(t, true), "--flight", "127.0.0.1:" + proctest.FreePort(t, false), "--join-timeout", "2s"},
					files(filepath.Join(other, "gossip.key"), goodCert, goodTLSKey)...),
				[]string{"--join " + seed, "different gossip key"}},
			{"a missing certificate file",
				append([]string{"executor", "--join", seed}, files(goodKey, filepath.Join(dir, "nope.pem"), goodTLSKey)...),
				[]string{"--tls-cert", filepath.Join(dir, "nope.pem"), "missing"}},
			{"a certificate of another CA",
				append([]string{"executor", "--join", seed}, files(goodKey, filepath.Join(other, "executor.pem"), filepath.Join(other, "executor-key.pem"))...),
				[]string{"--tls-cert", filepath.Join(other, "executor.pem")}},
			{"a key of another certificate",
				append([]string{"executor", "--join", seed}, files(goodKey, goodCert, filepath.Join(other, "executor-key.pem"))...),
				[]string{"--tls-key", filepath.Join(other, "executor-key.pem"), "does not match"}},
			{"a missing gossip key file",
				append([]string{"executor", "--join", seed}, files(filepath.Join(dir, "no.key"), goodCert, goodTLSKey)...),
				[]string{"--gossip-key-file", filepath.Join(dir, "no.key")}},
			{"a seed nobody answers at",
				append([]string{"executor", "--join", "127.0.0.1:" + proctest.FreePort(t, true), "--bind", "127.0.0.1:" + proctest.FreePort(t, true), "--flight", "127.0.0.1:" + proctest.FreePort(t, false), "--join-timeout", "1s"}, goodFiles...),
				[]string{"--join 127.0.0.1:", "connection refused"}},
			{"a Flight port in use",
				append([]string{"executor", "--join", seed, "--bind", "127.0.0.1:" + proctest.FreePort(t, true), "--flight", "127.0.0.1:" + f}, goodFiles...),
				[]string{"--flight 127.0.0.1:" + f, "address already in use"}},
			{"a gossip port in use",
				append([]string{"executor", "--join", seed, "--bind", seed, "--flight", "127.0.0.1:" + proctest.FreePort(t, false)}, goodFiles...),
				[]string{"--bind " + seed, "address already in use"}},
		} {
			msg := mustFail(t, ctx, bin, c.args...)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: the error lacks %q:\n%s", c.name, w, msg)
				}
			}
		}
		if !strings.Contains(e.Stderr.String(), "could decrypt") {
			t.Errorf("the seed did not log the gossip it could not decrypt:\n%s", e.Stderr.String())
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBuilds()
	os.Exit(code)
}

// buildSluice builds this command once per test process.
func buildSluice(t *testing.T) string { return proctest.Build(t, ".") }

// startProc starts the sluice binary bin; t.Cleanup kills it.
func startProc(t *testing.T, ctx context.Context, bin string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, exec.CommandContext(ctx, bin, args...))
}

// mustRun runs a command that must succeed and returns its stdout.
func mustRun(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	p := startProc(t, ctx, bin, args...)
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("sluice %v: %v\n%s%s", args, err, p.Stdout.String(), p.Stderr.String())
	}
	return p.Stdout.String()
}

// mustFail runs a command that must exit 1 and returns its stderr.
func mustFail(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	p := startProc(t, ctx, bin, args...)
	err := p.Wait(ctx)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("sluice %v: %v, want exit status 1\n%s", args, err, p.Stderr.String())
	}
	return p.Stderr.String()
}

func tail(s string) string { return s[max(0, len(s)-3000):] }

// Key material given without --cluster-join would be ignored by a demo
// that then runs locally: refused, naming the flags.
func TestClusterFlagsWithoutClusterJoinAreRefused(t *testing.T) {
	err := run(context.Background(), []string{"demo", "--tls-cert", "x.pem", "--flight", "127.0.0.1:1", "--duration", "1s"})
	if err == nil || !strings.Contains(err.Error(), "--flight, --tls-cert") || !strings.Contains(err.Error(), "--cluster-join") {
		t.Fatalf("demo with cluster flags and no --cluster-join: %v", err)
	}
}
