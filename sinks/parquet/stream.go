package parquet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/manifest"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sinks"
)

// StreamConfig configures a StreamSink.
type StreamConfig struct {
	Dir             string           // the table directory; created if missing
	Options         Options          // file shape: compression, row groups, file size, PartitionBy
	Mem             memory.Allocator // scratch of the writers; default the Go allocator
	CheckpointEvery int              // log entries between checkpoints; default 10
}

// Validate reports the first invalid field.
func (c StreamConfig) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: stream sink needs a Dir", ErrInvalidOptions)
	}
	if c.CheckpointEvery < 0 {
		return fmt.Errorf("%w: CheckpointEvery %d < 0", ErrInvalidOptions, c.CheckpointEvery)
	}
	return c.Options.Validate()
}

// StreamSink is the streaming Parquet sink (append mode): tasks write files
// straight into Dir, named part-<batch>-<task>-<n>.parquet, and the driver's
// Commit records them in Dir/_sluice_log (internal/manifest). Readers that
// honour the log (sources/parquet) see only committed batches; see the
// "Streaming sink" section of format.md.
//
// Invariants:
//  1. A batch is visible exactly when its log entry exists (or a checkpoint
//     covers it); Commit writes the entry atomically after fsyncing every
//     file and directory it names, and is a no-op for a committed batch.
//  2. A writer of an already committed batch writes nothing, so a re-run
//     never touches files readers may be reading; a writer of an
//     uncommitted batch replaces same-named files an earlier run left.
//  3. Abort removes every file of an uncommitted batch (its messages' and
//     any a crashed run left, found by name) and is a no-op once committed.
//  4. Write does not retain records.
type StreamSink struct {
	dir  string
	opts Options
	mem  memory.Allocator
	log  *manifest.Log
}

var _ sinks.Sink = (*StreamSink)(nil)

// streamMessage is a task's commit message: the files it wrote.
type streamMessage struct {
	Batch int64           `json:"batch"`
	Task  int             `json:"task"`
	Files []manifest.File `json:"files"`
}

// NewStream makes Dir and its log directory (so readers honour the log from
// the start, before any commit) and returns the sink.
func NewStream(cfg StreamConfig) (*StreamSink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mem == nil {
		cfg.Mem = memory.NewGoAllocator()
	}
	dir := filepath.Clean(cfg.Dir)
	if err := os.MkdirAll(filepath.Join(dir, manifest.LogDir), 0o755); err != nil {
		return nil, fmt.Errorf("parquet sink: create log dir: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	return &StreamSink{
		dir: dir, opts: cfg.Options, mem: cfg.Mem,
		log: manifest.Open(vfs.OS{}, dir, cfg.CheckpointEvery),
	}, nil
}

func (s *StreamSink) Name() string { return "parquet:" + s.dir }

// Dir returns the table directory.
func (s *StreamSink) Dir() string { return s.dir }

// Check accepts Append with a schema the file writer can store.
func (s *StreamSink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	if mode != sinks.Append {
		return fmt.Errorf("parquet sink: mode %q is not supported: Parquet files are immutable, so the stream sink only appends; use append mode (or a sink that upserts)", mode)
	}
	if schema == nil {
		return fmt.Errorf("%w: stream sink needs a schema", ErrInvalidOptions)
	}
	_, isPart, err := partitionColumns(schema, s.opts.PartitionBy)
	if err != nil {
		return err
	}
	_, cols, err := fileSchema(schema, isPart)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return fmt.Errorf("%w: every column is a partition column", ErrInvalidOptions)
	}
	return nil
}

// filePrefix is the name prefix of every file of batch (and task, if >= 0).
func filePrefix(batch int64) string { return "part-" + strconv.FormatInt(batch, 10) + "-" }

// NewWriter returns the writer of one task of batch b.
func (s *StreamSink) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	if b.ID < 0 || task < 0 {
		return nil, fmt.Errorf("%w: batch %d, task %d: ids must be >= 0", ErrInvalidOptions, b.ID, task)
	}
	if err := s.Check(b.Mode, b.Schema); err != nil {
		return nil, err
	}
	w := &streamWriter{msg: streamMessage{Batch: b.ID, Task: task, Files: []manifest.File{}}, schema: b.Schema}
	committed, err := s.log.Committed(b.ID)
	if err != nil {
		return nil, err
	}
	if committed {
		return w, nil // discards: see invariant 2
	}
	fw, err := NewFileWriter(s.mem, s.dir, filePrefix(b.ID)+strconv.Itoa(task), b.Schema, s.opts)
	if err != nil {
		return nil, err
	}
	fw.create = replaceStale
	w.fw = fw
	return w, nil
}

// replaceStale creates path, replacing a file an earlier, uncommitted run
// of the same batch and task left there.
func replaceStale(path string) (dataFile, error) {
	f, err := createFile(path)
	if errors.Is(err, fs.ErrExist) {
		if err := os.Remove(path); err != nil {
			return nil, err
		}
		return createFile(path)
	}
	return f, err
}

func (s *StreamSink) decode(b sinks.Batch, msgs []sinks.CommitMessage) ([]manifest.File, error) {
	var files []manifest.File
	for _, raw := range msgs {
		var m streamMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("parquet sink: batch %d: bad commit message %q: %w", b.ID, raw, err)
		}
		if m.Batch != b.ID {
			return nil, fmt.Errorf("parquet sink: batch %d: commit message of batch %d", b.ID, m.Batch)
		}
		for _, f := range m.Files {
			if !strings.HasPrefix(filepath.Base(filepath.FromSlash(f.Path)), filePrefix(b.ID)) {
				return nil, fmt.Errorf("parquet sink: batch %d: file %q is not one of its files", b.ID, f.Path)
			}
			files = append(files, f)
		}
	}
	return files, nil
}

// Commit records the batch's files in the log; a no-op if it is recorded.
func (s *StreamSink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	committed, err := s.log.Committed(b.ID)
	if err != nil {
		return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
	}
	if committed {
		return nil
	}
	files, err := s.decode(b, msgs)
	if err != nil {
		return err
	}
	// Files were fsynced by their writers, and their directories; the
	// partition directories' own entries in their parents were not.
	dirs := map[string]bool{s.dir: true}
	for _, f := range files {
		p := filepath.Join(s.dir, filepath.FromSlash(f.Path))
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
		}
		for d := filepath.Dir(p); d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
		}
	}
	if _, err := s.log.Commit(b.ID, files); err != nil {
		return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
	}
	return nil
}

// Abort removes every file of batch b unless it is committed: those its
// messages name and those an earlier run left (found by name), then the
// partition directories that became empty.
func (s *StreamSink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	committed, err := s.log.Committed(b.ID)
	if err != nil {
		return fmt.Errorf("parquet sink: abort batch %d: %w", b.ID, err)
	}
	if committed {
		return nil
	}
	prefix := filePrefix(b.ID)
	var removed []string
	var errs []error
	err = filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		name := d.Name()
		if path != s.dir && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".parquet") {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		removed = append(removed, path)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	// Remove emptied partition directories, deepest first; os.Remove
	// refuses a directory another batch's files still use.
	var dirs []string
	for _, p := range removed {
		for d := filepath.Dir(p); d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		os.Remove(d)
	}
	if len(errs) > 0 {
		return fmt.Errorf("parquet sink: abort batch %d: %w", b.ID, errors.Join(errs...))
	}
	return nil
}

type streamWriter struct {
	fw       *FileWriter // nil: the batch is committed, discard
	schema   *arrow.Schema
	msg      streamMessage
	prepared bool
}

func (w *streamWriter) Write(rec arrow.Record) error {
	if w.fw == nil {
		if w.schema != nil && !rec.Schema().Equal(w.schema) {
			return fmt.Errorf("%w: got %s", ErrSchemaMismatch, rec.Schema())
		}
		return nil
	}
	return w.fw.Write(rec)
}

func (w *streamWriter) Prepare() (sinks.CommitMessage, error) {
	if w.fw != nil && !w.prepared {
		files, err := w.fw.Close()
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			w.msg.Files = append(w.msg.Files, manifest.File{Path: filepath.ToSlash(f.Path), Rows: f.Rows, Bytes: f.Bytes})
		}
	}
	w.prepared = true
	return json.Marshal(w.msg)
}

// Abort removes the task's files; after Prepare it is a no-op (the files
// belong to the batch: Sink.Abort removes them).
func (w *streamWriter) Abort() error {
	if w.prepared || w.fw == nil {
		return nil
	}
	return w.fw.Abort()
}
