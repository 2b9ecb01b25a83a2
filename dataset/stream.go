package dataset

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

// ReadStream makes a Dataset over a streaming source. It is run by package
// microbatch, one micro-batch at a time; batch actions (Collect, Write) refuse it.
func ReadStream(src sources.Stream) *Dataset {
	return &Dataset{node: plan.NewStreamScan(src)}
}

// Streams lists the streaming sources the Dataset reads (none for a batch
// Dataset), in plan order.
func (d *Dataset) Streams() []sources.Stream {
	if d.err != nil {
		return nil
	}
	return plan.Streams(d.node)
}

// Watermark is one WithWatermark declaration of a streaming Dataset.
type Watermark struct {
	ID          string // "wm-0", ... in plan order: the key of its watermark in checkpoints
	Column      string
	DelayMicros int64
}

// Watermarks lists the WithWatermark declarations in plan order.
func (d *Dataset) Watermarks() []Watermark {
	if d.err != nil {
		return nil
	}
	ids := plan.WatermarkIDs(d.node)
	var out []Watermark
	d.node.Walk(func(n *plan.Node) {
		if n.Kind == plan.KindWatermark {
			out = append(out, Watermark{ID: ids[n.Watermark], Column: n.Watermark.Column, DelayMicros: n.Watermark.DelayMicros})
		}
	})
	return out
}

// IsStreaming reports whether the Dataset reads a streaming source.
func (d *Dataset) IsStreaming() bool { return len(d.Streams()) > 0 }

// StreamOptions configure a streaming query's compilation.
type StreamOptions struct {
	KeyGroups int
	Emit      sinks.Mode
	// State serves stateful operators' stores; the caller owns it (the
	// micro-batch driver: one per query, over <checkpoint>/state).
	State state.Provider
	// Logger, when set, replaces Config.Logger for the query's tasks (the
	// micro-batch driver passes the query's).
	Logger *slog.Logger
}

// StreamQuery is a streaming Dataset compiled once for a sink: every
// micro-batch runs the same spec with the batch's values and splits, on an
// in-process executor that keeps warm what lasts between batches (the
// bounded sides of stream-static joins). Package microbatch drives it; it
// is not meant for jobs.
type StreamQuery struct {
	ds     *Dataset
	cfg    Config
	spec   *plan.Spec
	root   *plan.Node // the logical plan with its sink write
	static *plan.StaticCache
	ex     plan.Executor
}

// CompileStream compiles d into a StreamQuery writing into sink.
func (d *Dataset) CompileStream(sink sinks.Sink, o StreamOptions) (*StreamQuery, error) {
	if d.err != nil {
		return nil, d.err
	}
	cfg := d.cfg.withDefaults()
	if o.Logger != nil {
		cfg.Logger = o.Logger
	}
	root := plan.NewSinkWrite(d.node, sink)
	spec, err := plan.Compile(root, cfg.ShufflePartitions, &plan.StreamOptions{KeyGroups: o.KeyGroups, Emit: string(o.Emit)})
	if err != nil {
		return nil, err
	}
	job := &plan.Job{Funcs: d.funcs, Streams: map[string]sources.Stream{}, Sinks: map[string]sinks.Sink{sink.Name(): sink}}
	for _, s := range d.Streams() {
		job.Streams[s.Name()] = s
	}
	if cfg.Executor == ExecutorCluster {
		if err := refuseInProcess(job); err != nil {
			return nil, err
		}
	}
	q := &StreamQuery{ds: d, cfg: cfg, spec: spec, root: root, static: &plan.StaticCache{}}
	q.static.SetMemory(spec)
	if q.ex, err = d.executor(cfg, job, q.static, o.State); err != nil {
		q.static.Release()
		return nil, err
	}
	return q, nil
}

// Fence names the query and this driver's epoch (a count of the query's
// starts, from its checkpoint) in every task: executors refuse tasks of an
// epoch lower than one they served, so a driver that a newer one replaced
// runs nothing more. In-process executors have nothing to fence.
func (q *StreamQuery) Fence(query string, epoch int64) {
	if r, ok := q.ex.(*plan.RemoteExecutor); ok {
		r.Query, r.Epoch = query, epoch
	}
}

// Waiting says why the running batch waits, when its executor waits for
// something (a cluster with no live executor); "" otherwise.
func (q *StreamQuery) Waiting() string {
	if w, ok := q.ex.(interface{ Waiting() string }); ok {
		return w.Waiting()
	}
	return ""
}

// Spec is the compiled query.
func (q *StreamQuery) Spec() *plan.Spec { return q.spec }

// Explain is the query's EXPLAIN text.
func (q *StreamQuery) Explain() string {
	return explainText(q.root, q.spec)
}

// BatchResult is what one micro-batch's tasks returned.
type BatchResult struct {
	Commit  []sinks.CommitMessage // in task order
	Metrics *exec.Metrics
	// Late are the rows late filters dropped, when kept; the caller owns them.
	Late []arrow.Record
}

// RunBatch runs one micro-batch with the batch's values and each stream's
// splits (by source name). Committing the returned messages is the
// caller's (the micro-batch driver's) job.
func (q *StreamQuery) RunBatch(ctx context.Context, b plan.BatchContext, splits map[string][]sources.Split, keepLate bool) (*BatchResult, error) {
	for _, side := range q.spec.Statics {
		static := q.spec.StaticPlan(side.Key)
		err := q.static.Load(side.Key, b.StateVersion, side.Refresh, func() ([]arrow.Record, error) {
			fresh, err := reopen(ctx, static)
			if err != nil {
				return nil, fmt.Errorf("refresh the bounded side of a stream-static join: %w", err)
			}
			recs, err := q.ds.run(ctx, fresh)
			if err != nil {
				return nil, fmt.Errorf("collect the bounded side of a stream-static join: %w", err)
			}
			return recs, nil
		})
		if err != nil {
			return nil, err
		}
	}
	out, err := q.ex.Execute(ctx, q.spec, &plan.Run{Batch: b, Splits: splits, KeepLate: keepLate, Workers: q.cfg.Parallelism})
	if err != nil {
		return nil, err
	}
	res := &BatchResult{Metrics: out.Metrics}
	for _, r := range out.Final {
		for _, m := range r.Commit {
			res.Commit = append(res.Commit, sinks.CommitMessage(m))
		}
	}
	defer out.Release()
	if len(out.Late) > 0 {
		if res.Late, err = out.Fetch(ctx, out.Late); err != nil {
			return nil, fmt.Errorf("fetch late rows: %w", err)
		}
	}
	return res, nil
}

// Close frees what the query kept between batches.
func (q *StreamQuery) Close() {
	q.ex.Close()
	q.static.Release()
}

var errStreaming = fmt.Errorf("dataset: this Dataset reads a stream; run it with microbatch.WriteStream")

func (d *Dataset) checkBatch() error {
	if d.err != nil {
		return d.err
	}
	if d.IsStreaming() {
		return errStreaming
	}
	return nil
}

// refuseInProcess refuses a job whose streams or sinks keep their data in
// this process: a cluster's executors could not read or write them.
func refuseInProcess(job *plan.Job) error {
	for name, s := range job.Streams {
		if ip, ok := s.(sources.InProcess); ok {
			if why := ip.InProcess(); why != "" {
				return fmt.Errorf("dataset: stream %q cannot run on a cluster: %s", name, why)
			}
		}
	}
	for name, s := range job.Sinks {
		if ip, ok := s.(sinks.InProcess); ok {
			if why := ip.InProcess(); why != "" {
				return fmt.Errorf("dataset: sink %q cannot run on a cluster: %s", name, why)
			}
		}
	}
	return nil
}
