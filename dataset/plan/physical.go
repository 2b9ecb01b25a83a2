package plan

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
)

// PhysicalStream turns an optimized logical plan into a physical one:
// scans get their (pruned) splits, aggregates become partial -> exchange ->
// final, joins hash-partition both sides into parts partitions and build
// the smaller one, sorts and limits work per task first and then once after
// a gather. The input plan is not modified. With st set (a streaming query),
// aggregates keep their groups in state (partial -> exchange by key group ->
// stateful final), numbered agg-0, agg-1, ... in plan order. The plan holds
// no per-batch value: thresholds and state versions come from each batch's
// BatchContext where the tasks run.
func PhysicalStream(root *Node, parts int, st *StreamOptions) (*Node, error) {
	if parts < 1 {
		parts = 1
	}
	p := &physical{parts: parts, stream: st, wmIDs: WatermarkIDs(root), static: map[*Node]string{}, counted: map[string]bool{}}
	c := clone(root)
	p.inner = map[*Node]bool{}
	markInner(c, false, p.inner)
	joins, _ := StaticJoins(c)
	for i, j := range joins {
		p.static[j] = fmt.Sprintf("static-%d", i)
	}
	phys, err := p.plan(c)
	if err != nil || st == nil {
		return phys, err
	}
	return phys, shareAggregates(phys, parts)
}

// shareAggregates makes equal streaming aggregates one operator. The plan
// is a tree, so an aggregate a query uses twice (q5's counts: their max per
// window, and the join back to it) is planned twice, and each copy would
// keep its own state of the same groups. Copies whose subtrees are equal
// but for their operator ids (and which scan counts a stream's rows) get
// the first copy's id and an exchange above them by their group keys:
// their stages are then equal, Stages keeps one, and both consumers read
// its output. Copies that differ (a filter pushed into one) stay apart.
// It repeats until nothing changes, so an aggregate of a shared aggregate
// is shared too.
func shareAggregates(root *Node, parts int) error {
	type use struct {
		parent *Node
		i      int
	}
	shared := map[*Node]bool{} // aggregates already one operator
	for {
		groups := map[string][]use{}
		var order []string
		var werr error
		var walk func(n *Node)
		walk = func(n *Node) {
			for i, in := range n.Inputs {
				walk(in)
				if in.Kind != KindAggregate || in.State == nil || in.Session != nil || shared[in] {
					continue
				}
				own := in.State.Operator
				key, err := printOf(in, func(c *Node) { renameOperator(c, own, "") })
				if err != nil {
					werr = err
					return
				}
				if groups[key] == nil {
					order = append(order, key)
				}
				groups[key] = append(groups[key], use{n, i})
			}
		}
		walk(root)
		if werr != nil {
			return werr
		}
		changed := false
		for _, key := range order {
			uses := groups[key]
			if len(uses) < 2 {
				continue
			}
			id := uses[0].parent.Inputs[uses[0].i].State.Operator
			for _, u := range uses {
				agg := u.parent.Inputs[u.i]
				renameOperator(agg, agg.State.Operator, id)
				keys := make([]*expr.Expr, len(agg.Keys))
				for j, k := range agg.Keys {
					keys[j] = expr.Col(k.OutputName())
				}
				u.parent.Inputs[u.i] = exchange(agg, keys, parts)
				shared[agg] = true
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
}

// printOf is what makes two fragments the same computation: n's subtree
// as the spec encodes it (with extra), after edit changed a copy of it to
// leave out what may differ between equal copies. The scans' Count flags
// are always left out (a stream read twice counts its rows once).
func printOf(n *Node, edit func(*Node), extra ...any) (string, error) {
	c := clone(n)
	edit(c)
	c.Walk(func(m *Node) {
		if m.Kind == KindScan {
			m.Scan.Count = false
		}
	})
	b, err := json.Marshal(append([]any{c}, extra...))
	if err != nil {
		return "", fmt.Errorf("%w: plan fingerprint: %w", ErrPlan, err)
	}
	return string(b), nil
}

// renameOperator renames stateful operator from to to in n's subtree (its
// state and the late filters that count for it).
func renameOperator(n *Node, from, to string) {
	n.Walk(func(m *Node) {
		if m.State != nil && m.State.Operator == from {
			st := *m.State
			st.Operator = to
			m.State = &st
		}
		if m.Late != nil && m.Late.Operator == from {
			l := *m.Late
			l.Operator = to
			m.Late = &l
		}
	})
}

// WatermarkIDs names the plan's watermark declarations "wm-0", "wm-1", ...
// in pre-order; the driver keeps one watermark per id.
func WatermarkIDs(root *Node) map[*WatermarkSpec]string {
	ids := map[*WatermarkSpec]string{}
	root.Walk(func(n *Node) {
		if n.Kind == KindWatermark {
			ids[n.Watermark] = fmt.Sprintf("wm-%d", len(ids))
		}
	})
	return ids
}

type physical struct {
	parts   int
	stream  *StreamOptions
	aggs    int
	wmIDs   map[*WatermarkSpec]string
	static  map[*Node]string // stream-static joins' cache keys
	counted map[string]bool  // streams whose reads are counted
	// inner marks stateful operators that feed another one: they emit
	// append-style (each row once, final) whatever the query's output mode.
	inner map[*Node]bool
}

// markInner sets inner[n] for every stateful streaming operator below
// another one.
func markInner(n *Node, under bool, inner map[*Node]bool) {
	st := false
	switch n.Kind {
	case KindAggregate, KindDedup, KindGroups:
		st = len(Streams(n)) > 0
	case KindJoin:
		st = len(Streams(n.Inputs[0])) > 0 && len(Streams(n.Inputs[1])) > 0
	}
	if st && under {
		inner[n] = true
	}
	for _, in := range n.Inputs {
		markInner(in, under || st, inner)
	}
}

// emit is how stateful operator n emits: the query's output mode, or append
// when its rows feed another stateful operator.
func (p *physical) emit(n *Node) string {
	if p.inner[n] {
		return "append"
	}
	return p.stream.Emit
}

func (p *physical) plan(n *Node) (*Node, error) {
	for i, in := range n.Inputs {
		c, err := p.plan(in)
		if err != nil {
			return nil, err
		}
		n.Inputs[i] = c
	}
	switch n.Kind {
	case KindWatermark:
		if p.stream == nil {
			return n.Inputs[0], nil // batch jobs have no late data
		}
		w := *n.Watermark
		w.ID = p.wmIDs[n.Watermark]
		n.Watermark = &w
	case KindScan:
		s := n.Scan
		switch {
		case s.Stream != nil:
			s.Source = s.Stream.Name()
			s.SourceColumns = nil
			for _, f := range s.Stream.Schema().Fields() {
				s.SourceColumns = append(s.SourceColumns, f.Name)
			}
			// A stream read twice (a self-join) counts its rows once.
			s.Count = !p.counted[s.Source]
			p.counted[s.Source] = true
		case s.Table != nil:
			s.Splits, s.Pruned = s.Table.Splits(s.Preds)
			s.Files, s.PartitionColumns = len(s.Table.Files), s.Table.PartitionColumns
			s.Pushed = nil
			for _, pr := range s.Preds {
				s.Pushed = append(s.Pushed, predString(pr))
			}
		default:
			s.MemoryParts = len(s.Records)
			s.MemoryRows = 0
			for _, r := range s.Records {
				s.MemoryRows += r.NumRows()
			}
		}
	case KindSession:
		// Every row of a key meets in one task.
		keys := make([]*expr.Expr, len(n.Session.Keys))
		for i, k := range n.Session.Keys {
			keys[i] = expr.Col(k)
		}
		parts := p.parts
		if len(keys) == 0 {
			parts = 1
		}
		n.Inputs = []*Node{exchange(n.Inputs[0], keys, parts)}
	case KindAggregate:
		if p.stream != nil && n.Inputs[0].Kind == KindSession {
			return p.sessionAggregate(n)
		}
		return p.aggregate(n)
	case KindDedup:
		return p.dedup(n)
	case KindGroups:
		return p.flatMapGroups(n)
	case KindJoin:
		l, r := n.Inputs[0], n.Inputs[1]
		if p.stream != nil {
			ls, rs := len(Streams(l)) > 0, len(Streams(r)) > 0
			switch {
			case ls && rs:
				return p.streamJoin(n)
			case ls:
				return p.staticJoin(n, p.static[n], 1)
			case rs:
				return p.staticJoin(n, p.static[n], 0)
			}
		}
		if n.Join.TTL > 0 {
			return nil, fmt.Errorf("%w: a state TTL applies to a join of two streams only", ErrPlan)
		}
		n.Join.BuildRight = estimateRows(r) <= estimateRows(l)
		n.Inputs = []*Node{exchange(l, n.Join.LeftKeys, p.parts), exchange(r, n.Join.RightKeys, p.parts)}
	case KindSort:
		in := n.Inputs[0]
		if n.N > 0 {
			in = &Node{Kind: KindSort, Inputs: []*Node{in}, SortKeys: n.SortKeys, N: n.N, Schema: in.Schema}
		}
		n.Inputs = []*Node{exchange(in, nil, 1)}
	case KindLimit:
		local := &Node{Kind: KindLimit, Inputs: n.Inputs, N: n.N, Schema: n.Schema}
		n.Inputs = []*Node{exchange(local, nil, 1)}
	case KindUnion:
		// A stage reads either splits or shuffle partitions; a union of
		// inputs that already end in exchanges gathers each of them.
		mixed := false
		for _, in := range n.Inputs {
			if !readsScans(in) {
				mixed = true
			}
		}
		if mixed {
			for i, in := range n.Inputs {
				n.Inputs[i] = exchange(in, nil, 1)
			}
		}
	}
	return n, nil
}

// aggregate plans partial -> exchange -> final, stateful in a stream.
func (p *physical) aggregate(n *Node) (*Node, error) {
	partial := &Node{Kind: KindAggregate, Inputs: n.Inputs, Keys: n.Keys, Aggs: n.Aggs, AggMode: exec.AggPartial}
	s, err := exec.PartialSchema(n.Inputs[0].Schema, n.Keys, n.Aggs)
	if err != nil {
		return nil, err
	}
	partial.Schema = s
	keys := make([]*expr.Expr, len(n.Keys))
	for i, k := range n.Keys {
		keys[i] = expr.Col(k.OutputName())
	}
	parts := p.parts
	if len(keys) == 0 {
		parts = 1
	}
	ex := exchange(partial, keys, parts)
	final := &Node{Kind: KindAggregate, Inputs: []*Node{ex}, Keys: keys, Aggs: n.Aggs, AggMode: exec.AggFinal, Schema: n.Schema}
	if p.stream != nil {
		op := fmt.Sprintf("agg-%d", p.aggs)
		etKey, unit := -1, arrow.Microsecond
		// The key the watermark closes groups by: the end of an event-time
		// window below, or a key that is itself an event time (a window end
		// an aggregate or join below passes on, or a watermarked column).
		etCol := ""
		if w := eventTimeWindow(n.Inputs[0]); w != nil {
			etCol = w.EndName
		} else {
			in := n.Inputs[0].Schema
			for i, k := range keys {
				idx := in.FieldIndices(k.Name)
				if n.Keys[i].Op != expr.OpCol || len(idx) == 0 {
					continue
				}
				if _, ok := in.Field(idx[0]).Type.(*arrow.TimestampType); ok && isEventTime(n.Inputs[0], k.Name) {
					etCol = k.Name
					break
				}
			}
		}
		if etCol != "" {
			for i, k := range keys {
				if k.Name == etCol {
					etKey = i
				}
			}
			if etKey >= 0 {
				unit = n.Inputs[0].Schema.Field(n.Inputs[0].Schema.FieldIndices(etCol)[0]).Type.(*arrow.TimestampType).Unit
				// Its input's rows of this batch have event times in
				// (PrevWatermark, Watermark] when a stateful operator feeds
				// it: late only behind the former.
				late := &Node{Kind: KindLateFilter, Inputs: partial.Inputs, Schema: partial.Inputs[0].Schema,
					Late: &LateSpec{Column: etCol, Operator: op, Unit: unit, Prev: hasStateful(n.Inputs[0])}}
				partial.Inputs = []*Node{late}
			}
		}
		if p.emit(n) == "append" && etKey < 0 {
			if p.inner[n] {
				return nil, fmt.Errorf("%w: an aggregation feeding another stateful operator emits each group once, when the watermark closes it: group it by an event-time window on a column with a watermark (WithWatermark, then GroupBy(Window(...)))", ErrPlan)
			}
			return nil, fmt.Errorf("%w: append output mode needs the aggregation grouped by an event-time window on a column with a watermark (WithWatermark, then GroupBy(Window(...)))", ErrPlan)
		}
		for _, a := range n.Aggs {
			if a.Func == exec.AggCountDistinct {
				return nil, fmt.Errorf("%w: %s: count_distinct is not supported in streaming aggregations", ErrPlan, aggString(a))
			}
		}
		ex.KeyGroups = p.stream.KeyGroups
		final.State = &exec.StateSpec{Operator: op, KeyGroups: p.stream.KeyGroups, Emit: p.emit(n),
			EventTimeKey: etKey, Unit: unit}
		p.aggs++
	}
	return final, nil
}

// sessionAggregate plans a streaming session window aggregation: late rows
// dropped, an exchange by key group of the session keys, and a stateful
// operator that merges stored sessions with the batch's.
func (p *physical) sessionAggregate(n *Node) (*Node, error) {
	sess := n.Inputs[0]
	in := sess.Inputs[0].Inputs[0] // below the session's own exchange
	spec := *sess.Session
	op := fmt.Sprintf("agg-%d", p.aggs)
	p.aggs++
	etKey, unit := -1, arrow.Microsecond
	if watermarked(in, spec.Column) {
		unit = in.Schema.Field(in.Schema.FieldIndices(spec.Column)[0]).Type.(*arrow.TimestampType).Unit
		etKey = 0
		// A row at t opens [t, t+gap); at or behind the watermark it is late.
		late := &Node{Kind: KindLateFilter, Inputs: []*Node{in}, Schema: in.Schema,
			Late: &LateSpec{Column: spec.Column, Operator: op, Unit: unit, Gap: spec.Gap}}
		in = late
	} else if p.emit(n) == "append" {
		return nil, fmt.Errorf("%w: append output mode needs a watermark on the session window's column %q", ErrPlan, spec.Column)
	}
	keys := make([]*expr.Expr, len(spec.Keys))
	for i, k := range spec.Keys {
		keys[i] = expr.Col(k)
	}
	ex := exchange(in, keys, p.parts)
	ex.KeyGroups = p.stream.KeyGroups
	return &Node{Kind: KindAggregate, Inputs: []*Node{ex}, Keys: n.Keys, Aggs: n.Aggs, AggMode: exec.AggFinal, Schema: n.Schema, Session: &spec,
		State: &exec.StateSpec{Operator: op, KeyGroups: p.stream.KeyGroups, Emit: p.emit(n), EventTimeKey: etKey, Unit: unit}}, nil
}

// dedup plans DropDuplicates: in a batch job, the first row per key (an
// aggregate of first() values, then the original column order); in a
// stream, an exchange by key group and a stateful filter of keys seen.
func (p *physical) dedup(n *Node) (*Node, error) {
	in := n.Inputs[0]
	keys := make([]*expr.Expr, len(n.DedupKeys))
	isKey := map[string]bool{}
	for i, k := range n.DedupKeys {
		keys[i] = expr.Col(k)
		isKey[k] = true
	}
	if p.stream == nil {
		var aggs []exec.Agg
		for _, f := range in.Schema.Fields() {
			if !isKey[f.Name] {
				aggs = append(aggs, exec.Agg{Func: exec.AggFirst, Arg: expr.Col(f.Name), Name: f.Name})
			}
		}
		logical := &Node{Kind: KindAggregate, Inputs: []*Node{in}, Keys: keys, Aggs: aggs}
		if err := logical.derive(); err != nil {
			return nil, err
		}
		agg, err := p.aggregate(logical)
		if err != nil {
			return nil, err
		}
		cols := make([]*expr.Expr, in.Schema.NumFields())
		for i, f := range in.Schema.Fields() {
			cols[i] = expr.Col(f.Name)
		}
		return &Node{Kind: KindProject, Inputs: []*Node{agg}, Exprs: cols, Schema: n.Schema}, nil
	}
	if p.emit(n) == "complete" {
		return nil, fmt.Errorf("%w: complete output mode needs the query to end in an aggregation; DropDuplicates emits new rows only (append or update)", ErrPlan)
	}
	op := fmt.Sprintf("dedup-%d", p.aggs)
	p.aggs++
	etKey, unit := -1, arrow.Microsecond
	for i, k := range n.DedupKeys {
		if watermarked(in, k) {
			etKey = i
			unit = in.Schema.Field(in.Schema.FieldIndices(k)[0]).Type.(*arrow.TimestampType).Unit
			in = &Node{Kind: KindLateFilter, Inputs: []*Node{in}, Schema: in.Schema, Late: &LateSpec{Column: k, Operator: op, Unit: unit}}
			break
		}
	}
	ex := exchange(in, keys, p.parts)
	ex.KeyGroups = p.stream.KeyGroups
	return &Node{Kind: KindDedup, Inputs: []*Node{ex}, DedupKeys: n.DedupKeys, Schema: n.Schema,
		State: &exec.StateSpec{Operator: op, KeyGroups: p.stream.KeyGroups, Emit: p.emit(n), EventTimeKey: etKey, Unit: unit}}, nil
}

// eventTimeWindow finds, below n within its pipeline, a window over a
// watermarked column: the window whose end the watermark closes.
func eventTimeWindow(n *Node) *exec.WindowSpec {
	for {
		switch n.Kind {
		case KindWindow:
			if watermarked(n.Inputs[0], n.Window.Column) {
				return n.Window
			}
			return nil
		case KindFilter, KindProject, KindWatermark, KindLateFilter, KindMapBatches:
			n = n.Inputs[0]
		default:
			return nil
		}
	}
}

func watermarked(n *Node, col string) bool {
	found := false
	n.Walk(func(x *Node) {
		if x.Kind == KindWatermark && x.Watermark.Column == col {
			found = true
		}
	})
	return found
}

func exchange(in *Node, keys []*expr.Expr, parts int) *Node {
	return &Node{Kind: KindExchange, Inputs: []*Node{in}, Keys: keys, Parts: parts, Schema: in.Schema}
}

// readsScans reports whether n's pipeline (up to the next exchange) starts at scans.
func readsScans(n *Node) bool {
	switch n.Kind {
	case KindScan:
		return true
	case KindExchange:
		return false
	}
	for _, in := range n.Inputs {
		if !readsScans(in) {
			return false
		}
	}
	return true
}

func estimateRows(n *Node) int64 {
	switch n.Kind {
	case KindScan:
		var rows int64
		switch {
		case n.Scan.Stream != nil:
			return 0 // unknown when compiling; stream joins do not use it
		case n.Scan.Table == nil:
			for _, r := range n.Scan.Records {
				rows += r.NumRows()
			}
			return rows
		}
		for _, s := range n.Scan.Splits {
			rows += s.NumRows
		}
		return rows
	case KindLimit:
		return min(n.N, estimateRows(n.Inputs[0]))
	}
	var rows int64
	for _, in := range n.Inputs {
		rows = max(rows, estimateRows(in))
	}
	return rows
}

// Stage is a pipeline between exchanges, run as one task per split (when its
// leaves are scans) or per shuffle partition (when they are shuffle reads).
type Stage struct {
	ID   int
	Root *Node // fragment; exchanges below are replaced by ShuffleRead leaves
	// Out is the Exchange this stage feeds (without its input); nil for
	// the final stage.
	Out  *Node `json:",omitempty"`
	Deps []int `json:",omitempty"` // stages whose output this stage reads
	// Tasks: a shuffle stage's partitions; a scan stage's tasks when it
	// reads no stream (streams: one per split of a batch, see Assign).
	Tasks int
}

// Stateful reports whether the stage's operators keep state (its tasks own
// key-group ranges, so the scheduler keeps each on one node).
func (s *Stage) Stateful() bool {
	found := false
	s.Root.Walk(func(n *Node) { found = found || n.State != nil })
	return found
}

// Assignment: a scan task reads split Split of scan leaf Leaf (-1: none).
type Assignment struct{ Leaf, Split int }

// Stages cuts a physical plan into stages, dependencies first; the last stage
// is the final one. Exchange ids are the ids of the stages that feed them.
//
// Equal exchanges are one stage (Spark's exchange reuse): the plan is a
// tree, so a Dataset used twice (q5's bids, windowed and counted, under
// both sides of its join) is planned twice; where the two copies meet an
// exchange with the same partitioning over the same operators, the second
// reads the first one's output instead of computing it again. Stateful
// operators have ids of their own, so no stage that keeps state is shared
// (each copy keeps its own state, as before). Two copies differ only in
// which of them counts a stream's rows (a stream read twice counts once);
// the stage kept counts them if either did.
func Stages(root *Node) ([]*Stage, error) {
	var stages []*Stage
	seen := map[string]*Stage{} // non-final stages by fingerprint
	var cut func(n *Node, out *Node) (*Stage, error)
	cut = func(top *Node, out *Node) (*Stage, error) {
		st := &Stage{}
		if out != nil {
			o := *out
			o.Inputs = nil
			st.Out = &o
		}
		leaves := 0
		var copyDown func(n *Node) (*Node, error)
		copyDown = func(n *Node) (*Node, error) {
			if n.Kind == KindExchange {
				child, err := cut(n.Inputs[0], n)
				if err != nil {
					return nil, err
				}
				st.Deps = append(st.Deps, child.ID)
				return &Node{Kind: KindShuffleRead, Exchange: child.ID, Parts: n.Parts, Schema: n.Schema}, nil
			}
			c := *n
			c.Inputs = make([]*Node, len(n.Inputs))
			for i, in := range n.Inputs {
				x, err := copyDown(in)
				if err != nil {
					return nil, err
				}
				c.Inputs[i] = x
			}
			if c.Kind == KindScan {
				sc := *c.Scan
				sc.Leaf = leaves
				c.Scan = &sc
				leaves++
			}
			return &c, nil
		}
		r, err := copyDown(top)
		if err != nil {
			return nil, err
		}
		st.Root = r
		if err := st.countTasks(); err != nil {
			return nil, err
		}
		if out != nil {
			key, err := st.fingerprint()
			if err != nil {
				return nil, err
			}
			if same, ok := seen[key]; ok {
				mergeTwin(same.Root, st.Root)
				return same, nil
			}
			seen[key] = st
		}
		st.ID = len(stages)
		stages = append(stages, st)
		return st, nil
	}
	if _, err := cut(root, nil); err != nil {
		return nil, err
	}
	return stages, nil
}

func (st *Stage) countTasks() error {
	parts := -1
	st.Root.Walk(func(n *Node) {
		if n.Kind == KindShuffleRead {
			if parts >= 0 && parts != n.Parts {
				parts = -2
			} else if parts != -2 {
				parts = n.Parts
			}
		}
	})
	switch {
	case parts == -2:
		return fmt.Errorf("%w: stage reads exchanges with different partition counts", ErrPlan)
	case parts >= 0 && len(st.Leaves()) > 0:
		return fmt.Errorf("%w: stage reads both scans and exchanges", ErrPlan)
	case parts >= 0:
		st.Tasks = parts
		return nil
	}
	st.Tasks = len(st.Assign(nil))
	return nil
}

// fingerprint is what makes two stages the same computation: their
// fragments and the exchange they feed, as the spec encodes them, with
// the late filters' operators left out (mergeTwin merges them). Leaves are
// numbered within the stage and child stages are already shared, so equal
// fragments encode equally.
func (st *Stage) fingerprint() (string, error) {
	return printOf(st.Root, func(c *Node) {
		c.Walk(func(m *Node) {
			if m.Late != nil {
				l := *m.Late
				l.Operator, l.Also = "", nil
				m.Late = &l
			}
		})
	}, st.Out, st.Tasks)
}

// mergeTwin makes kept, a fragment equal to dup but for the facts
// fingerprint leaves out, stand for both: its scans count a stream's rows
// if either twin did, and its late filters count the rows they drop for
// the operators of both.
func mergeTwin(kept, dup *Node) {
	if kept.Kind == KindScan && dup.Scan.Count {
		kept.Scan.Count = true
	}
	if kept.Late != nil {
		l := *kept.Late
		for _, op := range append([]string{dup.Late.Operator}, dup.Late.Also...) {
			if op != l.Operator && !slices.Contains(l.Also, op) {
				l.Also = append(slices.Clone(l.Also), op)
			}
		}
		kept.Late = &l
	}
	for i := range kept.Inputs {
		mergeTwin(kept.Inputs[i], dup.Inputs[i])
	}
}
