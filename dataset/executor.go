package dataset

import (
	"fmt"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

// JobFunc builds a job's code from its parameters (Config.Params): the
// Datasets it runs and the sinks they write. A job binary's driver and its
// executors call the same one.
type JobFunc func(params map[string]string) (sinks []sinks.Sink, ds []*Dataset, err error)

// NewTaskServer returns what an executor process of a job runs the
// driver's tasks with (package cluster's StartExecutor takes it): the
// job's code, rebuilt in the executor with the driver's parameters the way
// the driver built it — the functions its Datasets registered, the streams
// they read and the sinks they write, found by name when a task names
// them. Only names and parameters cross from the driver, as Spark and
// Flink rebuild a job's user code from its jar.
func NewTaskServer(cfg Config, job JobFunc) *plan.TaskServer {
	cfg = cfg.withDefaults()
	return &plan.TaskServer{Mem: cfg.Allocator, BatchRows: cfg.BatchRows, Jobs: func(params map[string]string) (*plan.Job, error) {
		out, ds, err := job(params)
		if err != nil {
			return nil, err
		}
		return jobOf(out, ds)
	}}
}

func jobOf(out []sinks.Sink, ds []*Dataset) (*plan.Job, error) {
	job := &plan.Job{Funcs: &exec.Funcs{}, Streams: map[string]sources.Stream{}, Sinks: map[string]sinks.Sink{}}
	for _, d := range ds {
		if d.err != nil {
			return nil, d.err
		}
		funcs, err := job.Funcs.Merge(d.funcs)
		if err != nil {
			return nil, fmt.Errorf("dataset: job: %w", err)
		}
		job.Funcs = funcs
		for _, s := range d.Streams() {
			job.Streams[s.Name()] = s
		}
	}
	for _, s := range out {
		job.Sinks[s.Name()] = s
	}
	return job, nil
}
