package parquet

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// hiveDefaultPartition is the directory value of a null (or empty string)
// partition value, as Hive, Spark and pyarrow spell it.
const hiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__"

type partColumn struct {
	name  string // already path-escaped
	field int
}

// partitionColumns resolves PartitionBy against schema.
func partitionColumns(schema *arrow.Schema, names []string) ([]partColumn, map[string]bool, error) {
	var cols []partColumn
	is := map[string]bool{}
	for _, name := range names {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return nil, nil, fmt.Errorf("%w: PartitionBy column %q: %d columns of that name in the schema", ErrInvalidOptions, name, len(idx))
		}
		switch t := schema.Field(idx[0]).Type; t.ID() {
		case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
			arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.STRING, arrow.LARGE_STRING, arrow.DATE32:
		default:
			return nil, nil, fmt.Errorf("%w: partition column %q has type %s", ErrUnsupportedType, name, t)
		}
		cols = append(cols, partColumn{name: escapePathName(name), field: idx[0]})
		is[name] = true
	}
	return cols, is, nil
}

// groupRows fills w.groups with the rows of rec per partition directory,
// in order of first appearance.
func (w *FileWriter) groupRows(rec arrow.Record) {
	clear(w.keys)
	for i := range w.groups {
		w.groups[i].rows = w.groups[i].rows[:0]
	}
	used := 0
	n := int(rec.NumRows())
	for i := 0; i < n; i++ {
		b := w.keyBuf[:0]
		for j, pc := range w.part {
			if j > 0 {
				b = append(b, '/')
			}
			b = append(b, pc.name...)
			b = append(b, '=')
			b = appendPartitionValue(b, rec.Column(pc.field), i)
		}
		w.keyBuf = b
		g, ok := w.keys[string(b)] // no allocation for the lookup
		if !ok {
			g = used
			used++
			key := string(b)
			w.keys[key] = g
			if g == len(w.groups) {
				w.groups = append(w.groups, rowGroup{})
			}
			w.groups[g].key = key
		}
		w.groups[g].rows = append(w.groups[g].rows, int32(i))
	}
	w.groups = w.groups[:used]
}

func appendPartitionValue(b []byte, arr arrow.Array, i int) []byte {
	if arr.IsNull(i) {
		return append(b, hiveDefaultPartition...)
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(i))
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(b, a.Value(i), 10)
	case *array.Date32:
		return a.Value(i).ToTime().UTC().AppendFormat(b, time.DateOnly)
	case *array.String:
		return appendEscaped(b, a.Value(i))
	case *array.LargeString:
		return appendEscaped(b, a.Value(i))
	}
	panic("parquet sink: partition value of unchecked type") // partitionColumns admits only the types above
}

func appendEscaped(b []byte, s string) []byte {
	if s == "" { // Spark writes empty strings as the default partition too
		return append(b, hiveDefaultPartition...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			const hex = "0123456789ABCDEF"
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// needsEscape is Spark's ExternalCatalogUtils.charToEscape (Unix part):
// control characters and "#%'*/:=?\{[]^ and DEL.
func needsEscape(c byte) bool {
	if c < 0x20 || c == 0x7f {
		return true
	}
	return strings.IndexByte("\"#%'*/:=?\\{[]^", c) >= 0
}

func escapePathName(s string) string {
	return string(appendEscaped(nil, s))
}

func splitPath(rel string) []string {
	return strings.Split(rel, "/")
}
