package dataset

import (
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/dataset/plan"
)

// Select keeps the given columns or expressions (column names or *Expr), in order.
func (d *Dataset) Select(cols ...any) *Dataset {
	if d.err != nil {
		return d
	}
	exprs := make([]*Expr, len(cols))
	for i, c := range cols {
		exprs[i] = toExpr(c)
	}
	return d.derive(plan.NewProject(d.node, exprs))
}

// WithColumn adds a column, or replaces the column of that name in place.
func (d *Dataset) WithColumn(name string, e *Expr) *Dataset {
	if d.err != nil {
		return d
	}
	var exprs []*Expr
	replaced := false
	for _, f := range d.node.Schema.Fields() {
		if f.Name == name {
			exprs = append(exprs, e.As(name))
			replaced = true
			continue
		}
		exprs = append(exprs, expr.Col(f.Name))
	}
	if !replaced {
		exprs = append(exprs, e.As(name))
	}
	return d.derive(plan.NewProject(d.node, exprs))
}

// WithColumnRenamed renames a column; renaming a missing column is an error.
func (d *Dataset) WithColumnRenamed(from, to string) *Dataset {
	if d.err != nil {
		return d
	}
	if len(d.node.Schema.FieldIndices(from)) == 0 {
		return d.derive(nil, fmt.Errorf("rename %q: %w: available %s", from, expr.ErrUnknownColumn, names(d.node.Schema)))
	}
	var exprs []*Expr
	for _, f := range d.node.Schema.Fields() {
		if f.Name == from {
			exprs = append(exprs, expr.Col(from).As(to))
		} else {
			exprs = append(exprs, expr.Col(f.Name))
		}
	}
	return d.derive(plan.NewProject(d.node, exprs))
}

// Drop removes columns; unknown names are ignored, as in Spark.
func (d *Dataset) Drop(cols ...string) *Dataset {
	if d.err != nil {
		return d
	}
	drop := map[string]bool{}
	for _, c := range cols {
		drop[c] = true
	}
	var exprs []*Expr
	for _, f := range d.node.Schema.Fields() {
		if !drop[f.Name] {
			exprs = append(exprs, expr.Col(f.Name))
		}
	}
	return d.derive(plan.NewProject(d.node, exprs))
}

// Filter keeps rows where cond is true (null is not true).
func (d *Dataset) Filter(cond *Expr) *Dataset {
	if d.err != nil {
		return d
	}
	return d.derive(plan.NewFilter(d.node, cond))
}

// Where is Filter.
func (d *Dataset) Where(cond *Expr) *Dataset { return d.Filter(cond) }

// Grouped is a Dataset waiting for its aggregates.
type Grouped struct {
	d        *Dataset
	keys     []*Expr
	windowed bool
}

// GroupBy groups by columns or expressions (names or *Expr) and at most one
// event-time window (Window, SlidingWindow), which becomes the keys
// window_start and window_end.
func (d *Dataset) GroupBy(keys ...any) *Grouped {
	g := &Grouped{d: d}
	var session *SessionKey
	var plain []string
	for _, k := range keys {
		switch x := k.(type) {
		case SessionKey:
			if session != nil || g.windowed {
				return &Grouped{d: d.derive(nil, fmt.Errorf("group by: at most one window"))}
			}
			session = &x
		case string:
			plain = append(plain, x)
		case *Expr:
			if x.Op == expr.OpCol {
				plain = append(plain, x.Name)
			}
		}
	}
	if session != nil {
		// Session keys must be plain columns: every row of a key meets in one task.
		if len(plain) != len(keys)-1 {
			return &Grouped{d: d.derive(nil, fmt.Errorf("group by a session window: the other keys must be column names"))}
		}
		g.d = d.session(*session, plain)
		g.windowed = true
		for _, k := range keys {
			if _, ok := k.(SessionKey); ok {
				g.keys = append(g.keys, expr.Col(WindowStart), expr.Col(WindowEnd))
			} else {
				g.keys = append(g.keys, toExpr(k))
			}
		}
		return g
	}
	for _, k := range keys {
		if w, ok := k.(WindowKey); ok {
			if g.windowed {
				g.d = d.derive(nil, fmt.Errorf("group by: at most one window"))
				continue
			}
			g.windowed = true
			g.d = g.d.window(w)
			g.keys = append(g.keys, expr.Col(WindowStart), expr.Col(WindowEnd))
			continue
		}
		g.keys = append(g.keys, toExpr(k))
	}
	return g
}

// Agg computes the aggregates per group; the output has the group keys, then
// one column per aggregate. With no keys it is one row over everything.
func (g *Grouped) Agg(aggs ...AggExpr) *Dataset {
	d := g.d
	if d.err != nil {
		return d
	}
	as := make([]exec.Agg, len(aggs))
	for i, a := range aggs {
		as[i] = a.a
	}
	return d.derive(plan.NewAggregate(d.node, g.keys, as))
}

// Count is Agg(CountAll().As("count")).
func (g *Grouped) Count() *Dataset { return g.Agg(CountAll().As("count")) }

// Agg aggregates the whole Dataset into one row.
func (d *Dataset) Agg(aggs ...AggExpr) *Dataset { return d.GroupBy().Agg(aggs...) }

// Distinct removes duplicate rows.
func (d *Dataset) Distinct() *Dataset {
	if d.err != nil {
		return d
	}
	keys := make([]*Expr, d.node.Schema.NumFields())
	for i, f := range d.node.Schema.Fields() {
		keys[i] = expr.Col(f.Name)
	}
	return d.derive(plan.NewAggregate(d.node, keys, nil))
}

// DropDuplicates keeps one row per distinct value of cols (all columns when
// none are given): in a batch job the first in input order, in a stream the
// first ever seen. A stream keeps every key seen in state, unless one of cols
// is a watermarked event-time column: then keys at or behind the watermark
// are forgotten and rows that late are dropped and counted.
func (d *Dataset) DropDuplicates(cols ...string) *Dataset {
	if d.err != nil {
		return d
	}
	if len(cols) == 0 {
		for _, f := range d.node.Schema.Fields() {
			cols = append(cols, f.Name)
		}
	}
	return d.derive(plan.NewDropDuplicates(d.node, cols))
}

// OrderBy sorts by keys: SortKey values, or column names / *Expr (ascending).
func (d *Dataset) OrderBy(keys ...any) *Dataset {
	if d.err != nil {
		return d
	}
	ks := make([]exec.SortKey, len(keys))
	for i, k := range keys {
		if sk, ok := k.(SortKey); ok {
			ks[i] = sk.k
		} else {
			ks[i] = Asc(k).k
		}
	}
	return d.derive(plan.NewSort(d.node, ks, 0))
}

// Limit keeps the first n rows (of the order, if sorted).
func (d *Dataset) Limit(n int64) *Dataset {
	if d.err != nil {
		return d
	}
	if n < 0 {
		return d.derive(nil, fmt.Errorf("limit %d: must not be negative", n))
	}
	if d.node.Kind == plan.KindSort && d.node.N == 0 {
		// Sort then limit is a top-k: bounded memory per task.
		s, err := plan.NewSort(d.node.Inputs[0], d.node.SortKeys, n)
		if err == nil && n > 0 {
			return d.derive(s, nil)
		}
	}
	return d.derive(plan.NewLimit(d.node, n), nil)
}

// Union appends the rows of others, matching columns by name.
func (d *Dataset) Union(others ...*Dataset) *Dataset {
	if d.err != nil {
		return d
	}
	ins := []*plan.Node{d.node}
	for _, o := range others {
		if o.err != nil {
			return d.derive(nil, o.err)
		}
		ins = append(ins, o.node)
	}
	d, err := d.combine("union", others...)
	if err != nil {
		return d.derive(nil, err)
	}
	return d.derive(plan.NewUnion(ins...))
}

// MapBatches runs fn, user Go code registered under name, over every record.
// The function's output records must have schema (nil: the input schema).
//
// The registration belongs to the returned Dataset and to the Datasets made
// from it, not to the process: another MapBatches of the same name on
// another Dataset does not change what this one runs. The plan names the
// function and its tasks look the name up in the job's registry; executors
// in other processes rebuild the same job from the same code, and so the
// same registry, so use a stable name. Within one plan a name means one
// function: registering a name the plan already has (earlier in this
// lineage, or brought in by a Union or Join) makes the result carry an error
// naming the name and both places, even for the same fn; the same Dataset
// reached twice (a self-union or self-join) is one registration and is
// fine. The name space is shared with FlatMapGroupsWithState.
func (d *Dataset) MapBatches(name string, schema *arrow.Schema, fn exec.BatchFunc) *Dataset {
	if d.err != nil {
		return d
	}
	if schema == nil {
		schema = d.node.Schema
	}
	return d.withFunc("map_batches", plan.NewMapBatches(d.node, name, schema), &exec.Func{Name: name, Batch: fn})
}

// JoinType is how rows without a match are treated.
type JoinType = exec.JoinType

const (
	Inner JoinType = "inner"
	Left  JoinType = "left"
	Right JoinType = "right"
	Full  JoinType = "full"
	Semi  JoinType = "semi"
	Anti  JoinType = "anti"
)

// Join joins on equal values of the named columns, present on both sides
// (SQL JOIN ... USING). The output has the key columns once (for a full join,
// the non-null of the two), then the other left columns, then the other right
// columns; semi and anti joins keep only the left columns. Other columns with
// the same name on both sides are an error: rename one first.
func (d *Dataset) Join(right *Dataset, on []string, how JoinType) *Dataset {
	return d.JoinWhere(right, on, how, nil)
}

// JoinWhere is Join with a further condition on each pair of rows whose keys
// are equal, over the columns of both sides by name (a key column by its
// name is the left one): only pairs for which it is true join, and outer,
// semi and anti joins count only those as matches. In a stream joined with
// a stream, a time range here is what bounds the join's state:
//
//	orders.JoinWhere(payments, []string{"order_id"}, dataset.Left,
//		dataset.Col("paid_at").Between(dataset.Col("ordered_at"),
//			dataset.AddDuration(dataset.Col("ordered_at"), 0, int64(15*time.Minute))))
func (d *Dataset) JoinWhere(right *Dataset, on []string, how JoinType, cond *Expr) *Dataset {
	if d.err != nil {
		return d
	}
	if right.err != nil {
		return d.derive(nil, right.err)
	}
	d, err := d.combine("join", right)
	if err != nil {
		return d.derive(nil, err)
	}
	ls, rs := d.node.Schema, right.node.Schema
	isKey := map[string]bool{}
	for _, k := range on {
		isKey[k] = true
		if len(ls.FieldIndices(k)) == 0 {
			return d.derive(nil, fmt.Errorf("join using %q: %w: left has %s", k, expr.ErrUnknownColumn, names(ls)))
		}
		if len(rs.FieldIndices(k)) == 0 {
			return d.derive(nil, fmt.Errorf("join using %q: %w: right has %s", k, expr.ErrUnknownColumn, names(rs)))
		}
	}
	for _, f := range rs.Fields() {
		if !isKey[f.Name] && len(ls.FieldIndices(f.Name)) > 0 && how != Semi && how != Anti {
			return d.derive(nil, fmt.Errorf("join: %w: column %q is on both sides; rename one with WithColumnRenamed", plan.ErrPlan, f.Name))
		}
	}
	// Right keys get hidden names so both sides' keys can coexist.
	hidden := func(k string) string { return "__right." + k }
	rexprs := []*Expr{}
	for _, f := range rs.Fields() {
		if isKey[f.Name] {
			rexprs = append(rexprs, castKey(expr.Col(f.Name), f.Type, ls.Field(ls.FieldIndices(f.Name)[0]).Type).As(hidden(f.Name)))
		} else {
			rexprs = append(rexprs, expr.Col(f.Name))
		}
	}
	var lexprs []*Expr
	for _, f := range ls.Fields() {
		if isKey[f.Name] {
			k := castKey(expr.Col(f.Name), f.Type, rs.Field(rs.FieldIndices(f.Name)[0]).Type)
			if k.Op != expr.OpCol {
				k = k.As(f.Name)
			}
			lexprs = append(lexprs, k)
		} else {
			lexprs = append(lexprs, expr.Col(f.Name))
		}
	}
	lnode, err := plan.NewProject(d.node, lexprs)
	if err != nil {
		return d.derive(nil, err)
	}
	rnode, err := plan.NewProject(right.node, rexprs)
	if err != nil {
		return d.derive(nil, err)
	}
	lk, rk := make([]*Expr, len(on)), make([]*Expr, len(on))
	for i, k := range on {
		lk[i], rk[i] = expr.Col(k), expr.Col(hidden(k))
	}
	j, err := plan.NewJoin(lnode, rnode, lk, rk, how, cond)
	if err != nil || how == Semi || how == Anti {
		return d.derive(j, err)
	}
	var out []*Expr
	for _, k := range on {
		switch how {
		case Full:
			out = append(out, expr.Coalesce(expr.Col(k), expr.Col(hidden(k))).As(k))
		case Right:
			out = append(out, expr.Col(hidden(k)).As(k))
		default:
			out = append(out, expr.Col(k))
		}
	}
	for _, f := range ls.Fields() {
		if !isKey[f.Name] {
			out = append(out, expr.Col(f.Name))
		}
	}
	for _, f := range rs.Fields() {
		if !isKey[f.Name] {
			out = append(out, expr.Col(f.Name))
		}
	}
	return d.derive(plan.NewProject(j, out))
}

// RefreshEvery makes the join that produced d, a stream joined with a
// bounded Dataset, collect the bounded side again every n micro-batches
// (by default it is collected once, when the query starts).
func (d *Dataset) RefreshEvery(n int) *Dataset {
	if n < 0 {
		return d.derive(nil, fmt.Errorf("refresh every %d batches: must not be negative", n))
	}
	return d.withJoin("RefreshEvery", func(j *plan.Join) { j.Refresh = n })
}

// StateTTL makes the join that produced d, an inner join of two streams,
// drop a stored row once its key has not been seen on either side for ttl of
// processing time (the batch times in the checkpoint, so reruns drop the
// same rows). Progress reports the rows dropped. Without a TTL or a time
// range, such a join's state grows with every key it sees.
func (d *Dataset) StateTTL(ttl time.Duration) *Dataset {
	if ttl <= 0 {
		return d.derive(nil, fmt.Errorf("state TTL %v: must be positive", ttl))
	}
	return d.withJoin("StateTTL", func(j *plan.Join) { j.TTL = ttl.Microseconds() })
}

// withJoin copies the nodes from d down to the join that produced it
// (through projections and filters) and changes the copy's join.
func (d *Dataset) withJoin(what string, set func(*plan.Join)) *Dataset {
	if d.err != nil {
		return d
	}
	var copyDown func(n *plan.Node) (*plan.Node, bool)
	copyDown = func(n *plan.Node) (*plan.Node, bool) {
		c := *n
		switch n.Kind {
		case plan.KindJoin:
			j := *n.Join
			set(&j)
			c.Join = &j
			return &c, true
		case plan.KindProject, plan.KindFilter:
			in, ok := copyDown(n.Inputs[0])
			c.Inputs = []*plan.Node{in}
			return &c, ok
		}
		return n, false
	}
	n, ok := copyDown(d.node)
	if !ok {
		return d.derive(nil, fmt.Errorf("%s: %w: the Dataset is not the result of a Join", what, plan.ErrPlan))
	}
	return d.derive(n, nil)
}

// castKey widens integer keys of different widths to int64 so both sides
// hash and compare alike; other type mismatches are left for the planner to
// report.
func castKey(e *Expr, t, other arrow.DataType) *Expr {
	if arrow.TypeEqual(t, other) || !isInt(t) || !isInt(other) {
		return e
	}
	if t.ID() == arrow.INT64 {
		return e
	}
	return e.Cast(expr.Type{DataType: arrow.PrimitiveTypes.Int64})
}

func isInt(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return true
	}
	return false
}

func names(s *arrow.Schema) string {
	out := "["
	for i, f := range s.Fields() {
		if i > 0 {
			out += ", "
		}
		out += f.Name
	}
	return out + "]"
}
