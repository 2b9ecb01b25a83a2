// Package killtest is the machinery of the exactly-once kill tests: it runs
// the test binary again as a child process (which runs a job, told what by an
// environment variable holding JSON) and SIGKILLs it at the moment a test
// chooses.
package killtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Child is one started child process.
type Child struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed when the child exited; err is then its Wait's
	err            error
}

// Start re-executes the test binary with env set to cfg as JSON; the
// binary's TestMain must recognise env and run the job instead of tests.
func Start(t testing.TB, env string, cfg any) *Child {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Child{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	// Under -race a process sleeps a second at exit (atexit_sleep_ms),
	// where kills would land, after the job ended.
	c.cmd.Env = append(os.Environ(), env+"="+string(b), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	// A test that fails while its child runs leaves no process behind.
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// RunOrKill waits for the child to exit or, after delay, kills it with
// SIGKILL; it says whether it killed it. A child that exits with an error
// fails the test.
func (c *Child) RunOrKill(t testing.TB, delay time.Duration) (killed bool) {
	t.Helper()
	if c.Wait(t, delay) {
		return false
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-c.done
	err := c.err
	var exit *exec.ExitError
	if err == nil || !errors.As(err, &exit) {
		// It finished just before the signal.
		if err != nil {
			t.Fatalf("child: %v\nstderr:\n%s", err, c.stderr.String())
		}
		return false
	}
	return true
}

// Stdout is what the child printed (complete once it has exited).
func (c *Child) Stdout() string { return c.stdout.String() }

// Wait waits up to d for the child to exit and says whether it did; a
// child that exits with an error fails the test.
func (c *Child) Wait(t testing.TB, d time.Duration) (exited bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-c.done:
		if c.err != nil {
			t.Fatalf("child failed: %v\nstdout:\n%s\nstderr:\n%s", c.err, c.stdout.String(), c.stderr.String())
		}
		return true
	case <-timer.C:
		return false
	}
}
