package parquet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

var (
	ErrNoFiles         = errors.New("parquet: no parquet files")
	ErrNotParquet      = errors.New("parquet: not a parquet file")
	ErrCorrupt         = errors.New("parquet: corrupt file")
	ErrSchemaConflict  = errors.New("parquet: schema conflict")
	ErrUnsupportedType = errors.New("parquet: unsupported type")
	ErrPartition       = errors.New("parquet: inconsistent hive partitioning")
	ErrProjection      = errors.New("parquet: bad projection")
)

// hiveNull is the directory value Hive and Spark write for a null partition value.
const hiveNull = "__HIVE_DEFAULT_PARTITION__"

// Table is a set of Parquet files with one merged Arrow schema.
type Table struct {
	Files            []File
	Schema           *arrow.Schema // file columns (first file's order, then new columns from later files), then partition columns
	PartitionColumns []string
}

// File is one Parquet file of a Table.
type File struct {
	Path      string
	Size      int64
	NumRows   int64
	RowGroups int
	Partition []PartitionValue // aligned with Table.PartitionColumns

	// meta is the footer read by Open, kept for pruning; nil for a File built
	// by hand (Splits then cannot prune its row groups).
	meta *fileMeta
}

// RowGroupRows returns the rows of each of f's row groups, or nil for a
// File built by hand (no footer).
func (f File) RowGroupRows() []int64 {
	if f.meta == nil {
		return nil
	}
	out := make([]int64, len(f.meta.rowGroups))
	for i, rg := range f.meta.rowGroups {
		out[i] = rg.NumRows
	}
	return out
}

// PartitionValue is one Hive partition directory value; Value is unescaped.
type PartitionValue struct {
	Value string
	Null  bool
}

// fileMeta is what Splits needs from a footer.
type fileMeta struct {
	cols      []column
	rowGroups []format.RowGroup
	leaves    int                  // column chunks per row group
	colIndex  []format.ColumnIndex // row group * leaves + leaf; nil without a page index
}

// Open lists paths (files, directories searched recursively, or globs), reads
// every footer, infers Hive partition columns and merges the schemas. See the
// package documentation for the rules. A directory holding a _sluice_log
// commit log (the streaming Parquet sink's) is not walked: only the files
// its committed batches list are read. A directory holding a _delta_log is
// read as a Delta table: the files of its latest version, or of version N
// for the path "<dir>@v<N>" (DeltaPath; Delta's time-travel syntax).
func Open(ctx context.Context, paths ...string) (*Table, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("open: %w: no paths given", ErrNoFiles)
	}
	type found struct {
		path string
		size int64
		dirs []string // directory names between the listed root and the file
	}
	var files []found
	partTypes := map[string]arrow.DataType{} // a Delta table's partition column types
	seen := map[string]bool{}
	add := func(path string, size int64, dirs []string) {
		if !seen[path] {
			seen[path] = true
			files = append(files, found{path, size, dirs})
		}
	}
	for _, arg := range paths {
		matches := []string{arg}
		if strings.ContainsAny(arg, "*?[") {
			m, err := filepath.Glob(arg)
			if err != nil {
				return nil, fmt.Errorf("open: glob %q: %w", arg, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("open: %w: glob %q matches nothing", ErrNoFiles, arg)
			}
			matches = m
		}
		for _, p := range matches {
			if dir, version, ok := splitVersion(p); ok || isDelta(p) {
				before := len(files)
				v, types, err := listDelta(dir, version, add)
				for c, dt := range types {
					partTypes[c] = dt
				}
				if err != nil {
					return nil, fmt.Errorf("open: %s: %w", p, err)
				}
				if len(files) == before {
					return nil, fmt.Errorf("open: %w in delta table %s: version %d lists none", ErrNoFiles, dir, v)
				}
				continue
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("open: %w", err)
			}
			if !st.IsDir() {
				add(p, st.Size(), nil)
				continue
			}
			before := len(files)
			if logged, err := listLogged(p, add); err != nil {
				return nil, fmt.Errorf("open: %s: %w", p, err)
			} else if logged {
				if len(files) == before {
					return nil, fmt.Errorf("open: %w in directory %s: its commit log lists none", ErrNoFiles, p)
				}
				continue
			}
			err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if path != p && hidden(d.Name()) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if d.IsDir() || !d.Type().IsRegular() {
					return nil
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				rel, err := filepath.Rel(p, filepath.Dir(path))
				if err != nil {
					return err
				}
				var dirs []string
				if rel != "." {
					dirs = strings.Split(filepath.ToSlash(rel), "/")
				}
				add(path, info.Size(), dirs)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("open: list %s: %w", p, err)
			}
			if len(files) == before {
				return nil, fmt.Errorf("open: %w in directory %s", ErrNoFiles, p)
			}
		}
	}

	t := &Table{}
	partCols, err := partitionColumns(files[0].dirs)
	if err != nil {
		return nil, fmt.Errorf("open: %s: %w", files[0].path, err)
	}
	t.PartitionColumns = partCols
	isPart := map[string]bool{}
	for _, c := range partCols {
		isPart[c] = true
	}

	var fields []arrow.Field
	owner := map[string]int{} // column name -> index in fields
	firstFile := map[string]string{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
		meta, err := readFooter(f.path, f.size)
		if err != nil {
			return nil, err
		}
		part, err := partitionValues(f.dirs, partCols)
		if err != nil {
			return nil, fmt.Errorf("open: %s: %w", f.path, err)
		}
		var numRows int64
		for _, rg := range meta.rowGroups {
			numRows += rg.NumRows
		}
		t.Files = append(t.Files, File{
			Path: f.path, Size: f.size, NumRows: numRows, RowGroups: len(meta.rowGroups),
			Partition: part, meta: meta,
		})
		for _, c := range meta.cols {
			if isPart[c.name] {
				continue // the directory value wins, as in Spark
			}
			if i, ok := owner[c.name]; ok {
				if !arrow.TypeEqual(fields[i].Type, c.dt) {
					return nil, fmt.Errorf("open: %w: column %q is %s in %s but %s in %s",
						ErrSchemaConflict, c.name, fields[i].Type, firstFile[c.name], c.dt, f.path)
				}
				continue
			}
			owner[c.name] = len(fields)
			firstFile[c.name] = f.path
			fields = append(fields, arrow.Field{Name: c.name, Type: c.dt, Nullable: true})
		}
	}
	// A column some file lacks reads as nulls there, so every field is
	// nullable; the same holds for partition columns (null partitions).
	for i, c := range partCols {
		values := make([]PartitionValue, len(t.Files))
		for j := range t.Files {
			values[j] = t.Files[j].Partition[i]
		}
		dt := partitionType(values)
		if t, ok := partTypes[c]; ok {
			dt = t
		}
		fields = append(fields, arrow.Field{Name: c, Type: dt, Nullable: true})
	}
	t.Schema = arrow.NewSchema(fields, nil)
	return t, nil
}

func hidden(name string) bool {
	return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")
}

// unescapePath decodes %XX escapes as Spark's unescapePathName does: a "%"
// not followed by two hex digits stays as it is, and "+" is not a space.
func unescapePath(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, ok1 := unhex(s[i+1]); ok1 {
				if lo, ok2 := unhex(s[i+2]); ok2 {
					b.WriteByte(hi<<4 | lo)
					i += 2
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func partitionColumns(dirs []string) ([]string, error) {
	var cols []string
	for _, d := range dirs {
		k, _, ok := strings.Cut(d, "=")
		if !ok || k == "" {
			continue
		}
		cols = append(cols, unescapePath(k))
	}
	return cols, nil
}

func partitionValues(dirs []string, cols []string) ([]PartitionValue, error) {
	var vals []PartitionValue
	i := 0
	for _, d := range dirs {
		k, v, ok := strings.Cut(d, "=")
		if !ok || k == "" {
			continue
		}
		name := unescapePath(k)
		if i >= len(cols) || cols[i] != name {
			return nil, fmt.Errorf("%w: directory %q, want partition columns %v", ErrPartition, strings.Join(dirs, "/"), cols)
		}
		i++
		if v == hiveNull {
			vals = append(vals, PartitionValue{Null: true})
			continue
		}
		vals = append(vals, PartitionValue{Value: unescapePath(v)})
	}
	if i != len(cols) {
		return nil, fmt.Errorf("%w: directory %q, want partition columns %v", ErrPartition, strings.Join(dirs, "/"), cols)
	}
	return vals, nil
}

// partitionType is int64 if every non-null value parses as one, date32 if
// every one is YYYY-MM-DD, else string.
func partitionType(values []PartitionValue) arrow.DataType {
	isInt, isDate, any := true, true, false
	for _, v := range values {
		if v.Null {
			continue
		}
		any = true
		if _, err := strconv.ParseInt(v.Value, 10, 64); err != nil {
			isInt = false
		}
		if _, ok := parseDate(v.Value); !ok {
			isDate = false
		}
	}
	switch {
	case !any:
		return arrow.BinaryTypes.String
	case isInt:
		return arrow.PrimitiveTypes.Int64
	case isDate:
		return arrow.FixedWidthTypes.Date32
	}
	return arrow.BinaryTypes.String
}

func parseDate(s string) (int32, bool) {
	if len(s) != 10 {
		return 0, false
	}
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return int32(d.Unix() / 86400), true
}

// openFile opens one Parquet file, converting parquet-go's errors and panics
// into errors naming the file.
func openFile(path string, size int64, opts ...pq.FileOption) (f *pq.File, osf *os.File, err error) {
	osf, err = os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if size < 0 {
		st, err := osf.Stat()
		if err != nil {
			osf.Close()
			return nil, nil, err
		}
		size = st.Size()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: %v", path, ErrCorrupt, r)
		}
		if err != nil {
			osf.Close()
		}
	}()
	if size < 12 {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes", path, ErrNotParquet, size)
	}
	var magic [4]byte
	for _, off := range []int64{0, size - 4} {
		if _, err := osf.ReadAt(magic[:], off); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if string(magic[:]) != "PAR1" {
			if off == 0 {
				return nil, nil, fmt.Errorf("%s: %w: no PAR1 magic at start", path, ErrNotParquet)
			}
			return nil, nil, fmt.Errorf("%s: %w: no PAR1 magic at end (truncated?)", path, ErrCorrupt)
		}
	}
	opts = append([]pq.FileOption{pq.SkipBloomFilters(true), pq.ReadBufferSize(256 << 10)}, opts...)
	f, err = pq.OpenFile(osf, size, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	return f, osf, nil
}

func readFooter(path string, size int64) (*fileMeta, error) {
	f, osf, err := openFile(path, size, pq.SkipPageIndex(true))
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer osf.Close()
	md := f.Metadata()
	cols, err := fileColumns(md.Schema)
	if err != nil {
		return nil, fmt.Errorf("open: %s: %w", path, err)
	}
	leaves := 0
	for _, el := range md.Schema[1:] {
		if el.NumChildren.V == 0 {
			leaves++
		}
	}
	for i, rg := range md.RowGroups {
		if len(rg.Columns) != leaves {
			return nil, fmt.Errorf("open: %s: %w: row group %d has %d column chunks, schema has %d leaf columns", path, ErrCorrupt, i, len(rg.Columns), leaves)
		}
	}
	return &fileMeta{cols: cols, rowGroups: md.RowGroups, leaves: leaves, colIndex: readColumnIndex(f)}, nil
}

// readColumnIndex reads the page index when the file has one. It only ever
// sharpens pruning, so a missing or unreadable one is not an error.
func readColumnIndex(f *pq.File) (ci []format.ColumnIndex) {
	defer func() {
		if recover() != nil {
			ci = nil
		}
	}()
	md := f.Metadata()
	if len(md.RowGroups) == 0 || len(md.RowGroups[0].Columns) == 0 || md.RowGroups[0].Columns[0].ColumnIndexOffset <= 0 {
		return nil
	}
	ci, _, err := f.ReadPageIndex()
	if err != nil {
		return nil
	}
	return ci
}
