package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
)

// Config shapes one job run.
type Config struct {
	Allocator memory.Allocator // default memory.DefaultAllocator
	Workers   int              // concurrent tasks; default GOMAXPROCS
	BatchRows int              // max rows per record from scans and sorts; default 65536
	Executor  Executor         // default Local
	// Funcs is the job's function registry, handed to every task (the
	// plan names user functions; tasks find them here).
	Funcs *exec.Funcs
}

func (c Config) withDefaults() Config {
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 1 << 16
	}
	if c.Executor == nil {
		c.Executor = Local{}
	}
	return c
}

// Executor runs one task: the operators of stage st for task index `task`,
// drained to the end. It returns the task's output records by partition of
// the exchange the stage feeds (one partition for the final stage); the
// caller owns them. The first implementation is Local (goroutines in this
// process); cluster executors implement the same contract over RPC.
type Executor interface {
	RunTask(ctx context.Context, st *plan.Stage, task int, env plan.TaskEnv) ([][]arrow.Record, error)
}

// Local runs tasks in the calling process.
type Local struct{}

var _ Executor = Local{}

func (Local) RunTask(ctx context.Context, st *plan.Stage, task int, env plan.TaskEnv) (parts [][]arrow.Record, err error) {
	var out []arrow.Record
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
		releaseAll(out)
		if err != nil {
			for _, p := range parts {
				releaseAll(p)
			}
			parts = nil
		}
	}()
	op, err := plan.Build(ctx, st, task, env)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := op.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	for {
		rec, err := op.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return Partition(env.Mem, st, out)
}

// Partition splits a task's output by the keys of the exchange st feeds
// (hash of the key columns modulo the partition count, see exec.HashColumns),
// keeping record order within each partition. It does not take ownership of
// recs; the returned records are new references the caller owns.
func Partition(mem memory.Allocator, st *plan.Stage, recs []arrow.Record) ([][]arrow.Record, error) {
	parts := 1
	if st.Out != nil {
		parts = max(st.Out.Parts, 1)
	}
	dst := make([][]arrow.Record, parts)
	if parts == 1 {
		for _, r := range recs {
			r.Retain()
			dst[0] = append(dst[0], r)
		}
		return dst, nil
	}
	var keyCols []int
	for _, k := range st.Out.Keys {
		idx := st.Out.Schema.FieldIndices(k.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("%w: exchange key %s is not a column of %s", plan.ErrPlan, k, st.Out.Schema)
		}
		keyCols = append(keyCols, idx[0])
	}
	for _, r := range recs {
		var split []arrow.Record
		var err error
		if kg := st.Out.KeyGroups; kg > 0 {
			split, err = exec.PartitionByKeyGroup(mem, r, keyCols, kg, parts)
		} else {
			split, err = exec.PartitionRecord(mem, r, keyCols, parts)
		}
		if err != nil {
			for _, d := range dst {
				releaseAll(d)
			}
			return nil, fmt.Errorf("partition: %w", err)
		}
		for p, s := range split {
			if s != nil {
				dst[p] = append(dst[p], s)
			}
		}
	}
	return dst, nil
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

// Run executes a physical plan and returns the final stage's records in task
// order (deterministic for a given input). The caller owns them.
func Run(ctx context.Context, root *plan.Node, cfg Config) ([]arrow.Record, error) {
	cfg = cfg.withDefaults()
	stages, err := plan.Stages(root)
	if err != nil {
		return nil, err
	}
	j := &job{cfg: cfg, stages: stages, shuffle: map[int][][]arrow.Record{}, readers: map[int]int{}}
	defer j.releaseAll()
	for _, st := range stages {
		for _, d := range st.Deps {
			j.readers[d]++
		}
	}
	var final []arrow.Record
	for _, st := range stages {
		outs, err := j.runStage(ctx, st)
		if err != nil {
			return nil, err
		}
		for _, d := range st.Deps {
			if j.readers[d]--; j.readers[d] == 0 {
				j.release(d)
			}
		}
		if st.Out == nil {
			for _, o := range outs {
				final = append(final, o[0]...)
			}
			continue
		}
		j.store(st, outs)
	}
	return final, nil
}

type job struct {
	cfg     Config
	stages  []*plan.Stage
	mu      sync.Mutex
	shuffle map[int][][]arrow.Record // stage id -> partition -> records in map task order
	readers map[int]int              // stage id -> stages still to read it
}

func (j *job) env() plan.TaskEnv {
	return plan.TaskEnv{
		Mem:       j.cfg.Allocator,
		BatchRows: j.cfg.BatchRows,
		Funcs:     j.cfg.Funcs,
		Shuffle: func(ex, p int) []arrow.Record {
			j.mu.Lock()
			defer j.mu.Unlock()
			return j.shuffle[ex][p]
		},
	}
}

// runStage runs every task of st on the worker pool and returns the outputs
// indexed by task. The first failure cancels the rest.
func (j *job) runStage(parent context.Context, st *plan.Stage) ([][][]arrow.Record, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	outs := make([][][]arrow.Record, st.Tasks)
	errs := make([]error, st.Tasks)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(j.cfg.Workers, st.Tasks); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				out, err := j.cfg.Executor.RunTask(ctx, st, t, j.env())
				outs[t], errs[t] = out, err
				if err != nil {
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
		for _, o := range outs {
			for _, p := range o {
				releaseAll(p)
			}
		}
		return nil, first
	}
	return outs, nil
}

// store keeps a stage's map outputs as its exchange's partitions, each in
// map-task order.
func (j *job) store(st *plan.Stage, outs [][][]arrow.Record) {
	dst := make([][]arrow.Record, max(st.Out.Parts, 1))
	for _, o := range outs {
		for p, recs := range o {
			dst[p] = append(dst[p], recs...)
		}
	}
	j.mu.Lock()
	j.shuffle[st.ID] = dst
	j.mu.Unlock()
}

func (j *job) release(id int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, p := range j.shuffle[id] {
		for _, r := range p {
			r.Release()
		}
	}
	delete(j.shuffle, id)
}

func (j *job) releaseAll() {
	for id := range j.shuffle {
		j.release(id)
	}
}
