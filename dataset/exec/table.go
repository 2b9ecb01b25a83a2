package exec

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
)

// TableOptions shapes FormatTableOpts output.
type TableOptions struct {
	// MaxRows is the most rows printed; <= 0 prints all. When rows are cut a
	// line "only showing top N rows" follows the table.
	MaxRows int
	// Truncate cuts column names and string, binary and nested cells longer
	// than this many characters to Truncate-3 characters plus "..." (Spark's
	// show(truncate=true) uses 20; unlike Spark, numbers, dates and timestamps
	// are never cut); <= 0 never cuts.
	Truncate int
}

// DefaultTruncate is Spark's show() cell width.
const DefaultTruncate = 20

// FormatTable writes recs as an aligned text table in the manner of Spark's
// Dataset.show(maxRows): at most maxRows rows (<= 0: all), cells cut at 20
// characters.
func FormatTable(w io.Writer, schema *arrow.Schema, recs []arrow.Record, maxRows int) error {
	return FormatTableOpts(w, schema, recs, TableOptions{MaxRows: maxRows, Truncate: DefaultTruncate})
}

// FormatTableOpts is FormatTable with every option. Numbers are right-aligned,
// everything else left-aligned, nulls print as "null".
//
//	+---+-----+
//	|id |name |
//	+---+-----+
//	|  1|alice|
//	+---+-----+
func FormatTableOpts(w io.Writer, schema *arrow.Schema, recs []arrow.Record, opts TableOptions) error {
	ncol := schema.NumFields()
	var total int64
	for _, r := range recs {
		total += r.NumRows()
	}
	limit := total
	if opts.MaxRows > 0 && int64(opts.MaxRows) < total {
		limit = int64(opts.MaxRows)
	}
	cells := make([][]string, 0, limit+1)
	header := make([]string, ncol)
	for i, f := range schema.Fields() {
		header[i] = truncateCell(f.Name, opts.Truncate)
	}
	cells = append(cells, header)
	// Only variable-length values are cut: a cut number or timestamp would
	// read as a different value.
	cut := make([]int, ncol)
	for i, f := range schema.Fields() {
		switch f.Type.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY,
			arrow.LIST, arrow.LARGE_LIST, arrow.STRUCT, arrow.MAP, arrow.FIXED_SIZE_LIST, arrow.FIXED_SIZE_BINARY:
			cut[i] = opts.Truncate
		}
	}
	for _, r := range recs {
		if int64(len(cells)-1) >= limit {
			break
		}
		if r.NumCols() != int64(ncol) {
			return fmt.Errorf("format table: record has %d columns, schema %d", r.NumCols(), ncol)
		}
		n := min(r.NumRows(), limit-int64(len(cells)-1))
		for i := 0; i < int(n); i++ {
			row := make([]string, ncol)
			for c := 0; c < ncol; c++ {
				row[c] = truncateCell(FormatValue(r.Column(c), i), cut[c])
			}
			cells = append(cells, row)
		}
	}
	widths := make([]int, ncol)
	for _, row := range cells {
		for c, s := range row {
			widths[c] = max(widths[c], utf8.RuneCountInString(s), 3)
		}
	}
	right := make([]bool, ncol)
	for i, f := range schema.Fields() {
		right[i] = isNumericType(f.Type)
	}
	var b strings.Builder
	sep := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(row []string) {
		b.WriteByte('|')
		for c, s := range row {
			pad := strings.Repeat(" ", widths[c]-utf8.RuneCountInString(s))
			if right[c] {
				b.WriteString(pad)
				b.WriteString(s)
			} else {
				b.WriteString(s)
				b.WriteString(pad)
			}
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	sep()
	line(cells[0])
	sep()
	for _, row := range cells[1:] {
		line(row)
	}
	sep()
	if limit < total {
		fmt.Fprintf(&b, "only showing top %d %s\n", limit, plural(limit, "row", "rows"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func truncateCell(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n < 4 {
		return string(r[:n])
	}
	return string(r[:n-3]) + "..."
}

func isNumericType(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	}
	return false
}

// FormatValue renders arr[i] for people: "null" for nulls, timestamps as
// "2006-01-02 15:04:05[.fraction]" in their zone (UTC without one), dates as
// 2006-01-02, decimals with their scale, floats in shortest round-trip form
// (no exponent between 1e-4 and 1e21), binary as lower-case hex. Other types
// use the array's ValueStr.
func FormatValue(arr arrow.Array, i int) string {
	if arr.IsNull(i) {
		return "null"
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Uint8:
		return strconv.FormatUint(uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.FormatUint(uint64(a.Value(i)), 10)
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10)
	case *array.Float32:
		return formatFloat(float64(a.Value(i)), 32)
	case *array.Float64:
		return formatFloat(a.Value(i), 64)
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return hex.EncodeToString(a.Value(i))
	case *array.LargeBinary:
		return hex.EncodeToString(a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Date64:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		return a.Value(i).ToTime(tt.Unit).In(zone(tt.TimeZone)).Format("2006-01-02 15:04:05.999999999")
	case *array.Decimal128:
		return formatDecimal(a.Value(i), a.DataType().(*arrow.Decimal128Type).Scale)
	}
	return arr.ValueStr(i)
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e21) {
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

func formatDecimal(n decimal128.Num, scale int32) string {
	if scale <= 0 {
		return n.ToString(scale)
	}
	// ToString goes through big.Float and may drop trailing zeros; build the
	// digits from the integer instead so 12.30 keeps its scale.
	neg := n.Sign() < 0
	if neg {
		n = n.Negate()
	}
	digits := n.BigInt().String()
	if len(digits) <= int(scale) {
		digits = strings.Repeat("0", int(scale)-len(digits)+1) + digits
	}
	cut := len(digits) - int(scale)
	s := digits[:cut] + "." + digits[cut:]
	if neg {
		s = "-" + s
	}
	return s
}

var zones sync.Map // time zone name -> *time.Location

// zone resolves an Arrow timestamp time zone: an IANA name or a fixed offset
// like "+01:00"; empty or unknown names give UTC.
func zone(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
		if t, perr := time.Parse("-07:00", name); perr == nil {
			_, off := t.Zone()
			loc = time.FixedZone(name, off)
		}
	}
	zones.Store(name, loc)
	return loc
}
