package parquet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
)

// WrittenFile describes one finished Parquet file of a FileWriter.
type WrittenFile struct {
	Path  string // relative to the writer's dir, e.g. "day=2024-01-02/part-00000.parquet"
	Rows  int64
	Bytes int64
}

// rowsPerWrite bounds how many rows go to the column writers per call: the
// parquet writer cuts pages only between calls, so this bounds page size
// (and the []parquet.Value scratch) while keeping per-call overhead small.
const rowsPerWrite = 4096

// FileWriter writes Arrow records of one schema as Parquet files under dir.
// It is not safe for concurrent use. Write does not retain the record.
type FileWriter struct {
	mem    memory.Allocator
	dir    string
	prefix string
	schema *arrow.Schema
	opts   Options
	pqOpts []pq.WriterOption
	cols   []column
	part   []partColumn

	enc     encoder
	parts   map[string]*partition
	order   []*partition // in creation order, for deterministic Close
	created []string     // every file this writer made, for Abort
	dirs    []string     // every partition directory this writer made, for Abort
	done    []WrittenFile

	create func(path string) (dataFile, error)
	// inProgress, if set, maps a file's final name to the hidden name it is
	// written under (the stream sink renames it at commit); WrittenFile.Path
	// stays the final name.
	inProgress func(name string) string
	keys       map[string]int // scratch for partition grouping
	groups     []rowGroup
	keyBuf     []byte
	err        error // first write error; the writer is unusable after it
	closed     bool
	closeErr   error
}

type partition struct {
	rel  string // directory relative to dir ("" without PartitionBy)
	next int    // number of the next file in this directory
	f    *openFile
}

// dataFile is what a FileWriter needs of an output file; tests swap
// FileWriter.create to inject write and fsync faults.
type dataFile interface {
	io.Writer
	Sync() error
	Stat() (fs.FileInfo, error)
	Close() error
}

func createFile(path string) (dataFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

type openFile struct {
	rel       string // final path relative to the writer's dir
	path      string // where the bytes go: the final or the in-progress name
	file      dataFile
	buf       *bufio.Writer
	pw        *pq.Writer
	rows      int64
	groupRows int64
}

type rowGroup struct {
	key  string
	rows []int32
}

// NewFileWriter makes dir (and its parents) and returns a writer of files
// named "<prefix>-<n>.parquet", n counting from 00000 per partition directory.
// No file is created until the first row arrives.
func NewFileWriter(mem memory.Allocator, dir, prefix string, schema *arrow.Schema, opts Options) (*FileWriter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	codec, _ := opts.codec()
	part, isPart, err := partitionColumns(schema, opts.PartitionBy)
	if err != nil {
		return nil, err
	}
	pschema, cols, err := fileSchema(schema, isPart)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: every column is a partition column", ErrInvalidOptions)
	}
	stored := make([]arrow.Field, len(cols))
	for i, c := range cols {
		stored[i] = schema.Field(c.field)
	}
	md, err := arrowSchemaMetadata(arrow.NewSchema(stored, nil), mem)
	if err != nil {
		return nil, err
	}
	pqOpts := []pq.WriterOption{
		pschema,
		pq.DataPageVersion(1), // V2 pages are not read by Spark and Snowflake
		pq.Compression(codec),
		pq.MaxRowsPerRowGroup(opts.RowGroupRows),
		pq.DataPageStatistics(true),
		pq.PageBufferSize(1 << 20), // parquet-mr's page size; 12% faster than 256 KiB here
		pq.DictionaryMaxBytes(dictionaryMaxBytes),
		pq.KeyValueMetadata("ARROW:schema", md),
	}
	if _, err := pq.NewWriterConfig(pqOpts...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("parquet sink: create dir %s: %w", dir, err)
	}
	return &FileWriter{
		mem: mem, dir: dir, prefix: prefix, schema: schema, opts: opts, pqOpts: pqOpts,
		cols: cols, part: part, parts: map[string]*partition{}, keys: map[string]int{}, create: createFile,
	}, nil
}

// Write appends the rows of rec. After an error the writer only accepts
// Close or Abort; the error names the file that failed.
func (w *FileWriter) Write(rec arrow.Record) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if !rec.Schema().Equal(w.schema) {
		return fmt.Errorf("%w: got %s", ErrSchemaMismatch, rec.Schema())
	}
	if err := w.write(rec); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *FileWriter) write(rec arrow.Record) error {
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	if len(w.part) == 0 {
		return w.writeRange(w.partition(""), rec.Columns(), 0, n)
	}
	w.groupRows(rec)
	cols := rec.Columns()
	for gi := range w.groups {
		g := &w.groups[gi]
		p := w.partition(g.key)
		lo, hi := int(g.rows[0]), int(g.rows[len(g.rows)-1])
		if hi-lo+1 == len(g.rows) { // one run: no copy
			if err := w.writeRange(p, cols, lo, hi+1); err != nil {
				return err
			}
			continue
		}
		if err := w.writeTaken(p, cols, g.rows); err != nil {
			return err
		}
	}
	return nil
}

// writeTaken writes the given rows of cols, gathered with compute.Take.
func (w *FileWriter) writeTaken(p *partition, cols []arrow.Array, rows []int32) error {
	idx := array.NewInt32Builder(w.mem)
	idx.AppendValues(rows, nil)
	indices := idx.NewArray()
	idx.Release()
	defer indices.Release()
	ctx := compute.WithAllocator(context.Background(), w.mem)
	taken := make([]arrow.Array, len(cols))
	defer func() {
		for _, a := range taken {
			if a != nil {
				a.Release()
			}
		}
	}()
	for _, c := range w.cols {
		a, err := compute.TakeArray(ctx, cols[c.field], indices)
		if err != nil {
			return fmt.Errorf("parquet sink: gather rows of column %q: %w", c.name, err)
		}
		taken[c.field] = a
	}
	return w.writeRange(p, taken, 0, len(rows))
}

func (w *FileWriter) partition(rel string) *partition {
	p := w.parts[rel]
	if p == nil {
		p = &partition{rel: rel}
		w.parts[rel] = p
		w.order = append(w.order, p)
	}
	return p
}

// writeRange writes rows [start, end) of cols (indexed like the Arrow
// schema) into partition p, cutting row groups at RowGroupRows and files at
// about TargetFileBytes.
func (w *FileWriter) writeRange(p *partition, cols []arrow.Array, start, end int) error {
	for start < end {
		if p.f == nil {
			if err := w.open(p); err != nil {
				return err
			}
		}
		f := p.f
		n := min(int64(end-start), w.opts.RowGroupRows-f.groupRows, rowsPerWrite)
		cws := f.pw.ColumnWriters()
		for i := range w.cols {
			c := &w.cols[i]
			if c.nested != nil {
				if err := w.enc.encodeNested(c, cols[c.field], start, start+int(n)); err != nil {
					return w.fileErr(f, "column "+c.name, err)
				}
				for _, l := range c.nested.leaves {
					if _, err := cws[l].WriteRowValues(w.enc.leaves[l]); err != nil {
						return w.fileErr(f, "write column "+c.name, err)
					}
				}
				continue
			}
			vals, err := w.enc.encode(c, cols[c.field], start, start+int(n))
			if err != nil {
				return w.fileErr(f, "column "+c.name, err)
			}
			if _, err := cws[c.leaf].WriteRowValues(vals); err != nil {
				return w.fileErr(f, "write column "+c.name, err)
			}
		}
		start += int(n)
		f.rows += n
		f.groupRows += n
		if f.groupRows >= w.opts.RowGroupRows {
			if err := f.pw.Flush(); err != nil {
				return w.fileErr(f, "flush row group", err)
			}
			f.groupRows = 0
		}
		if f.pw.Size() >= w.opts.TargetFileBytes {
			if err := w.finish(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *FileWriter) fileErr(f *openFile, what string, err error) error {
	return fmt.Errorf("parquet sink: %s: %s: %w", f.path, what, err)
}

func (w *FileWriter) open(p *partition) error {
	dir := filepath.Join(w.dir, p.rel)
	if p.rel != "" {
		if err := w.mkdirs(p.rel); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("%s-%05d.parquet", w.prefix, p.next)
	p.next++
	path := filepath.Join(dir, name)
	if w.inProgress != nil {
		path = filepath.Join(dir, w.inProgress(name))
	}
	file, err := w.create(path)
	if err != nil {
		return fmt.Errorf("parquet sink: create %s: %w", path, err)
	}
	w.created = append(w.created, path)
	buf := bufio.NewWriterSize(file, 1<<20)
	p.f = &openFile{
		rel:  filepath.Join(p.rel, name),
		path: path,
		file: file,
		buf:  buf,
		pw:   pq.NewWriter(buf, w.pqOpts...), // options were validated in NewFileWriter
	}
	return nil
}

// mkdirs creates a partition directory under dir, remembering the
// levels it made so Abort can remove them.
func (w *FileWriter) mkdirs(rel string) error {
	made, err := mkdirsIn(w.dir, rel)
	w.dirs = append(w.dirs, made...)
	if err != nil {
		return fmt.Errorf("parquet sink: %w", err)
	}
	return nil
}

// finish closes p's open file: footer, buffer flush, fsync, close.
func (w *FileWriter) finish(p *partition) error {
	f := p.f
	p.f = nil
	if err := f.pw.Close(); err != nil {
		f.file.Close()
		return w.fileErr(f, "write footer", err)
	}
	if err := f.buf.Flush(); err != nil {
		f.file.Close()
		return w.fileErr(f, "write", err)
	}
	if err := f.file.Sync(); err != nil {
		f.file.Close()
		return w.fileErr(f, "fsync", err)
	}
	fi, err := f.file.Stat()
	if err != nil {
		f.file.Close()
		return w.fileErr(f, "stat", err)
	}
	if err := f.file.Close(); err != nil {
		return w.fileErr(f, "close", err)
	}
	w.done = append(w.done, WrittenFile{Path: f.rel, Rows: f.rows, Bytes: fi.Size()})
	return nil
}

// Close finishes and fsyncs every open file and the directories holding
// them, and returns all files written, in the order they were finished.
// It is idempotent: later calls return the same result. After a write
// error Close releases the files and returns that error; call Abort to
// remove them.
func (w *FileWriter) Close() ([]WrittenFile, error) {
	if w.closed {
		return w.done, w.closeErr
	}
	w.closed = true
	var errs []error
	if w.err != nil {
		errs = append(errs, w.err)
		for _, p := range w.order {
			if p.f != nil {
				p.f.file.Close()
				p.f = nil
			}
		}
	}
	for _, p := range w.order {
		if p.f != nil {
			if err := w.finish(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		for _, p := range w.order {
			if err := syncDir(filepath.Join(w.dir, p.rel)); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	w.closeErr = errors.Join(errs...)
	return w.done, w.closeErr
}

// Abort closes every open file and removes every file and partition
// directory this writer created. dir itself is left in place.
func (w *FileWriter) Abort() error {
	w.closed = true
	if w.closeErr == nil {
		w.closeErr = ErrClosed
	}
	for _, p := range w.order {
		if p.f != nil {
			p.f.file.Close()
			p.f = nil
		}
	}
	var errs []error
	for i := len(w.created) - 1; i >= 0; i-- {
		if err := os.Remove(w.created[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("parquet sink: abort: %w", err))
		}
	}
	// A partition directory may also hold another task's files: remove only
	// the ones left empty.
	for i := len(w.dirs) - 1; i >= 0; i-- {
		os.Remove(w.dirs[i])
	}
	w.created, w.dirs, w.done = nil, nil, nil
	return errors.Join(errs...)
}
