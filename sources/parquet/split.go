package parquet

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/parquet-go/parquet-go/format"
)

// Predicate is one conjunct the caller can prove about the rows it wants;
// Splits uses it to prune only when certain. Values are Go physical values:
// int64 (signed ints, date32 days, timestamps in the column's unit), uint64,
// float64, string, []byte, bool. A predicate Splits cannot evaluate (unknown
// column or op, a value of another kind, decimals, INT96) prunes nothing.
type Predicate struct {
	Column string
	Op     string // "eq","ne","lt","le","gt","ge","in","is_null","is_not_null"
	Values []any
}

// Split is one unit of work: some row groups of one file. Plain data,
// JSON-serializable (it is shipped to executors).
type Split struct {
	Path      string
	RowGroups []int
	NumRows   int64
	Partition []PartitionValue
}

// PruneStats counts what Splits looked at and what it skipped. A file counts
// as pruned when none of its row groups is read; the row groups of a pruned
// file count as pruned too.
type PruneStats struct{ Files, FilesPruned, RowGroups, RowGroupsPruned int }

// splitRows is the size up to which consecutive row groups of a file merge
// into one split.
const splitRows = 1 << 20

// Splits returns the work to read the rows that may satisfy every predicate:
// one split per row group, consecutive small row groups of a file merged up to
// about 1M rows. Files are pruned by partition values, row groups by column
// chunk statistics (min/max, null counts) and, when the file has a page
// index, by per-page min/max.
func (t *Table) Splits(preds []Predicate) ([]Split, PruneStats) {
	var splits []Split
	var st PruneStats
	partIdx := map[string]int{}
	for i, c := range t.PartitionColumns {
		partIdx[c] = i
	}
	for _, f := range t.Files {
		st.Files++
		st.RowGroups += f.RowGroups
		if !partitionMayMatch(t, f, preds, partIdx) {
			st.FilesPruned++
			st.RowGroupsPruned += f.RowGroups
			continue
		}
		if f.meta == nil {
			rgs := make([]int, f.RowGroups)
			for i := range rgs {
				rgs[i] = i
			}
			splits = append(splits, Split{Path: f.Path, RowGroups: rgs, NumRows: f.NumRows, Partition: f.Partition})
			continue
		}
		var cur *Split
		kept := 0
		for rg, meta := range f.meta.rowGroups {
			if !rowGroupMayMatch(f.meta, rg, preds, partIdx) {
				st.RowGroupsPruned++
				cur = nil // never merge across a pruned row group
				continue
			}
			kept++
			if cur != nil && cur.NumRows+meta.NumRows <= splitRows {
				cur.RowGroups = append(cur.RowGroups, rg)
				cur.NumRows += meta.NumRows
				continue
			}
			splits = append(splits, Split{Path: f.Path, RowGroups: []int{rg}, NumRows: meta.NumRows, Partition: f.Partition})
			cur = &splits[len(splits)-1]
		}
		if kept == 0 {
			st.FilesPruned++
		}
	}
	return splits, st
}

func partitionMayMatch(t *Table, f File, preds []Predicate, partIdx map[string]int) bool {
	for _, p := range preds {
		i, ok := partIdx[p.Column]
		if !ok || i >= len(f.Partition) {
			continue
		}
		pv := f.Partition[i]
		var dt arrow.DataType = arrow.BinaryTypes.String
		if fl, ok := t.Schema.FieldsByName(p.Column); ok && len(fl) > 0 {
			dt = fl[0].Type
		}
		var v any
		if !pv.Null {
			switch dt.ID() {
			case arrow.INT64:
				n, err := strconv.ParseInt(pv.Value, 10, 64)
				if err != nil {
					continue
				}
				v = n
			case arrow.DATE32:
				d, ok := parseDate(pv.Value)
				if !ok {
					continue
				}
				v = int64(d)
			default:
				v = pv.Value
			}
		}
		if !mayMatch(p, chunkStats{min: v, max: v, hasMinMax: !pv.Null, rows: 1, nulls: b2i(pv.Null), hasNulls: true, value: true}) {
			return false
		}
	}
	return true
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func rowGroupMayMatch(m *fileMeta, rg int, preds []Predicate, partIdx map[string]int) bool {
	meta := m.rowGroups[rg]
	if meta.NumRows == 0 {
		return false
	}
	for _, p := range preds {
		if _, ok := partIdx[p.Column]; ok {
			continue
		}
		ci := slices.IndexFunc(m.cols, func(c column) bool { return c.name == p.Column })
		var cs chunkStats
		if ci < 0 {
			// The file lacks the column: it reads as nulls.
			cs = chunkStats{rows: meta.NumRows, nulls: meta.NumRows, hasNulls: true}
		} else {
			if m.cols[ci].leaf >= len(meta.Columns) {
				continue
			}
			cs = statsOf(m.cols[ci], meta.Columns[m.cols[ci].leaf].MetaData, meta.NumRows)
		}
		if !mayMatch(p, cs) {
			return false
		}
		if ci >= 0 && !m.cols[ci].nested {
			if k := rg*m.leaves + m.cols[ci].leaf; k < len(m.colIndex) && !pagesMayMatch(p, m.cols[ci], m.colIndex[k]) {
				return false
			}
		}
	}
	return true
}

// pagesMayMatch uses the column index (per-page min/max, written by pyarrow
// with write_page_index, by parquet-go and Spark by default): the row group
// may match only if some page may. It catches values that fall in a gap
// between pages, which chunk-level min/max cannot see.
func pagesMayMatch(p Predicate, c column, idx format.ColumnIndex) bool {
	n := len(idx.NullPages)
	if n == 0 || len(idx.MinValues) != n || len(idx.MaxValues) != n {
		return true
	}
	switch p.Op {
	case "is_not_null":
		for _, null := range idx.NullPages {
			if !null {
				return true
			}
		}
		return false
	case "eq", "ne", "lt", "le", "gt", "ge", "in":
	default:
		return true
	}
	for j := 0; j < n; j++ {
		if idx.NullPages[j] {
			continue // a comparison with null never holds
		}
		lo, hi, ok := decodeBounds(c, idx.MinValues[j], idx.MaxValues[j], true)
		if !ok || mayMatch(p, chunkStats{min: lo, max: hi, hasMinMax: true, rows: 1}) {
			return true
		}
	}
	return false
}

// chunkStats is what is known of one column chunk (or one partition value):
// min and max as Go physical values of the predicate domain.
type chunkStats struct {
	min, max  any
	hasMinMax bool
	rows      int64
	nulls     int64
	hasNulls  bool // nulls is known to be exact
	// value: min (= max) is the one value of every row, a partition's,
	// so a float's NaN is in it, not left out as in a writer's bounds.
	value bool
}

func statsOf(c column, md format.ColumnMetaData, rows int64) chunkStats {
	s := md.Statistics
	cs := chunkStats{rows: rows, nulls: s.NullCount}
	present := s.MinValue != nil || s.MaxValue != nil || s.Min != nil || s.Max != nil
	// null_count cannot be told apart from absent when zero; a writer that
	// wrote min/max also wrote null_count (pyarrow, parquet-mr, parquet-go).
	cs.hasNulls = present || s.NullCount > 0
	lo, hi, newer := s.MinValue, s.MaxValue, true
	if lo == nil || hi == nil {
		lo, hi, newer = s.Min, s.Max, false
	}
	if lo == nil || hi == nil {
		return cs
	}
	cs.min, cs.max, cs.hasMinMax = decodeBounds(c, lo, hi, newer)
	return cs
}

// decodeBounds decodes plain-encoded min and max statistics into the
// predicate domain; ok is false when they cannot be trusted for pruning.
// Legacy statistics (newer false) were compared as signed bytes and values.
func decodeBounds(c column, lo, hi []byte, newer bool) (lov, hiv any, ok bool) {
	var cs chunkStats
	unsigned := false
	switch c.dt.ID() {
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		unsigned = true
	}
	switch c.conv {
	case convInt32, convInt32To8, convInt32To16, convInt32ToU8, convInt32ToU16:
		if len(lo) != 4 || len(hi) != 4 || (unsigned && !newer) {
			return nil, nil, false
		}
		a, b := int32(binary.LittleEndian.Uint32(lo)), int32(binary.LittleEndian.Uint32(hi))
		if unsigned {
			cs.min, cs.max = uint64(uint32(a)), uint64(uint32(b))
		} else {
			cs.min, cs.max = int64(a), int64(b)
		}
	case convInt64:
		if len(lo) != 8 || len(hi) != 8 || (unsigned && !newer) {
			return nil, nil, false
		}
		a, b := binary.LittleEndian.Uint64(lo), binary.LittleEndian.Uint64(hi)
		if unsigned {
			cs.min, cs.max = a, b
		} else {
			cs.min, cs.max = int64(a), int64(b)
		}
	case convFloat:
		if len(lo) != 4 || len(hi) != 4 {
			return nil, nil, false
		}
		cs.min = float64(math.Float32frombits(binary.LittleEndian.Uint32(lo)))
		cs.max = float64(math.Float32frombits(binary.LittleEndian.Uint32(hi)))
	case convDouble:
		if len(lo) != 8 || len(hi) != 8 {
			return nil, nil, false
		}
		cs.min = math.Float64frombits(binary.LittleEndian.Uint64(lo))
		cs.max = math.Float64frombits(binary.LittleEndian.Uint64(hi))
	case convBool:
		if len(lo) != 1 || len(hi) != 1 {
			return nil, nil, false
		}
		cs.min, cs.max = lo[0] != 0, hi[0] != 0
	case convBytes:
		if !newer { // legacy min/max used signed byte order
			return nil, nil, false
		}
		cs.min, cs.max = []byte(lo), []byte(hi)
	default:
		return nil, nil, false
	}
	if f, ok := cs.min.(float64); ok && math.IsNaN(f) {
		return nil, nil, false
	}
	if f, ok := cs.max.(float64); ok && math.IsNaN(f) {
		return nil, nil, false
	}
	return cs.min, cs.max, true
}

// mayMatch is false only when no row described by cs can satisfy p.
func mayMatch(p Predicate, cs chunkStats) bool {
	allNull := cs.hasNulls && cs.nulls >= cs.rows && cs.rows > 0
	switch p.Op {
	case "is_null":
		return !(cs.hasNulls && cs.nulls == 0)
	case "is_not_null":
		return !allNull
	case "eq", "ne", "lt", "le", "gt", "ge", "in":
	default:
		return true
	}
	if allNull {
		return false // a comparison with null never holds
	}
	if !cs.hasMinMax {
		return true
	}
	if p.Op == "in" {
		if len(p.Values) == 0 {
			return true // an empty IN list is the caller's business; stay safe
		}
		for _, v := range p.Values {
			if may, ok := rangeMayMatch("eq", v, cs); !ok || may {
				return true
			}
		}
		return false
	}
	if len(p.Values) != 1 {
		return true
	}
	may, ok := rangeMayMatch(p.Op, p.Values[0], cs)
	return !ok || may
}

// rangeMayMatch reports whether some value in [min, max] may satisfy
// "x op v"; ok is false when v cannot be compared with the column.
//
// Writers leave NaN out of a float chunk's min and max (pyarrow does; no
// statistic counts NaNs), and NaN is greater than every number and unequal
// to it (Spark's order, which filters follow): x > v, x >= v and x != v may
// hold for a NaN whatever the bounds say, so they never prune a float chunk.
func rangeMayMatch(op string, v any, cs chunkStats) (may, ok bool) {
	if _, isFloat := cs.min.(float64); isFloat && !cs.value && (op == "gt" || op == "ge" || op == "ne") {
		return true, true
	}
	cmin, ok1 := compare(cs.min, v)
	cmax, ok2 := compare(cs.max, v)
	if !ok1 || !ok2 {
		return true, false
	}
	switch op {
	case "eq":
		return cmin <= 0 && cmax >= 0, true
	case "ne":
		return !(cmin == 0 && cmax == 0), true
	case "lt":
		return cmin < 0, true
	case "le":
		return cmin <= 0, true
	case "gt":
		return cmax > 0, true
	case "ge":
		return cmax >= 0, true
	}
	return true, false
}

// compare orders a statistic a against a predicate value b; ok is false when
// they are of kinds it will not compare exactly.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmp3(x, y), true
		case int:
			return cmp3(x, int64(y)), true
		case int32:
			return cmp3(x, int64(y)), true
		case uint64:
			if y > math.MaxInt64 {
				return -1, true
			}
			return cmp3(x, int64(y)), true
		}
	case uint64:
		switch y := b.(type) {
		case uint64:
			return cmp3(x, y), true
		case int64:
			if y < 0 {
				return 1, true
			}
			return cmp3(x, uint64(y)), true
		case int:
			if y < 0 {
				return 1, true
			}
			return cmp3(x, uint64(y)), true
		}
	case float64:
		if math.IsNaN(x) { // a partition's NaN: left to the filter
			return 0, false
		}
		switch y := b.(type) {
		case float64:
			if math.IsNaN(y) {
				return 0, false
			}
			return cmp3(x, y), true
		case float32:
			if math.IsNaN(float64(y)) {
				return 0, false
			}
			return cmp3(x, float64(y)), true
		}
	case []byte:
		switch y := b.(type) {
		case string:
			return bytes.Compare(x, []byte(y)), true
		case []byte:
			return bytes.Compare(x, y), true
		}
	case string:
		switch y := b.(type) {
		case string:
			return cmp3(x, y), true
		case []byte:
			return cmp3(x, string(y)), true
		}
	case bool:
		if y, ok := b.(bool); ok {
			return cmp3(b2i(x), b2i(y)), true
		}
	}
	return 0, false
}

func cmp3[T int64 | uint64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
