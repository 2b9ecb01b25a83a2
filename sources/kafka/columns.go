package kafka

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HeadersType is the type of the headers column: a list of (key, value)
// pairs in record order. A list of structs rather than a map because keys
// may repeat and our Parquet writer supports it.
var HeadersType = arrow.ListOf(arrow.StructOf(
	arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true},
))

// TimestampType is the type of the timestamp column.
var TimestampType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// schemaFor is key, value (or the ValueSchema columns), topic, partition,
// offset, timestamp, headers.
func schemaFor(value *arrow.Schema) *arrow.Schema {
	fs := []arrow.Field{{Name: "key", Type: arrow.BinaryTypes.Binary, Nullable: true}}
	if value == nil {
		fs = append(fs, arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true})
	} else {
		fs = append(fs, value.Fields()...)
	}
	fs = append(fs,
		arrow.Field{Name: "topic", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: "timestamp", Type: TimestampType},
		arrow.Field{Name: "headers", Type: HeadersType},
	)
	return arrow.NewSchema(fs, nil)
}

// rows builds the records one split emits: every column of the schema, or
// only some (a projection); builders of columns not built are nil, and JSON
// value fields not built decode into builders that are thrown away.
type rows struct {
	rb      *array.RecordBuilder
	key     *array.BinaryBuilder
	value   *array.BinaryBuilder // raw values
	dec     *jsonDecoder         // decoded values
	discard []array.Builder      // decoded value fields not built
	topic   *array.StringBuilder
	part    *array.Int32Builder
	off     *array.Int64Builder
	ts      *array.TimestampBuilder
	hdr     *array.ListBuilder
	hs      *array.StructBuilder
	hk      *array.StringBuilder
	hv      *array.BinaryBuilder
	n       int
}

// newRows builds schema's columns named in cols (all when cols is nil).
func newRows(mem memory.Allocator, schema, value *arrow.Schema, cols []string) *rows {
	out := schema
	if cols != nil {
		var fs []arrow.Field
		for _, c := range cols {
			if idx := schema.FieldIndices(c); len(idx) > 0 {
				fs = append(fs, schema.Field(idx[0]))
			}
		}
		out = arrow.NewSchema(fs, nil)
	}
	rb := array.NewRecordBuilder(mem, out)
	field := func(name string) array.Builder {
		if idx := out.FieldIndices(name); len(idx) > 0 {
			return rb.Field(idx[0])
		}
		return nil
	}
	r := &rows{rb: rb}
	r.key, _ = field("key").(*array.BinaryBuilder)
	if value == nil {
		r.value, _ = field("value").(*array.BinaryBuilder)
	} else {
		r.dec = newJSONDecoder(value)
		for _, f := range value.Fields() {
			b := field(f.Name)
			if b == nil {
				b = array.NewBuilder(mem, f.Type)
				r.discard = append(r.discard, b)
			}
			r.dec.builders = append(r.dec.builders, b)
		}
	}
	r.topic, _ = field("topic").(*array.StringBuilder)
	r.part, _ = field("partition").(*array.Int32Builder)
	r.off, _ = field("offset").(*array.Int64Builder)
	r.ts, _ = field("timestamp").(*array.TimestampBuilder)
	if r.hdr, _ = field("headers").(*array.ListBuilder); r.hdr != nil {
		r.hs = r.hdr.ValueBuilder().(*array.StructBuilder)
		r.hk = r.hs.FieldBuilder(0).(*array.StringBuilder)
		r.hv = r.hs.FieldBuilder(1).(*array.BinaryBuilder)
	}
	return r
}

// add appends rec; with a decoder, decode must have succeeded for it.
func (r *rows) add(rec *kgo.Record) {
	switch {
	case r.key == nil:
	case rec.Key == nil:
		r.key.AppendNull()
	default:
		r.key.Append(rec.Key)
	}
	switch {
	case r.dec != nil:
		r.dec.append()
	case r.value == nil:
	case rec.Value == nil:
		r.value.AppendNull()
	default:
		r.value.Append(rec.Value)
	}
	if r.topic != nil {
		r.topic.Append(rec.Topic)
	}
	if r.part != nil {
		r.part.Append(rec.Partition)
	}
	if r.off != nil {
		r.off.Append(rec.Offset)
	}
	if r.ts != nil {
		r.ts.Append(arrow.Timestamp(rec.Timestamp.UnixMilli()))
	}
	if r.hdr != nil {
		r.hdr.Append(true)
		for _, h := range rec.Headers {
			r.hs.Append(true)
			r.hk.Append(h.Key)
			if h.Value == nil {
				r.hv.AppendNull()
			} else {
				r.hv.Append(h.Value)
			}
		}
	}
	r.n++
}

// flush emits the rows so far as one record, if any.
func (r *rows) flush(emit func(arrow.Record) error) error {
	if r.n == 0 {
		return nil
	}
	n := r.n
	r.n = 0
	rec := r.rb.NewRecord()
	for _, b := range r.discard {
		b.NewArray().Release()
		b.Reserve(n)
	}
	// The next record is likely as big: size its buffers once instead of
	// growing them by doubling (12% of a read's CPU went to regrowth).
	r.rb.Reserve(n)
	return emit(rec)
}

func (r *rows) release() {
	r.rb.Release()
	for _, b := range r.discard {
		b.Release()
	}
}
