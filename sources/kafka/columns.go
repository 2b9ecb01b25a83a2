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

// rows builds the records one split emits.
type rows struct {
	rb    *array.RecordBuilder
	key   *array.BinaryBuilder
	value *array.BinaryBuilder // raw values
	dec   *jsonDecoder         // decoded values
	topic *array.StringBuilder
	part  *array.Int32Builder
	off   *array.Int64Builder
	ts    *array.TimestampBuilder
	hdr   *array.ListBuilder
	hs    *array.StructBuilder
	hk    *array.StringBuilder
	hv    *array.BinaryBuilder
	n     int
}

func newRows(mem memory.Allocator, schema, value *arrow.Schema) *rows {
	rb := array.NewRecordBuilder(mem, schema)
	r := &rows{rb: rb, key: rb.Field(0).(*array.BinaryBuilder)}
	i := 1
	if value == nil {
		r.value = rb.Field(1).(*array.BinaryBuilder)
		i++
	} else {
		r.dec = newJSONDecoder(value)
		for range value.Fields() {
			r.dec.builders = append(r.dec.builders, rb.Field(i))
			i++
		}
	}
	r.topic = rb.Field(i).(*array.StringBuilder)
	r.part = rb.Field(i + 1).(*array.Int32Builder)
	r.off = rb.Field(i + 2).(*array.Int64Builder)
	r.ts = rb.Field(i + 3).(*array.TimestampBuilder)
	r.hdr = rb.Field(i + 4).(*array.ListBuilder)
	r.hs = r.hdr.ValueBuilder().(*array.StructBuilder)
	r.hk = r.hs.FieldBuilder(0).(*array.StringBuilder)
	r.hv = r.hs.FieldBuilder(1).(*array.BinaryBuilder)
	return r
}

// add appends rec; with a decoder, decode must have succeeded for it.
func (r *rows) add(rec *kgo.Record) {
	if rec.Key == nil {
		r.key.AppendNull()
	} else {
		r.key.Append(rec.Key)
	}
	if r.dec != nil {
		r.dec.append()
	} else if rec.Value == nil {
		r.value.AppendNull()
	} else {
		r.value.Append(rec.Value)
	}
	r.topic.Append(rec.Topic)
	r.part.Append(rec.Partition)
	r.off.Append(rec.Offset)
	r.ts.Append(arrow.Timestamp(rec.Timestamp.UnixMilli()))
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
	// The next record is likely as big: size its buffers once instead of
	// growing them by doubling (12% of a read's CPU went to regrowth).
	r.rb.Reserve(n)
	return emit(rec)
}

func (r *rows) release() { r.rb.Release() }
