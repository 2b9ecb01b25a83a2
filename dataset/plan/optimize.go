package plan

import (
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/expr"
	pq "github.com/sluicedata/sluice/sources/parquet"
)

// Optimize rewrites a logical plan into an equivalent one that reads less:
//  1. filters move below projections, sorts, unions and into the matching
//     sides of joins, and their simple conjuncts become scan predicates used to
//     prune partitions and row groups (the filter itself stays: pruning is
//     per row group, never per row);
//  2. scans read only the columns something above them uses.
//
// The input plan is not modified.
func Optimize(root *Node) (*Node, error) {
	n := clone(root)
	n = pushFilters(n)
	prune(n, nil)
	n = collapseProjects(n)
	if err := rederive(n); err != nil {
		return nil, err
	}
	return n, nil
}

func clone(n *Node) *Node {
	c := *n
	if n.Scan != nil {
		s := *n.Scan
		s.Columns = append([]string(nil), s.Columns...)
		s.Preds = append([]pq.Predicate(nil), s.Preds...)
		c.Scan = &s
	}
	if n.Join != nil {
		j := *n.Join
		c.Join = &j
	}
	c.Inputs = make([]*Node, len(n.Inputs))
	for i, in := range n.Inputs {
		c.Inputs[i] = clone(in)
	}
	return &c
}

// rederive recomputes schemas bottom-up after a rewrite.
func rederive(n *Node) error {
	for _, in := range n.Inputs {
		if err := rederive(in); err != nil {
			return err
		}
	}
	switch n.Kind {
	case KindLimit:
		n.Schema = n.Inputs[0].Schema
	case KindMapBatches, KindWrite:
		// fixed output schema
	default:
		return n.derive()
	}
	return nil
}

// collapseProjects merges a projection that only selects or renames columns
// into the projection below it.
func collapseProjects(n *Node) *Node {
	for i, in := range n.Inputs {
		n.Inputs[i] = collapseProjects(in)
	}
	if n.Kind != KindProject || n.Inputs[0].Kind != KindProject {
		return n
	}
	inner := n.Inputs[0]
	byName := map[string]*expr.Expr{}
	for _, e := range inner.Exprs {
		byName[e.OutputName()] = e
	}
	merged := make([]*expr.Expr, 0, len(n.Exprs))
	for _, e := range n.Exprs {
		src, name := e, e.OutputName()
		if src.Op == expr.OpAlias {
			src = src.Args[0]
		}
		if src.Op != expr.OpCol {
			return n
		}
		m := byName[src.Name]
		if m == nil {
			return n
		}
		if m.OutputName() != name {
			if m.Op == expr.OpAlias {
				m = m.Args[0]
			}
			m = m.As(name)
		}
		merged = append(merged, m)
	}
	return &Node{Kind: KindProject, Inputs: inner.Inputs, Exprs: merged, Schema: n.Schema}
}

func conjuncts(e *expr.Expr) []*expr.Expr {
	if e.Op == expr.OpAnd {
		return append(conjuncts(e.Args[0]), conjuncts(e.Args[1])...)
	}
	return []*expr.Expr{e}
}

func hasAll(s *arrow.Schema, cols []string) bool {
	for _, c := range cols {
		if len(s.FieldIndices(c)) == 0 {
			return false
		}
	}
	return true
}

// pushFilters returns the rewritten subtree.
func pushFilters(n *Node) *Node {
	for i, in := range n.Inputs {
		n.Inputs[i] = pushFilters(in)
	}
	if n.Kind != KindFilter {
		return n
	}
	child := n.Inputs[0]
	var keep []*expr.Expr
	for _, c := range conjuncts(n.Cond) {
		if !pushInto(child, c) {
			keep = append(keep, c)
		}
	}
	if child.Kind == KindScan && child.Scan.Table != nil {
		for _, c := range keep {
			if p, ok := toPredicate(c, child.Scan.Table.Schema); ok {
				child.Scan.Preds = append(child.Scan.Preds, p)
			}
		}
	}
	if len(keep) == 0 {
		return child
	}
	n.Cond = expr.And(keep...)
	return n
}

// pushInto tries to move conjunct c below node n (which is the filter's input);
// it reports whether it did.
func pushInto(n *Node, c *expr.Expr) bool {
	cols := c.Columns()
	wrap := func(i int, cond *expr.Expr) {
		f := &Node{Kind: KindFilter, Inputs: []*Node{n.Inputs[i]}, Cond: cond, Schema: n.Inputs[i].Schema}
		n.Inputs[i] = pushFilters(f)
	}
	switch n.Kind {
	case KindFilter, KindSort:
		wrap(0, c)
		return true
	case KindUnion:
		for i := range n.Inputs {
			wrap(i, c)
		}
		return true
	case KindProject:
		// Only through plain column references and renames of them.
		rename := map[string]string{}
		for _, e := range n.Exprs {
			switch {
			case e.Op == expr.OpCol:
				rename[e.Name] = e.Name
			case e.Op == expr.OpAlias && e.Args[0].Op == expr.OpCol:
				rename[e.Name] = e.Args[0].Name
			}
		}
		for _, col := range cols {
			if _, ok := rename[col]; !ok {
				return false
			}
		}
		wrap(0, renameCols(c, rename))
		return true
	case KindJoin:
		l, r := n.Inputs[0].Schema, n.Inputs[1].Schema
		how := n.Join.How
		if hasAll(l, cols) && (how == "inner" || how == "left" || how == "semi" || how == "anti") {
			wrap(0, c)
			return true
		}
		if hasAll(r, cols) && (how == "inner" || how == "right") {
			wrap(1, c)
			return true
		}
	case KindAggregate:
		keyCols := map[string]string{}
		for _, k := range n.Keys {
			if k.Op == expr.OpCol {
				keyCols[k.Name] = k.Name
			}
		}
		for _, col := range cols {
			if _, ok := keyCols[col]; !ok {
				return false
			}
		}
		wrap(0, c)
		return true
	}
	return false
}

func renameCols(e *expr.Expr, m map[string]string) *expr.Expr {
	c := *e
	if c.Op == expr.OpCol {
		c.Name = m[c.Name]
		return &c
	}
	c.Args = make([]*expr.Expr, len(e.Args))
	for i, a := range e.Args {
		c.Args[i] = renameCols(a, m)
	}
	return &c
}

// toPredicate turns "col op literal" shapes into a scan predicate with the
// literal converted to the column's physical value; anything else stays a
// plain filter.
func toPredicate(c *expr.Expr, s *arrow.Schema) (pq.Predicate, bool) {
	colType := func(e *expr.Expr) (arrow.DataType, bool) {
		if e.Op != expr.OpCol {
			return nil, false
		}
		idx := s.FieldIndices(e.Name)
		if len(idx) == 0 {
			return nil, false
		}
		return s.Field(idx[0]).Type, true
	}
	switch c.Op {
	case expr.OpIsNull, expr.OpNotNull:
		if _, ok := colType(c.Args[0]); ok {
			return pq.Predicate{Column: c.Args[0].Name, Op: string(c.Op)}, true
		}
	case expr.OpEq, expr.OpNe, expr.OpLt, expr.OpLe, expr.OpGt, expr.OpGe:
		col, lit, op := c.Args[0], c.Args[1], string(c.Op)
		if col.Op == expr.OpLit {
			col, lit = lit, col
			op = map[string]string{"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}[op]
		}
		t, ok := colType(col)
		if !ok || lit.Op != expr.OpLit {
			return pq.Predicate{}, false
		}
		v, ok := physicalValue(lit.Lit, t)
		if !ok {
			return pq.Predicate{}, false
		}
		return pq.Predicate{Column: col.Name, Op: op, Values: []any{v}}, true
	case expr.OpIn:
		t, ok := colType(c.Args[0])
		if !ok {
			return pq.Predicate{}, false
		}
		vals := make([]any, 0, len(c.Args)-1)
		for _, a := range c.Args[1:] {
			if a.Op != expr.OpLit {
				return pq.Predicate{}, false
			}
			v, ok := physicalValue(a.Lit, t)
			if !ok {
				return pq.Predicate{}, false
			}
			vals = append(vals, v)
		}
		return pq.Predicate{Column: c.Args[0].Name, Op: "in", Values: vals}, true
	}
	return pq.Predicate{}, false
}

// physicalValue converts a literal to the physical value of column type t, only
// where the conversion is exact.
func physicalValue(l *expr.Literal, t arrow.DataType) (any, bool) {
	if l.Null {
		return nil, false
	}
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		switch v := l.Value.(type) {
		case int64:
			return v, isIntType(l.Type.DataType)
		}
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		switch v := l.Value.(type) {
		case uint64:
			return v, true
		case int64:
			if v >= 0 && isIntType(l.Type.DataType) {
				return uint64(v), true
			}
		}
	case arrow.FLOAT32, arrow.FLOAT64:
		switch v := l.Value.(type) {
		case float64:
			return v, true
		case int64:
			return float64(v), isIntType(l.Type.DataType)
		}
	case arrow.STRING, arrow.LARGE_STRING:
		if v, ok := l.Value.(string); ok {
			return v, true
		}
	case arrow.BOOL:
		if v, ok := l.Value.(bool); ok {
			return v, true
		}
	case arrow.DATE32:
		switch l.Type.ID() {
		case arrow.DATE32:
			return l.Value, true
		case arrow.STRING:
			d, err := time.Parse("2006-01-02", l.Value.(string))
			if err != nil {
				return nil, false
			}
			return d.Unix() / 86400, true
		}
	case arrow.TIMESTAMP:
		ct := t.(*arrow.TimestampType)
		switch lt := l.Type.DataType.(type) {
		case *arrow.TimestampType:
			if lt.Unit == ct.Unit {
				return l.Value, true
			}
		}
	}
	return nil, false
}

func isIntType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		return true
	}
	return false
}

// prune narrows scans to the columns needed above them. need == nil means
// every output column is needed.
func prune(n *Node, need map[string]bool) {
	all := func(s *arrow.Schema) map[string]bool {
		m := map[string]bool{}
		for _, f := range s.Fields() {
			m[f.Name] = true
		}
		return m
	}
	if need == nil {
		need = all(n.Schema)
	}
	add := func(m map[string]bool, es ...*expr.Expr) {
		for _, e := range es {
			if e == nil {
				continue
			}
			for _, c := range e.Columns() {
				m[c] = true
			}
		}
	}
	copyOf := func(m map[string]bool) map[string]bool {
		c := map[string]bool{}
		for k := range m {
			c[k] = true
		}
		return c
	}
	switch n.Kind {
	case KindScan:
		if n.Scan.Stream != nil {
			// A stream's records come whole; the scan keeps the columns
			// needed (zero-copy) so windows and exchanges copy no others.
			var cols []string
			for _, f := range n.Scan.Stream.Schema().Fields() {
				if need[f.Name] {
					cols = append(cols, f.Name)
				}
			}
			if len(cols) == 0 {
				cols = []string{cheapest(n.Scan.Stream.Schema())}
			}
			n.Scan.Columns = cols
			return
		}
		if n.Scan.Table == nil {
			return // memory scans keep their schema
		}
		var cols []string
		for _, f := range n.Scan.Table.Schema.Fields() {
			if need[f.Name] {
				cols = append(cols, f.Name)
			}
		}
		if len(cols) == 0 {
			// count(*) needs rows but no values: read the cheapest column.
			cols = []string{cheapest(n.Scan.Table.Schema)}
		}
		n.Scan.Columns = cols
	case KindWatermark:
		m := copyOf(need)
		m[n.Watermark.Column] = true
		prune(n.Inputs[0], m)
	case KindSession:
		m := copyOf(need)
		delete(m, n.Session.StartName)
		delete(m, n.Session.EndName)
		m[n.Session.Column] = true
		for _, k := range n.Session.Keys {
			m[k] = true
		}
		prune(n.Inputs[0], m)
	case KindDedup:
		m := copyOf(need)
		for _, k := range n.DedupKeys {
			m[k] = true
		}
		prune(n.Inputs[0], m)
	case KindWindow:
		m := copyOf(need)
		delete(m, n.Window.StartName)
		delete(m, n.Window.EndName)
		m[n.Window.Column] = true
		prune(n.Inputs[0], m)
	case KindFilter, KindSort, KindLimit:
		m := copyOf(need)
		add(m, n.Cond)
		for _, k := range n.SortKeys {
			add(m, k.Expr)
		}
		prune(n.Inputs[0], m)
	case KindProject:
		var kept []*expr.Expr
		for _, e := range n.Exprs {
			if need[e.OutputName()] {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			kept = n.Exprs[:1]
		}
		n.Exprs = kept
		m := map[string]bool{}
		add(m, kept...)
		prune(n.Inputs[0], m)
	case KindAggregate:
		m := map[string]bool{}
		add(m, n.Keys...)
		for _, a := range n.Aggs {
			add(m, a.Arg)
		}
		prune(n.Inputs[0], m)
	case KindJoin:
		m := copyOf(need)
		add(m, n.Join.LeftKeys...)
		add(m, n.Join.RightKeys...)
		if n.Join.Cond != nil {
			add(m, n.Join.Cond)
		}
		prune(n.Inputs[0], intersect(m, n.Inputs[0].Schema))
		prune(n.Inputs[1], intersect(m, n.Inputs[1].Schema))
	case KindUnion:
		// Inputs are matched by name, so each must keep the same columns,
		// and at least one even when nothing above reads values (count(*)).
		m := copyOf(need)
		if len(m) == 0 {
			m[n.Schema.Field(0).Name] = true
		}
		for _, in := range n.Inputs {
			prune(in, copyOf(m))
		}
	default: // MapBatches and Write see whole records
		for _, in := range n.Inputs {
			prune(in, nil)
		}
	}
}

func intersect(m map[string]bool, s *arrow.Schema) map[string]bool {
	out := map[string]bool{}
	for _, f := range s.Fields() {
		if m[f.Name] {
			out[f.Name] = true
		}
	}
	return out
}

func cheapest(s *arrow.Schema) string {
	best, bestW := s.Field(0).Name, 1<<30
	for _, f := range s.Fields() {
		w := 1 << 20
		if fw, ok := f.Type.(arrow.FixedWidthDataType); ok {
			w = fw.BitWidth()
		}
		if w < bestW {
			best, bestW = f.Name, w
		}
	}
	return best
}
