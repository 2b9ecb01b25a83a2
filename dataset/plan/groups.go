package plan

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
)

// KindGroups is FlatMapGroupsWithState: a registered Go function called per
// key with the key's rows and its state (Node.Groups).
const KindGroups Kind = "FlatMapGroupsWithState"

// flatMapGroups plans FlatMapGroupsWithState: every row of a key must meet
// in one task, so an exchange by the keys comes first. In a batch job it is
// a hash exchange and the operator keeps no state; in a stream it is an
// exchange by key group and the operator keeps each key's state in the
// state store as "groups-N". With an event-time timeout, rows at or behind
// the watermark are dropped as late first (as Spark does), which needs a
// watermark on the input.
func (p *physical) flatMapGroups(n *Node) (*Node, error) {
	g := *n.Groups
	g.Watermark, g.BatchTime = exec.NoTimestamp, exec.NoTimestamp
	n.Groups = &g
	in := n.Inputs[0]
	keys := make([]*expr.Expr, len(g.Keys))
	for i, k := range g.Keys {
		keys[i] = expr.Col(k)
	}
	if p.stream == nil {
		n.Inputs = []*Node{exchange(in, keys, p.parts)}
		return n, nil
	}
	if p.emit(n) == "complete" {
		return nil, fmt.Errorf("%w: flatMapGroupsWithState %q: complete output mode is not supported (it emits rows, not a result table); use append or update", ErrPlan, g.Func)
	}
	op := fmt.Sprintf("groups-%d", p.aggs)
	p.aggs++
	g.Watermark, g.BatchTime = p.stream.Watermark, p.stream.BatchTime
	if g.Timeout == exec.EventTimeTimeout {
		col := ""
		in.Walk(func(x *Node) {
			if x.Kind != KindWatermark || col != "" {
				return
			}
			if idx := in.Schema.FieldIndices(x.Watermark.Column); len(idx) > 0 {
				if _, ok := in.Schema.Field(idx[0]).Type.(*arrow.TimestampType); ok {
					col = x.Watermark.Column
				}
			}
		})
		if col == "" {
			return nil, fmt.Errorf("%w: flatMapGroupsWithState %q uses EventTimeTimeout, which needs a watermark on its input (WithWatermark on a column it receives)", ErrPlan, g.Func)
		}
		// An operator fed by another stateful one receives rows with event
		// times in (PrevWatermark, Watermark]: only rows behind the
		// previous watermark are late for it.
		wm := p.stream.Watermark
		if statefulBelow(in) {
			wm = p.stream.PrevWatermark
		}
		unit := in.Schema.Field(in.Schema.FieldIndices(col)[0]).Type.(*arrow.TimestampType).Unit
		late := &Node{Kind: KindLateFilter, Inputs: []*Node{in}, Schema: in.Schema,
			Late: &LateSpec{Column: col, Threshold: exec.FromMicros(wm, unit)}}
		p.sideOutput(late.Late, op)
		in = late
	}
	ex := exchange(in, keys, p.parts)
	ex.KeyGroups = p.stream.KeyGroups
	n.Inputs = []*Node{ex}
	n.State = &exec.StateSpec{Provider: p.stream.State, Operator: op, KeyGroups: p.stream.KeyGroups,
		Version: p.stream.Version, Emit: p.emit(n), Report: p.stream.Report, EventTimeKey: -1}
	return n, nil
}

// statefulBelow reports whether a stateful operator (already planned) feeds n.
func statefulBelow(n *Node) bool {
	found := false
	n.Walk(func(x *Node) {
		if x.State != nil {
			found = true
		}
	})
	return found
}
