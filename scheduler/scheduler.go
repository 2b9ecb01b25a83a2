package scheduler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Stage is what the scheduler knows of a stage: its place in the job's
// graph and how many tasks it has. What a task does is the Executor's
// business (it holds the query's compiled spec); the scheduler never sees
// an operator, a file or a topic.
type Stage struct {
	ID    int
	Deps  []int // stages whose map output this stage reads, by stage id
	Tasks int
	// Parts is the partition count of the exchange this stage feeds; 0 for
	// the final stage, whose task results go back to the caller.
	Parts int
}

// Location names one map output block: the rows map task Map of stage
// Stage wrote for partition Part, held by executor Node until the stage
// is released.
type Location struct {
	Node  string `json:"node"`
	Stage int    `json:"stage"`
	Map   int    `json:"map"`
	Part  int    `json:"part"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes,omitempty"`
}

// Task is one task to run: task Index of stage Stage, with the locations
// of every map output block it reads, by exchange (the id of the stage
// that feeds it), in map-task order.
type Task struct {
	Stage  int                `json:"stage"`
	Index  int                `json:"index"`
	Inputs map[int][]Location `json:"inputs,omitempty"`
}

// Result is what a task returns: plain data that crosses a process
// boundary as it is.
type Result struct {
	// Outputs are the task's map output blocks, one per non-empty
	// partition (for the final stage: partition 0).
	Outputs []Location `json:"outputs,omitempty"`
	// Commit are the sink commit messages the task prepared.
	Commit [][]byte `json:"commit,omitempty"`
	// Metrics are the task's metrics, encoded by the executor; the
	// scheduler passes them through.
	Metrics []byte `json:"metrics,omitempty"`
}

// Executor runs tasks of one job.
//
// Contract:
//  1. RunTask runs one task to the end and returns its result; an error
//     means the task's outputs, if any, are discarded by the executor.
//     A panic in a task is returned as that task's error.
//  2. RunTask is called concurrently for tasks of one stage; a stage's
//     tasks run only after every stage it depends on has finished.
//  3. Release(stage) frees every map output block of stage; the scheduler
//     calls it once no stage still reads them (never for the final stage,
//     whose blocks the caller fetches and then releases).
type Executor interface {
	RunTask(ctx context.Context, t Task) (*Result, error)
	Release(stage int)
}

// Config shapes one job run.
type Config struct {
	Workers int // concurrent tasks; default GOMAXPROCS
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c
}

// Run runs stages (dependencies first, the last one final) on ex and
// returns the final stage's task results in task order, and every task's
// result of the other stages in stage then task order (for their
// metrics). The final stage's map outputs are the caller's to release.
func Run(ctx context.Context, stages []Stage, ex Executor, cfg Config) (final []*Result, others []*Result, err error) {
	cfg = cfg.withDefaults()
	if len(stages) == 0 {
		return nil, nil, errors.New("scheduler: a job needs at least one stage")
	}
	readers := map[int]int{}
	for _, st := range stages {
		for _, d := range st.Deps {
			readers[d]++
		}
	}
	// outputs[stage][part] are the stage's blocks in map-task order.
	outputs := map[int][][]Location{}
	live := map[int]bool{} // stages whose blocks are not released yet
	defer func() {
		if err != nil {
			for id := range live {
				ex.Release(id)
			}
		}
	}()
	for i, st := range stages {
		live[st.ID] = true // a failed stage may have blocks of its tasks that succeeded
		res, err := runStage(ctx, st, ex, cfg, outputs)
		if err != nil {
			return nil, nil, err
		}
		if i == len(stages)-1 {
			for _, d := range st.Deps {
				ex.Release(d)
			}
			return res, others, nil
		}
		parts := make([][]Location, max(st.Parts, 1))
		for _, r := range res {
			for _, l := range r.Outputs {
				if l.Part < 0 || l.Part >= len(parts) {
					return nil, nil, fmt.Errorf("scheduler: stage %d task %d returned a block for partition %d of %d", st.ID, l.Map, l.Part, len(parts))
				}
				parts[l.Part] = append(parts[l.Part], l)
			}
		}
		outputs[st.ID] = parts
		others = append(others, res...)
		for _, d := range st.Deps {
			if readers[d]--; readers[d] == 0 {
				ex.Release(d)
				delete(live, d)
			}
		}
	}
	return nil, nil, errors.New("unreachable")
}

// runStage runs every task of st on the worker pool and returns their
// results by task. The first failure cancels the rest.
func runStage(parent context.Context, st Stage, ex Executor, cfg Config, outputs map[int][][]Location) ([]*Result, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	res := make([]*Result, st.Tasks)
	errs := make([]error, st.Tasks)
	next := make(chan int)
	var wg sync.WaitGroup
	run := func(t int) (r *Result, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		task := Task{Stage: st.ID, Index: t}
		if len(st.Deps) > 0 {
			task.Inputs = map[int][]Location{}
			for _, d := range st.Deps {
				if parts := outputs[d]; t < len(parts) {
					task.Inputs[d] = parts[t]
				}
			}
		}
		return ex.RunTask(ctx, task)
	}
	for w := 0; w < min(cfg.Workers, st.Tasks); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				res[t], errs[t] = run(t)
				if errs[t] != nil {
					cancel()
				}
			}
		}()
	}
feed:
	for t := 0; t < st.Tasks; t++ {
		select {
		case next <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var first error
	for t, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = fmt.Errorf("stage %d task %d: %w", st.ID, t, err)
		}
	}
	if first == nil {
		first = parent.Err()
	}
	if first != nil {
		return res, first
	}
	return res, nil
}
