package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
	pq "github.com/sluicedata/sluice/sources/parquet"
)

var (
	// ErrPlan is a malformed plan: duplicate or ambiguous columns, mismatched
	// union inputs, bad join keys.
	ErrPlan = errors.New("plan: invalid plan")
)

// NewParquetScan reads every column of table.
func NewParquetScan(table *pq.Table, paths []string) *Node {
	cols := make([]string, table.Schema.NumFields())
	for i, f := range table.Schema.Fields() {
		cols[i] = f.Name
	}
	return &Node{Kind: KindScan, Schema: table.Schema, Scan: &Scan{Table: table, Paths: paths, Columns: cols}}
}

// NewMemoryScan reads records held in memory. The node does not retain them:
// the caller keeps them alive while the plan runs.
func NewMemoryScan(schema *arrow.Schema, recs []arrow.Record) *Node {
	cols := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = f.Name
	}
	return &Node{Kind: KindScan, Schema: schema, Scan: &Scan{Columns: cols, Records: recs}}
}

// NewStreamScan reads a streaming source; physical planning names it by
// source, and each task of a run reads the one split its TaskSpec carries.
func NewStreamScan(src sources.Stream) *Node {
	schema := src.Schema()
	cols := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = f.Name
	}
	return &Node{Kind: KindScan, Schema: schema, Scan: &Scan{Columns: cols, Stream: src}}
}

// NewSinkWrite writes into a streaming sink, one batch per run.
func NewSinkWrite(in *Node, sink sinks.Sink) *Node {
	return &Node{Kind: KindWrite, Inputs: []*Node{in}, Write: &Write{SinkName: sink.Name()}, Schema: exec.CommitSchema}
}

// Streams lists the streaming sources root reads, in plan order, each once
// (a stream joined with itself is one source with one offset range).
func Streams(root *Node) []sources.Stream {
	var out []sources.Stream
	root.Walk(func(n *Node) {
		if n.Kind == KindScan && n.Scan.Stream != nil && !slices.Contains(out, n.Scan.Stream) {
			out = append(out, n.Scan.Stream)
		}
	})
	return out
}

// NewWatermark declares col (a timestamp) as event time whose rows may
// arrive up to delay late. Batch jobs ignore it.
func NewWatermark(in *Node, col string, delay time.Duration) (*Node, error) {
	n := &Node{Kind: KindWatermark, Inputs: []*Node{in}, Watermark: &WatermarkSpec{Column: col, DelayMicros: delay.Microseconds()}}
	return n, n.derive()
}

// NewWindow adds the start and end columns of each row's event-time windows.
func NewWindow(in *Node, w exec.WindowSpec) (*Node, error) {
	n := &Node{Kind: KindWindow, Inputs: []*Node{in}, Window: &w}
	return n, n.derive()
}

// NewSessionWindow adds each row's session start and end columns.
func NewSessionWindow(in *Node, spec exec.SessionSpec) (*Node, error) {
	n := &Node{Kind: KindSession, Inputs: []*Node{in}, Session: &spec}
	return n, n.derive()
}

// NewDropDuplicates keeps the first row of each distinct value of keys.
func NewDropDuplicates(in *Node, keys []string) (*Node, error) {
	n := &Node{Kind: KindDedup, Inputs: []*Node{in}, DedupKeys: keys}
	return n, n.derive()
}

// NewFlatMapGroups calls a registered GroupFunc per key of g.Keys; its
// output rows have schema out.
func NewFlatMapGroups(in *Node, g exec.GroupsSpec, out *arrow.Schema) (*Node, error) {
	n := &Node{Kind: KindGroups, Inputs: []*Node{in}, Groups: &g, Schema: out}
	return n, n.derive()
}

func NewFilter(in *Node, cond *expr.Expr) (*Node, error) {
	n := &Node{Kind: KindFilter, Inputs: []*Node{in}, Cond: cond}
	return n, n.derive()
}

func NewProject(in *Node, exprs []*expr.Expr) (*Node, error) {
	n := &Node{Kind: KindProject, Inputs: []*Node{in}, Exprs: exprs}
	return n, n.derive()
}

func NewAggregate(in *Node, keys []*expr.Expr, aggs []exec.Agg) (*Node, error) {
	n := &Node{Kind: KindAggregate, Inputs: []*Node{in}, Keys: keys, Aggs: aggs, AggMode: exec.AggComplete}
	return n, n.derive()
}

// NewJoin joins on leftKeys[i] = rightKeys[i]; keys must be column references
// of equal types (the Dataset API casts them first), and the two sides must
// not share column names (the API renames).
func NewJoin(left, right *Node, leftKeys, rightKeys []*expr.Expr, how exec.JoinType, cond *expr.Expr) (*Node, error) {
	n := &Node{Kind: KindJoin, Inputs: []*Node{left, right}, Join: &Join{How: how, LeftKeys: leftKeys, RightKeys: rightKeys, Cond: cond}}
	return n, n.derive()
}

func NewUnion(ins ...*Node) (*Node, error) {
	n := &Node{Kind: KindUnion, Inputs: ins}
	return n, n.derive()
}

func NewSort(in *Node, keys []exec.SortKey, limit int64) (*Node, error) {
	n := &Node{Kind: KindSort, Inputs: []*Node{in}, SortKeys: keys, N: limit}
	return n, n.derive()
}

func NewLimit(in *Node, limit int64) *Node {
	return &Node{Kind: KindLimit, Inputs: []*Node{in}, N: limit, Schema: in.Schema}
}

func NewMapBatches(in *Node, name string, schema *arrow.Schema) *Node {
	return &Node{Kind: KindMapBatches, Inputs: []*Node{in}, Func: name, Schema: schema}
}

func NewWrite(in *Node, w *Write) (*Node, error) {
	for _, c := range w.Options.PartitionBy {
		if len(in.Schema.FieldIndices(c)) == 0 {
			return nil, fmt.Errorf("%w: partition column %q is not in %s", ErrPlan, c, columnNames(in.Schema))
		}
	}
	if err := w.Options.Validate(); err != nil {
		return nil, err
	}
	return &Node{Kind: KindWrite, Inputs: []*Node{in}, Write: w, Schema: exec.WrittenSchema}, nil
}

// derive computes n.Schema from its inputs (and checks the node), so rewrites
// can rebuild schemas bottom-up after changing inputs.
func (n *Node) derive() error {
	in := func(i int) *arrow.Schema { return n.Inputs[i].Schema }
	switch n.Kind {
	case KindScan:
		if n.Scan.Stream != nil {
			src := n.Scan.Stream.Schema()
			fields := make([]arrow.Field, 0, len(n.Scan.Columns))
			for _, c := range n.Scan.Columns {
				idx := src.FieldIndices(c)
				if len(idx) == 0 {
					return fmt.Errorf("%w: unknown column %q in stream %s", expr.ErrUnknownColumn, c, n.Scan.Stream.Name())
				}
				fields = append(fields, src.Field(idx[0]))
			}
			if len(fields) == src.NumFields() {
				n.Schema = src // every column, in order: the source's schema
				return nil
			}
			n.Schema = arrow.NewSchema(fields, nil)
			return nil
		}
		if n.Scan.Table == nil {
			return nil // memory scans keep their schema
		}
		fields := make([]arrow.Field, 0, len(n.Scan.Columns))
		for _, c := range n.Scan.Columns {
			idx := n.Scan.Table.Schema.FieldIndices(c)
			if len(idx) == 0 {
				return fmt.Errorf("%w: unknown column %q in %s", expr.ErrUnknownColumn, c, strings.Join(n.Scan.Paths, ", "))
			}
			fields = append(fields, n.Scan.Table.Schema.Field(idx[0]))
		}
		n.Schema = arrow.NewSchema(fields, nil)
	case KindFilter:
		t, err := n.Cond.DataType(in(0))
		if err != nil {
			return fmt.Errorf("filter %s: %w", n.Cond, err)
		}
		if t.ID() != arrow.BOOL && t.ID() != arrow.NULL {
			return fmt.Errorf("filter %s: %w: condition is %s, not bool", n.Cond, expr.ErrType, t)
		}
		n.Schema = in(0)
	case KindProject:
		s, err := exec.ProjectSchema(in(0), n.Exprs)
		if err != nil {
			return err
		}
		if err := uniqueNames(s); err != nil {
			return fmt.Errorf("select [%s]: %w", exprList(n.Exprs), err)
		}
		n.Schema = s
	case KindAggregate:
		s, err := exec.AggSchema(in(0), n.Keys, n.Aggs)
		if err != nil {
			return err
		}
		if err := uniqueNames(s); err != nil {
			return fmt.Errorf("aggregate: %w", err)
		}
		n.Schema = s
	case KindJoin:
		return n.deriveJoin()
	case KindUnion:
		first := in(0)
		for i := 1; i < len(n.Inputs); i++ {
			s := in(i)
			if s.NumFields() != first.NumFields() {
				return fmt.Errorf("%w: union by name: input %d has columns %s, input 0 has %s", ErrPlan, i, columnNames(s), columnNames(first))
			}
			for _, f := range first.Fields() {
				idx := s.FieldIndices(f.Name)
				if len(idx) == 0 {
					return fmt.Errorf("%w: union by name: input %d has no column %q (it has %s)", ErrPlan, i, f.Name, columnNames(s))
				}
				if g := s.Field(idx[0]); !arrow.TypeEqual(g.Type, f.Type) {
					return fmt.Errorf("%w: union by name: column %q is %s in input 0 but %s in input %d", ErrPlan, f.Name, f.Type, g.Type, i)
				}
			}
		}
		n.Schema = first
	case KindSort:
		for _, k := range n.SortKeys {
			if _, err := k.Expr.DataType(in(0)); err != nil {
				return fmt.Errorf("order by %s: %w", k.Expr, err)
			}
		}
		n.Schema = in(0)
	case KindLimit:
		n.Schema = in(0)
	case KindWatermark:
		idx := in(0).FieldIndices(n.Watermark.Column)
		if len(idx) == 0 {
			return fmt.Errorf("watermark on %q: %w: available %s", n.Watermark.Column, expr.ErrUnknownColumn, columnNames(in(0)))
		}
		if _, ok := in(0).Field(idx[0]).Type.(*arrow.TimestampType); !ok {
			return fmt.Errorf("watermark on %q: %w: the column is %s, not a timestamp", n.Watermark.Column, expr.ErrType, in(0).Field(idx[0]).Type)
		}
		if n.Watermark.DelayMicros < 0 {
			return fmt.Errorf("%w: watermark on %q: negative delay", ErrPlan, n.Watermark.Column)
		}
		if n.Watermark.IdleMicros < 0 {
			return fmt.Errorf("%w: watermark on %q: negative idleness", ErrPlan, n.Watermark.Column)
		}
		n.Schema = in(0)
	case KindSession:
		sch, err := exec.SessionSchema(in(0), *n.Session)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPlan, err)
		}
		n.Schema = sch
	case KindDedup:
		if len(n.DedupKeys) == 0 {
			return fmt.Errorf("%w: drop duplicates needs at least one column", ErrPlan)
		}
		for _, k := range n.DedupKeys {
			if len(in(0).FieldIndices(k)) == 0 {
				return fmt.Errorf("drop duplicates on %q: %w: available %s", k, expr.ErrUnknownColumn, columnNames(in(0)))
			}
		}
		n.Schema = in(0)
	case KindGroups: // the output schema is the user's, fixed when made
		if len(n.Groups.Keys) == 0 {
			return fmt.Errorf("%w: flatMapGroupsWithState needs at least one key column", ErrPlan)
		}
		for _, k := range n.Groups.Keys {
			if len(in(0).FieldIndices(k)) == 0 {
				return fmt.Errorf("group by key %q: %w: available %s", k, expr.ErrUnknownColumn, columnNames(in(0)))
			}
		}
		if n.Schema == nil || n.Schema.NumFields() == 0 {
			return fmt.Errorf("%w: flatMapGroupsWithState %q needs an output schema with at least one column", ErrPlan, n.Groups.Func)
		}
	case KindWindow:
		s, err := exec.WindowSchema(in(0), *n.Window)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPlan, err)
		}
		n.Schema = s
	}
	return nil
}

func (n *Node) deriveJoin() error {
	l, r := n.Inputs[0].Schema, n.Inputs[1].Schema
	j := n.Join
	if len(j.LeftKeys) == 0 || len(j.LeftKeys) != len(j.RightKeys) {
		return fmt.Errorf("%w: join needs the same non-zero number of keys on both sides", ErrPlan)
	}
	for i := range j.LeftKeys {
		lt, err := j.LeftKeys[i].DataType(l)
		if err != nil {
			return fmt.Errorf("join key %s: %w", j.LeftKeys[i], err)
		}
		rt, err := j.RightKeys[i].DataType(r)
		if err != nil {
			return fmt.Errorf("join key %s: %w", j.RightKeys[i], err)
		}
		if !arrow.TypeEqual(lt, rt) {
			return fmt.Errorf("%w: join keys %s (%s) and %s (%s) have different types", ErrPlan, j.LeftKeys[i], lt, j.RightKeys[i], rt)
		}
	}
	nullable := func(fs []arrow.Field, yes bool) []arrow.Field {
		out := make([]arrow.Field, len(fs))
		for i, f := range fs {
			f.Nullable = f.Nullable || yes
			out[i] = f
		}
		return out
	}
	if j.Cond != nil {
		both := arrow.NewSchema(append(append([]arrow.Field{}, l.Fields()...), r.Fields()...), nil)
		t, err := j.Cond.DataType(both)
		if err != nil {
			return fmt.Errorf("join condition %s: %w", j.Cond, err)
		}
		if t.ID() != arrow.BOOL {
			return fmt.Errorf("%w: join condition %s is %s, not boolean", ErrPlan, j.Cond, t)
		}
	}
	switch j.How {
	case "semi", "anti":
		n.Schema = l
		return nil
	}
	lf := nullable(l.Fields(), j.How == "right" || j.How == "full")
	rf := nullable(r.Fields(), j.How == "left" || j.How == "full")
	s := arrow.NewSchema(append(lf, rf...), nil)
	if err := uniqueNames(s); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	n.Schema = s
	return nil
}

func uniqueNames(s *arrow.Schema) error {
	seen := map[string]bool{}
	for _, f := range s.Fields() {
		if seen[f.Name] {
			return fmt.Errorf("%w: duplicate column name %q in %s", ErrPlan, f.Name, columnNames(s))
		}
		seen[f.Name] = true
	}
	return nil
}

func columnNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return "[" + strings.Join(names, ", ") + "]"
}
