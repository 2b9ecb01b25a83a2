package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/scheduler"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

// Run is one run of a compiled spec: a batch job, or one micro-batch with
// its values and the splits of each stream, by source name.
type Run struct {
	Batch    BatchContext
	Splits   map[string][]sources.Split
	KeepLate bool // late filters keep dropped rows (a late-rows sink)
	Workers  int  // tasks at once; default GOMAXPROCS
	// OnTask, when set, is called after each task attempt that succeeded
	// with the tasks done so far and the run's total (all stages), from
	// the scheduler's goroutines, one call at a time. A retried task may
	// count twice; done never exceeds total. (A progress bar's hook.)
	OnTask func(done, total int)
}

// Outcome is what a run returns to the driver.
type Outcome struct {
	// Final are the final stage's task results in task order: commit
	// messages of a sink write, or blocks to Fetch.
	Final []*scheduler.Result
	// Metrics are every task's metrics folded together.
	Metrics *exec.Metrics
	// Late are the blocks of late rows kept (Run.KeepLate).
	Late []scheduler.Location

	blocks     blockHolder
	finalStage int
	// releaseAll, when set, frees every block of the run at once (a
	// remote run: one call per executor instead of one per stage).
	releaseAll func()
}

// blockHolder is where a run's final and late blocks live until Release.
type blockHolder interface {
	Fetch(ctx context.Context, locs []scheduler.Location) ([]arrow.Record, error)
	Release(stage int)
}

// Fetch returns the records of blocks of this run (the final stage's, the
// late rows'); the caller owns them.
func (o *Outcome) Fetch(ctx context.Context, locs []scheduler.Location) ([]arrow.Record, error) {
	return o.blocks.Fetch(ctx, locs)
}

// FinalBlocks are the final stage's blocks in task order.
func (o *Outcome) FinalBlocks() []scheduler.Location {
	var locs []scheduler.Location
	for _, r := range o.Final {
		locs = append(locs, r.Outputs...)
	}
	return locs
}

// Release frees the run's final and late blocks.
func (o *Outcome) Release() {
	if o.releaseAll != nil {
		o.releaseAll()
		return
	}
	o.blocks.Release(o.finalStage)
	o.blocks.Release(LateStage)
}

// Executor runs a compiled spec's tasks: LocalExecutor in this process,
// RemoteExecutor on a cluster's executors.
type Executor interface {
	// Execute runs every stage of spec for run. The final stage's and the
	// late rows' blocks stay until the outcome's Release.
	Execute(ctx context.Context, spec *Spec, run *Run) (*Outcome, error)
	// Close frees what the executor keeps between runs.
	Close()
}

// Collect runs spec on ex and returns the final stage's records in task
// order (a batch job's result); the caller owns them.
func Collect(ctx context.Context, ex Executor, spec *Spec, run *Run) ([]arrow.Record, error) {
	out, err := ex.Execute(ctx, spec, run)
	if err != nil {
		return nil, err
	}
	defer out.Release()
	return out.Fetch(ctx, out.FinalBlocks())
}

// LocalExecutor runs a spec's tasks in this process, on the scheduler's
// worker pool: the executor of a job without a cluster. It owns the
// shuffle blocks its tasks write (Env.Blocks, a shuffle.Local by default).
//
// With Isolated set, every task crosses as bytes, the way it reaches a
// remote executor: the TaskSpec (with its stream split encoded) and the
// spec are encoded and decoded, the task runs against the decoded spec in a
// fresh task environment, and its result comes back through JSON. Nothing
// is shared with the driver but the job's code (Env.Job), the shuffle
// blocks, the broadcast data and the state directory: Spark's
// local-cluster mode, for tests.
type LocalExecutor struct {
	Env      ExecEnv
	Isolated bool
	// Logger receives the scheduler's records (scheduler.Config.Logger).
	Logger *slog.Logger

	mu      sync.Mutex
	decoded map[*Spec]*Spec
}

var _ Executor = (*LocalExecutor)(nil)

// Execute implements Executor.
func (e *LocalExecutor) Execute(ctx context.Context, spec *Spec, run *Run) (*Outcome, error) {
	if e.Env.Blocks == nil {
		e.Env.Blocks = &shuffle.Local{Node: e.Env.Node}
	}
	do := func(ctx context.Context, ts TaskSpec) (*scheduler.Result, error) {
		return RunTask(ctx, spec, &ts, &e.Env)
	}
	if e.Isolated {
		decoded, err := e.decodedSpec(spec)
		if err != nil {
			return nil, err
		}
		do = func(ctx context.Context, ts TaskSpec) (*scheduler.Result, error) {
			return e.runIsolated(ctx, decoded, ts)
		}
	}
	return execute(ctx, spec, run, scheduler.Config{Workers: run.Workers, Logger: e.Logger}, do, e.Env.Blocks)
}

// Close frees every block.
func (e *LocalExecutor) Close() {
	if c, ok := e.Env.Blocks.(interface{ Close() }); ok {
		c.Close()
	}
}

// execute runs spec's stages with the scheduler, each task through do,
// and folds the results into an outcome whose blocks live in blocks.
func execute(ctx context.Context, spec *Spec, run *Run, cfg scheduler.Config, do func(context.Context, TaskSpec) (*scheduler.Result, error), blocks blockHolder) (*Outcome, error) {
	a := &adapter{run: run, do: do, blocks: blocks, tasks: map[int][]TaskSpec{}}
	stages := make([]scheduler.Stage, len(spec.Stages))
	for i, st := range spec.Stages {
		s := scheduler.Stage{ID: st.ID, Deps: st.Deps, Tasks: st.Tasks, Sticky: st.Stateful()}
		if st.Out != nil {
			s.Parts = max(st.Out.Parts, 1)
		}
		if assign := st.Assign(run.Splits); assign != nil {
			leaves := st.Leaves()
			ts := make([]TaskSpec, len(assign))
			for t, as := range assign {
				ts[t] = TaskSpec{Batch: run.Batch, Leaf: as.Leaf, Split: as.Split, KeepLate: run.KeepLate}
				if as.Leaf >= 0 {
					if src := leaves[as.Leaf].Scan.Source; src != "" {
						ts[t].split = run.Splits[src][as.Split]
					}
				}
			}
			a.tasks[st.ID] = ts
			s.Tasks = len(ts)
		}
		stages[i] = s
	}
	if run.OnTask != nil {
		for _, s := range stages {
			a.total += max(s.Tasks, 0)
		}
	}
	out := &Outcome{Metrics: &exec.Metrics{}, blocks: blocks, finalStage: stages[len(stages)-1].ID}
	cfg.Workers = run.Workers
	final, others, err := scheduler.Run(ctx, stages, a, cfg)
	if err != nil {
		blocks.Release(LateStage) // late rows of the tasks that succeeded
		return nil, err
	}
	out.Final = final
	for _, res := range append(others, final...) {
		tm := TaskMetrics{Metrics: &exec.Metrics{}}
		if len(res.Metrics) > 0 {
			if err := json.Unmarshal(res.Metrics, &tm); err != nil {
				out.Release()
				return nil, fmt.Errorf("decode task metrics: %w", err)
			}
		}
		out.Metrics.Merge(tm.Metrics)
		out.Late = append(out.Late, tm.Late...)
	}
	return out, nil
}

// adapter is one run as the scheduler's Executor.
type adapter struct {
	run    *Run
	do     func(context.Context, TaskSpec) (*scheduler.Result, error)
	blocks blockHolder
	tasks  map[int][]TaskSpec // scan stages' tasks

	mu          sync.Mutex // serialises run.OnTask
	done, total int
}

func (a *adapter) RunTask(ctx context.Context, t scheduler.Task) (*scheduler.Result, error) {
	ts := TaskSpec{Batch: a.run.Batch, Leaf: -1, KeepLate: a.run.KeepLate}
	if tasks, ok := a.tasks[t.Stage]; ok {
		ts = tasks[t.Index]
	}
	ts.Task = t
	r, err := a.do(ctx, ts)
	if err == nil && a.run.OnTask != nil {
		a.mu.Lock()
		a.done = min(a.done+1, a.total)
		a.run.OnTask(a.done, a.total)
		a.mu.Unlock()
	}
	return r, err
}

func (a *adapter) Release(stage int) { a.blocks.Release(stage) }

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

// runIsolated runs ts as a remote executor would: the task and its
// result cross as JSON, against the decoded spec.
func (e *LocalExecutor) runIsolated(ctx context.Context, spec *Spec, ts TaskSpec) (*scheduler.Result, error) {
	b, err := encodeTask(&ts)
	if err != nil {
		return nil, err
	}
	var got TaskSpec
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, fmt.Errorf("decode task: %w", err)
	}
	env := e.Env // a fresh environment sharing only the services
	// Sinks ship their rows in commit messages, as from a remote executor.
	res, err := RunTask(sinks.WithRemote(ctx), spec, &got, &env)
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

// encodeTask encodes ts, its live split (if any) as the split's bytes.
func encodeTask(ts *TaskSpec) ([]byte, error) {
	if ts.split != nil {
		b, err := ts.split.Encode()
		if err != nil {
			return nil, fmt.Errorf("encode split: %w", err)
		}
		c := *ts
		c.StreamSplit, c.split = b, nil
		ts = &c
	}
	b, err := json.Marshal(ts)
	if err != nil {
		return nil, fmt.Errorf("encode task: %w", err)
	}
	return b, nil
}
