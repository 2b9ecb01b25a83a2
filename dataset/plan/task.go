package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/scheduler"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

// The task seam: what one task needs besides the query's compiled Spec,
// and what it returns. Nothing here holds a closure or a handle of the
// driver: a TaskSpec encodes to bytes (see Codec) and a task's result is a
// scheduler.Result (locations, commit messages, metrics).

// BatchContext is the per-batch values every task of a micro-batch gets.
// A batch job runs with NoBatch.
type BatchContext struct {
	ID int64 `json:"id"`
	// StateVersion is the state version tasks read; they commit StateVersion+1.
	StateVersion int64 `json:"state_version"`
	// Watermark the batch runs with and the one the previous batch ran
	// with, µs (math.MinInt64: none). Rows a stateful operator emits in this
	// batch have event times in (PrevWatermark, Watermark].
	Watermark     int64 `json:"watermark"`
	PrevWatermark int64 `json:"prev_watermark"`
	// BatchTime is the batch's processing time in µs as recorded in the
	// offsets log (re-runs see the same value).
	BatchTime  int64      `json:"batch_time"`
	OutputMode sinks.Mode `json:"output_mode,omitempty"`
	// Query is the streaming query's id (sinks.Batch.Query); "" for a
	// batch job.
	Query string `json:"query,omitempty"`
}

// NoBatch is the context of a batch job.
var NoBatch = BatchContext{Watermark: math.MinInt64, PrevWatermark: math.MinInt64, BatchTime: math.MinInt64}

// TaskSpec is one task as it crosses to an executor: which task of which
// stage, the batch's values, the split it reads (scan stages) and the map
// output blocks it reads (shuffle stages).
type TaskSpec struct {
	Task  scheduler.Task `json:"task"`
	Batch BatchContext   `json:"batch"`
	// Leaf and Split: a scan task reads split Split of scan leaf Leaf
	// (Leaf -1: nothing). For a stream leaf, StreamSplit is the encoded
	// split; Parquet and in-memory leaves index their spec's splits.
	Leaf        int    `json:"leaf"`
	Split       int    `json:"split"`
	StreamSplit []byte `json:"stream_split,omitempty"`
	// KeepLate: late filters keep dropped rows for the late-rows sink.
	KeepLate bool `json:"keep_late,omitempty"`

	split sources.Split // the live split, when the task runs where it was made
}

// TaskMetrics is what a task reports besides its outputs: its operators'
// metrics and, when late rows were kept, where they are.
type TaskMetrics struct {
	*exec.Metrics
	Late []scheduler.Location `json:"late,omitempty"`
}

// LateStage is the stage id under which executors keep late rows.
const LateStage = -1

// Job is what a task resolves names against: the job's functions, streams
// and sinks. The job's own code builds it in every process that runs its
// tasks (the driver, each executor), as Spark and Flink rebuild a job's
// user code from its jar; only names cross the boundary.
type Job struct {
	Funcs   *exec.Funcs
	Streams map[string]sources.Stream
	Sinks   map[string]sinks.Sink
}

// BroadcastStore serves what the driver ships to every task that reads it: the
// collected bounded sides of stream-static joins and in-memory scans.
// StaticCache implements it.
type BroadcastStore interface {
	// Records returns key's records; the Broadcast keeps ownership.
	Records(key string) ([]arrow.Record, bool)
	// Table returns key's hash table on keys, built once and shared.
	Table(ctx context.Context, key string, mem memory.Allocator, schema *arrow.Schema, keys []*expr.Expr) (*exec.JoinTable, error)
}

// ExecEnv is what an executor gives every task it runs.
type ExecEnv struct {
	Node      string // the executor's name in Locations
	Mem       memory.Allocator
	BatchRows int
	Job       *Job
	// State serves stateful operators' stores: the executor's provider,
	// which keeps them warm between the batches it runs.
	State     state.Provider
	Broadcast BroadcastStore
	// Blocks keeps the map output of the tasks run here and fetches their
	// inputs; one store per run.
	Blocks shuffle.Store
}

// RunTask runs task ts of spec in env: builds its operators, drains them,
// and keeps the output in env.Blocks (map stages, and the final stage of
// a collect) or returns it as commit messages (the final stage of a sink
// write). An operator's error names the input the task was on (inputError).
func RunTask(ctx context.Context, spec *Spec, ts *TaskSpec, env *ExecEnv) (res *scheduler.Result, err error) {
	if ts.Task.Stage < 0 || ts.Task.Stage >= len(spec.Stages) {
		return nil, fmt.Errorf("%w: task of stage %d, the spec has %d stages", ErrPlan, ts.Task.Stage, len(spec.Stages))
	}
	st := spec.Stages[ts.Task.Stage]
	metrics := &exec.Metrics{KeepLate: ts.KeepLate}
	defer metrics.Release()
	split := ts.split
	if split == nil && ts.StreamSplit != nil {
		leaf := st.Leaves()[ts.Leaf]
		s, ok := env.Job.Streams[leaf.Scan.Source]
		if !ok {
			return nil, fmt.Errorf("%w: stream %q is not part of this job", ErrPlan, leaf.Scan.Source)
		}
		if split, err = s.DecodeSplit(ts.StreamSplit); err != nil {
			return nil, fmt.Errorf("stream %s: %w", leaf.Scan.Source, err)
		}
	}
	var stores state.Provider
	if env.State != nil {
		stores = countLoads{env.State, metrics}
	}
	tenv := TaskEnv{
		Mem: env.Mem, BatchRows: env.BatchRows, Batch: ts.Batch, Metrics: metrics, Job: env.Job,
		State: stores, Broadcast: env.Broadcast, Leaf: ts.Leaf, Split: ts.Split, StreamSplit: split,
		Position: &exec.Position{},
		Shuffle: func(exchange int) ([]arrow.Record, error) {
			return env.Blocks.Fetch(ctx, ts.Task.Inputs[exchange])
		},
	}
	var out []arrow.Record
	defer func() { releaseRecords(out) }()
	op, err := Build(ctx, st, ts.Task.Index, tenv)
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
			return nil, inputError(ts, tenv.Position, err)
		}
		out = append(out, rec)
	}
	res = &scheduler.Result{}
	if st.Out == nil && st.Root.Kind == KindWrite && st.Root.Write.SinkName != "" {
		for _, r := range out {
			col := r.Column(0).(*array.Binary)
			for i := 0; i < col.Len(); i++ {
				res.Commit = append(res.Commit, append([]byte(nil), col.Value(i)...))
			}
		}
	} else {
		parts, err := partition(env.Mem, st, out)
		if err != nil {
			return nil, err
		}
		for p, recs := range parts {
			if len(recs) == 0 {
				continue
			}
			loc, err := env.Blocks.Put(st.ID, ts.Task.Index, p, recs)
			if err != nil {
				releaseRecords(recs)
				return nil, fmt.Errorf("keep map output (stage %d, task %d, partition %d): %w", st.ID, ts.Task.Index, p, err)
			}
			res.Outputs = append(res.Outputs, loc)
		}
	}
	tm := TaskMetrics{Metrics: metrics}
	if late := metrics.TakeLate(); len(late) > 0 {
		loc, err := env.Blocks.Put(LateStage, st.ID<<20|ts.Task.Index, 0, late)
		if err != nil {
			releaseRecords(late)
			return nil, fmt.Errorf("keep late rows (stage %d, task %d): %w", st.ID, ts.Task.Index, err)
		}
		tm.Late = []scheduler.Location{loc}
	}
	if res.Metrics, err = json.Marshal(tm); err != nil {
		return nil, fmt.Errorf("encode task metrics: %w", err)
	}
	return res, nil
}

// inputError names where in its input a task failed: the scan's split,
// file and row group of the record it was on, or, when its rows come from
// a shuffle (every split's rows meet there), the shuffle partition. The
// scheduler adds the stage and task.
func inputError(ts *TaskSpec, pos *exec.Position, err error) error {
	if at := pos.String(); at != "" {
		return fmt.Errorf("input %s: %w", at, err)
	}
	if len(ts.Task.Inputs) > 0 {
		return fmt.Errorf("input partition %d of the shuffle (the split is not known after a shuffle): %w", ts.Task.Index, err)
	}
	return err
}

// partition splits a task's output by the keys of the exchange st feeds
// (exec.HashColumns of the key columns, modulo the partition count, or by
// key group), keeping record order within each partition. It does not take
// ownership of recs; the returned records are new references.
func partition(mem memory.Allocator, st *Stage, recs []arrow.Record) ([][]arrow.Record, error) {
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
			return nil, fmt.Errorf("%w: exchange key %s is not a column of %s", ErrPlan, k, st.Out.Schema)
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
				releaseRecords(d)
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

func releaseRecords(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

// countLoads counts in a task's metrics the stores its operators had to
// load from files.
type countLoads struct {
	state.Provider
	m *exec.Metrics
}

func (c countLoads) Open(spec state.StoreSpec, version int64) (state.Store, error) {
	st, err := c.Provider.Open(spec, version)
	if err == nil && st.Loaded() {
		c.m.AddStateLoad(spec.Operator)
	}
	return st, err
}

func (c countLoads) OpenAux(spec state.StoreSpec, version int64) (state.Store, []arrow.Record, error) {
	st, aux, err := c.Provider.OpenAux(spec, version)
	if err == nil && st.Loaded() {
		c.m.AddStateLoad(spec.Operator)
	}
	return st, aux, err
}
