package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is an executor whose map tasks write one block per partition with
// Rows = the sum of the rows of the blocks they read plus one, so the final
// result says whether every block reached the right reducer, and which keeps
// track of live blocks to check that every stage is released.
type fake struct {
	mu       sync.Mutex
	live     map[int]int // stage -> blocks held
	parts    map[int]int // stage -> partitions of its output
	done     map[int]int // stage -> tasks finished
	deps     map[int][]int
	fail     func(t scheduler.Task) error
	ran      atomic.Int32
	released []int
}

func newFake(stages []scheduler.Stage) *fake {
	f := &fake{live: map[int]int{}, parts: map[int]int{}, done: map[int]int{}, deps: map[int][]int{}}
	for _, s := range stages {
		f.parts[s.ID] = max(s.Parts, 1)
		f.deps[s.ID] = s.Deps
	}
	return f
}

func (f *fake) RunTask(ctx context.Context, t scheduler.Task) (*scheduler.Result, error) {
	f.ran.Add(1)
	if f.fail != nil {
		if err := f.fail(t); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.deps[t.Stage] {
		if f.live[d] == 0 && len(t.Inputs[d]) > 0 {
			return nil, fmt.Errorf("stage %d read stage %d after its release", t.Stage, d)
		}
	}
	var rows int64 = 1
	for _, locs := range t.Inputs {
		for _, l := range locs {
			if l.Part != t.Index {
				return nil, fmt.Errorf("task %d of stage %d got a block of partition %d", t.Index, t.Stage, l.Part)
			}
			rows += l.Rows
		}
	}
	res := &scheduler.Result{Metrics: []byte(`{}`)}
	for p := 0; p < f.parts[t.Stage]; p++ {
		res.Outputs = append(res.Outputs, scheduler.Location{Node: "fake", Stage: t.Stage, Map: t.Index, Part: p, Rows: rows})
		f.live[t.Stage]++
	}
	f.done[t.Stage]++
	return res, nil
}

func (f *fake) Release(stage int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live[stage] = 0
	f.released = append(f.released, stage)
}

// Two scan stages of 4 and 3 tasks feed a join stage of 2 partitions, which
// feeds a final stage of one task.
var diamond = []scheduler.Stage{
	{ID: 0, Tasks: 4, Parts: 2},
	{ID: 1, Tasks: 3, Parts: 2},
	{ID: 2, Deps: []int{0, 1}, Tasks: 2, Parts: 1},
	{ID: 3, Deps: []int{2}, Tasks: 1},
}

func TestEveryBlockReachesItsPartitionInMapOrderAndStagesAreReleasedWhenRead(t *testing.T) {
	f := newFake(diamond)
	final, others, err := scheduler.Run(context.Background(), diamond, f, scheduler.Config{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Stage 2's tasks read 4+3 blocks of one row each: 8 rows each; the
	// final task reads both: 17.
	if len(final) != 1 || len(final[0].Outputs) != 1 || final[0].Outputs[0].Rows != 17 {
		t.Fatalf("final = %+v, want one task with one block of 17 rows", final)
	}
	if len(others) != 4+3+2 {
		t.Fatalf("%d results of non-final tasks, want 9", len(others))
	}
	if fmt.Sprint(f.released) != "[0 1 2]" {
		t.Fatalf("released %v, want [0 1 2] (the final stage is the caller's)", f.released)
	}
}

func TestATaskFailureNamesStageAndTaskStopsTheStageAndReleasesEveryStage(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(map[bool]string{false: "error", true: "panic"}[panics], func(t *testing.T) {
			stages := []scheduler.Stage{{ID: 0, Tasks: 3, Parts: 2}, {ID: 1, Deps: []int{0}, Tasks: 40, Parts: 1}, {ID: 2, Deps: []int{1}, Tasks: 1}}
			f := newFake(stages)
			f.fail = func(t scheduler.Task) error {
				if t.Stage != 1 {
					return nil
				}
				if t.Index == 3 {
					if panics {
						panic("broken invariant")
					}
					return errors.New("disk on fire")
				}
				time.Sleep(20 * time.Millisecond)
				return nil
			}
			_, _, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{Workers: 2})
			want := "disk on fire"
			if panics {
				want = "panic: broken invariant"
			}
			if err == nil || !strings.Contains(err.Error(), "stage 1 task 3") || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v; want it to name stage 1 task 3 and %q", err, want)
			}
			if n := f.ran.Load(); n >= 43 {
				t.Fatalf("all %d tasks ran; the failure should have stopped the stage", n)
			}
			for s, n := range f.live {
				if n != 0 {
					t.Fatalf("stage %d still holds %d blocks after the failure", s, n)
				}
			}
		})
	}
}

func TestCancellingTheContextStopsTheJob(t *testing.T) {
	stages := []scheduler.Stage{{ID: 0, Tasks: 200}}
	f := newFake(stages)
	f.fail = func(scheduler.Task) error { time.Sleep(20 * time.Millisecond); return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := scheduler.Run(ctx, stages, f, scheduler.Config{Workers: 2})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("job took %v after cancellation", el)
	}
}

func TestABlockForAPartitionThatDoesNotExistIsAnError(t *testing.T) {
	stages := []scheduler.Stage{{ID: 0, Tasks: 1, Parts: 2}, {ID: 1, Deps: []int{0}, Tasks: 2}}
	f := newFake(stages)
	f.parts[0] = 3 // the executor disagrees with the plan
	_, _, err := scheduler.Run(context.Background(), stages, f, scheduler.Config{})
	if err == nil || !strings.Contains(err.Error(), "partition 2 of 2") {
		t.Fatalf("err = %v, want a block for partition 2 of 2 refused", err)
	}
	if f.live[0] != 0 {
		t.Fatal("stage 0's blocks were not released")
	}
}
