package microbatch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset/exec"
)

// compareRows fills r's counts and verdict: the replayed and committed
// rows as multisets of rows rendered by rowText over schema's columns
// (found by name in the committed records). A committed record without
// one of schema's columns is an error.
func compareRows(r *ReplayReport, schema *arrow.Schema, replayed, committed []arrow.Record) error {
	// counts[row] is how often the replay [0] and the sink [1] have row.
	counts := map[string]*[2]int64{}
	add := func(recs []arrow.Record, side int, rows *int64, name string) error {
		cols := make([]arrow.Array, schema.NumFields())
		for _, rec := range recs {
			for i, f := range schema.Fields() {
				idx := rec.Schema().FieldIndices(f.Name)
				if len(idx) != 1 {
					return fmt.Errorf("%w: batch %d: the %s's rows have %d columns named %q (columns %s)",
						ErrReplayDiffers, r.Batch, name, len(idx), f.Name, strings.Join(fieldNames(rec.Schema()), ", "))
				}
				cols[i] = rec.Column(idx[0])
			}
			for row := 0; row < int(rec.NumRows()); row++ {
				key := rowText(schema, cols, row)
				c := counts[key]
				if c == nil {
					c = new([2]int64)
					counts[key] = c
				}
				c[side]++
				*rows++
			}
		}
		return nil
	}
	if err := add(replayed, 0, &r.ReplayedRows, "replay"); err != nil {
		return err
	}
	if err := add(committed, 1, &r.CommittedRows, "sink"); err != nil {
		return err
	}
	var firstReplay, firstSink string // the smallest row each side has more often
	for row, c := range counts {
		switch n := c[0] - c[1]; {
		case n > 0:
			r.OnlyInReplay += n
			if firstReplay == "" || row < firstReplay {
				firstReplay = row
			}
		case n < 0:
			r.OnlyInSink -= n
			if firstSink == "" || row < firstSink {
				firstSink = row
			}
		}
	}
	r.Identical = r.OnlyInReplay+r.OnlyInSink == 0
	if r.Identical {
		return nil
	}
	describe := func(row string) string {
		if row == "" {
			return ""
		}
		c := counts[row]
		return fmt.Sprintf("row %s is %s in the replay and %s in the sink", row, times(c[0]), times(c[1]))
	}
	r.FirstOnlyInReplay, r.FirstOnlyInSink = describe(firstReplay), describe(firstSink)
	r.FirstDifference = r.FirstOnlyInReplay
	if r.FirstDifference == "" || (r.FirstOnlyInSink != "" && firstSink < firstReplay) {
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
// types a sink may read a column back as: exec.FormatValue (integers by
// value whatever their width, every NaN as NaN), with -0 as 0, timestamps
// as UTC instants whatever their unit and zone, and strings quoted (so
// "null" the string is not null the value).
func cellText(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch a := a.(type) {
	case *array.Float32:
		if a.Value(i) == 0 {
			return "0"
		}
	case *array.Float64:
		if a.Value(i) == 0 {
			return "0"
		}
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano)
	case *array.String:
		return strconv.Quote(a.Value(i))
	case *array.LargeString:
		return strconv.Quote(a.Value(i))
	}
	return exec.FormatValue(a, i)
}
