package dataset

import (
	"fmt"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

// NewTaskServer returns what an executor process of a job runs the
// driver's tasks with (package cluster's StartExecutor takes it): the
// job's code, rebuilt in the executor the way the driver built it — the
// functions its Datasets registered, the streams they read and the sinks
// they write, found by name when a task names them. Only names cross from
// the driver, as Spark and Flink rebuild a job's user code from its jar.
func NewTaskServer(cfg Config, out []sinks.Sink, ds ...*Dataset) (*plan.TaskServer, error) {
	cfg = cfg.withDefaults()
	job := &plan.Job{Funcs: &exec.Funcs{}, Streams: map[string]sources.Stream{}, Sinks: map[string]sinks.Sink{}}
	for _, d := range ds {
		if d.err != nil {
			return nil, d.err
		}
		funcs, err := job.Funcs.Merge(d.funcs)
		if err != nil {
			return nil, fmt.Errorf("dataset: task server: %w", err)
		}
		job.Funcs = funcs
		for _, s := range d.Streams() {
			job.Streams[s.Name()] = s
		}
	}
	for _, s := range out {
		job.Sinks[s.Name()] = s
	}
	return &plan.TaskServer{Job: job, Mem: cfg.Allocator, BatchRows: cfg.BatchRows}, nil
}
