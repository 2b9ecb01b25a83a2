package plan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
)

// Kinds of StatefulOp.
const (
	OpAggregate        = "aggregate"         // a streaming aggregation (windowed or not)
	OpSessionAggregate = "session-aggregate" // an aggregation over session windows
	OpDropDuplicates   = "drop-duplicates"
	OpStreamJoin       = "stream-join" // one side of a join of two streams
	OpFlatMapGroups    = "flat-map-groups-with-state"
)

// StatefulOp is what one stateful operator of a streaming query keeps, as
// typed facts: a checkpoint made by one plan can be read by another exactly
// when their StatefulOps (and key-group counts) are equal. Nothing in it is
// EXPLAIN text, so a cosmetic change to a plan's description changes no
// StatefulOp.
type StatefulOp struct {
	// Kind is one of the Op* constants.
	Kind string
	// ID is the operator's state directory name: "agg-0", "dedup-1",
	// "groups-2", and for a stream-stream join one StatefulOp per side,
	// "join-3-left" and "join-3-right" (each side keeps its own store).
	ID string
	// KeySchema is what the state is keyed (and key-grouped) by: the group
	// keys of an aggregate (with the session start for sessions), the
	// DropDuplicates keys, one side's join keys, the FlatMapGroupsWithState
	// keys.
	KeySchema *arrow.Schema
	// ValueSchema is what is kept per key: the partial-aggregate columns
	// (for sessions, the session end first), nothing for DropDuplicates
	// (an empty schema), the side's rows for a join; nil for
	// FlatMapGroupsWithState, whose value is StateType.
	ValueSchema *arrow.Schema
	// Aggregates are the aggregate functions of an aggregation, in output
	// order ("sum", "max", ...): the partial state of sum and of max of an
	// int64 have the same schema and mean different things. Nil for other
	// kinds.
	Aggregates []string
	// StateType is the Go type FlatMapGroupsWithState keeps per key (its
	// JSON is the stored value); empty for other kinds.
	StateType string
}

// statefulOfPhysical lists the stateful operators of a physical plan.
func statefulOfPhysical(phys *Node) ([]StatefulOp, error) {
	var ops []StatefulOp
	var werr error
	phys.Walk(func(n *Node) {
		if n.State == nil || werr != nil {
			return
		}
		if slices.ContainsFunc(ops, func(o StatefulOp) bool { return o.ID == n.State.Operator }) {
			return // one shared by two consumers (shareAggregates)
		}
		got, err := statefulOps(n)
		if err != nil {
			werr = fmt.Errorf("stateful operator %s: %w", n.State.Operator, err)
			return
		}
		ops = append(ops, got...)
	})
	if werr != nil {
		return nil, werr
	}
	slices.SortFunc(ops, func(a, b StatefulOp) int {
		return cmp.Or(cmp.Compare(opNumber(a.ID), opNumber(b.ID)), strings.Compare(a.ID, b.ID))
	})
	return ops, nil
}

type statefulOpAlias StatefulOp

// MarshalJSON encodes the schemas as IPC schema messages.
func (o StatefulOp) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		statefulOpAlias
		KeySchema, ValueSchema schemaJSON
	}{statefulOpAlias(o), schemaJSON{o.KeySchema}, schemaJSON{o.ValueSchema}})
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (o *StatefulOp) UnmarshalJSON(b []byte) error {
	var v struct {
		statefulOpAlias
		KeySchema, ValueSchema schemaJSON
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = StatefulOp(v.statefulOpAlias)
	o.KeySchema, o.ValueSchema = v.KeySchema.s, v.ValueSchema.s
	return nil
}

// opNumber is the planning-order number in an operator id ("join-3-left": 3).
func opNumber(id string) int {
	_, rest, _ := strings.Cut(id, "-")
	num, _, _ := strings.Cut(rest, "-")
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}

// statefulOps derives the facts of a planned node that carries State.
func statefulOps(n *Node) ([]StatefulOp, error) {
	id := n.State.Operator
	switch {
	case n.Kind == KindAggregate && n.Session != nil:
		return sessionOp(n)
	case n.Kind == KindAggregate:
		// Below the final aggregate: the exchange of partial aggregates,
		// keys first.
		partial := n.Inputs[0].Schema
		nk := len(n.Keys)
		if partial.NumFields() < nk {
			return nil, fmt.Errorf("partial schema %s has fewer than %d key columns", partial, nk)
		}
		return []StatefulOp{{Kind: OpAggregate, ID: id,
			KeySchema:   arrow.NewSchema(partial.Fields()[:nk], nil),
			ValueSchema: arrow.NewSchema(partial.Fields()[nk:], nil),
			Aggregates:  aggFuncs(n.Aggs)}}, nil
	case n.Kind == KindDedup:
		keys, err := fieldsOf(n.Inputs[0].Schema, n.DedupKeys)
		if err != nil {
			return nil, err
		}
		return []StatefulOp{{Kind: OpDropDuplicates, ID: id, KeySchema: keys, ValueSchema: arrow.NewSchema(nil, nil)}}, nil
	case n.Kind == KindJoin && n.StreamJoin != nil:
		var out []StatefulOp
		for i, side := range []struct {
			name string
			keys []string
		}{{"left", n.StreamJoin.LeftKeys}, {"right", n.StreamJoin.RightKeys}} {
			keys, err := fieldsOf(n.Inputs[i].Schema, side.keys)
			if err != nil {
				return nil, fmt.Errorf("%s side: %w", side.name, err)
			}
			out = append(out, StatefulOp{Kind: OpStreamJoin, ID: id + "-" + side.name, KeySchema: keys, ValueSchema: n.Inputs[i].Schema})
		}
		return out, nil
	case n.Kind == KindGroups:
		keys, err := fieldsOf(n.Inputs[0].Schema, n.Groups.Keys)
		if err != nil {
			return nil, err
		}
		return []StatefulOp{{Kind: OpFlatMapGroups, ID: id, KeySchema: keys, StateType: n.Groups.StateType}}, nil
	}
	return nil, fmt.Errorf("%w: a %s node carries state; its identity is not defined", ErrPlan, n.Kind)
}

// sessionOp is a session aggregate's facts: keyed by the group keys with
// the session start, holding the session end and the partial aggregates.
func sessionOp(n *Node) ([]StatefulOp, error) {
	sess, err := exec.SessionSchema(n.Inputs[0].Schema, *n.Session)
	if err != nil {
		return nil, err
	}
	partial, err := exec.PartialSchema(sess, n.Keys, n.Aggs)
	if err != nil {
		return nil, err
	}
	var keys, vals []arrow.Field
	for i, f := range partial.Fields() {
		switch {
		case i < len(n.Keys) && n.Keys[i].OutputName() == n.Session.EndName:
			vals = append([]arrow.Field{f}, vals...)
		case i < len(n.Keys):
			keys = append(keys, f)
		default:
			vals = append(vals, f)
		}
	}
	return []StatefulOp{{Kind: OpSessionAggregate, ID: n.State.Operator,
		KeySchema: arrow.NewSchema(keys, nil), ValueSchema: arrow.NewSchema(vals, nil), Aggregates: aggFuncs(n.Aggs)}}, nil
}

func aggFuncs(aggs []exec.Agg) []string {
	out := make([]string, len(aggs))
	for i, a := range aggs {
		out[i] = string(a.Func)
	}
	return out
}

func fieldsOf(s *arrow.Schema, names []string) (*arrow.Schema, error) {
	fields := make([]arrow.Field, len(names))
	for i, name := range names {
		idx := s.FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("no column %q in %s", name, s)
		}
		fields[i] = s.Field(idx[0])
	}
	return arrow.NewSchema(fields, nil), nil
}
