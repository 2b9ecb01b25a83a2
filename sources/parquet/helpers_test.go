package parquet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// valueString renders one Arrow value the way the pyarrow scripts render
// theirs, so that comparisons are exact: floats by their bits, decimals by
// their unscaled integer, temporal types by their physical integer, binary in
// hex. Null is nil.
func valueString(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
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
		return strconv.FormatUint(uint64(math.Float32bits(a.Value(i))), 10)
	case *array.Float64:
		return strconv.FormatUint(math.Float64bits(a.Value(i)), 10)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return hex.EncodeToString(a.Value(i))
	case *array.FixedSizeBinary:
		return hex.EncodeToString(a.Value(i))
	case *array.Date32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Timestamp:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Decimal128:
		return a.Value(i).BigInt().String()
	case *array.List:
		lo, hi := a.ValueOffsets(i)
		parts := make([]string, 0, hi-lo)
		for j := lo; j < hi; j++ {
			parts = append(parts, nestedString(a.ListValues(), int(j)))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		parts := make([]string, 0, a.NumField())
		for f := 0; f < a.NumField(); f++ {
			parts = append(parts, st.Field(f).Name+":"+nestedString(a.Field(f), i))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	panic(fmt.Sprintf("valueString: %T", a))
}

func nestedString(a arrow.Array, i int) string {
	if v := valueString(a, i); v != nil {
		return v.(string)
	}
	return "null"
}

// columns is a read result: column name -> rendered values.
type columns map[string][]any

func readSplits(t testing.TB, mem memory.Allocator, tab *Table, schema *arrow.Schema, splits []Split, batchRows int) columns {
	t.Helper()
	out := columns{}
	for _, f := range schema.Fields() {
		out[f.Name] = []any{}
	}
	for _, s := range splits {
		err := ReadSplit(context.Background(), mem, s, schema, tab.PartitionColumns, batchRows, func(rec arrow.Record) error {
			defer rec.Release()
			if batchRows > 0 && rec.NumRows() > int64(batchRows) {
				t.Errorf("record of %d rows, batchRows %d", rec.NumRows(), batchRows)
			}
			if !rec.Schema().Equal(schema) {
				t.Errorf("record schema %s, want %s", rec.Schema(), schema)
			}
			for c, f := range schema.Fields() {
				col := rec.Column(c)
				if !arrow.TypeEqual(col.DataType(), f.Type) {
					t.Errorf("column %s is %s, want %s", f.Name, col.DataType(), f.Type)
				}
				for i := 0; i < col.Len(); i++ {
					out[f.Name] = append(out[f.Name], valueString(col, i))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ReadSplit(%+v): %v", s, err)
		}
	}
	return out
}

func readTable(t testing.TB, mem memory.Allocator, tab *Table, schema *arrow.Schema, preds []Predicate, batchRows int) (columns, PruneStats) {
	t.Helper()
	splits, st := tab.Splits(preds)
	// Splits are shipped to executors as JSON: make the round trip part of
	// every read.
	b, err := json.Marshal(splits)
	if err != nil {
		t.Fatal(err)
	}
	var back []Split
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return readSplits(t, mem, tab, schema, back, batchRows), st
}

func project(t testing.TB, s *arrow.Schema, names ...string) *arrow.Schema {
	t.Helper()
	var fields []arrow.Field
	for _, n := range names {
		f, ok := s.FieldsByName(n)
		if !ok {
			t.Fatalf("no field %q in %s", n, s)
		}
		fields = append(fields, f[0])
	}
	return arrow.NewSchema(fields, nil)
}

func compareColumns(t testing.TB, got columns, want map[string][]any, names ...string) {
	t.Helper()
	for _, n := range names {
		g, w := got[n], want[n]
		if len(g) != len(w) {
			t.Errorf("column %s: %d values, want %d", n, len(g), len(w))
			continue
		}
		bad := 0
		for i := range g {
			if g[i] != w[i] {
				if bad < 5 {
					t.Errorf("column %s row %d: got %v, want %v", n, i, g[i], w[i])
				}
				bad++
			}
		}
		if bad > 5 {
			t.Errorf("column %s: %d rows differ", n, bad)
		}
	}
}
