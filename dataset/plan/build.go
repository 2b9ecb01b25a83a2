package plan

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	pq "github.com/sluicedata/sluice/sources/parquet"
)

// TaskEnv is what a task runs with besides its stage fragment: made fresh
// for every task by the executor that runs it (see RunTask).
type TaskEnv struct {
	Mem       memory.Allocator
	BatchRows int
	// Shuffle returns the records of this task's partition of an exchange,
	// in map task order; the caller owns them.
	Shuffle func(exchange int) ([]arrow.Record, error)
	Batch   BatchContext
	Metrics *exec.Metrics // the task's; operators record into it
	Job     *Job
	State   state.Provider // nil for a batch job
	// Broadcast serves stream-static joins' bounded sides and in-memory
	// scans' records.
	Broadcast BroadcastStore
	// Leaf and Split: the scan leaf this task reads (-1: none) and which of
	// its splits; StreamSplit is that split for a stream leaf.
	Leaf, Split int
	StreamSplit sources.Split
	// Position, when not nil, follows the scan through its input (the
	// split, file, row group) so the task's errors can name it.
	Position *exec.Position
}

// Build instantiates the operators of task `task` of stage st.
func Build(ctx context.Context, st *Stage, task int, env TaskEnv) (exec.Operator, error) {
	b := &builder{ctx: ctx, st: st, task: task, env: env}
	return b.build(st.Root)
}

type builder struct {
	ctx  context.Context
	st   *Stage
	task int
	env  TaskEnv
}

// state is n's state spec with the batch's and the task's values filled in.
func (b *builder) state(n *Node) exec.StateSpec {
	s := *n.State
	s.Provider = b.env.State
	s.Version = b.env.Batch.StateVersion
	s.BatchTime = b.env.Batch.BatchTime
	s.Watermark = exec.FromMicros(b.env.Batch.Watermark, s.Unit)
	s.Metrics = b.env.Metrics
	return s
}

func (b *builder) build(n *Node) (op exec.Operator, err error) {
	ins := make([]exec.Operator, 0, len(n.Inputs))
	defer func() {
		if err != nil {
			for _, in := range ins {
				in.Close()
			}
		}
	}()
	for _, in := range n.Inputs {
		o, err := b.build(in)
		if err != nil {
			return nil, err
		}
		ins = append(ins, o)
	}
	mem := b.env.Mem
	switch n.Kind {
	case KindScan:
		if n.Scan.Leaf != b.env.Leaf {
			return exec.NewRecords(n.Schema, nil), nil
		}
		switch sc := n.Scan; {
		case sc.Source != "":
			return b.streamScan(n)
		case sc.MemoryKey != "":
			recs, ok := b.env.Broadcast.Records(sc.MemoryKey)
			if !ok || b.env.Split >= len(recs) {
				return nil, fmt.Errorf("%w: in-memory scan %s: record %d was not broadcast", ErrPlan, sc.MemoryKey, b.env.Split)
			}
			return exec.NewRecords(n.Schema, []arrow.Record{recs[b.env.Split]}), nil
		}
		sp := n.Scan.Splits[b.env.Split]
		return exec.NewParquetScan(b.ctx, mem, []pq.Split{sp}, n.Schema, n.Scan.PartitionColumns, b.env.BatchRows, b.env.Position), nil
	case KindShuffleRead:
		recs, err := b.env.Shuffle(n.Exchange)
		if err != nil {
			return nil, err
		}
		defer releaseRecords(recs)
		return exec.NewRecords(n.Schema, recs), nil
	case KindFilter:
		return exec.NewFilter(mem, ins[0], n.Cond)
	case KindWatermark:
		if n.Watermark.ID == "" || b.env.Metrics == nil {
			return ins[0], nil
		}
		return exec.NewEventTimeObserver(ins[0], n.Watermark.Column, n.Watermark.ID, b.env.Metrics)
	case KindWindow:
		return exec.NewWindow(mem, ins[0], *n.Window)
	case KindDedup:
		parts := max(n.Inputs[0].Parts, 1)
		kg := n.State.KeyGroups
		return exec.NewStatefulDedup(mem, ins[0], n.DedupKeys, b.state(n), exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
	case KindGroups:
		fn, ok := b.env.Job.Funcs.Group(n.Groups.Func)
		if !ok {
			return nil, fmt.Errorf("%w: flatMapGroupsWithState function %q is not registered in this job", ErrPlan, n.Groups.Func)
		}
		g := *n.Groups
		g.Watermark, g.BatchTime = exec.NoTimestamp, exec.NoTimestamp
		if n.State == nil {
			return exec.NewFlatMapGroups(mem, ins[0], g, fn, n.Schema, nil, 0, 0)
		}
		g.Watermark, g.BatchTime = b.env.Batch.Watermark, b.env.Batch.BatchTime
		parts := max(n.Inputs[0].Parts, 1)
		kg := n.State.KeyGroups
		spec := b.state(n)
		return exec.NewFlatMapGroups(mem, ins[0], g, fn, n.Schema, &spec, exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
	case KindLateFilter:
		return exec.NewLateFilter(mem, ins[0], n.Late.Column, n.Late.Threshold(b.env.Batch), append([]string{n.Late.Operator}, n.Late.Also...), b.env.Metrics)
	case KindProject:
		return exec.NewProject(mem, ins[0], n.Exprs)
	case KindSession:
		return exec.NewSessionWindow(mem, ins[0], *n.Session)
	case KindAggregate:
		if n.State != nil && n.Session != nil {
			parts := max(n.Inputs[0].Parts, 1)
			kg := n.State.KeyGroups
			return exec.NewStatefulSession(mem, ins[0], *n.Session, n.Keys, n.Aggs, b.state(n),
				exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
		}
		if n.State != nil {
			parts := max(n.Inputs[0].Parts, 1)
			kg := n.State.KeyGroups
			return exec.NewStatefulAgg(mem, ins[0], n.Keys, n.Aggs, b.state(n),
				exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
		}
		return exec.NewHashAgg(mem, ins[0], n.Keys, n.Aggs, n.AggMode)
	case KindJoin:
		if n.StreamJoin != nil {
			parts := max(n.Inputs[0].Parts, 1)
			kg := n.State.KeyGroups
			return exec.NewStreamJoin(mem, ins[0], ins[1], *n.StreamJoin, b.state(n), exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
		}
		if bc := n.Join.Broadcast; bc != nil {
			buildKeys, probeKeys := n.Join.RightKeys, n.Join.LeftKeys
			if bc.Left {
				buildKeys, probeKeys = n.Join.LeftKeys, n.Join.RightKeys
			}
			table, err := b.env.Broadcast.Table(b.ctx, bc.Key, mem, bc.Schema, buildKeys)
			if err != nil {
				return nil, fmt.Errorf("stream-static join: build the bounded side's hash table: %w", err)
			}
			return exec.NewHashJoinTable(mem, ins[0], table, probeKeys, n.Join.How, bc.Left, n.Join.Cond)
		}
		return exec.NewHashJoinWhere(mem, ins[0], ins[1], n.Join.LeftKeys, n.Join.RightKeys, n.Join.How, n.Join.BuildRight, n.Join.Cond)
	case KindUnion:
		return exec.NewUnion(mem, n.Schema, ins...)
	case KindSort:
		return exec.NewSort(mem, ins[0], n.SortKeys, n.N, b.env.BatchRows)
	case KindLimit:
		return exec.NewLimit(ins[0], n.N), nil
	case KindMapBatches:
		fn, ok := b.env.Job.Funcs.Batch(n.Func)
		if !ok {
			return nil, fmt.Errorf("%w: map_batches function %q is not registered in this job", ErrPlan, n.Func)
		}
		return exec.NewMapBatches(mem, ins[0], n.Func, n.Schema, fn), nil
	case KindWrite:
		if w := n.Write; w.SinkName != "" {
			sink, ok := b.env.Job.Sinks[w.SinkName]
			if !ok {
				return nil, fmt.Errorf("%w: sink %q is not part of this job", ErrPlan, w.SinkName)
			}
			batch := sinks.Batch{ID: b.env.Batch.ID, Mode: b.env.Batch.OutputMode, Schema: n.Inputs[0].Schema, Query: b.env.Batch.Query}
			task := b.task
			return exec.NewSinkWrite(mem, ins[0], func() (sinks.Writer, error) {
				return sink.NewWriter(b.ctx, batch, task)
			}, b.env.Metrics), nil
		}
		dir := parquet.StagingDir(n.Write.Target, n.Write.JobID)
		prefix := fmt.Sprintf("part-%05d-%s", b.task, n.Write.JobID)
		return exec.NewParquetWrite(mem, ins[0], dir, prefix, n.Write.Options), nil
	}
	return nil, fmt.Errorf("%w: cannot run a %s node in a task", ErrPlan, n.Kind)
}

// streamScan reads the task's split of a stream, building only the columns
// the scan keeps, and counts the rows read against the source.
func (b *builder) streamScan(n *Node) (exec.Operator, error) {
	sc, sp, mem := n.Scan, b.env.StreamSplit, b.env.Mem
	if sp == nil {
		return nil, fmt.Errorf("%w: stream %s: task %d of stage %d has no split", ErrPlan, sc.Source, b.task, b.st.ID)
	}
	// The columns the plan reads, when pruning dropped some.
	var pick []int
	if len(sc.SourceColumns) != len(sc.Columns) {
		for _, c := range sc.Columns {
			i := slices.Index(sc.SourceColumns, c)
			if i < 0 {
				return nil, fmt.Errorf("%w: stream %s has no column %q", ErrPlan, sc.Source, c)
			}
			pick = append(pick, i)
		}
	}
	schema := n.Schema
	m, source, count := b.env.Metrics, sc.Source, sc.Count
	// readAt names each record's place in the split's own words (a file's
	// row group, a partition's offsets) when it has them; else the
	// position names the split, when an error asks.
	b.env.Position.SetSplit(func() string { return fmt.Sprintf("stream %s, split %s", source, splitString(sp)) })
	readAt := func(ctx context.Context, mem memory.Allocator, emit func(arrow.Record, func() string) error) error {
		return sp.Read(ctx, mem, func(r arrow.Record) error { return emit(r, nil) })
	}
	cr, byColumn := sp.(sources.ColumnReader)
	byColumn = byColumn && pick != nil
	var cols []string
	if byColumn {
		// The split builds only the columns read.
		cols, pick = sc.Columns, nil
		readAt = func(ctx context.Context, mem memory.Allocator, emit func(arrow.Record, func() string) error) error {
			return cr.ReadColumns(ctx, mem, cols, func(r arrow.Record) error { return emit(r, nil) })
		}
	}
	if pr, ok := sp.(sources.PositionReader); ok {
		readAt = func(ctx context.Context, mem memory.Allocator, emit func(arrow.Record, func() string) error) error {
			return pr.ReadAt(ctx, mem, cols, func(r arrow.Record, at func() string) error {
				return emit(r, func() string { return fmt.Sprintf("stream %s, %s", source, at()) })
			})
		}
	}
	return exec.NewPositionScan(b.ctx, n.Schema, b.env.Position, func(ctx context.Context, emit func(arrow.Record, func() string) error) error {
		var rows int64
		err := readAt(ctx, mem, func(r arrow.Record, at func() string) error {
			rows += r.NumRows()
			if pick != nil {
				cols := make([]arrow.Array, len(pick))
				for i, c := range pick {
					cols[i] = r.Column(c)
				}
				p := array.NewRecord(schema, cols, r.NumRows())
				r.Release()
				r = p
			}
			return emit(r, at)
		})
		if count {
			m.AddSourceRows(source, rows)
			if bc, ok := sp.(sources.BadRecordCounter); ok {
				sk, dl := bc.BadRecordCounts()
				m.AddBadRecords(source, sk, dl)
			}
		}
		return err
	}), nil
}

// splitString names a stream split in errors: its String (a Kafka split's
// topic/partition[start,end)) or else its encoding, which every split has
// and which names its file, partition or range; cut short, as an
// in-memory split's encoding carries its rows.
func splitString(sp sources.Split) string {
	if s, ok := sp.(fmt.Stringer); ok {
		return s.String()
	}
	b, err := sp.Encode()
	if err != nil {
		return fmt.Sprintf("%T", sp)
	}
	const max = 256
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
