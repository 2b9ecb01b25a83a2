package parquet

import (
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// The nested path is the slower one: values go one by one through
// parquet-go's ValueReader and Arrow builders. It covers the two shapes most
// files hold: a list of a primitive type (3-level LIST, legacy 2-level, or a
// bare repeated field) and a struct of primitive fields. Other shapes (maps,
// lists of structs, structs of lists, lists of lists) stay typed in the
// schema but refuse to be read, naming the column.

// nestedPlan says how to rebuild one nested top-level column from the levels
// of its leaf columns.
type nestedPlan struct {
	list bool
	// list: the list is null below nullBelow, empty below elemBelow, and an
	// element is null below maxDef. struct: the struct is null below nullBelow.
	nullBelow, elemBelow int
	leaves               []leafPlan
}

type leafPlan struct {
	col    column // the leaf as a flat column: physical type, conv, leaf index
	maxDef int
}

// planNested finds the shape of n, or explains why it is unsupported.
func planNested(n *node) (*nestedPlan, error) {
	// Walk single-child groups down to the leaf, counting levels.
	var chain []*node
	for c := n; ; c = c.children[0] {
		chain = append(chain, c)
		if len(c.children) != 1 {
			break
		}
	}
	last := chain[len(chain)-1]
	def := func(upto int) int { // definition level reached at chain[upto]
		d := 0
		for _, c := range chain[:upto+1] {
			if isOptional(c.el) || isRepeated(c.el) {
				d++
			}
		}
		return d
	}
	leafOf := func(c *node, maxDef int) (leafPlan, error) {
		dt, cv, err := arrowType(c.el)
		if err != nil {
			return leafPlan{}, err
		}
		return leafPlan{col: column{name: c.el.Name, leaf: c.firstLeaf, physical: c.el.Type.V, dt: dt, conv: cv}, maxDef: maxDef}, nil
	}
	if !isRepeated(n.el) && !isListGroup(n) && !isMapGroup(n) {
		// A struct of flat fields.
		p := &nestedPlan{nullBelow: def(0)}
		for _, c := range n.children {
			if len(c.children) > 0 || isRepeated(c.el) {
				return nil, fmt.Errorf("%w: field %q: only structs of primitive fields are readable yet", ErrUnsupportedType, c.el.Name)
			}
			maxDef := p.nullBelow
			if isOptional(c.el) {
				maxDef++
			}
			lp, err := leafOf(c, maxDef)
			if err != nil {
				return nil, err
			}
			p.leaves = append(p.leaves, lp)
		}
		return p, nil
	}
	if len(last.children) == 0 && !isMapGroup(n) {
		rep := -1
		for i, c := range chain {
			if isRepeated(c.el) {
				if rep >= 0 {
					return nil, fmt.Errorf("%w: lists of lists are not readable yet", ErrUnsupportedType)
				}
				rep = i
			}
		}
		if rep < 0 {
			return nil, fmt.Errorf("%w: single-field structs are not readable yet", ErrUnsupportedType)
		}
		if rep < len(chain)-2 || (rep > 0 && !isListGroup(chain[rep-1])) || (rep > 1) {
			return nil, fmt.Errorf("%w: this list layout is not readable yet", ErrUnsupportedType)
		}
		p := &nestedPlan{list: true, elemBelow: def(rep)}
		if rep > 0 {
			p.nullBelow = def(rep - 1)
		}
		lp, err := leafOf(last, def(len(chain)-1))
		if err != nil {
			return nil, err
		}
		p.leaves = []leafPlan{lp}
		return p, nil
	}
	return nil, fmt.Errorf("%w: only lists of primitives and structs of primitives are readable yet", ErrUnsupportedType)
}

func isListGroup(n *node) bool {
	if _, ok := n.el.LogicalType.Value.(*format.ListType); ok {
		return true
	}
	ct, ok := n.el.ConvertedType.Get()
	return ok && n.el.LogicalType.Value == nil && ct == 3 // deprecated.List
}

func isMapGroup(n *node) bool {
	if _, ok := n.el.LogicalType.Value.(*format.MapType); ok {
		return true
	}
	ct, ok := n.el.ConvertedType.Get()
	return ok && n.el.LogicalType.Value == nil && (ct == 1 || ct == 2) // deprecated.Map, MapKeyValue
}

// valueCursor streams the values (with their levels) of one column chunk.
type valueCursor struct {
	name  string
	pages pq.Pages
	page  pq.Page
	vr    pq.ValueReader
	buf   []pq.Value
	i, n  int
	eof   bool
}

// peek returns the next value; ok is false at the end of the chunk. A value
// stays valid until the cursor moves past the page holding it.
func (c *valueCursor) peek() (v pq.Value, ok bool, err error) {
	for c.i == c.n {
		if c.eof {
			return v, false, nil
		}
		if c.vr != nil {
			n, err := c.vr.ReadValues(c.buf[:cap(c.buf)])
			c.buf = c.buf[:n]
			c.i, c.n = 0, n
			if err == io.EOF {
				c.vr = nil
			} else if err != nil {
				return v, false, fmt.Errorf("column %q: %w: %v", c.name, ErrCorrupt, err)
			}
			continue
		}
		if c.page != nil {
			pq.Release(c.page)
			c.page = nil
		}
		p, err := c.pages.ReadPage()
		if err == io.EOF {
			c.eof = true
			continue
		}
		if err != nil {
			return v, false, fmt.Errorf("column %q: %w: %v", c.name, ErrCorrupt, err)
		}
		c.page, c.vr = p, p.Values()
	}
	return c.buf[c.i], true, nil
}

func (c *valueCursor) close() {
	if c.page != nil {
		pq.Release(c.page)
		c.page = nil
	}
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

type nestedReader struct {
	name    string
	dt      arrow.DataType
	plan    *nestedPlan
	cursors []*valueCursor
}

func newNestedReader(name string, dt arrow.DataType, plan *nestedPlan, chunks []pq.ColumnChunk) (*nestedReader, error) {
	r := &nestedReader{name: name, dt: dt, plan: plan}
	for _, l := range plan.leaves {
		if l.col.leaf >= len(chunks) {
			r.close()
			return nil, fmt.Errorf("%w: no column chunk for column %q", ErrCorrupt, name)
		}
		r.cursors = append(r.cursors, &valueCursor{name: name + "." + l.col.name, pages: chunks[l.col.leaf].Pages(), buf: make([]pq.Value, 0, 1024)})
	}
	return r, nil
}

func (r *nestedReader) column() string { return r.name }

func (r *nestedReader) close() {
	for _, c := range r.cursors {
		c.close()
	}
}

func (r *nestedReader) read(mem memory.Allocator, n int, _ *pending) (a arrow.Array, err error) {
	b := array.NewBuilder(mem, r.dt)
	defer b.Release()
	// A panic here leaves the builder to be released by the defer above.
	if r.plan.list {
		err = r.readList(b.(array.ListLikeBuilder), n)
	} else {
		err = r.readStruct(b.(*array.StructBuilder), n)
	}
	if err != nil {
		return nil, err
	}
	return b.NewArray(), nil
}

func (r *nestedReader) readList(lb array.ListLikeBuilder, n int) error {
	c, leaf, p := r.cursors[0], r.plan.leaves[0], r.plan
	vb := lb.ValueBuilder()
	appendElem := func(v pq.Value) {
		if v.DefinitionLevel() < leaf.maxDef {
			vb.AppendNull()
		} else {
			appendValue(vb, leaf.col.conv, v)
		}
	}
	for row := 0; row < n; row++ {
		v, ok, err := c.peek()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("column %q: %w: column chunk ends before the row group's rows", r.name, ErrCorrupt)
		}
		if v.RepetitionLevel() != 0 {
			return fmt.Errorf("column %q: %w: row starts with repetition level %d", r.name, ErrCorrupt, v.RepetitionLevel())
		}
		c.i++
		switch def := v.DefinitionLevel(); {
		case def < p.nullBelow:
			lb.AppendNull()
		case def < p.elemBelow:
			lb.Append(true)
		default:
			lb.Append(true)
			appendElem(v)
		}
		for {
			v, ok, err := c.peek()
			if err != nil {
				return err
			}
			if !ok || v.RepetitionLevel() == 0 {
				break
			}
			c.i++
			appendElem(v)
		}
	}
	return nil
}

func (r *nestedReader) readStruct(sb *array.StructBuilder, n int) error {
	p := r.plan
	vals := make([]pq.Value, len(r.cursors))
	for row := 0; row < n; row++ {
		for i, c := range r.cursors {
			v, ok, err := c.peek()
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("column %q: %w: column chunk ends before the row group's rows", c.name, ErrCorrupt)
			}
			c.i++
			vals[i] = v
		}
		if vals[0].DefinitionLevel() < p.nullBelow {
			sb.Append(false) // appends a null to every field too
			continue
		}
		sb.Append(true)
		for i, v := range vals {
			fb := sb.FieldBuilder(i)
			if v.DefinitionLevel() < p.leaves[i].maxDef {
				fb.AppendNull()
			} else {
				appendValue(fb, p.leaves[i].col.conv, v)
			}
		}
	}
	return nil
}

// appendValue appends one non-null Parquet value to a builder of the leaf's
// Arrow type.
func appendValue(b array.Builder, cv conv, v pq.Value) {
	switch b := b.(type) {
	case *array.BooleanBuilder:
		b.Append(v.Boolean())
	case *array.Int8Builder:
		b.Append(int8(v.Int32()))
	case *array.Int16Builder:
		b.Append(int16(v.Int32()))
	case *array.Int32Builder:
		b.Append(v.Int32())
	case *array.Uint8Builder:
		b.Append(uint8(v.Int32()))
	case *array.Uint16Builder:
		b.Append(uint16(v.Int32()))
	case *array.Uint32Builder:
		b.Append(uint32(v.Int32()))
	case *array.Int64Builder:
		b.Append(v.Int64())
	case *array.Uint64Builder:
		b.Append(uint64(v.Int64()))
	case *array.Float32Builder:
		b.Append(v.Float())
	case *array.Float64Builder:
		b.Append(v.Double())
	case *array.StringBuilder:
		b.BinaryBuilder.Append(v.ByteArray())
	case *array.BinaryBuilder:
		b.Append(v.ByteArray())
	case *array.FixedSizeBinaryBuilder:
		b.Append(v.ByteArray())
	case *array.Date32Builder:
		b.Append(arrow.Date32(v.Int32()))
	case *array.Time32Builder:
		b.Append(arrow.Time32(v.Int32()))
	case *array.Time64Builder:
		b.Append(arrow.Time64(v.Int64()))
	case *array.TimestampBuilder:
		if cv == convInt96 {
			x := v.Int96()
			nanos := int64(uint64(x[0]) | uint64(x[1])<<32)
			b.Append(arrow.Timestamp((int64(int32(x[2]))-2440588)*86400*1e9 + nanos))
		} else {
			b.Append(arrow.Timestamp(v.Int64()))
		}
	case *array.Decimal128Builder:
		switch cv {
		case convDecInt32:
			b.Append(decimal128.FromI64(int64(v.Int32())))
		case convDecInt64:
			b.Append(decimal128.FromI64(v.Int64()))
		default:
			b.Append(decimalFromBigEndian(v.ByteArray()))
		}
	default:
		panic(fmt.Sprintf("parquet: no nested append for %T", b))
	}
}
