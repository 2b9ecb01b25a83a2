package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/scheduler"
	"github.com/sluicedata/sluice/sources"
)

// Run is one run of a compiled spec: a batch job, or one micro-batch with
// its values and the splits of each stream, by source name.
type Run struct {
	Batch    BatchContext
	Splits   map[string][]sources.Split
	KeepLate bool // late filters keep dropped rows (a late-rows sink)
	Workers  int  // tasks at once; default GOMAXPROCS
}

// Outcome is what a run returns to the driver.
type Outcome struct {
	// Final are the final stage's task results in task order: commit
	// messages of a sink write, or blocks to Fetch.
	Final      []*scheduler.Result
	FinalStage int
	// Metrics are every task's metrics folded together.
	Metrics *exec.Metrics
	// Late are the blocks of late rows kept (Run.KeepLate).
	Late []scheduler.Location
}

// LocalExecutor runs a spec's tasks in this process, on the scheduler's
// worker pool: the executor of a job without a cluster. It owns the
// shuffle blocks its tasks write (Env.Shuffle).
//
// With Isolated set, every task crosses as bytes, the way it will reach a
// remote executor: the TaskSpec (with its stream split encoded) and the
// spec are encoded and decoded, the task runs against the decoded spec in a
// fresh task environment, and its result comes back through JSON. Nothing
// is shared with the driver but the job's code (Env.Job), the shuffle
// blocks, the broadcast data and the state directory: Spark's
// local-cluster mode, for tests.
type LocalExecutor struct {
	Env      ExecEnv
	Isolated bool

	mu      sync.Mutex
	decoded map[*Spec]*Spec
}

// Execute runs every stage of spec for run and returns the outcome. The
// final stage's blocks stay in the shuffle until Release(outcome.FinalStage).
func (e *LocalExecutor) Execute(ctx context.Context, spec *Spec, run *Run) (*Outcome, error) {
	if e.Env.Shuffle == nil {
		e.Env.Shuffle = &MemShuffle{}
	}
	r := &localRun{e: e, spec: spec, run: run, tasks: map[int][]TaskSpec{}}
	stages := make([]scheduler.Stage, len(spec.Stages))
	for i, st := range spec.Stages {
		s := scheduler.Stage{ID: st.ID, Deps: st.Deps, Tasks: st.Tasks}
		if st.Out != nil {
			s.Parts = max(st.Out.Parts, 1)
		}
		if assign := st.Assign(run.Splits); assign != nil {
			leaves := st.Leaves()
			ts := make([]TaskSpec, len(assign))
			for t, a := range assign {
				ts[t] = TaskSpec{Batch: run.Batch, Leaf: a.Leaf, Split: a.Split, KeepLate: run.KeepLate}
				if a.Leaf >= 0 {
					if src := leaves[a.Leaf].Scan.Source; src != "" {
						ts[t].split = run.Splits[src][a.Split]
					}
				}
			}
			r.tasks[st.ID] = ts
			s.Tasks = len(ts)
		}
		stages[i] = s
	}
	if e.Isolated {
		if _, err := e.decodedSpec(spec); err != nil {
			return nil, err
		}
	}
	final, others, err := scheduler.Run(ctx, stages, r, scheduler.Config{Workers: run.Workers})
	if err != nil {
		e.Release(LateStage) // late rows of the tasks that succeeded
		return nil, err
	}
	out := &Outcome{Final: final, FinalStage: stages[len(stages)-1].ID, Metrics: &exec.Metrics{}}
	for _, res := range append(others, final...) {
		tm := TaskMetrics{Metrics: &exec.Metrics{}}
		if len(res.Metrics) > 0 {
			if err := json.Unmarshal(res.Metrics, &tm); err != nil {
				e.Release(out.FinalStage)
				e.Release(LateStage)
				return nil, fmt.Errorf("decode task metrics: %w", err)
			}
		}
		out.Metrics.Merge(tm.Metrics)
		out.Late = append(out.Late, tm.Late...)
	}
	return out, nil
}

// Collect runs spec as Execute does and returns the final stage's records
// in task order (a batch job's result); the caller owns them.
func (e *LocalExecutor) Collect(ctx context.Context, spec *Spec, run *Run) ([]arrow.Record, error) {
	out, err := e.Execute(ctx, spec, run)
	if err != nil {
		return nil, err
	}
	defer e.Release(out.FinalStage)
	var recs []arrow.Record
	for _, r := range out.Final {
		recs = append(recs, e.Fetch(r.Outputs)...)
	}
	return recs, nil
}

// Fetch returns the records of blocks, each retained for the caller.
func (e *LocalExecutor) Fetch(locs []scheduler.Location) []arrow.Record {
	recs := e.Env.Shuffle.Fetch(locs)
	for _, r := range recs {
		r.Retain()
	}
	return recs
}

// Release frees the blocks of stage.
func (e *LocalExecutor) Release(stage int) {
	if e.Env.Shuffle != nil {
		e.Env.Shuffle.Release(stage)
	}
}

// Close frees every block.
func (e *LocalExecutor) Close() {
	if e.Env.Shuffle != nil {
		e.Env.Shuffle.Close()
	}
}

func (e *LocalExecutor) decodedSpec(spec *Spec) (*Spec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.decoded[spec]; ok {
		return d, nil
	}
	b, err := spec.Encode()
	if err != nil {
		return nil, err
	}
	d, err := DecodeSpec(b)
	if err != nil {
		return nil, err
	}
	if e.decoded == nil {
		e.decoded = map[*Spec]*Spec{}
	}
	e.decoded[spec] = d
	return d, nil
}

// localRun adapts one run to the scheduler's Executor.
type localRun struct {
	e     *LocalExecutor
	spec  *Spec
	run   *Run
	tasks map[int][]TaskSpec // scan stages' tasks
}

func (r *localRun) RunTask(ctx context.Context, t scheduler.Task) (*scheduler.Result, error) {
	ts := TaskSpec{Batch: r.run.Batch, Leaf: -1, KeepLate: r.run.KeepLate}
	if tasks, ok := r.tasks[t.Stage]; ok {
		ts = tasks[t.Index]
	}
	ts.Task = t
	if !r.e.Isolated {
		return RunTask(ctx, r.spec, &ts, &r.e.Env)
	}
	return r.runIsolated(ctx, ts)
}

func (r *localRun) runIsolated(ctx context.Context, ts TaskSpec) (*scheduler.Result, error) {
	if ts.split != nil {
		b, err := ts.split.Encode()
		if err != nil {
			return nil, fmt.Errorf("encode split: %w", err)
		}
		ts.StreamSplit, ts.split = b, nil
	}
	b, err := json.Marshal(&ts)
	if err != nil {
		return nil, fmt.Errorf("encode task: %w", err)
	}
	var got TaskSpec
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, fmt.Errorf("decode task: %w", err)
	}
	spec, err := r.e.decodedSpec(r.spec)
	if err != nil {
		return nil, err
	}
	env := r.e.Env // a fresh environment sharing only the services
	res, err := RunTask(ctx, spec, &got, &env)
	if err != nil {
		return nil, err
	}
	rb, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode task result: %w", err)
	}
	out := &scheduler.Result{}
	if err := json.Unmarshal(rb, out); err != nil {
		return nil, fmt.Errorf("decode task result: %w", err)
	}
	return out, nil
}

func (r *localRun) Release(stage int) { r.e.Release(stage) }
