package parquet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

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
// into Dir under hidden in-progress names
// (.part-<batch>-<task>-<n>.parquet.<nonce>.inprogress), and the driver's
// Commit renames them to part-<batch>-<task>-<n>.parquet and records them in
// Dir/_sluice_log (internal/manifest). Readers that honour the log
// (sources/parquet) see only committed batches; readers that do not (pyarrow,
// DuckDB, Spark) skip names starting with "." and so never meet a file still
// being written. See the "Streaming sink" section of format.md for why the
// rename is the driver's.
//
// Invariants:
//  1. A batch is visible exactly when its log entry exists (or a checkpoint
//     covers it); Commit renames every file to its final name, fsyncs the
//     directories, and only then writes the entry atomically; it is a no-op
//     for a committed batch.
//  2. A name without a leading "." is only ever a whole, fsynced Parquet
//     file: bytes are written under the in-progress name, fsynced, and
//     renamed by Commit. A crash leaves at worst whole files of the batch
//     being committed under final names, which its re-run replaces.
//  3. A writer of an already committed batch writes nothing, so a re-run
//     never touches files readers may be reading. Final names are
//     deterministic (batch, task, counter); only in-progress names carry a
//     per-writer nonce, so two attempts of a task never write one file.
//  4. Abort removes every file of an uncommitted batch (in-progress and
//     final names, any run's, found by name) and is a no-op once committed.
//     Before the entry, Commit removes the batch's files its messages do not
//     name (left by a crashed run): the first Commit of a StreamSink walks
//     the table (also removing earlier batches' in-progress files), a later
//     one lists the batch's directories when a final name was already there.
//  5. Write does not retain records.
type StreamSink struct {
	dir  string
	opts Options
	mem  memory.Allocator
	log  *manifest.Log

	// swept: this instance's first Commit has walked the table for what
	// crashed runs left (sweepTable).
	swept atomic.Bool
}

var _ sinks.Sink = (*StreamSink)(nil)

// streamMessage is a task's commit message: the files it wrote.
type streamMessage struct {
	Batch int64           `json:"batch"`
	Task  int             `json:"task"`
	Nonce string          `json:"nonce,omitempty"` // of the in-progress names
	Files []manifest.File `json:"files"`           // final names
}

// inProgressSuffix ends every in-progress name, so globs for *.parquet
// (DuckDB's read_parquet('dir/**/*.parquet')) skip them too.
const inProgressSuffix = ".inprogress"

// inProgressName is the hidden name the file finally called name is written
// under by the writer with nonce.
func inProgressName(name, nonce string) string {
	return "." + name + "." + nonce + inProgressSuffix
}

// isBatchFile reports whether name is a data file of batch, under its
// final name or an in-progress one.
func isBatchFile(name string, batch int64) (final, inProgress bool) {
	prefix := filePrefix(batch)
	switch {
	case strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".parquet"):
		return true, false
	case strings.HasPrefix(name, "."+prefix) && strings.HasSuffix(name, inProgressSuffix):
		return false, true
	}
	return false, false
}

func newNonce() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("parquet sink: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
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
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	w.msg.Nonce = nonce
	fw.inProgress = func(name string) string { return inProgressName(name, nonce) }
	w.fw = fw
	return w, nil
}

// stagedFile is one file of a batch's commit messages: its final path
// (relative, slash-separated, as logged) and the nonce of its in-progress name.
type stagedFile struct {
	manifest.File
	nonce string
}

func (s *StreamSink) decode(b sinks.Batch, msgs []sinks.CommitMessage) ([]stagedFile, error) {
	var files []stagedFile
	for _, raw := range msgs {
		var m streamMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("parquet sink: batch %d: bad commit message %q: %w", b.ID, raw, err)
		}
		if m.Batch != b.ID {
			return nil, fmt.Errorf("parquet sink: batch %d: commit message of batch %d", b.ID, m.Batch)
		}
		if len(m.Files) > 0 && (m.Nonce == "" || strings.ContainsAny(m.Nonce, `/\.`)) {
			return nil, fmt.Errorf("parquet sink: batch %d: commit message of task %d has bad nonce %q", b.ID, m.Task, m.Nonce)
		}
		for _, f := range m.Files {
			if final, _ := isBatchFile(filepath.Base(filepath.FromSlash(f.Path)), b.ID); !final {
				return nil, fmt.Errorf("parquet sink: batch %d: file %q is not one of its files", b.ID, f.Path)
			}
			files = append(files, stagedFile{File: f, nonce: m.Nonce})
		}
	}
	return files, nil
}

// Commit renames the batch's in-progress files to their final names and
// records them in the log; a no-op if the batch is recorded. Renames come
// before the entry: a crash between them leaves whole files under final
// names that no log lists, which the batch's re-run renames over (final
// names are deterministic) or removes (sweep).
func (s *StreamSink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	committed, err := s.log.Committed(b.ID)
	if err != nil {
		return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
	}
	if committed {
		return nil
	}
	staged, err := s.decode(b, msgs)
	if err != nil {
		return err
	}
	files := make([]manifest.File, len(staged))
	names := map[string]bool{} // final paths of this commit
	dirs := map[string]bool{s.dir: true}
	renamedBefore := false // a crashed Commit of this batch renamed files already
	for i, f := range staged {
		files[i] = f.File
		p := filepath.Join(s.dir, filepath.FromSlash(f.Path))
		names[p] = true
		if _, err := os.Lstat(p); err == nil {
			renamedBefore = true
		}
		if err := publish(p, f); err != nil {
			return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
		}
		// Renames and the partition directories' own entries in their
		// parents must be durable before the entry names them.
		for d := filepath.Dir(p); d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	// Leftovers are looked for where they can be, not at every commit: a
	// listing costs about 0.1 s per 100 000 names in a directory.
	switch {
	case !s.swept.Load():
		if err := s.sweepTable(b.ID, names); err != nil {
			return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err) // swept stays false: the next Commit walks again
		}
		s.swept.Store(true) // Commits run one at a time (the driver's)
	case renamedBefore:
		for d := range dirs {
			if err := sweep(d, b.ID, names); err != nil {
				return fmt.Errorf("parquet sink: commit batch %d: %w", b.ID, err)
			}
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

// publish renames f's in-progress file to p. If it is gone and p holds a
// file of f's size, an earlier call of this Commit renamed it already.
func publish(p string, f stagedFile) error {
	tmp := filepath.Join(filepath.Dir(p), inProgressName(filepath.Base(p), f.nonce))
	err := os.Rename(tmp, p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fi, serr := os.Stat(p)
	if serr != nil || fi.Size() != f.Bytes {
		return fmt.Errorf("%s: in-progress file %s is missing: %w", p, tmp, err)
	}
	return nil
}

// sweep removes from dir the files of batch that keep is missing: final
// names a crashed Commit renamed and the re-run did not write again, and
// in-progress files of crashed runs and of attempts whose messages lost.
// The batch is not committed yet, so no reader of the log reads them.
func sweep(dir string, batch int64, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		final, inProgress := isBatchFile(e.Name(), batch)
		p := filepath.Join(dir, e.Name())
		if e.IsDir() || !(final || inProgress) || keep[p] {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// sweepTable is the first Commit's sweep of the whole table, after a
// restart: besides sweep's files of batch (in every directory), it removes
// the in-progress files of earlier batches, which crashed runs and losing
// task attempts left (the driver commits batches in order, so every earlier
// batch is committed and none of its files is still being written).
func (s *StreamSink) sweepTable(batch int64, keep map[string]bool) error {
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != s.dir && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		final, inProgress := isBatchFile(name, batch)
		if !final && !inProgress {
			b, ok := inProgressBatch(name)
			inProgress = ok && b < batch
		}
		if !(final || inProgress) || keep[path] {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// inProgressBatch is the batch of an in-progress name.
func inProgressBatch(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, ".part-")
	if !ok || !strings.HasSuffix(name, inProgressSuffix) {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	b, err := strconv.ParseInt(digits, 10, 64)
	return b, err == nil
}

// Abort removes every file of batch b unless it is committed: those its
// messages name and those an earlier run left (found by name, in-progress or
// final), then the partition directories that became empty.
func (s *StreamSink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	committed, err := s.log.Committed(b.ID)
	if err != nil {
		return fmt.Errorf("parquet sink: abort batch %d: %w", b.ID, err)
	}
	if committed {
		return nil
	}
	err = RemoveFiles(s.dir, func(name string) bool {
		final, inProgress := isBatchFile(name, b.ID)
		return final || inProgress
	})
	if err != nil {
		return fmt.Errorf("parquet sink: abort batch %d: %w", b.ID, err)
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
