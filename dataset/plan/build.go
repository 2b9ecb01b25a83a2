package plan

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	pq "github.com/sluicedata/sluice/sources/parquet"
)

// TaskEnv is what a task needs besides its stage fragment.
type TaskEnv struct {
	Mem       memory.Allocator
	BatchRows int
	// Shuffle returns the records of one partition of an exchange, in map
	// task order. The task does not own them.
	Shuffle func(exchange, partition int) []arrow.Record
	// Funcs is the job's function registry: where MapBatches and
	// FlatMapGroupsWithState nodes find their code by name.
	Funcs *exec.Funcs
}

// Build instantiates the operators of task `task` of stage st.
func Build(ctx context.Context, st *Stage, task int, env TaskEnv) (exec.Operator, error) {
	b := &builder{ctx: ctx, st: st, task: task, env: env}
	if len(st.Assign) > 0 {
		b.assign = st.Assign[task]
	}
	return b.build(st.Root)
}

type builder struct {
	ctx    context.Context
	st     *Stage
	task   int
	env    TaskEnv
	assign Assignment
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
		leaf := -1
		for i, l := range b.st.Leaves {
			if l == n {
				leaf = i
			}
		}
		if leaf != b.assign.Leaf {
			return exec.NewRecords(n.Schema, nil), nil
		}
		if n.Scan.Stream != nil {
			sp := n.Scan.StreamSplits[b.assign.Split]
			counted := n.Scan.Counted
			// The columns the plan reads, when pruning dropped some.
			var pick []int
			if src := n.Scan.Stream.Schema(); n.Schema != src {
				for _, f := range n.Schema.Fields() {
					pick = append(pick, src.FieldIndices(f.Name)[0])
				}
			}
			schema := n.Schema
			read := sp.Read
			if cr, ok := sp.(sources.ColumnReader); ok && pick != nil {
				// The split builds only the columns read.
				cols := n.Scan.Columns
				read = func(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
					return cr.ReadColumns(ctx, mem, cols, emit)
				}
				pick = nil
			}
			return exec.NewPushScan(b.ctx, n.Schema, func(ctx context.Context, emit func(arrow.Record) error) error {
				var rows int64
				err := read(ctx, mem, func(r arrow.Record) error {
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
					return emit(r)
				})
				if counted != nil {
					counted(rows)
				}
				return err
			}), nil
		}
		if n.Scan.Table == nil {
			return b.memoryScan(n)
		}
		sp := n.Scan.Splits[b.assign.Split]
		return exec.NewParquetScan(b.ctx, mem, []pq.Split{sp}, n.Schema, n.Scan.Table.PartitionColumns, b.env.BatchRows), nil
	case KindShuffleRead:
		return exec.NewRecords(n.Schema, b.env.Shuffle(n.Exchange, b.task)), nil
	case KindFilter:
		return exec.NewFilter(mem, ins[0], n.Cond)
	case KindWatermark:
		if n.Observe == nil {
			return ins[0], nil
		}
		return exec.NewEventTimeObserver(ins[0], n.Watermark.Column, n.Observe)
	case KindWindow:
		return exec.NewWindow(mem, ins[0], *n.Window)
	case KindDedup:
		parts := max(n.Inputs[0].Parts, 1)
		kg := n.State.KeyGroups
		return exec.NewStatefulDedup(mem, ins[0], n.DedupKeys, *n.State, exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
	case KindGroups:
		fn, ok := b.env.Funcs.Group(n.Groups.Func)
		if !ok {
			return nil, fmt.Errorf("%w: flatMapGroupsWithState function %q is not registered in this job", ErrPlan, n.Groups.Func)
		}
		if n.State == nil {
			return exec.NewFlatMapGroups(mem, ins[0], *n.Groups, fn, n.Schema, nil, 0, 0)
		}
		parts := max(n.Inputs[0].Parts, 1)
		kg := n.State.KeyGroups
		return exec.NewFlatMapGroups(mem, ins[0], *n.Groups, fn, n.Schema, n.State, exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
	case KindLateFilter:
		return exec.NewLateFilter(mem, ins[0], n.Late.Column, n.Late.Threshold, n.Late.Dropped, n.Late.Side)
	case KindProject:
		return exec.NewProject(mem, ins[0], n.Exprs)
	case KindSession:
		return exec.NewSessionWindow(mem, ins[0], *n.Session)
	case KindAggregate:
		if n.State != nil && n.Session != nil {
			parts := max(n.Inputs[0].Parts, 1)
			kg := n.State.KeyGroups
			return exec.NewStatefulSession(mem, ins[0], *n.Session, n.Keys, n.Aggs, *n.State,
				exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
		}
		if n.State != nil {
			parts := max(n.Inputs[0].Parts, 1)
			kg := n.State.KeyGroups
			return exec.NewStatefulAgg(mem, ins[0], n.Keys, n.Aggs, *n.State,
				exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
		}
		return exec.NewHashAgg(mem, ins[0], n.Keys, n.Aggs, n.AggMode)
	case KindJoin:
		if n.StreamJoin != nil {
			parts := max(n.Inputs[0].Parts, 1)
			kg := n.State.KeyGroups
			return exec.NewStreamJoin(mem, ins[0], ins[1], *n.StreamJoin, *n.State, exec.KeyGroupLo(b.task, parts, kg), exec.KeyGroupLo(b.task+1, parts, kg))
		}
		if bc := n.Join.Broadcast; bc != nil && bc.Table != nil {
			table, err := bc.Table(b.ctx, mem)
			if err != nil {
				return nil, fmt.Errorf("stream-static join: build the bounded side's hash table: %w", err)
			}
			probeKeys := n.Join.LeftKeys
			if bc.Left {
				probeKeys = n.Join.RightKeys
			}
			return exec.NewHashJoinTable(mem, ins[0], table, probeKeys, n.Join.How, bc.Left, n.Join.Cond)
		}
		if bc := n.Join.Broadcast; bc != nil {
			static := exec.NewRecords(bc.Schema, bc.Records)
			if bc.Left {
				return exec.NewHashJoinWhere(mem, static, ins[0], n.Join.LeftKeys, n.Join.RightKeys, n.Join.How, false, n.Join.Cond)
			}
			return exec.NewHashJoinWhere(mem, ins[0], static, n.Join.LeftKeys, n.Join.RightKeys, n.Join.How, true, n.Join.Cond)
		}
		return exec.NewHashJoinWhere(mem, ins[0], ins[1], n.Join.LeftKeys, n.Join.RightKeys, n.Join.How, n.Join.BuildRight, n.Join.Cond)
	case KindUnion:
		return exec.NewUnion(mem, n.Schema, ins...)
	case KindSort:
		return exec.NewSort(mem, ins[0], n.SortKeys, n.N, b.env.BatchRows)
	case KindLimit:
		return exec.NewLimit(ins[0], n.N), nil
	case KindMapBatches:
		fn, ok := b.env.Funcs.Batch(n.Func)
		if !ok {
			return nil, fmt.Errorf("%w: map_batches function %q is not registered in this job", ErrPlan, n.Func)
		}
		return exec.NewMapBatches(mem, ins[0], n.Func, n.Schema, fn), nil
	case KindWrite:
		if w := n.Write; w.Sink != nil {
			task := b.task
			return exec.NewSinkWrite(mem, ins[0], func() (sinks.Writer, error) {
				return w.Sink.NewWriter(b.ctx, w.Batch, task)
			}), nil
		}
		dir := parquet.StagingDir(n.Write.Target, n.Write.JobID)
		prefix := fmt.Sprintf("part-%05d-%s", b.task, n.Write.JobID)
		return exec.NewParquetWrite(mem, ins[0], dir, prefix, n.Write.Options), nil
	}
	return nil, fmt.Errorf("%w: cannot run a %s node in a task", ErrPlan, n.Kind)
}

// memoryScan projects the in-memory record a task reads to the scan's columns.
func (b *builder) memoryScan(n *Node) (exec.Operator, error) {
	rec := n.Scan.Records[b.assign.Split]
	return exec.NewRecords(n.Schema, []arrow.Record{rec}), nil
}
