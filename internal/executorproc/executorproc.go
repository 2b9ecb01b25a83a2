// Package executorproc runs an executor as a child process: the binary
// that starts it (a test binary for internal/clustertest, the sluice or a
// benchmark binary for internal/localcluster) runs again as an executor,
// which prints "ready <name> <flight address>" once it joined its cluster
// and exits when its stdin closes. Stdin closes on Stop, or when the
// parent dies, so no executor outlives the process that started it.
package executorproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/internal/shuffle"
)

const (
	readyWithin = 30 * time.Second
	// exitWithin is how long an executor has to leave its cluster and
	// exit once its stdin closed; then it is killed.
	exitWithin = 10 * time.Second
)

// Proc is one executor process.
type Proc struct {
	Name   string
	Flight string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr logBuffer
	done   chan struct{} // closed once the process exited; err is then its Wait's
	err    error
}

// Start starts cmd, an executor, and waits (up to 30 s) for its ready
// line. An executor that is not ready by then is killed.
func Start(cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start an executor process: %w", err)
	}
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ready" {
				select {
				case ready <- f:
				default:
				}
			}
		}
		// Wait closes stdout, so it comes after the last read.
		p.err = cmd.Wait()
		close(p.done)
	}()
	timer := time.NewTimer(readyWithin)
	defer timer.Stop()
	select {
	case f := <-ready:
		p.Name, p.Flight = f[1], f[2]
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("executor process exited before it was ready: %v\n%s", p.err, p.stderr.String())
	case <-timer.C:
		p.Kill()
		return nil, fmt.Errorf("executor process not ready after %v:\n%s", readyWithin, p.stderr.String())
	}
}

// Pid is the executor's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the executor (SIGKILL, SIGSTOP, SIGCONT).
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the executor process exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill SIGKILLs the executor and waits for it to exit.
func (p *Proc) Kill() {
	if !p.Exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// Stop makes the executor leave its cluster and exit (its stdin closes),
// killing it if it does not within 10 s; it returns the process's exit
// error, or that it had to be killed.
func (p *Proc) Stop() error {
	if StopAll([]*Proc{p}) > 0 {
		return fmt.Errorf("executor %s did not exit within %v of its stdin closing", p.Name, exitWithin)
	}
	return p.err
}

// StopAll stops ps at once, as Stop does each, and says how many it had to
// kill.
func StopAll(ps []*Proc) (killed int) {
	for _, p := range ps {
		p.stdin.Close()
	}
	deadline := time.Now().Add(exitWithin)
	for _, p := range ps {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-p.done:
		case <-t.C:
			p.Kill()
			killed++
		}
		t.Stop()
	}
	return killed
}

// Run is the child's side: it starts an executor of runner with cfg,
// prints its ready line to stdout, and serves until it is signalled
// (SIGTERM, SIGINT), ctx ends or, with exitWithStdin, its stdin closes.
func Run(ctx context.Context, cfg cluster.Config, runner shuffle.Runner, stdout io.Writer, exitWithStdin bool) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	e, err := cluster.StartExecutor(ctx, cfg, runner)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready %s %s\n", e.Name(), e.Flight())
	if exitWithStdin {
		go func() { // the parent went away
			io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	<-ctx.Done()
	return e.Close()
}

// Stderr is what the executor logged (its first MiB).
func (p *Proc) Stderr() string { return p.stderr.String() }

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the first MiB of a chatty executor's log
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
