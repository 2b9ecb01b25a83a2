package microbatch

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// compareRows fills r's counts and verdict: the replayed and committed
// rows as multisets of rows rendered by rowText over schema's columns
// (found by name in the committed records). A committed record without
// one of schema's columns is an error.
func compareRows(r *ReplayReport, schema *arrow.Schema, replayed, committed []arrow.Record) error {
	counts := map[string]int64{}
	add := func(recs []arrow.Record, sign int64, rows *int64, side string) error {
		for _, rec := range recs {
			cols := make([]arrow.Array, schema.NumFields())
			for i, f := range schema.Fields() {
				idx := rec.Schema().FieldIndices(f.Name)
				if len(idx) != 1 {
					return fmt.Errorf("%w: batch %d: the %s's rows have %d columns named %q (columns %s)",
						ErrReplayDiffers, r.Batch, side, len(idx), f.Name, strings.Join(fieldNames(rec.Schema()), ", "))
				}
				cols[i] = rec.Column(idx[0])
			}
			for row := 0; row < int(rec.NumRows()); row++ {
				counts[rowText(schema, cols, row)] += sign
				*rows++
			}
		}
		return nil
	}
	if err := add(replayed, 1, &r.ReplayedRows, "replay"); err != nil {
		return err
	}
	if err := add(committed, -1, &r.CommittedRows, "sink"); err != nil {
		return err
	}
	var onlyReplay, onlySink []string
	for row, n := range counts {
		switch {
		case n > 0:
			r.OnlyInReplay += n
			onlyReplay = append(onlyReplay, row)
		case n < 0:
			r.OnlyInSink -= n
			onlySink = append(onlySink, row)
		}
	}
	r.Identical = len(onlyReplay)+len(onlySink) == 0
	if r.Identical {
		return nil
	}
	occurrences := func(row string) (inReplay, inSink int64) {
		for _, side := range []struct {
			recs []arrow.Record
			n    *int64
		}{{replayed, &inReplay}, {committed, &inSink}} {
			for _, rec := range side.recs {
				cols := make([]arrow.Array, schema.NumFields())
				for i, f := range schema.Fields() {
					cols[i] = rec.Column(rec.Schema().FieldIndices(f.Name)[0])
				}
				for k := 0; k < int(rec.NumRows()); k++ {
					if rowText(schema, cols, k) == row {
						*side.n++
					}
				}
			}
		}
		return inReplay, inSink
	}
	describe := func(row string) string {
		a, b := occurrences(row)
		return fmt.Sprintf("row %s is %s in the replay and %s in the sink", row, times(a), times(b))
	}
	if len(onlyReplay) > 0 {
		r.FirstOnlyInReplay = describe(slices.Min(onlyReplay))
	}
	if len(onlySink) > 0 {
		r.FirstOnlyInSink = describe(slices.Min(onlySink))
	}
	r.FirstDifference = r.FirstOnlyInReplay
	if r.FirstDifference == "" || (r.FirstOnlyInSink != "" && slices.Min(onlySink) < slices.Min(onlyReplay)) {
		r.FirstDifference = r.FirstOnlyInSink
	}
	return nil
}

func times(n int64) string {
	switch n {
	case 0:
		return "absent"
	case 1:
		return "once"
	}
	return strconv.FormatInt(n, 10) + " times"
}

func fieldNames(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// rowText renders one row as {name=value, ...} in schema's column order,
// each value by cellText.
func rowText(schema *arrow.Schema, cols []arrow.Array, row int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range schema.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(cellText(cols[i], row))
	}
	b.WriteByte('}')
	return b.String()
}

// cellText renders a value so that equal values render equally across the
// types a sink may read a column back as: integers by value, floats with
// every NaN alike and -0 as 0, timestamps as UTC instants, strings quoted
// (so "null" the string is not null the value).
func cellText(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch a := a.(type) {
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
		return floatText(float64(a.Value(i)), 32)
	case *array.Float64:
		return floatText(a.Value(i), 64)
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano)
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Date64:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.String:
		return strconv.Quote(a.Value(i))
	case *array.LargeString:
		return strconv.Quote(a.Value(i))
	case *array.Binary:
		return fmt.Sprintf("0x%x", a.Value(i))
	}
	return a.ValueStr(i)
}

func floatText(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		return "0"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}
