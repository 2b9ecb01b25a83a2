package plan

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
)

// Joins in a streaming query.
//
// A stream joined with a bounded Dataset (stream-static) keeps no state: the
// bounded side is collected once per query (or every Join.Refresh batches)
// into a StaticCache and broadcast to every task of the stream side, which
// builds its hash table from it.
//
// A stream joined with a stream is stateful: both sides are exchanged by
// key group of the join keys, and a stream join operator (exec.StreamJoin)
// keeps each side's rows in state. What bounds that state is an event-time
// pair (a watermarked column on each side) and a range of their difference,
// found in the join keys (equal window ends: the range is [0, 0]) or in the
// residual condition (right.ts BETWEEN left.ts AND left.ts + 15 min: the
// range is [0, 15 min]). Inner joins may run without one (state grows, or a
// TTL drops it); outer and semi joins need both bounds.

// StaticCache holds the collected bounded side of each stream-static join of
// a query between micro-batches (and the records of in-memory scans): the
// BroadcastStore of an in-process executor. It owns the records; Release frees
// them.
type StaticCache struct {
	mu     sync.Mutex
	recs   map[string][]arrow.Record
	loaded map[string]int64 // batch version each side was collected at
	tables map[string]*exec.JoinTable
}

// Load collects join key's bounded side with fn when it was never collected,
// or when every > 0 and it was collected every or more batches before version.
func (c *StaticCache) Load(key string, version int64, every int, fn func() ([]arrow.Record, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recs == nil {
		c.recs, c.loaded, c.tables = map[string][]arrow.Record{}, map[string]int64{}, map[string]*exec.JoinTable{}
	}
	at, ok := c.loaded[key]
	if ok && (every <= 0 || version-at < int64(every)) && version >= at {
		return nil
	}
	recs, err := fn()
	if err != nil {
		return err
	}
	for _, r := range c.recs[key] {
		r.Release()
	}
	c.tables[key].Release() // the tasks of earlier batches are done with it
	delete(c.tables, key)
	c.recs[key], c.loaded[key] = recs, version
	return nil
}

// Gen is the batch version key was last collected at (0 for in-memory
// scans): executors that cache key refetch it when it changes.
func (c *StaticCache) Gen(key string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loaded[key]
}

// Table returns the hash table of join key's bounded side on keys, built
// by the first task that asks and shared by every task until the side is
// collected again.
func (c *StaticCache) Table(ctx context.Context, key string, mem memory.Allocator, schema *arrow.Schema, keys []*expr.Expr) (*exec.JoinTable, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tables[key]; t != nil {
		return t, nil
	}
	t, err := exec.NewJoinTable(ctx, mem, schema, c.recs[key], keys)
	if err != nil {
		return nil, err
	}
	if c.tables == nil {
		c.tables = map[string]*exec.JoinTable{}
	}
	c.tables[key] = t
	return t, nil
}

// Records returns key's records; the cache keeps ownership.
func (c *StaticCache) Records(key string) ([]arrow.Record, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.recs[key]
	return r, ok
}

// Set keeps recs (retaining each) under key, replacing what was there:
// how in-memory scans' records reach tasks.
func (c *StaticCache) Set(key string, recs []arrow.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recs == nil {
		c.recs, c.loaded, c.tables = map[string][]arrow.Record{}, map[string]int64{}, map[string]*exec.JoinTable{}
	}
	for _, r := range c.recs[key] {
		r.Release()
	}
	for _, r := range recs {
		r.Retain()
	}
	c.recs[key] = recs
}

// SetMemory keeps the records of every in-memory scan of spec under its
// broadcast key (Set).
func (c *StaticCache) SetMemory(spec *Spec) {
	for _, key := range spec.Memory {
		c.Set(key, spec.MemoryRecords(key))
	}
}

var _ BroadcastStore = (*StaticCache)(nil)

// Release frees every collected side.
func (c *StaticCache) Release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, recs := range c.recs {
		for _, r := range recs {
			r.Release()
		}
	}
	for _, t := range c.tables {
		t.Release()
	}
	c.recs, c.loaded, c.tables = nil, nil, nil
}

// StaticJoins returns the stream-static joins of a plan in pre-order, with
// the index of each one's bounded input. Their cache keys are "static-<i>".
func StaticJoins(root *Node) (joins []*Node, side []int) {
	root.Walk(func(n *Node) {
		if n.Kind != KindJoin {
			return
		}
		ls, rs := len(Streams(n.Inputs[0])) > 0, len(Streams(n.Inputs[1])) > 0
		switch {
		case ls && !rs:
			joins, side = append(joins, n), append(side, 1)
		case rs && !ls:
			joins, side = append(joins, n), append(side, 0)
		}
	})
	return joins, side
}

// staticJoin plans a stream-static join: the bounded input is replaced by its
// collected records, broadcast under key (Join.Broadcast), and the stream
// side is not exchanged.
func (p *physical) staticJoin(n *Node, key string, staticSide int) (*Node, error) {
	how := n.Join.How
	streamLeft := staticSide == 1
	ok := how == exec.JoinInner ||
		(streamLeft && (how == exec.JoinLeft || how == exec.JoinSemi || how == exec.JoinAnti)) ||
		(!streamLeft && how == exec.JoinRight)
	if !ok {
		side := "left"
		if !streamLeft {
			side = "right"
		}
		return nil, fmt.Errorf("%w: a %s join of a stream (on the %s) with a bounded Dataset would emit the bounded side's unmatched rows again every batch; use inner, left outer, left semi or left anti with the stream on the left", ErrPlan, how, side)
	}
	static := n.Inputs[staticSide]
	n.Join.Broadcast = &Broadcast{Key: key, Left: !streamLeft, Schema: static.Schema}
	n.Join.BuildRight = streamLeft
	n.Inputs = []*Node{n.Inputs[1-staticSide]}
	return n, nil
}

// Broadcast is the bounded side of a stream-static join, collected by the
// driver and served to tasks under Key (TaskEnv.Broadcast).
type Broadcast struct {
	Key    string
	Left   bool // the bounded side is the join's left input
	Schema *arrow.Schema
}

// timeBound is an event-time pair of a stream-stream join and the range of
// right minus left, in microseconds (math.MinInt64/MaxInt64: unbounded).
type timeBound struct {
	left, right  string
	lower, upper int64
}

// streamJoin plans a join of two streams: late rows dropped on each side's
// event-time column, both sides exchanged by key group, and a stateful join.
func (p *physical) streamJoin(n *Node) (*Node, error) {
	j := n.Join
	op := fmt.Sprintf("join-%d", p.aggs)
	p.aggs++
	l, r := n.Inputs[0], n.Inputs[1]
	b, err := findTimeBound(n)
	if err != nil {
		return nil, err
	}
	need := func(what string) error {
		return fmt.Errorf("%w: a streaming %s join needs its state bounded: %s", ErrPlan, j.How, what)
	}
	switch j.How {
	case exec.JoinAnti:
		return nil, fmt.Errorf("%w: a streaming anti join of two streams is not supported: a row's absence is never final (use a left outer join with a time range and keep the rows whose right side is null)", ErrPlan)
	case exec.JoinLeft, exec.JoinRight, exec.JoinFull, exec.JoinSemi:
		switch {
		case b == nil:
			return nil, need("declare WithWatermark on an event-time column of each side, and join on equal window ends or with a time range in JoinWhere (right.ts BETWEEN left.ts - a AND left.ts + b)")
		case b.upper == math.MaxInt64:
			return nil, need(fmt.Sprintf("the condition puts no upper bound on %s - %s (add %s <= %s + duration)", b.right, b.left, b.right, b.left))
		case b.lower == math.MinInt64:
			return nil, need(fmt.Sprintf("the condition puts no lower bound on %s - %s (add %s >= %s - duration)", b.right, b.left, b.right, b.left))
		}
		if j.TTL > 0 {
			return nil, fmt.Errorf("%w: a state TTL would drop %s join rows that may still match or must be emitted; a TTL is for inner joins", ErrPlan, j.How)
		}
	}
	if p.emit(n) == "complete" {
		return nil, fmt.Errorf("%w: complete output mode needs the query to end in an aggregation; a join of two streams emits each row once", ErrPlan)
	}
	spec := exec.StreamJoinSpec{How: j.How, Cond: j.Cond, TTL: j.TTL, Lower: math.MinInt64, Upper: math.MaxInt64}
	for i := range j.LeftKeys {
		spec.LeftKeys = append(spec.LeftKeys, j.LeftKeys[i].Name)
		spec.RightKeys = append(spec.RightKeys, j.RightKeys[i].Name)
	}
	if b != nil {
		spec.LeftTime, spec.RightTime, spec.Lower, spec.Upper = b.left, b.right, b.lower, b.upper
		l = lateFilter(l, b.left, op)
		r = lateFilter(r, b.right, op)
	}
	lx, rx := exchange(l, j.LeftKeys, p.parts), exchange(r, j.RightKeys, p.parts)
	lx.KeyGroups, rx.KeyGroups = p.stream.KeyGroups, p.stream.KeyGroups
	n.Inputs = []*Node{lx, rx}
	n.StreamJoin = &spec
	// The join evicts by the watermark itself, in µs.
	n.State = &exec.StateSpec{Operator: op, KeyGroups: p.stream.KeyGroups, Emit: p.emit(n), EventTimeKey: -1, Unit: arrow.Microsecond}
	return n, nil
}

// lateFilter drops in's rows whose event-time column col is at or behind
// the previous batch's watermark (a stream join's inputs), counting them
// against operator op.
func lateFilter(in *Node, col string, op string) *Node {
	f := in.Schema.Field(in.Schema.FieldIndices(col)[0])
	t, ok := f.Type.(*arrow.TimestampType)
	if !ok {
		return in
	}
	return &Node{Kind: KindLateFilter, Inputs: []*Node{in}, Schema: in.Schema,
		Late: &LateSpec{Column: col, Operator: op, Unit: t.Unit, Prev: true}}
}

// findTimeBound finds the event-time pair that bounds a stream-stream join:
// equal event-time keys (range [0, 0]), else the comparisons of the
// residual condition between a left and a right event-time column. Nil when
// there is none.
func findTimeBound(n *Node) (*timeBound, error) {
	l, r := n.Inputs[0], n.Inputs[1]
	j := n.Join
	for i := range j.LeftKeys {
		lk, rk := j.LeftKeys[i], j.RightKeys[i]
		if lk.Op == expr.OpCol && rk.Op == expr.OpCol && isEventTime(l, lk.Name) && isEventTime(r, rk.Name) {
			return &timeBound{left: lk.Name, right: rk.Name, lower: 0, upper: 0}, nil
		}
	}
	if j.Cond == nil {
		return nil, nil
	}
	var b *timeBound
	for _, c := range conjuncts(j.Cond) {
		for _, cmp := range comparisons(c) {
			// cmp: a.col + a.off  OP  b.col + b.off
			a, bb := cmp.a, cmp.b
			aLeft, bLeft := isEventTime(l, a.col) && !has(r, a.col), isEventTime(l, bb.col) && !has(r, bb.col)
			aRight, bRight := isEventTime(r, a.col) && !has(l, a.col), isEventTime(r, bb.col) && !has(l, bb.col)
			var lt, rt string
			var lower, upper int64 = math.MinInt64, math.MaxInt64
			switch {
			case aRight && bLeft:
				// r + ao OP l + bo  =>  r - l OP bo - ao
				lt, rt = bb.col, a.col
				d := bb.off - a.off
				switch cmp.op {
				case expr.OpGe, expr.OpGt:
					lower = d
				case expr.OpLe, expr.OpLt:
					upper = d
				case expr.OpEq:
					lower, upper = d, d
				default:
					continue
				}
			case aLeft && bRight:
				// l + ao OP r + bo  =>  r - l  (flipped OP)  ao - bo
				lt, rt = a.col, bb.col
				d := a.off - bb.off
				switch cmp.op {
				case expr.OpGe, expr.OpGt:
					upper = d
				case expr.OpLe, expr.OpLt:
					lower = d
				case expr.OpEq:
					lower, upper = d, d
				default:
					continue
				}
			default:
				continue
			}
			if b == nil {
				b = &timeBound{left: lt, right: rt, lower: math.MinInt64, upper: math.MaxInt64}
			}
			if b.left != lt || b.right != rt {
				return nil, fmt.Errorf("%w: join condition %s compares two different pairs of event-time columns (%s/%s and %s/%s); bound the state with one pair", ErrPlan, j.Cond, b.left, b.right, lt, rt)
			}
			b.lower, b.upper = max(b.lower, lower), min(b.upper, upper)
		}
	}
	return b, nil
}

func has(n *Node, col string) bool { return len(n.Schema.FieldIndices(col)) > 0 }

// timeTerm is a column plus a constant offset in microseconds.
type timeTerm struct {
	col string
	off int64
}

type comparison struct {
	a, b timeTerm
	op   expr.Op
}

// comparisons reads e as comparisons of time terms: a OP b, or BETWEEN as
// two of them; none when e has another shape.
func comparisons(e *expr.Expr) []comparison {
	switch e.Op {
	case expr.OpGe, expr.OpGt, expr.OpLe, expr.OpLt, expr.OpEq:
		a, okA := term(e.Args[0])
		b, okB := term(e.Args[1])
		if okA && okB {
			return []comparison{{a, b, e.Op}}
		}
	case expr.OpBetween:
		x, ok0 := term(e.Args[0])
		lo, ok1 := term(e.Args[1])
		hi, ok2 := term(e.Args[2])
		var out []comparison
		if ok0 && ok1 {
			out = append(out, comparison{x, lo, expr.OpGe})
		}
		if ok0 && ok2 {
			out = append(out, comparison{x, hi, expr.OpLe})
		}
		return out
	}
	return nil
}

func term(e *expr.Expr) (timeTerm, bool) {
	switch e.Op {
	case expr.OpCol:
		return timeTerm{col: e.Name}, true
	case expr.OpAlias, expr.OpCast:
		return term(e.Args[0])
	case expr.OpAddDuration:
		if e.Months != 0 {
			return timeTerm{}, false
		}
		t, ok := term(e.Args[0])
		t.off += e.Dur / 1000
		return t, ok
	}
	return timeTerm{}, false
}

// isEventTime reports whether column col of n's output is an event time a
// watermark bounds: a WithWatermark column, or the end of an event-time
// window over one, carried through projections, filters, grouping keys
// and joins.
func isEventTime(n *Node, col string) bool {
	switch n.Kind {
	case KindWatermark:
		if n.Watermark.Column == col {
			return true
		}
	case KindWindow:
		if col == n.Window.EndName {
			return isEventTime(n.Inputs[0], n.Window.Column)
		}
		if col == n.Window.StartName {
			return false
		}
	case KindSession:
		if col == n.Session.EndName {
			return isEventTime(n.Inputs[0], n.Session.Column)
		}
		if col == n.Session.StartName {
			return false
		}
	case KindProject:
		for _, e := range n.Exprs {
			if e.OutputName() != col {
				continue
			}
			src := e
			if src.Op == expr.OpAlias {
				src = src.Args[0]
			}
			return src.Op == expr.OpCol && isEventTime(n.Inputs[0], src.Name)
		}
		return false
	case KindAggregate:
		for _, k := range n.Keys {
			if k.OutputName() == col {
				src := k
				if src.Op == expr.OpAlias {
					src = src.Args[0]
				}
				return src.Op == expr.OpCol && isEventTime(n.Inputs[0], src.Name)
			}
		}
		return false
	case KindScan, KindMapBatches:
		return false
	}
	for _, in := range n.Inputs {
		if has(in, col) && isEventTime(in, col) {
			return true
		}
	}
	return false
}

// hasStateful reports whether n's subtree has a streaming stateful operator,
// whose output rows are final only up to the watermark.
func hasStateful(n *Node) bool {
	found := false
	n.Walk(func(x *Node) {
		switch x.Kind {
		case KindAggregate, KindDedup, KindGroups:
			found = true
		case KindJoin:
			// A stream-stream join (physical: StreamJoin set); a stream
			// joined with a bounded Dataset keeps no state.
			if x.StreamJoin != nil || (len(x.Inputs) == 2 && len(Streams(x.Inputs[0])) > 0 && len(Streams(x.Inputs[1])) > 0) {
				found = true
			}
		}
	})
	return found
}
