package kafka

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/twmb/franz-go/pkg/kgo"
)

// layout is where key, value and headers come from in a batch's schema.
type layout struct {
	key, value, headers int   // column index, -1 when not configured
	jsonCols            []int // columns of the default JSON value
}

// newLayout checks schema against cfg: the configured columns exist once,
// and every column that is encoded has a type the sink can render.
func newLayout(cfg Config, schema *arrow.Schema) (layout, error) {
	l := layout{key: -1, value: -1, headers: -1}
	find := func(field, name string) (int, error) {
		if name == "" {
			return -1, nil
		}
		is := schema.FieldIndices(name)
		if len(is) != 1 {
			return -1, fmt.Errorf("%w: %s %q: %d columns of that name in %s", ErrSchema, field, name, len(is), schema)
		}
		return is[0], nil
	}
	var err error
	if l.key, err = find("KeyColumn", cfg.KeyColumn); err != nil {
		return l, err
	}
	if l.value, err = find("ValueColumn", cfg.ValueColumn); err != nil {
		return l, err
	}
	if l.headers, err = find("HeadersColumn", cfg.HeadersColumn); err != nil {
		return l, err
	}
	check := func(i int) error {
		if err := checkJSONType(schema.Field(i).Type); err != nil {
			return fmt.Errorf("column %q: %w", schema.Field(i).Name, err)
		}
		return nil
	}
	if l.key >= 0 {
		if err := check(l.key); err != nil {
			return l, err
		}
	}
	if l.value >= 0 {
		if err := check(l.value); err != nil {
			return l, err
		}
	} else {
		for i := range schema.NumFields() {
			if i == l.headers {
				continue
			}
			if err := check(i); err != nil {
				return l, err
			}
			l.jsonCols = append(l.jsonCols, i)
		}
	}
	if l.headers >= 0 {
		if err := checkHeadersType(schema.Field(l.headers).Type); err != nil {
			return l, fmt.Errorf("%w: HeadersColumn %q: %v", ErrSchema, cfg.HeadersColumn, err)
		}
	}
	return l, nil
}

func checkHeadersType(dt arrow.DataType) error {
	lt, ok := dt.(arrow.ListLikeType)
	if !ok {
		return fmt.Errorf("type %s is neither a map nor a list of structs", dt)
	}
	st, ok := lt.Elem().(*arrow.StructType)
	if !ok || st.NumFields() != 2 {
		return fmt.Errorf("type %s: elements are not (key, value) structs", dt)
	}
	switch st.Field(0).Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
	default:
		return fmt.Errorf("type %s: header keys must be strings", dt)
	}
	switch st.Field(1).Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW, arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
	default:
		return fmt.Errorf("type %s: header values must be strings or binary", dt)
	}
	return nil
}

// encode turns the rows of rec into Kafka records (topic and partition
// left to the producer) and returns their encoded size. Keys and values
// share one byte slice per call.
func (l layout) encode(rec arrow.Record) ([]*kgo.Record, int64, error) {
	n := int(rec.NumRows())
	if n == 0 {
		return nil, 0, nil
	}
	var key, value rawFunc
	var err error
	if l.key >= 0 {
		if key, err = newRawFunc(rec.Column(l.key)); err != nil {
			return nil, 0, err
		}
	}
	var obj appendFunc
	if l.value >= 0 {
		if value, err = newRawFunc(rec.Column(l.value)); err != nil {
			return nil, 0, err
		}
	} else if obj, err = l.objectAppender(rec); err != nil {
		return nil, 0, err
	}
	var headers func(i int) []kgo.RecordHeader
	if l.headers >= 0 {
		headers = headerFunc(rec.Column(l.headers))
	}

	type span struct{ ks, ke, vs, ve int32 }
	spans := make([]span, n)
	keyNull := make([]bool, n)
	valNull := make([]bool, n)
	arena := make([]byte, 0, 64*n)
	for i := range n {
		s := &spans[i]
		s.ks = int32(len(arena))
		if key != nil {
			arena, keyNull[i] = key(arena, i)
		} else {
			keyNull[i] = true
		}
		s.ke = int32(len(arena))
		s.vs = s.ke
		if value != nil {
			arena, valNull[i] = value(arena, i)
		} else {
			arena = obj(arena, i)
		}
		s.ve = int32(len(arena))
	}
	if len(arena) > 1<<31-1 {
		return nil, 0, fmt.Errorf("%w: one record of %d rows encodes to %d bytes; write smaller records", ErrPendingFull, n, len(arena))
	}
	recs := make([]kgo.Record, n)
	out := make([]*kgo.Record, n)
	size := int64(len(arena))
	for i := range n {
		r := &recs[i]
		s := spans[i]
		if !keyNull[i] {
			r.Key = arena[s.ks:s.ke:s.ke]
		}
		if !valNull[i] {
			r.Value = arena[s.vs:s.ve:s.ve]
		}
		if headers != nil {
			r.Headers = headers(i)
			for _, h := range r.Headers {
				size += int64(len(h.Key) + len(h.Value))
			}
		}
		out[i] = r
	}
	return out, size, nil
}

// objectAppender renders a row of the JSON columns as one object.
func (l layout) objectAppender(rec arrow.Record) (appendFunc, error) {
	names := make([][]byte, len(l.jsonCols))
	cols := make([]appendFunc, len(l.jsonCols))
	for j, c := range l.jsonCols {
		names[j] = append(appendString(nil, rec.ColumnName(c)), ':')
		f, err := newAppender(rec.Column(c))
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
		}
		cols[j] = f
	}
	return func(dst []byte, i int) []byte {
		dst = append(dst, '{')
		for j, f := range cols {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, names[j]...)
			dst = f(dst, i)
		}
		return append(dst, '}')
	}, nil
}

// headerFunc reads headers from a column checkHeadersType accepted; null
// lists and null values give no header and an empty value.
func headerFunc(arr arrow.Array) func(i int) []kgo.RecordHeader {
	list := arr.(array.ListLike)
	st := list.ListValues().(*array.Struct)
	keys, vals := st.Field(0), st.Field(1)
	str := func(a arrow.Array, j int) []byte {
		if a.IsNull(j) {
			return nil
		}
		switch a := a.(type) {
		case *array.String:
			return []byte(a.Value(j))
		case *array.LargeString:
			return []byte(a.Value(j))
		case *array.StringView:
			return []byte(a.Value(j))
		case *array.Binary:
			return a.Value(j)
		case *array.LargeBinary:
			return a.Value(j)
		case *array.BinaryView:
			return a.Value(j)
		}
		return nil
	}
	return func(i int) []kgo.RecordHeader {
		if list.IsNull(i) {
			return nil
		}
		start, end := list.ValueOffsets(i)
		if start == end {
			return nil
		}
		hs := make([]kgo.RecordHeader, 0, end-start)
		for j := int(start); j < int(end); j++ {
			if st.IsNull(j) {
				continue
			}
			// Copy: the value slices point into the caller's record.
			hs = append(hs, kgo.RecordHeader{Key: string(str(keys, j)), Value: append([]byte(nil), str(vals, j)...)})
		}
		return hs
	}
}
