package plan

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	pq "github.com/sluicedata/sluice/sources/parquet"
)

// Kind names a plan node. Logical plans use every kind but Exchange and
// ShuffleRead; physical plans add those and set aggregate modes.
type Kind string

const (
	KindScan        Kind = "Scan"
	KindFilter      Kind = "Filter"
	KindProject     Kind = "Project"
	KindAggregate   Kind = "Aggregate"
	KindJoin        Kind = "Join"
	KindUnion       Kind = "Union"
	KindSort        Kind = "Sort"
	KindLimit       Kind = "Limit"
	KindMapBatches  Kind = "MapBatches"
	KindWrite       Kind = "Write"
	KindWatermark   Kind = "Watermark"  // declares an event-time column and delay
	KindWindow      Kind = "Window"     // adds event-time window start/end columns
	KindLateFilter  Kind = "LateFilter" // physical: drops rows of windows the watermark closed
	KindDedup       Kind = "DropDuplicates"
	KindSession     Kind = "SessionWindow" // adds session start/end columns
	KindExchange    Kind = "Exchange"      // a stage boundary: its input is repartitioned
	KindShuffleRead Kind = "ShuffleRead"   // the reading end of an Exchange inside a stage
)

// Node is one operator of a plan. It is plain data apart from in-memory scan
// records, so a task fragment can later be shipped to executors; the operator
// code is looked up by Kind (and MapBatches functions by name) where it runs.
type Node struct {
	Kind   Kind
	Inputs []*Node
	Schema *arrow.Schema // output schema, computed when the node is made

	Scan     *Scan
	Cond     *expr.Expr     // Filter
	Exprs    []*expr.Expr   // Project
	Keys     []*expr.Expr   // Aggregate group keys; Exchange hash keys
	Aggs     []exec.Agg     // Aggregate
	AggMode  exec.AggMode   // Aggregate (physical)
	Join     *Join          // Join
	SortKeys []exec.SortKey // Sort
	N        int64          // Limit; Sort top-k (0 = all)
	Func     string         // MapBatches registered name
	Write    *Write         // Write
	Parts    int            // Exchange: number of output partitions (1 = gather)
	// KeyGroups, on an Exchange, routes rows by key group (see
	// exec.PartitionByKeyGroup) so they meet the state of their key groups.
	KeyGroups int
	// State makes a final Aggregate stateful across micro-batches. Its
	// per-batch fields are filled where the task runs (Build).
	State *exec.StateSpec
	// Watermark declares Column as event time, DelayMicros late.
	Watermark *WatermarkSpec
	// Window assigns rows to event-time windows.
	Window *exec.WindowSpec
	// Late drops rows whose Column <= Threshold (physical, streaming).
	Late *LateSpec
	// DedupKeys are DropDuplicates' key columns.
	DedupKeys []string
	// Session assigns rows to session windows (and, on a stateful
	// Aggregate, says the aggregate merges sessions across batches).
	Session *exec.SessionSpec
	// StreamJoin makes a Join of two streams stateful (physical).
	StreamJoin *exec.StreamJoinSpec
	// Groups is a FlatMapGroupsWithState's function, keys and timeout.
	Groups   *exec.GroupsSpec
	Exchange int // ShuffleRead: id of the exchange it reads
}

// Scan reads a Parquet table, in-memory records or a stream. The logical
// plan holds the live table, records or stream; physical planning turns
// them into data (splits, a broadcast key, a source name).
type Scan struct {
	Table   *pq.Table      `json:"-"` // nil for in-memory and streams
	Paths   []string       // as the user gave them
	Columns []string       // projected columns, in output order
	Preds   []pq.Predicate `json:"-"` // pushed-down conjuncts used for pruning
	Records []arrow.Record `json:"-"` // in-memory source; retained by the Dataset that made it
	Stream  sources.Stream `json:"-"` // streaming source

	// Set by physical planning:
	Splits           []pq.Split    `json:",omitempty"` // Parquet splits
	Pruned           pq.PruneStats `json:",omitempty"`
	Files            int           `json:",omitempty"` // Parquet files listed
	Pushed           []string      `json:",omitempty"` // predicates used for pruning, as text
	PartitionColumns []string      `json:",omitempty"` // Hive partition columns of the table
	// MemoryKey is the broadcast key of an in-memory scan's records, one
	// task per record (MemoryParts), MemoryRows in all.
	MemoryKey   string `json:",omitempty"`
	MemoryParts int    `json:",omitempty"`
	MemoryRows  int64  `json:",omitempty"`
	// Source names a stream scan's source; SourceColumns are the source's
	// columns, so a task knows which of them the scan keeps.
	Source        string   `json:",omitempty"`
	SourceColumns []string `json:",omitempty"`
	// Count: rows this scan reads count as its source's input rows (a
	// stream read twice, by a self-join, counts once).
	Count bool `json:",omitempty"`
	// Leaf is the scan's index among its stage's scan leaves.
	Leaf int
}

// WatermarkSpec is an event-time column and how late its rows may arrive.
// ID ("wm-0", ...) is set by physical planning: the key of its watermark in
// checkpoints and in task metrics.
type WatermarkSpec struct {
	ID          string `json:",omitempty"`
	Column      string
	DelayMicros int64
	// IdleMicros > 0: the input stops holding the query's watermark back
	// once its sources have had no new data for this long of batch time
	// (WithIdleness). Only the driver reads it; Sources, the names of the
	// streams the declaration reads, is filled for it in Spec.Watermarks.
	IdleMicros int64    `json:",omitempty"`
	Sources    []string `json:",omitempty"`
}

// LateSpec drops rows at or behind the batch's watermark (Prev: the
// previous batch's), converted to the column's Unit, minus Gap, before
// stateful operator Operator. Also are the other operators whose equal
// copy of the stage this one stands for (Stages: exchange reuse): the rows
// it drops count as dropped for each.
type LateSpec struct {
	Column   string
	Operator string
	Also     []string `json:",omitempty"`
	Unit     arrow.TimeUnit
	Prev     bool  `json:",omitempty"`
	Gap      int64 `json:",omitempty"`
}

// Threshold is the event time (in the column's unit) at or behind which
// rows are late in batch b.
func (l *LateSpec) Threshold(b BatchContext) int64 {
	wm := b.Watermark
	if l.Prev {
		wm = b.PrevWatermark
	}
	t := exec.FromMicros(wm, l.Unit)
	if t != math.MinInt64 { // no watermark yet: nothing is late (and MinInt64 - gap would wrap)
		t -= l.Gap
	}
	return t
}

// Join is an equi-join.
type Join struct {
	How       exec.JoinType
	LeftKeys  []*expr.Expr
	RightKeys []*expr.Expr
	// Cond, when set, is a residual condition over both sides' columns: a
	// pair of rows with equal keys joins only when it is true.
	Cond       *expr.Expr
	BuildRight bool // physical: which side becomes the hash table
	// Refresh: in a stream-static join, collect the bounded side again
	// every Refresh batches (0: once per query).
	Refresh int
	// TTL, in a stream-stream inner join, drops a stored row whose key has
	// not been seen on either side for TTL microseconds of batch time.
	TTL int64
	// Broadcast (physical, stream-static) replaces the bounded input.
	Broadcast *Broadcast `json:",omitempty"`
}

// Write is an output: a Parquet batch job (Target) or a streaming sink
// (SinkName; the task finds the sink in its Job, and the batch id and mode
// in its BatchContext).
type Write struct {
	Target   string          `json:",omitempty"`
	JobID    string          `json:",omitempty"`
	Options  parquet.Options `json:",omitempty"`
	SinkName string          `json:",omitempty"`
}

// Walk calls fn on n and its inputs, depth first, parents before children.
func (n *Node) Walk(fn func(*Node)) {
	fn(n)
	for _, in := range n.Inputs {
		in.Walk(fn)
	}
}

// describe is the one-line text of a node in EXPLAIN output.
func (n *Node) describe() string {
	switch n.Kind {
	case KindScan:
		s := n.Scan
		switch {
		case s.Stream != nil:
			return fmt.Sprintf("Scan stream %s [%s]", s.Stream.Name(), strings.Join(s.Columns, ", "))
		case s.Source != "":
			return fmt.Sprintf("Scan stream %s [%s]", s.Source, strings.Join(s.Columns, ", "))
		case s.Records != nil:
			rows := int64(0)
			for _, r := range s.Records {
				rows += r.NumRows()
			}
			return fmt.Sprintf("Scan memory [%s] rows=%d", strings.Join(s.Columns, ", "), rows)
		case s.MemoryKey != "":
			return fmt.Sprintf("Scan memory [%s] rows=%d", strings.Join(s.Columns, ", "), s.MemoryRows)
		}
		var b strings.Builder
		files, pushed := s.Files, s.Pushed
		if s.Table != nil {
			files, pushed = len(s.Table.Files), nil
			for _, p := range s.Preds {
				pushed = append(pushed, predString(p))
			}
		}
		fmt.Fprintf(&b, "Scan parquet [%s] files=%d", strings.Join(s.Columns, ", "), files)
		if len(pushed) > 0 {
			fmt.Fprintf(&b, " pushed=[%s]", strings.Join(pushed, ", "))
		}
		if s.Splits != nil {
			fmt.Fprintf(&b, " splits=%d row_groups_pruned=%d/%d files_pruned=%d/%d",
				len(s.Splits), s.Pruned.RowGroupsPruned, s.Pruned.RowGroups, s.Pruned.FilesPruned, s.Pruned.Files)
		}
		return b.String()
	case KindFilter:
		return "Filter " + n.Cond.String()
	case KindProject:
		return "Project [" + exprList(n.Exprs) + "]"
	case KindAggregate:
		mode := ""
		switch n.AggMode {
		case exec.AggPartial:
			mode = " partial"
		case exec.AggFinal:
			mode = " final"
		}
		aggs := make([]string, len(n.Aggs))
		for i, a := range n.Aggs {
			aggs[i] = aggString(a)
		}
		d := fmt.Sprintf("Aggregate%s keys=[%s] aggs=[%s]", mode, exprList(n.Keys), strings.Join(aggs, ", "))
		if n.State != nil {
			d += fmt.Sprintf(" state=%s emit=%s", n.State.Operator, n.State.Emit)
		}
		return d
	case KindJoin:
		keys := make([]string, len(n.Join.LeftKeys))
		for i := range keys {
			keys[i] = n.Join.LeftKeys[i].String() + " = " + n.Join.RightKeys[i].String()
		}
		s := fmt.Sprintf("Join %s on [%s]", n.Join.How, strings.Join(keys, ", "))
		if n.Join.Cond != nil {
			s += " where " + n.Join.Cond.String()
		}
		if n.StreamJoin == nil && len(n.Inputs) > 0 && (n.Inputs[0].Kind == KindExchange || n.Inputs[0].Kind == KindShuffleRead) {
			build := "left"
			if n.Join.BuildRight {
				build = "right"
			}
			s += " build=" + build // the build side is chosen in physical planning
		}
		if b := n.Join.Broadcast; b != nil {
			side := "right"
			if b.Left {
				side = "left"
			}
			s += fmt.Sprintf(" broadcast=%s key=%s", side, b.Key)
		}
		if n.Join.TTL > 0 {
			s += fmt.Sprintf(" ttl=%v", time.Duration(n.Join.TTL)*time.Microsecond)
		}
		if sj := n.StreamJoin; sj != nil {
			if sj.LeftTime != "" {
				s += fmt.Sprintf(" time=%s-%s in [%s, %s]", sj.RightTime, sj.LeftTime, boundString(sj.Lower), boundString(sj.Upper))
			}
			s += " state=" + n.State.Operator
		}
		return s
	case KindUnion:
		return "Union"
	case KindWatermark:
		s := fmt.Sprintf("Watermark %s delay=%v", n.Watermark.Column, time.Duration(n.Watermark.DelayMicros)*time.Microsecond)
		if n.Watermark.IdleMicros > 0 {
			s += fmt.Sprintf(" idle=%v", time.Duration(n.Watermark.IdleMicros)*time.Microsecond)
		}
		return s
	case KindWindow:
		w := n.Window
		return fmt.Sprintf("Window %s size=%d slide=%d offset=%d -> [%s, %s]", w.Column, w.Size, w.Slide, w.Offset, w.StartName, w.EndName)
	case KindLateFilter:
		wm := "watermark"
		if n.Late.Prev {
			wm = "previous watermark"
		}
		if n.Late.Gap != 0 {
			wm += fmt.Sprintf(" - %d", n.Late.Gap)
		}
		return fmt.Sprintf("LateFilter %s > %s", n.Late.Column, wm)
	case KindSession:
		return fmt.Sprintf("SessionWindow %s gap=%d keys=[%s] -> [%s, %s]", n.Session.Column, n.Session.Gap,
			strings.Join(n.Session.Keys, ", "), n.Session.StartName, n.Session.EndName)
	case KindDedup:
		d := fmt.Sprintf("DropDuplicates [%s]", strings.Join(n.DedupKeys, ", "))
		if n.State != nil {
			d += " state=" + n.State.Operator
		}
		return d
	case KindSort:
		keys := make([]string, len(n.SortKeys))
		for i, k := range n.SortKeys {
			dir, nulls := "ASC", "NULLS LAST"
			if k.Desc {
				dir = "DESC"
			}
			if k.NullsFirst {
				nulls = "NULLS FIRST"
			}
			keys[i] = fmt.Sprintf("%s %s %s", k.Expr, dir, nulls)
		}
		if n.N > 0 {
			return fmt.Sprintf("Sort [%s] limit=%d", strings.Join(keys, ", "), n.N)
		}
		return fmt.Sprintf("Sort [%s]", strings.Join(keys, ", "))
	case KindLimit:
		return fmt.Sprintf("Limit %d", n.N)
	case KindMapBatches:
		return fmt.Sprintf("MapBatches %q", n.Func)
	case KindGroups:
		d := fmt.Sprintf("FlatMapGroupsWithState %q keys=[%s] timeout=%s", n.Groups.Func, strings.Join(n.Groups.Keys, ", "), n.Groups.Timeout)
		if n.Groups.StateType != "" {
			d += " state_type=" + n.Groups.StateType
		}
		if n.State != nil {
			d += " state=" + n.State.Operator
		}
		return d
	case KindWrite:
		if n.Write.SinkName != "" {
			return "Write sink " + n.Write.SinkName
		}
		s := fmt.Sprintf("Write parquet %s compression=%s", n.Write.Target, orDefault(n.Write.Options.Compression, "zstd"))
		if len(n.Write.Options.PartitionBy) > 0 {
			s += " partition_by=[" + strings.Join(n.Write.Options.PartitionBy, ", ") + "]"
		}
		return s
	case KindExchange:
		if n.Parts <= 1 {
			return "Exchange single"
		}
		if n.KeyGroups > 0 {
			return fmt.Sprintf("Exchange keygroups([%s], %d of %d)", exprList(n.Keys), n.Parts, n.KeyGroups)
		}
		return fmt.Sprintf("Exchange hash([%s], %d)", exprList(n.Keys), n.Parts)
	case KindShuffleRead:
		return fmt.Sprintf("ShuffleRead exchange=%d", n.Exchange)
	}
	return string(n.Kind)
}

func boundString(us int64) string {
	switch us {
	case math.MinInt64:
		return "-inf"
	case math.MaxInt64:
		return "+inf"
	}
	return (time.Duration(us) * time.Microsecond).String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func aggString(a exec.Agg) string {
	arg := "*"
	if a.Arg != nil {
		arg = a.Arg.String()
	}
	return fmt.Sprintf("%s(%s) AS %s", a.Func, arg, a.Name)
}

func predString(p pq.Predicate) string {
	vals := make([]string, len(p.Values))
	for i, v := range p.Values {
		if s, ok := v.(string); ok {
			vals[i] = "'" + s + "'"
		} else {
			vals[i] = fmt.Sprint(v)
		}
	}
	return fmt.Sprintf("%s %s %s", p.Column, p.Op, strings.Join(vals, " "))
}

func exprList(es []*expr.Expr) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.String()
	}
	return strings.Join(s, ", ")
}

// Format renders a plan tree, two spaces of indent per level.
func Format(n *Node) string {
	var b strings.Builder
	var walk func(*Node, int)
	walk = func(n *Node, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(n.describe())
		b.WriteByte('\n')
		for _, in := range n.Inputs {
			walk(in, depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}
