package scheduler_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sluicedata/sluice/scheduler"
)

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A node dying under a task is logged, with the retry it causes, through
// the logger the caller gave.
func TestALostNodeAndTheRetryAreLogged(t *testing.T) {
	f := newNodesFake(diamond)
	killed := false
	f.kill = func(task scheduler.Task) bool {
		if !killed && task.Stage == 2 && task.Index == 0 {
			killed = true
			return true
		}
		return false
	}
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if _, _, err := scheduler.Run(context.Background(), diamond, f, scheduler.Config{Nodes: f.nodes("a", "b", "c"), Logger: log}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	var dead string
	for n := range f.dead {
		dead = n
	}
	for _, want := range []string{
		fmt.Sprintf(`level=WARN msg="executor lost" node=%s stage=2 task=0`, dead),
		fmt.Sprintf(`level=WARN msg="task retried" stage=2 task=0 failures_counted=0 node=%s reason="its node was lost (not counted)"`, dead),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
