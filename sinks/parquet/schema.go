package parquet

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"reflect"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
)

// kind is how one Arrow column is turned into parquet values.
type kind int

const (
	kBool kind = iota
	kInt8
	kInt16
	kInt32
	kInt64
	kUint8
	kUint16
	kUint32
	kUint64
	kFloat32
	kFloat64
	kString
	kLargeString
	kBinary
	kLargeBinary
	kDate32
	kTimestamp
	kDecimal128
)

// column is one stored (non-partition) column of a FileWriter, or one
// leaf of a nested column.
type column struct {
	name   string
	field  int    // index in the Arrow schema
	leaf   int    // parquet leaf column index (flat columns and leaves)
	kind   kind   //
	mult   int64  // kTimestamp: factor applied to values (seconds are stored as millis)
	width  int    // kDecimal128: bytes per value
	nested *nnode // list or struct column; nil for flat columns
}

type nkind int

const (
	nLeaf nkind = iota
	nStruct
	nList
)

// nnode is the shape of a nested column, for emitting Dremel levels: every
// node is optional (adds one definition level when present); a list adds one
// more for its repeated group and gives its elements repetition level rep.
type nnode struct {
	kind     nkind
	leaf     column // nLeaf
	children []*nnode
	rep      int   // nList: repetition level of the elements
	leaves   []int // every parquet leaf index below this node
}

// nestedNode maps a list or struct field (recursively) to parquet nodes;
// next numbers the leaves depth-first, as parquet orders columns.
func nestedNode(f arrow.Field, path string, next *int, rep int) (pq.Node, *nnode, error) {
	switch t := f.Type.(type) {
	case *arrow.StructType:
		if t.NumFields() == 0 {
			return nil, nil, fmt.Errorf("%w: column %q is a struct without fields", ErrUnsupportedType, path)
		}
		g := &orderedGroup{Group: pq.Group{}}
		n := &nnode{kind: nStruct}
		for _, cf := range t.Fields() {
			cn, cnode, err := nestedNode(cf, path+"."+cf.Name, next, rep)
			if err != nil {
				return nil, nil, err
			}
			g.fields = append(g.fields, &namedField{Node: cn, name: cf.Name})
			n.children = append(n.children, cnode)
			n.leaves = append(n.leaves, cnode.leaves...)
		}
		return pq.Optional(g), n, nil
	case *arrow.ListType, *arrow.LargeListType:
		elem := t.(arrow.ListLikeType).ElemField()
		en, enode, err := nestedNode(elem, path+".element", next, rep+1)
		if err != nil {
			return nil, nil, err
		}
		return pq.Optional(pq.List(en)), &nnode{kind: nList, rep: rep + 1, children: []*nnode{enode}, leaves: enode.leaves}, nil
	}
	f.Name = path
	n, c, err := leafNode(f)
	if err != nil {
		return nil, nil, err
	}
	c.leaf = *next
	*next++
	return n, &nnode{kind: nLeaf, leaf: c, leaves: []int{c.leaf}}, nil
}

// leafNode maps one Arrow field to an optional parquet leaf.
func leafNode(f arrow.Field) (pq.Node, column, error) {
	c := column{name: f.Name}
	var n pq.Node
	switch t := f.Type.(type) {
	case *arrow.BooleanType:
		n, c.kind = pq.Leaf(pq.BooleanType), kBool
	case *arrow.Int8Type:
		n, c.kind = pq.Int(8), kInt8
	case *arrow.Int16Type:
		n, c.kind = pq.Int(16), kInt16
	case *arrow.Int32Type:
		n, c.kind = pq.Int(32), kInt32
	case *arrow.Int64Type:
		n, c.kind = pq.Int(64), kInt64
	case *arrow.Uint8Type:
		n, c.kind = pq.Uint(8), kUint8
	case *arrow.Uint16Type:
		n, c.kind = pq.Uint(16), kUint16
	case *arrow.Uint32Type:
		n, c.kind = pq.Uint(32), kUint32
	case *arrow.Uint64Type:
		n, c.kind = pq.Uint(64), kUint64
	case *arrow.Float32Type:
		n, c.kind = pq.Leaf(pq.FloatType), kFloat32
	case *arrow.Float64Type:
		n, c.kind = pq.Leaf(pq.DoubleType), kFloat64
	case *arrow.StringType:
		n, c.kind = pq.String(), kString
	case *arrow.LargeStringType:
		n, c.kind = pq.String(), kLargeString
	case *arrow.BinaryType:
		n, c.kind = pq.Leaf(pq.ByteArrayType), kBinary
	case *arrow.LargeBinaryType:
		n, c.kind = pq.Leaf(pq.ByteArrayType), kLargeBinary
	case *arrow.Date32Type:
		n, c.kind = pq.Date(), kDate32
	case *arrow.TimestampType:
		utc := t.TimeZone != ""
		c.kind, c.mult = kTimestamp, 1
		switch t.Unit {
		case arrow.Second:
			n, c.mult = pq.TimestampAdjusted(pq.Millisecond, utc), 1000
		case arrow.Millisecond:
			n = pq.TimestampAdjusted(pq.Millisecond, utc)
		case arrow.Microsecond:
			n = pq.TimestampAdjusted(pq.Microsecond, utc)
		case arrow.Nanosecond:
			n = pq.TimestampAdjusted(pq.Nanosecond, utc)
		}
	case *arrow.Decimal128Type:
		if t.Precision < 1 || t.Precision > 38 {
			return nil, c, fmt.Errorf("%w: column %q: decimal128 precision %d", ErrUnsupportedType, f.Name, t.Precision)
		}
		c.kind, c.width = kDecimal128, decimalWidth(int(t.Precision))
		n = pq.Decimal(int(t.Scale), int(t.Precision), pq.FixedLenByteArrayType(c.width))
	default:
		return nil, c, fmt.Errorf("%w: column %q has type %s", ErrUnsupportedType, f.Name, f.Type)
	}
	if c.kind != kBool {
		// Dictionary first, as parquet-mr and pyarrow write: low-cardinality
		// columns shrink several-fold and decode faster; a column whose
		// dictionary outgrows dictionaryMaxBytes falls back to PLAIN pages.
		n = pq.Encoded(n, &pq.RLEDictionary)
	}
	return pq.Optional(n), c, nil
}

// dictionaryMaxBytes is parquet-mr's default dictionary page size limit.
const dictionaryMaxBytes = 1 << 20

// decimalWidth is the fewest bytes whose two's complement holds every
// unscaled value of the given precision (the width Spark and pyarrow use).
func decimalWidth(precision int) int {
	for n := 1; n < 16; n++ {
		if int(math.Floor(float64(8*n-1)*math.Log10(2))) >= precision {
			return n
		}
	}
	return 16
}

// orderedGroup is a parquet group that keeps the Arrow field order;
// parquet.Group is a map and would sort the columns by name.
type orderedGroup struct {
	pq.Group // for Type, Encoding, Compression and friends
	fields   []pq.Field
}

func (g *orderedGroup) Fields() []pq.Field   { return g.fields }
func (g *orderedGroup) String() string       { return fmt.Sprint(g.fields) }
func (g *orderedGroup) GoType() reflect.Type { return reflect.TypeFor[map[string]any]() }

type namedField struct {
	pq.Node
	name string
}

func (f *namedField) Name() string { return f.name }

// Value is only used by reflection-based writes, which this package never does.
func (f *namedField) Value(base reflect.Value) reflect.Value {
	return base.MapIndex(reflect.ValueOf(f.name))
}

// fileSchema builds the parquet schema of the stored (non-partition) columns.
func fileSchema(schema *arrow.Schema, partition map[string]bool) (*pq.Schema, []column, error) {
	g := &orderedGroup{Group: pq.Group{}}
	var cols []column
	next := 0
	seen := map[string]bool{}
	for i, f := range schema.Fields() {
		if partition[f.Name] {
			continue
		}
		if seen[f.Name] {
			return nil, nil, fmt.Errorf("%w: column name %q repeated; Parquet readers address columns by name", ErrInvalidOptions, f.Name)
		}
		seen[f.Name] = true
		var n pq.Node
		var c column
		var err error
		switch f.Type.ID() {
		case arrow.STRUCT, arrow.LIST, arrow.LARGE_LIST:
			var nn *nnode
			n, nn, err = nestedNode(f, f.Name, &next, 0)
			c = column{name: f.Name, nested: nn}
		default:
			n, c, err = leafNode(f)
			c.leaf = next
			next++
		}
		if err != nil {
			return nil, nil, err
		}
		c.field = i
		cols = append(cols, c)
		g.fields = append(g.fields, &namedField{Node: n, name: f.Name})
	}
	return pq.NewSchema("schema", g), cols, nil
}

// arrowSchemaMetadata is the value of the "ARROW:schema" key pyarrow writes
// and reads back: base64 of the IPC-encapsulated schema message. It lets
// Arrow readers restore what Parquet cannot say (the time zone name).
func arrowSchemaMetadata(schema *arrow.Schema, mem memory.Allocator) (string, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("encode arrow schema: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
