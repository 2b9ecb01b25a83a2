package clustertest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/shuffle"
)

// echo is the executors' job here: a task's answer is its body, marked.
type echo struct{}

func (echo) RunTask(_ context.Context, task []byte, env shuffle.Env) ([]byte, error) {
	return []byte("echo " + string(task)), nil
}

func TestMain(m *testing.M) {
	Main(m, func() (shuffle.Runner, error) { return echo{}, nil })
}

func TestExecutorsReadsTheClusterPassVariable(t *testing.T) {
	for _, c := range []struct {
		value string
		want  int
		err   string
	}{
		{"", 0, ""},
		{"3", 3, ""},
		{"0", 0, `SLUICE_TEST_CLUSTER="0": want a number of executors, at least 1`},
		{"three", 0, `SLUICE_TEST_CLUSTER="three"`},
	} {
		t.Setenv(EnvExecutors, c.value)
		n, err := Executors()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s=%q: error %v, want one containing %q", EnvExecutors, c.value, err, c.err)
		}
		if n != c.want {
			t.Errorf("%s=%q: %d executors, want %d", EnvExecutors, c.value, n, c.want)
		}
	}
}

// A cluster started outside a test (a package's cluster, from TestMain)
// runs this binary's job on its executor processes; stop ends every
// executor process and removes the cluster's files.
func TestStartMainRunsTheJobAndStopLeavesNothingBehind(t *testing.T) {
	c, stop, err := StartMain(Options{Executors: 2})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	members := c.Driver.Executors()
	if len(members) != 2 {
		t.Fatalf("the driver sees %d executors, want 2", len(members))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range members {
		out, err := c.Driver.RunTask(ctx, m.Name, "run-1", []byte("task on "+m.Name))
		if err != nil {
			t.Fatalf("executor %s: %v", m.Name, err)
		}
		if want := "echo task on " + m.Name; string(out) != want {
			t.Fatalf("executor %s answered %q, want %q", m.Name, out, want)
		}
	}
	stop()
	stopped = true
	for _, e := range c.Executors() {
		if !e.Exited() {
			t.Errorf("executor process %s (pid %d) still runs after stop", e.Name, e.Pid())
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's directory %s is still there after stop (%v)", c.Dir, err)
	}
}
