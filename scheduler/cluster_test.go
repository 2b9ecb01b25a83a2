package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedata/sluice/scheduler"
)

// nodesFake is an executor of several nodes: blocks live on the node that
// ran the task, a dead node runs nothing and serves no block, and each
// map task's block rows say which partition of which inputs it read, so a
// lost or doubled block shows in the final rows.
type nodesFake struct {
	mu     sync.Mutex
	dead   map[string]bool
	parts  map[int]int
	blocks map[scheduler.Location]bool // live blocks by (node, stage, map, part)
	ranOn  map[string][]string         // "stage/task" -> nodes of its attempts
	// kill, when set, is called before every task attempt; a true result
	// kills the attempt's node first.
	kill func(t scheduler.Task) bool
}

func newNodesFake(stages []scheduler.Stage) *nodesFake {
	f := &nodesFake{dead: map[string]bool{}, parts: map[int]int{}, blocks: map[scheduler.Location]bool{}, ranOn: map[string][]string{}}
	for _, s := range stages {
		f.parts[s.ID] = max(s.Parts, 1)
	}
	return f
}

func key(l scheduler.Location) scheduler.Location { l.Rows, l.Bytes = 0, 0; return l }

func (f *nodesFake) RunTask(ctx context.Context, t scheduler.Task) (*scheduler.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("%d/%d", t.Stage, t.Index)
	f.ranOn[id] = append(f.ranOn[id], t.Node)
	if f.kill != nil && f.kill(t) {
		f.dead[t.Node] = true
		for l := range f.blocks {
			if l.Node == t.Node {
				delete(f.blocks, l)
			}
		}
	}
	if f.dead[t.Node] {
		return nil, fmt.Errorf("node %s: connection refused: %w", t.Node, scheduler.ErrNodeLost)
	}
	var rows int64 = 1
	for _, locs := range t.Inputs {
		for _, l := range locs {
			if !f.blocks[key(l)] {
				return nil, &scheduler.FetchError{Loc: l, Err: errors.New("no such block")}
			}
			rows += l.Rows
		}
	}
	res := &scheduler.Result{}
	for p := 0; p < f.parts[t.Stage]; p++ {
		l := scheduler.Location{Node: t.Node, Stage: t.Stage, Map: t.Index, Part: p, Rows: rows}
		f.blocks[key(l)] = true
		res.Outputs = append(res.Outputs, l)
	}
	return res, nil
}

func (f *nodesFake) Release(stage int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for l := range f.blocks {
		if l.Stage == stage {
			delete(f.blocks, l)
		}
	}
}

func (f *nodesFake) nodes(names ...string) func(context.Context) ([]scheduler.Node, error) {
	return func(context.Context) ([]scheduler.Node, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []scheduler.Node
		for _, n := range names {
			if !f.dead[n] {
				out = append(out, scheduler.Node{Name: n, Slots: 2})
			}
		}
		return out, nil
	}
}

func TestANodeThatDiesMidJobCostsRetriesAndReRunsOnlyTheMapTasksWhoseBlocksItHeld(t *testing.T) {
	want := mustRun(t, diamond, newNodesFake(diamond), []string{"a", "b", "c"})
	for _, at := range []string{"2/0", "2/1", "3/0", "1/2"} {
		t.Run("kill at "+at, func(t *testing.T) {
			f := newNodesFake(diamond)
			killed := false
			f.kill = func(task scheduler.Task) bool {
				if !killed && fmt.Sprintf("%d/%d", task.Stage, task.Index) == at {
					killed = true
					return true
				}
				return false
			}
			got := mustRun(t, diamond, f, []string{"a", "b", "c"})
			if got != want {
				t.Fatalf("final rows %s, want %s (as with no failure)", got, want)
			}
			if !killed {
				t.Fatal("the kill never happened")
			}
			for id, nodes := range f.ranOn {
				for _, n := range nodes[1:] {
					if f.dead[n] {
						t.Fatalf("task %s retried on the dead node %s (attempts on %v)", id, n, nodes)
					}
				}
			}
		})
	}
}

func mustRun(t *testing.T, stages []scheduler.Stage, f *nodesFake, nodes []string) string {
	t.Helper()
	final, others, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{Nodes: f.nodes(nodes...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(others) != 4+3+2 {
		t.Fatalf("%d results of non-final tasks, want one per task (9)", len(others))
	}
	var rows []string
	for _, r := range final {
		for _, l := range r.Outputs {
			rows = append(rows, fmt.Sprint(l.Rows))
		}
	}
	return strings.Join(rows, ",")
}

func TestATaskWhoseEveryNodeDiesFailsNamingThemAfterWaitingForANewOne(t *testing.T) {
	stages := []scheduler.Stage{{ID: 0, Tasks: 2}}
	f := newNodesFake(stages)
	f.kill = func(scheduler.Task) bool { return true }
	start := time.Now()
	_, _, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{Nodes: f.nodes("a", "b", "c", "d", "e"), NodeWait: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no live node") || !strings.Contains(err.Error(), "[a b c d e]") {
		t.Fatalf("err = %v, want no live node, naming the five lost", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
		t.Fatalf("failed after %v, want after waiting NodeWait (200ms) for a new node", el)
	}
	// Each attempt that found a node dead for the first time was free:
	// together the tasks tried every node (at most its 2 slots at once).
	if n := len(f.ranOn["0/0"]) + len(f.ranOn["0/1"]); n < 5 || n > 10 {
		t.Fatalf("%d attempts, want every node tried (5 to 10)", n)
	}
}

func TestANodeThatJoinsWhileAStageWaitsGetsItsTasks(t *testing.T) {
	stages := []scheduler.Stage{{ID: 0, Tasks: 3}}
	f := newNodesFake(stages)
	var mu sync.Mutex
	names := []string{"a"}
	f.kill = func(task scheduler.Task) bool { return task.Node == "a" }
	go func() {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		names = append(names, "b")
		mu.Unlock()
	}()
	nodes := func(ctx context.Context) ([]scheduler.Node, error) {
		mu.Lock()
		defer mu.Unlock()
		return f.nodes(names...)(ctx)
	}
	if _, _, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{Nodes: nodes, NodeWait: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for id, on := range f.ranOn {
		if on[len(on)-1] != "b" {
			t.Fatalf("task %s last ran on %v, want b", id, on)
		}
	}
}

func TestStickyTasksStayOnTheirNodeAndOnlyTheDepartedNodesTasksMove(t *testing.T) {
	stages := []scheduler.Stage{{ID: 0, Tasks: 4, Parts: 64}, {ID: 1, Deps: []int{0}, Tasks: 64, Sticky: true}}
	place := func(nodes ...string) map[string]string {
		f := newNodesFake(stages)
		if _, _, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{Nodes: f.nodes(nodes...)}); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for id, on := range f.ranOn {
			if strings.HasPrefix(id, "1/") {
				out[id] = on[0]
			}
		}
		return out
	}
	three := place("a", "b", "c")
	if again := place("a", "b", "c"); fmt.Sprint(again) != fmt.Sprint(three) {
		t.Fatalf("placement changed between two runs on the same nodes:\n%v\n%v", three, again)
	}
	count := map[string]int{}
	for _, n := range three {
		count[n]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if count[n] < 10 {
			t.Fatalf("node %s owns %d of 64 ranges: rendezvous should spread them (%v)", n, count[n], count)
		}
	}
	two := place("a", "c")
	four := place("a", "b", "c", "d")
	for id, n := range three {
		if n != "b" && two[id] != n {
			t.Fatalf("task %s moved from %s to %s when b left", id, n, two[id])
		}
		if four[id] != n && four[id] != "d" {
			t.Fatalf("task %s moved from %s to %s when d joined (only moves to d are allowed)", id, n, four[id])
		}
	}
}

// A task still waiting for a slot when every node of its round dies never
// ran: that costs it no attempt, as the tasks that ran there lose none.
func TestATaskThatNeverGotASlotBeforeEveryNodeDiedLosesNoAttempt(t *testing.T) {
	stages := []scheduler.Stage{{ID: 0, Tasks: 5}}
	f := newNodesFake(stages)
	f.kill = func(task scheduler.Task) bool { return task.Node != "c" }
	// a and b (4 slots for 5 tasks) until both died, then c.
	first, then := f.nodes("a", "b"), f.nodes("c")
	nodes := func(ctx context.Context) ([]scheduler.Node, error) {
		if ns, err := first(ctx); err != nil || len(ns) > 0 {
			return ns, err
		}
		return then(ctx)
	}
	final, _, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{Nodes: nodes, MaxAttempts: 1, NodeWait: 10 * time.Second})
	if err != nil {
		t.Fatalf("the job failed: %v (attempts by task: %v)", err, f.ranOn)
	}
	if len(final) != 5 {
		t.Fatalf("%d results, want 5", len(final))
	}
	for id, on := range f.ranOn {
		if on[len(on)-1] != "c" {
			t.Fatalf("task %s last ran on %v, want c", id, on)
		}
	}
}
