// Package proctest runs built binaries as child processes of a test: it
// builds a package once per test process, starts the binary with its
// stdout and stderr read while it runs, waits for lines in them, stops it
// with SIGTERM, and picks free ports on 127.0.0.1.
//
// Invariants:
//  1. A process Start started is killed and reaped in t.Cleanup, whether
//     the test passed or failed, so no test leaves a process running.
//  2. Build builds each package once per test process, into one temporary
//     directory that RemoveBuilds (called from TestMain) deletes.
package proctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type build struct {
	once sync.Once
	bin  string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
	buildDir string
)

// Build builds package pkg (a path as `go build` takes it, relative to the
// test's package directory) once per test process and returns the binary.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildsMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{}
		builds[pkg] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.bin, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

func goBuild(pkg string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	buildsMu.Lock()
	if buildDir == "" {
		buildDir, err = os.MkdirTemp("", "proctest-")
	}
	parent := buildDir
	buildsMu.Unlock()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(parent, "")
	if err != nil {
		return "", err
	}
	// The binary is named as go build would name it: usage lines say so.
	name := filepath.Base(filepath.Clean(pkg))
	if name == "." {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		name = filepath.Base(wd)
	}
	bin := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// RemoveBuilds deletes what Build built; a TestMain calls it after m.Run.
func RemoveBuilds() {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Proc is a running child process. Err is how it ended, once Done is
// closed.
type Proc struct {
	Cmd            *exec.Cmd
	Stdout, Stderr *Buffer
	done           chan struct{}
	err            error
}

// Start starts cmd (made with exec.CommandContext, its Env and Dir set as
// the test needs) with its output in p.Stdout and p.Stderr; t.Cleanup
// kills it.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Stdout: &Buffer{}, Stderr: &Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Wait waits for the process to exit (ctx bounds it) and returns how it
// ended.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("still running at the test's deadline: %w", ctx.Err())
	}
}

// WaitFor waits until out (p.Stdout or p.Stderr) holds n matches of re and
// returns the submatches of the last; the test fails if the process exits
// first or timeout passes.
func (p *Proc) WaitFor(t testing.TB, out *Buffer, re string, n int, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		if m := rx.FindAllStringSubmatch(out.String(), -1); len(m) >= n {
			return m[len(m)-1]
		}
		select {
		case <-p.done:
			t.Fatalf("%v exited (%v) before %d× %q:\n%s\n%s", p.Cmd.Args, p.err, n, re, p.Stdout.String(), p.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: no %d× %q within %v:\n%s\n%s", p.Cmd.Args, n, re, timeout, p.Stdout.String(), p.Stderr.String())
		}
	}
}

// Term sends SIGTERM and wants exit status 0 within 30 s.
func (p *Proc) Term(t testing.TB) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%v still running 30 s after SIGTERM:\n%s\n%s", p.Cmd.Args, p.Stdout.String(), p.Stderr.String())
	}
	if p.err != nil {
		t.Fatalf("%v after SIGTERM: %v, want exit 0\n%s\n%s", p.Cmd.Args, p.err, p.Stdout.String(), p.Stderr.String())
	}
}

// FreePort is a port free now on 127.0.0.1, for TCP (and UDP too when
// gossip will use it).
func FreePort(t testing.TB, udpToo bool) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		if !udpToo {
			l.Close()
			return port
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+port)
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for TCP and UDP in 20 tries")
	return ""
}

// Buffer is a process's output, read while it runs.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
