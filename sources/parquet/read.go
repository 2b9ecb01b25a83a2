package parquet

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
)

// DefaultBatchRows is used when ReadSplit is given batchRows <= 0.
const DefaultBatchRows = 64 << 10

// output says where one field of the projected schema comes from.
type output struct {
	field arrow.Field
	col   *column         // a file column, or
	part  *PartitionValue // a partition column, or neither: nulls
}

// ReadSplit reads the split's rows, projected to schema (a subset of
// Table.Schema's fields, in the caller's order; partition columns are filled
// from split.Partition as constant columns, columns the file lacks as nulls),
// in records of at most batchRows rows, calling emit for each. emit owns the
// record and must Release it; an error from emit stops the read and is
// returned as is. Records never span row groups. Errors name the file, and
// the column and row group where there is one.
func ReadSplit(ctx context.Context, mem memory.Allocator, split Split, schema *arrow.Schema, partitionColumns []string, batchRows int, emit func(arrow.Record) error) error {
	return ReadSplitAt(ctx, mem, split, schema, partitionColumns, batchRows, func(rec arrow.Record, _ Position) error {
		return emit(rec)
	})
}

// Position is where a record ReadSplitAt emits comes from: its first row is
// row Row of row group RowGroup of file Path, and row FileRow of the file.
type Position struct {
	Path     string
	RowGroup int
	Row      int64
	FileRow  int64
}

// Describe is "file <path>, row group <n>, file rows <first>-<last>" for a
// record of rows rows; the file's rows, because an operator's "row N"
// counts in the record it got, which a filter may have thinned.
func (p Position) Describe(rows int64) string {
	return fmt.Sprintf("file %s, row group %d, file rows %d-%d", p.Path, p.RowGroup, p.FileRow, p.FileRow+rows-1)
}

// Columns is schema narrowed to the fields cols names, in that order (nil
// cols: schema itself): the schema to read a split with when only those
// columns are wanted, so the others are never decoded.
func Columns(schema *arrow.Schema, cols []string) (*arrow.Schema, error) {
	if cols == nil {
		return schema, nil
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		j := schema.FieldIndices(c)
		if len(j) == 0 {
			return nil, fmt.Errorf("%w: no column %q in %s", ErrProjection, c, schema)
		}
		fields[i] = schema.Field(j[0])
	}
	return arrow.NewSchema(fields, nil), nil
}

// ReadSplitAt is ReadSplit telling emit where each record starts, so a
// runtime error in the operators above can name the file, row group and row
// of the value it failed on.
func ReadSplitAt(ctx context.Context, mem memory.Allocator, split Split, schema *arrow.Schema, partitionColumns []string, batchRows int, emit func(arrow.Record, Position) error) error {
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	if len(split.Partition) != len(partitionColumns) {
		return fmt.Errorf("read %s: %w: split has %d partition values for %d partition columns",
			split.Path, ErrProjection, len(split.Partition), len(partitionColumns))
	}
	f, osf, err := openFile(split.Path, -1, pq.SkipPageIndex(true))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	defer osf.Close()
	cols, err := fileColumns(f.Metadata().Schema)
	if err != nil {
		return fmt.Errorf("read %s: %w", split.Path, err)
	}
	outs := make([]output, schema.NumFields())
	for i, field := range schema.Fields() {
		outs[i].field = field
		if j := slices.Index(partitionColumns, field.Name); j >= 0 {
			pv := split.Partition[j]
			if err := checkPartitionType(field, pv); err != nil {
				return fmt.Errorf("read %s: %w", split.Path, err)
			}
			outs[i].part = &pv
			continue
		}
		for k := range cols {
			if cols[k].name == field.Name {
				if cols[k].planErr != nil {
					return fmt.Errorf("read %s: column %q is nested (%s): %w; project it away",
						split.Path, field.Name, cols[k].dt, cols[k].planErr)
				}
				if !arrow.TypeEqual(cols[k].dt, field.Type) {
					return fmt.Errorf("read %s: %w: column %q is %s in the file, the schema asks for %s",
						split.Path, ErrSchemaConflict, field.Name, cols[k].dt, field.Type)
				}
				outs[i].col = &cols[k]
				break
			}
		}
	}
	rowGroups := f.RowGroups()
	for _, rg := range split.RowGroups {
		if rg < 0 || rg >= len(rowGroups) {
			return fmt.Errorf("read %s: %w: row group %d of %d", split.Path, ErrProjection, rg, len(rowGroups))
		}
		var before int64 // the rows of the file before row group rg
		for _, g := range rowGroups[:rg] {
			before += g.NumRows()
		}
		err := readRowGroup(ctx, mem, f, rowGroups[rg], rg, split.Path, schema, outs, batchRows, func(rec arrow.Record, at Position) error {
			at.FileRow = before + at.Row
			return emit(rec, at)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func readRowGroup(ctx context.Context, mem memory.Allocator, f *pq.File, rowGroup pq.RowGroup, rg int, path string,
	schema *arrow.Schema, outs []output, batchRows int, emit func(arrow.Record, Position) error) (err error) {
	readers := make([]columnReader, len(outs))
	defer func() {
		for _, r := range readers {
			if r != nil {
				r.close()
			}
		}
	}()
	total := rowGroup.NumRows()
	var arrs []arrow.Array
	releaseArrs := func() {
		for _, a := range arrs {
			a.Release()
		}
		arrs = arrs[:0]
	}
	// parquet-go panics on some corrupt pages; that is this file's error,
	// not the process's. A panic in emit is the caller's and goes on up.
	inEmit := false
	defer func() {
		if inEmit {
			return
		}
		if r := recover(); r != nil {
			releaseArrs()
			err = fmt.Errorf("read %s: row group %d: %w: %v", path, rg, ErrCorrupt, r)
		}
	}()
	chunks := rowGroup.ColumnChunks()
	for i, o := range outs {
		if o.col == nil {
			continue
		}
		if o.col.leaf >= len(chunks) {
			return fmt.Errorf("read %s: row group %d: %w: no column chunk for column %q", path, rg, ErrCorrupt, o.col.name)
		}
		if o.col.nested {
			nr, err := newNestedReader(o.col.name, o.col.dt, o.col.plan, chunks)
			if err != nil {
				return fmt.Errorf("read %s: row group %d: %w", path, rg, err)
			}
			readers[i] = nr
			continue
		}
		maxDef := 0
		if o.col.optional {
			maxDef = 1
		}
		readers[i] = newColumnReader(*o.col, chunks[o.col.leaf], maxDef)
	}
	for done := int64(0); done < total; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		n := int(min(int64(batchRows), total-done))
		for i, o := range outs {
			var a arrow.Array
			switch {
			case readers[i] != nil:
				a, err = readColumn(readers[i], mem, n)
				if err != nil {
					releaseArrs()
					return fmt.Errorf("read %s: row group %d: %w", path, rg, err)
				}
			case o.part != nil:
				a = constantArray(mem, o.field.Type, *o.part, n)
			default:
				a = array.MakeArrayOfNull(mem, o.field.Type, n)
			}
			arrs = append(arrs, a)
		}
		rec := array.NewRecord(schema, arrs, int64(n))
		releaseArrs()
		at := Position{Path: path, RowGroup: rg, Row: done}
		done += int64(n)
		inEmit = true
		if err := emit(rec, at); err != nil {
			return err
		}
		inEmit = false
	}
	return nil
}

func checkPartitionType(field arrow.Field, pv PartitionValue) error {
	if pv.Null {
		return nil
	}
	switch field.Type.ID() {
	case arrow.STRING:
		return nil
	case arrow.INT64:
		if _, err := strconv.ParseInt(pv.Value, 10, 64); err == nil {
			return nil
		}
	case arrow.DATE32:
		if _, ok := parseDate(pv.Value); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: partition column %q value %q is not %s", ErrProjection, field.Name, pv.Value, field.Type)
}

func constantArray(mem memory.Allocator, dt arrow.DataType, pv PartitionValue, n int) arrow.Array {
	if pv.Null {
		return array.MakeArrayOfNull(mem, dt, n)
	}
	switch dt.ID() {
	case arrow.INT64:
		v, _ := strconv.ParseInt(pv.Value, 10, 64)
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(n)
		for range n {
			b.UnsafeAppend(v)
		}
		return b.NewArray()
	case arrow.DATE32:
		v, _ := parseDate(pv.Value)
		b := array.NewDate32Builder(mem)
		defer b.Release()
		b.Reserve(n)
		for range n {
			b.UnsafeAppend(arrow.Date32(v))
		}
		return b.NewArray()
	default:
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.Reserve(n)
		b.ReserveData(n * len(pv.Value))
		for range n {
			b.Append(pv.Value)
		}
		return b.NewArray()
	}
}
