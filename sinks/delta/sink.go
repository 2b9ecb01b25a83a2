package delta

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/parquet"
)

var (
	// ErrInvalidConfig: a Config field is missing or wrong.
	ErrInvalidConfig = errors.New("delta sink: invalid config")
	// ErrTableMismatch: the existing table's schema, partition columns or
	// protocol do not fit what the sink writes.
	ErrTableMismatch = errors.New("delta sink: table does not match")
)

// maxCommitAttempts bounds how often Commit re-reads the log after losing
// a version to another writer.
const maxCommitAttempts = 10

// Config configures a Sink.
type Config struct {
	Dir string // the table directory (local or a shared mount); created if missing
	// AppID is the txn appId of every commit: stable across restarts of
	// one query, distinct between queries writing the same table. Empty
	// (the default): the writing query's id (sinks.Batch.Query, its
	// checkpoint's query id), as Spark's Delta sink does, so a new
	// checkpoint is a new appId; a batch job then needs an AppID. A set
	// AppID under a new checkpoint restarts batch ids at 0: a writer of a
	// batch older than the table's last batch of AppID is refused rather
	// than skipped.
	AppID           string
	Options         parquet.Options  // file shape: compression, row groups, file size, PartitionBy
	Mem             memory.Allocator // scratch of the writers; default the Go allocator
	CheckpointEvery int              // log versions between checkpoints; default 10
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: needs a Dir", ErrInvalidConfig)
	case vfs.IsURL(c.Dir):
		return fmt.Errorf("%w: Dir %q: object storage tables are not written yet; use a local or shared path", ErrInvalidConfig, c.Dir)
	case c.CheckpointEvery < 0:
		return fmt.Errorf("%w: CheckpointEvery %d < 0", ErrInvalidConfig, c.CheckpointEvery)
	}
	return c.Options.Validate()
}

// Sink writes a Delta table in append mode.
type Sink struct {
	dir   string
	app   string // Config.AppID; "" takes each batch's query id
	opts  parquet.Options
	mem   memory.Allocator
	every int64
	table *delta.Table

	mu   sync.Mutex
	snap *delta.Snapshot // last read; nil before the table's first version
}

var _ sinks.Sink = (*Sink)(nil)

// New makes Dir and returns the sink; the table is created by the first
// Commit (or appended to, if Dir holds one).
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mem == nil {
		cfg.Mem = memory.NewGoAllocator()
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = 10
	}
	dir := filepath.Clean(cfg.Dir)
	// The log dir from the start: a reader then takes the directory for a
	// Delta table (with no version yet) and never lists files of batches
	// that are not committed.
	if err := os.MkdirAll(filepath.Join(dir, delta.LogDir), 0o755); err != nil {
		return nil, fmt.Errorf("delta sink: create table dir: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return &Sink{
		dir: dir, app: cfg.AppID, opts: cfg.Options, mem: cfg.Mem,
		every: int64(cfg.CheckpointEvery), table: delta.Open(vfs.OS{}, dir),
	}, nil
}

func (s *Sink) Name() string { return "delta:" + s.dir }

// Dir returns the table directory.
func (s *Sink) Dir() string { return s.dir }

// latest returns the table's newest snapshot, or nil if it has no version.
func (s *Sink) latest() (*delta.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var snap *delta.Snapshot
	var err error
	if s.snap == nil {
		snap, err = s.table.Latest()
		if errors.Is(err, delta.ErrNoTable) {
			return nil, nil
		}
	} else {
		snap, err = s.table.Update(s.snap)
	}
	if err != nil {
		return nil, fmt.Errorf("delta sink: %w", err)
	}
	s.snap = snap
	return snap, nil
}

// Check accepts Append with a schema Delta can hold and, when the table
// exists, the table's own schema and partition columns.
func (s *Sink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	if mode != sinks.Append {
		return fmt.Errorf("delta sink: mode %q is not supported: this sink only appends (no MERGE yet); use append mode", mode)
	}
	if schema == nil {
		return fmt.Errorf("%w: needs a schema", ErrInvalidConfig)
	}
	ss, err := delta.SchemaString(schema)
	if err != nil {
		return fmt.Errorf("delta sink: table %s: %w", s.dir, err)
	}
	part := 0
	for _, c := range s.opts.PartitionBy {
		if len(schema.FieldIndices(c)) != 1 {
			return fmt.Errorf("%w: PartitionBy column %q is not (once) in the schema %s", ErrInvalidConfig, c, schema)
		}
		part++
	}
	if part == schema.NumFields() {
		return fmt.Errorf("%w: every column is a partition column", ErrInvalidConfig)
	}
	snap, err := s.latest()
	if err != nil || snap == nil {
		return err
	}
	return s.fits(snap, ss)
}

// fits reports why the table of snap cannot take this sink's appends.
func (s *Sink) fits(snap *delta.Snapshot, schemaString string) error {
	if err := delta.CheckWrite(snap.Protocol); err != nil {
		return fmt.Errorf("delta sink: table %s version %d: %w", s.dir, snap.Version, err)
	}
	diff, err := delta.SameSchema(snap.Metadata.SchemaString, schemaString)
	if err != nil {
		return fmt.Errorf("delta sink: table %s version %d: %w", s.dir, snap.Version, err)
	}
	if diff != "" {
		return fmt.Errorf("%w: table %s version %d has schema %s vs the query's", ErrTableMismatch, s.dir, snap.Version, diff)
	}
	if !slices.Equal(snap.Metadata.PartitionColumns, s.opts.PartitionBy) {
		return fmt.Errorf("%w: table %s version %d is partitioned by %q, the sink by %q", ErrTableMismatch, s.dir, snap.Version, snap.Metadata.PartitionColumns, s.opts.PartitionBy)
	}
	return nil
}

// appOf is the txn appId of batch b: Config.AppID, else the query's id.
func (s *Sink) appOf(b sinks.Batch) (string, error) {
	switch {
	case s.app != "":
		return s.app, nil
	case b.Query != "":
		return b.Query, nil
	}
	return "", fmt.Errorf("%w: table %s batch %d: no AppID and no query id (a batch job writing a Delta table needs Config.AppID)", ErrInvalidConfig, s.dir, b.ID)
}

// filePrefix is the name prefix of every file app writes for batch: a
// mark of app, so files of other apps are never touched.
func filePrefix(app string, batch int64) string {
	h := sha256.Sum256([]byte(app))
	return "part-" + hex.EncodeToString(h[:4]) + "-" + strconv.FormatInt(batch, 10) + "-"
}

// message is a task's commit message: the files it wrote.
type message struct {
	Batch int64  `json:"batch"`
	Task  int    `json:"task"`
	Files []file `json:"files"`
}

type file struct {
	Path  string `json:"path"` // relative to the table, slash-separated, as on disk
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// NewWriter returns the writer of one task of batch b; a writer of a
// committed batch writes nothing (invariant 2).
func (s *Sink) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	if b.ID < 0 || task < 0 {
		return nil, fmt.Errorf("%w: batch %d, task %d: ids must be >= 0", ErrInvalidConfig, b.ID, task)
	}
	if err := s.Check(b.Mode, b.Schema); err != nil {
		return nil, err
	}
	app, err := s.appOf(b)
	if err != nil {
		return nil, err
	}
	w := &writer{msg: message{Batch: b.ID, Task: task, Files: []file{}}, schema: b.Schema}
	snap, err := s.latest()
	if err != nil {
		return nil, err
	}
	if snap != nil && snap.TxnVersion(app) > b.ID {
		// The driver runs batch b only after commits/<b-1>, and the sink
		// holds at most b then; more means the checkpoint is newer than
		// the table's record of this AppID: every batch up to that version
		// would be dropped as "committed". (Commit stays a no-op for old
		// batches, as the contract asks; tasks come first.)
		return nil, fmt.Errorf("%w: table %s version %d already holds batch %d of AppID %q, and the query is writing batch %d: its checkpoint is new (or older than the table); give the query a new AppID, or resume from the checkpoint that wrote the table",
			ErrTableMismatch, s.dir, snap.Version, snap.TxnVersion(app), app, b.ID)
	}
	if snap != nil && snap.TxnVersion(app) == b.ID {
		return w, nil
	}
	// A random attempt mark: a re-run of the batch never reuses a name a
	// reader of an older snapshot might be reading.
	var r [4]byte
	rand.Read(r[:])
	prefix := filePrefix(app, b.ID) + strconv.Itoa(task) + "-" + hex.EncodeToString(r[:])
	stored, cast := storedSchema(b.Schema)
	fw, err := parquet.NewFileWriter(s.mem, s.dir, prefix, stored, s.opts)
	if err != nil {
		return nil, fmt.Errorf("delta sink: table %s batch %d: %w", s.dir, b.ID, err)
	}
	w.fw, w.stored, w.cast, w.mem = fw, stored, cast, s.mem
	return w, nil
}

// storedSchema is schema with second and millisecond timestamps widened to
// microseconds, Delta's timestamp (readers expect TIMESTAMP_MICROS), and
// the indexes of the columns that changed.
func storedSchema(schema *arrow.Schema) (*arrow.Schema, []int) {
	var cast []int
	fields := schema.Fields()
	for i, f := range fields {
		if t, ok := f.Type.(*arrow.TimestampType); ok && t.Unit != arrow.Microsecond {
			fields[i].Type = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: t.TimeZone}
			cast = append(cast, i)
		}
	}
	if cast == nil {
		return schema, nil
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md), cast
}

func (s *Sink) decode(b sinks.Batch, app string, msgs []sinks.CommitMessage) ([]file, error) {
	var files []file
	prefix := filePrefix(app, b.ID)
	for _, raw := range msgs {
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("delta sink: table %s batch %d: bad commit message %q: %w", s.dir, b.ID, raw, err)
		}
		if m.Batch != b.ID {
			return nil, fmt.Errorf("delta sink: table %s batch %d: commit message of batch %d", s.dir, b.ID, m.Batch)
		}
		for _, f := range m.Files {
			if !strings.HasPrefix(pathBase(f.Path), prefix) || strings.Contains(f.Path, "..") {
				return nil, fmt.Errorf("delta sink: table %s batch %d: file %q is not one of its files", s.dir, b.ID, f.Path)
			}
			files = append(files, f)
		}
	}
	return files, nil
}

func pathBase(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// Commit adds the batch's files to the table in one log version carrying
// txn(AppID, batch); a no-op for a committed batch. See the package doc.
func (s *Sink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	app, err := s.appOf(b)
	if err != nil {
		return err
	}
	files, err := s.decode(b, app, msgs)
	if err != nil {
		return err
	}
	snap, err := s.latest()
	if err != nil {
		return err
	}
	if snap != nil && snap.TxnVersion(app) >= b.ID {
		return s.removeOrphans(snap, files)
	}
	adds, err := s.adds(files)
	if err != nil {
		return fmt.Errorf("delta sink: table %s batch %d: %w", s.dir, b.ID, err)
	}
	schemaString, err := delta.SchemaString(b.Schema)
	if err != nil {
		return fmt.Errorf("delta sink: table %s batch %d: %w", s.dir, b.ID, err)
	}
	now := time.Now().UnixMilli()
	for attempt := 1; ; attempt++ {
		var acts []delta.Action
		v := int64(0)
		if snap == nil {
			acts = s.create(schemaString, now)
		} else {
			if err := s.fits(snap, schemaString); err != nil {
				return err
			}
			v = snap.Version + 1
		}
		acts = append(acts, adds...)
		acts = append(acts,
			delta.Action{Txn: &delta.Txn{AppID: app, Version: b.ID, LastUpdated: &now}},
			delta.Action{CommitInfo: map[string]any{
				"timestamp": now, "operation": "STREAMING UPDATE", "engineInfo": "sluice", "isBlindAppend": true,
				"operationParameters": map[string]any{"outputMode": "Append", "queryId": app, "epochId": strconv.FormatInt(b.ID, 10)},
			}})
		err := s.table.Commit(v, acts)
		if err == nil {
			return s.committed(b, v)
		}
		if !errors.Is(err, delta.ErrConflict) || attempt == maxCommitAttempts {
			return fmt.Errorf("delta sink: batch %d: %w", b.ID, err)
		}
		if snap, err = s.latest(); err != nil {
			return err
		}
		if snap != nil && snap.TxnVersion(app) >= b.ID {
			return s.removeOrphans(snap, files)
		}
	}
}

// committed caches the new snapshot and writes a checkpoint when due. A
// failed checkpoint fails the Commit although the batch is in the table:
// the re-run finds it committed, and the next checkpoint is tried again.
func (s *Sink) committed(b sinks.Batch, v int64) error {
	snap, err := s.latest()
	if err != nil {
		return err
	}
	if v > 0 && v%s.every == 0 && snap.Version == v {
		if err := s.table.WriteCheckpoint(snap); err != nil {
			return fmt.Errorf("delta sink: batch %d committed as version %d, but its checkpoint failed: %w", b.ID, v, err)
		}
	}
	return nil
}

// create is the first version's protocol and metaData.
func (s *Sink) create(schemaString string, now int64) []delta.Action {
	var id [16]byte
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	h := hex.EncodeToString(id[:])
	uuid := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	part := s.opts.PartitionBy
	if part == nil {
		part = []string{}
	}
	return []delta.Action{
		{Protocol: &delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &delta.Metadata{ID: uuid, Format: delta.Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString: schemaString, PartitionColumns: part, Configuration: map[string]string{}, CreatedTime: &now}},
	}
}

// adds fsyncs the directories of files and returns their add actions.
func (s *Sink) adds(files []file) ([]delta.Action, error) {
	// Files were fsynced by their writers, and their directories; the
	// partition directories' own entries in their parents were not.
	dirs := map[string]bool{s.dir: true}
	acts := make([]delta.Action, 0, len(files))
	for _, f := range files {
		p := filepath.Join(s.dir, filepath.FromSlash(f.Path))
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		for d := filepath.Dir(p); d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
			dirs[d] = true
		}
		pv, err := s.partitionValues(f.Path)
		if err != nil {
			return nil, err
		}
		acts = append(acts, delta.Action{Add: &delta.Add{
			Path: escapeURIPath(f.Path), PartitionValues: pv, Size: st.Size(), ModificationTime: st.ModTime().UnixMilli(),
			DataChange: true, Stats: fmt.Sprintf(`{"numRecords":%d}`, f.Rows),
		}})
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	return acts, nil
}

// partitionValues reads the Hive directories of a file the FileWriter
// wrote back into Delta partition values (null for the default partition,
// which FileWriter also writes for empty strings, as Spark does).
func (s *Sink) partitionValues(rel string) (map[string]*string, error) {
	pv := map[string]*string{}
	segs := strings.Split(rel, "/")
	segs = segs[:len(segs)-1]
	if len(segs) != len(s.opts.PartitionBy) {
		return nil, fmt.Errorf("file %s: %d partition directories, want %d (%q)", rel, len(segs), len(s.opts.PartitionBy), s.opts.PartitionBy)
	}
	for i, seg := range segs {
		k, v, ok := strings.Cut(seg, "=")
		if !ok || unescapeHive(k) != s.opts.PartitionBy[i] {
			return nil, fmt.Errorf("file %s: directory %q is not partition column %q", rel, seg, s.opts.PartitionBy[i])
		}
		if v == hiveNull {
			pv[s.opts.PartitionBy[i]] = nil
			continue
		}
		val := unescapeHive(v)
		pv[s.opts.PartitionBy[i]] = &val
	}
	return pv, nil
}

const hiveNull = "__HIVE_DEFAULT_PARTITION__"

func unescapeHive(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escapeURIPath makes a relative file path the URI Delta's add.path holds:
// every segment percent-encoded (so a Hive-escaped "%3A" becomes "%253A").
func escapeURIPath(rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// removeOrphans deletes files of a batch found committed by another
// attempt: they are in no version, so only this attempt knows them.
func (s *Sink) removeOrphans(snap *delta.Snapshot, files []file) error {
	var errs []error
	for _, f := range files {
		if _, live := snap.Files[escapeURIPath(f.Path)]; live {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, filepath.FromSlash(f.Path))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delta sink: table %s: remove files of a batch committed by another attempt: %w", s.dir, errors.Join(errs...))
	}
	return nil
}

// Abort removes every file of batch b of this AppID unless the batch is
// committed, then the partition directories that became empty.
func (s *Sink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	app, err := s.appOf(b)
	if err != nil {
		return err
	}
	snap, err := s.latest()
	if err != nil {
		return fmt.Errorf("delta sink: abort batch %d: %w", b.ID, err)
	}
	if snap != nil && snap.TxnVersion(app) >= b.ID {
		return nil
	}
	prefix := filePrefix(app, b.ID)
	err = parquet.RemoveFiles(s.dir, func(name string) bool {
		return strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".parquet")
	})
	if err != nil {
		return fmt.Errorf("delta sink: table %s: abort batch %d: %w", s.dir, b.ID, err)
	}
	return nil
}

type writer struct {
	fw       *parquet.FileWriter // nil: the batch is committed, discard
	schema   *arrow.Schema
	stored   *arrow.Schema // schema as the files store it
	cast     []int         // columns converted from schema to stored
	mem      memory.Allocator
	msg      message
	prepared bool
}

func (w *writer) Write(rec arrow.Record) error {
	if w.fw == nil || len(w.cast) > 0 {
		if w.schema != nil && !rec.Schema().Equal(w.schema) {
			return fmt.Errorf("%w: got %s", parquet.ErrSchemaMismatch, rec.Schema())
		}
	}
	if w.fw == nil {
		return nil
	}
	if len(w.cast) == 0 {
		return w.fw.Write(rec)
	}
	cols := slices.Clone(rec.Columns())
	ctx := compute.WithAllocator(context.Background(), w.mem)
	for _, i := range w.cast {
		c, err := compute.CastArray(ctx, cols[i], compute.SafeCastOptions(w.stored.Field(i).Type))
		if err != nil {
			return fmt.Errorf("delta sink: column %q to %s: %w", w.stored.Field(i).Name, w.stored.Field(i).Type, err)
		}
		defer c.Release()
		cols[i] = c
	}
	out := array.NewRecord(w.stored, cols, rec.NumRows())
	defer out.Release()
	return w.fw.Write(out)
}

func (w *writer) Prepare() (sinks.CommitMessage, error) {
	if w.fw != nil && !w.prepared {
		files, err := w.fw.Close()
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			w.msg.Files = append(w.msg.Files, file{Path: filepath.ToSlash(f.Path), Rows: f.Rows, Bytes: f.Bytes})
		}
	}
	w.prepared = true
	return json.Marshal(w.msg)
}

// Abort removes the task's files; after Prepare it is a no-op (the files
// belong to the batch: Sink.Abort removes them).
func (w *writer) Abort() error {
	if w.prepared || w.fw == nil {
		return nil
	}
	return w.fw.Abort()
}

// syncDir fsyncs a directory so the names it holds survive a crash.
func syncDir(dir string) error {
	if err := (vfs.OS{}).SyncDir(dir); err != nil {
		return fmt.Errorf("delta sink: fsync dir %s: %w", dir, err)
	}
	return nil
}
