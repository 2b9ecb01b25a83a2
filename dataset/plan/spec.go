package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

// SpecVersion is the format version of an encoded Spec. A decoder refuses
// any other version: an executor of another sluice build must not guess.
const SpecVersion = 1

// ErrSpecVersion: an encoded spec of a format version this build does not read.
var ErrSpecVersion = errors.New("plan: unsupported spec format version")

// Spec is a compiled query: its stages (fragments of the physical plan cut
// at exchanges), the exchanges between them and what each stateful operator
// is. It is immutable once compiled, holds no closure or live handle, and
// encodes to bytes (JSON, see Encode) that decode to an equal Spec.
//
// A streaming query compiles once; each micro-batch runs the same Spec with
// a BatchContext and the batch's splits. Scan stages over streams have one
// task per split of the batch, so their task count is known per batch only.
type Spec struct {
	Version int `json:"version"`
	// KeyGroups and Emit are a streaming query's (0 and "" for a batch job).
	KeyGroups int    `json:"key_groups,omitempty"`
	Emit      string `json:"emit,omitempty"`
	// Stages in dependency order; the last is final.
	Stages []*Stage `json:"stages"`
	// Watermarks are the WithWatermark declarations, by id.
	Watermarks []WatermarkSpec `json:"watermarks,omitempty"`
	// Statics are the stream-static joins' bounded sides, collected by the
	// driver and broadcast under their keys.
	Statics []StaticSide `json:"statics,omitempty"`
	// Memory are the broadcast keys of in-memory scans.
	Memory []string `json:"memory,omitempty"`
	// Stateful are what the stateful operators of a streaming query keep
	// (kind, id, key and value schemas): the facts its checkpoint pins.
	Stateful []StatefulOp `json:"stateful,omitempty"`

	// Driver-side only (not encoded): the optimized logical plan, the
	// logical plans of the bounded sides, and the records of in-memory scans.
	optimized *Node
	statics   map[string]*Node
	memory    map[string][]arrow.Record
}

// StaticSide is the bounded side of a stream-static join.
type StaticSide struct {
	Key     string `json:"key"`
	Refresh int    `json:"refresh,omitempty"` // collect again every Refresh batches (0: once)
}

// StreamOptions are what compiling a streaming query needs beyond the plan.
type StreamOptions struct {
	KeyGroups int
	Emit      string // "update", "complete" or "append"
}

// Compile optimizes a logical plan, plans it physically for parts shuffle
// partitions (streaming when st is set) and cuts it into stages.
func Compile(root *Node, parts int, st *StreamOptions) (*Spec, error) {
	opt, err := Optimize(root)
	if err != nil {
		return nil, err
	}
	parts = max(parts, 1)
	spec := &Spec{Version: SpecVersion, optimized: opt, statics: map[string]*Node{}, memory: map[string][]arrow.Record{}}
	if st != nil {
		spec.KeyGroups, spec.Emit = st.KeyGroups, st.Emit
		joins, side := StaticJoins(opt)
		for i, j := range joins {
			key := fmt.Sprintf("static-%d", i)
			spec.Statics = append(spec.Statics, StaticSide{Key: key, Refresh: j.Join.Refresh})
			spec.statics[key] = j.Inputs[side[i]]
		}
	}
	ids := WatermarkIDs(opt)
	opt.Walk(func(n *Node) {
		if n.Kind == KindWatermark {
			w := *n.Watermark
			w.ID = ids[n.Watermark]
			if w.IdleMicros > 0 {
				for _, s := range Streams(n) {
					w.Sources = append(w.Sources, s.Name())
				}
			}
			spec.Watermarks = append(spec.Watermarks, w)
		}
	})
	phys, err := PhysicalStream(opt, parts, st)
	if err != nil {
		return nil, err
	}
	if spec.Stateful, err = statefulOfPhysical(phys); err != nil {
		return nil, err
	}
	phys.Walk(func(n *Node) {
		if n.Kind == KindScan && n.Scan.Records != nil && n.Scan.MemoryKey == "" {
			// The copies of a Dataset used twice scan the same records:
			// one key, so their stages can be one (Stages).
			for _, k := range spec.Memory {
				if slices.Equal(spec.memory[k], n.Scan.Records) {
					n.Scan.MemoryKey = k
					return
				}
			}
			n.Scan.MemoryKey = fmt.Sprintf("memory-%d", len(spec.Memory))
			spec.Memory = append(spec.Memory, n.Scan.MemoryKey)
			spec.memory[n.Scan.MemoryKey] = n.Scan.Records
		}
	})
	if spec.Stages, err = Stages(phys); err != nil {
		return nil, err
	}
	return spec, nil
}

// Walk calls fn on every node of every stage, stages in order.
func (s *Spec) Walk(fn func(*Node)) {
	for _, st := range s.Stages {
		st.Root.Walk(fn)
	}
}

// Optimized is the optimized logical plan the spec was compiled from
// (driver side only: nil on a decoded Spec).
func (s *Spec) Optimized() *Node { return s.optimized }

// StaticPlan is the logical plan of a stream-static join's bounded side
// (driver side only: nil on a decoded Spec).
func (s *Spec) StaticPlan(key string) *Node { return s.statics[key] }

// MemoryRecords are the records of in-memory scan key (driver side only).
func (s *Spec) MemoryRecords(key string) []arrow.Record { return s.memory[key] }

// Encode returns the spec as JSON. Expressions are their JSON trees,
// schemas Arrow IPC schema messages (base64), so every Arrow type and its
// metadata survive.
func (s *Spec) Encode() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	return b, nil
}

// DecodeSpec decodes bytes made by Encode.
func DecodeSpec(b []byte) (*Spec, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: decode spec: %v", ErrPlan, err)
	}
	if v.Version != SpecVersion {
		return nil, fmt.Errorf("%w: spec format version %d, this build reads version %d", ErrSpecVersion, v.Version, SpecVersion)
	}
	s := &Spec{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%w: decode spec: %v", ErrPlan, err)
	}
	for _, st := range s.Stages {
		if st.Root == nil {
			return nil, fmt.Errorf("%w: decode spec: stage %d has no operators", ErrPlan, st.ID)
		}
	}
	return s, nil
}

// Explain prints the physical plan, stage by stage.
func (s *Spec) Explain() string {
	var b strings.Builder
	for _, st := range s.Stages {
		out := "result"
		if st.Out != nil {
			out = strings.TrimPrefix(Format(&Node{Kind: KindExchange, Keys: st.Out.Keys, Parts: st.Out.Parts, KeyGroups: st.Out.KeyGroups}), "Exchange ")
			out = "exchange " + strings.TrimSpace(out)
		}
		tasks := fmt.Sprintf("%d tasks", st.Tasks)
		if st.readsStream() {
			tasks = "a task per split"
		}
		fmt.Fprintf(&b, "Stage %d: %s -> %s\n", st.ID, tasks, out)
		for _, line := range strings.Split(strings.TrimRight(Format(st.Root), "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// Assign lists the tasks of scan stage st for a batch's stream splits: one
// per split of each leaf, leaves in order (a stage that reads nothing still
// runs one task, so global aggregates produce their row). Shuffle stages
// return nil: their tasks are their partitions.
func (st *Stage) Assign(splits map[string][]sources.Split) []Assignment {
	leaves := st.Leaves()
	if len(leaves) == 0 {
		return nil
	}
	var out []Assignment
	for li, leaf := range leaves {
		n := 0
		switch s := leaf.Scan; {
		case s.Source != "":
			n = len(splits[s.Source])
		case s.MemoryKey != "" || s.Records != nil:
			n = s.MemoryParts
		default:
			n = len(s.Splits)
		}
		for si := 0; si < n; si++ {
			out = append(out, Assignment{Leaf: li, Split: si})
		}
	}
	if len(out) == 0 {
		out = []Assignment{{Leaf: -1}}
	}
	return out
}

// Leaves are the stage's scan leaves in order (Scan.Leaf is the index).
func (st *Stage) Leaves() []*Node {
	var out []*Node
	st.Root.Walk(func(n *Node) {
		if n.Kind == KindScan {
			out = append(out, n)
		}
	})
	return out
}

func (st *Stage) readsStream() bool {
	for _, l := range st.Leaves() {
		if l.Scan.Source != "" {
			return true
		}
	}
	return false
}

// schemaJSON encodes an Arrow schema as an IPC schema message.
type schemaJSON struct{ s *arrow.Schema }

func (j schemaJSON) MarshalJSON() ([]byte, error) {
	if j.s == nil {
		return []byte("null"), nil
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(j.s), ipc.WithAllocator(memory.DefaultAllocator))
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode schema %s: %w", j.s, err)
	}
	return json.Marshal(buf.Bytes())
}

func (j *schemaJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		j.s = nil
		return nil
	}
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	r, err := ipc.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decode schema: %w", err)
	}
	defer r.Release()
	j.s = r.Schema()
	return nil
}

type nodeAlias Node

// MarshalJSON encodes a node with its schema as an IPC schema message.
func (n *Node) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		*nodeAlias
		Schema schemaJSON
	}{(*nodeAlias)(n), schemaJSON{n.Schema}})
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (n *Node) UnmarshalJSON(b []byte) error {
	v := struct {
		*nodeAlias
		Schema schemaJSON
	}{nodeAlias: (*nodeAlias)(n)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Schema = v.Schema.s
	return nil
}

type broadcastAlias Broadcast

// MarshalJSON encodes a broadcast side with its schema as an IPC message.
func (bc *Broadcast) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		*broadcastAlias
		Schema schemaJSON
	}{(*broadcastAlias)(bc), schemaJSON{bc.Schema}})
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (bc *Broadcast) UnmarshalJSON(b []byte) error {
	v := struct {
		*broadcastAlias
		Schema schemaJSON
	}{broadcastAlias: (*broadcastAlias)(bc)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	bc.Schema = v.Schema.s
	return nil
}
