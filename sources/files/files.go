package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/parquet"
)

var (
	// ErrCorruptLog: a seen-file log entry that does not parse, fails its
	// checksum or breaks the chain of offsets. Errors name the log file.
	ErrCorruptLog = errors.New("files: corrupt seen-file log")
	// ErrNoSchema: no Config.Schema and no file to infer one from.
	ErrNoSchema = errors.New("files: no schema")
)

// DefaultSettleDelay is how long Latest waits between its two listings.
const DefaultSettleDelay = 100 * time.Millisecond

// Config configures a directory source.
type Config struct {
	// Name identifies the source within a query; default "files".
	Name string
	// Dir is the watched directory (required).
	Dir string
	// Schema the source yields; default: the schema of the first file (in
	// log order, else in arrival order), read when New runs.
	Schema *arrow.Schema
	// MaxFilesPerBatch caps the files one batch takes; 0 = no cap.
	MaxFilesPerBatch int
	// MaxRowsPerBatch caps the rows one batch takes, in whole row groups:
	// a batch takes row groups in log order while they fit (at least one),
	// so a file larger than the cap spans several batches, each reading
	// some of its row groups; 0 = no cap. It bounds a batch's memory as
	// Kafka's maxOffsetsPerTrigger does, where MaxFilesPerBatch cannot: the
	// cost of a batch grows with its rows, not its files. Latest reads the
	// footers of the files it assigns (once each).
	MaxRowsPerBatch int64
	// LogDir holds the seen-file log (required); it belongs in the query's
	// checkpoint, e.g. vfs.Join(<checkpoint>, "sources", <name>). Without
	// FS it may be a URL on object storage (s3://, gs://, azblob://, as a
	// checkpoint; vfs.Open, which reaches the schemes the program linked:
	// blobfs's), the bucket then open for the source's life.
	LogDir string
	// FS writes and reads the log; default vfs.OS{} (or LogDir's bucket).
	FS vfs.FS
	// SettleDelay is the wait between the two listings that prove a new
	// file complete; default DefaultSettleDelay.
	SettleDelay time.Duration
	// BadFiles is what a batch does with a logged file that is not readable
	// Parquet (truncated, corrupt footer) or whose column types conflict
	// with Schema: "fail" (default), "skip" or "quarantine" (moved to
	// QuarantineDir). Skipped and quarantined files are recorded in LogDir
	// before the batch runs, so its re-runs leave out the same files
	// whatever the policy is then; see format.md.
	BadFiles string
	// QuarantineDir receives the files BadFiles "quarantine" moves; required
	// with it, a local directory (on Dir's filesystem the move is a rename).
	QuarantineDir string
	// VerifyFiles reads every page of each file in the driver when its
	// batch is planned, before any task: page-level corruption behind a
	// sound footer is then judged (and, under BadFiles skip or quarantine,
	// recorded) at planning like a bad footer, instead of failing the task
	// that reads it. It costs one more read of every file.
	VerifyFiles bool
	// OffsetsGone is what a batch does when a file it should read was
	// deleted or replaced since it was logged: "fail" (default, naming the
	// file with sources.ErrOffsetGone) or "skip" (Spark's
	// failOnDataLoss=false): the batch goes on without it, and the loss is
	// recorded in LogDir, counted in progress and logged, never silent.
	OffsetsGone string
}

// Validate reports a config New cannot use.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("files: config: Dir is required")
	case c.LogDir == "":
		return errors.New("files: config: LogDir is required (the seen-file log belongs in the checkpoint)")
	case c.MaxFilesPerBatch < 0:
		return fmt.Errorf("files: config: MaxFilesPerBatch %d is negative", c.MaxFilesPerBatch)
	case c.MaxRowsPerBatch < 0:
		return fmt.Errorf("files: config: MaxRowsPerBatch %d is negative", c.MaxRowsPerBatch)
	case c.SettleDelay < 0:
		return fmt.Errorf("files: config: SettleDelay %s is negative", c.SettleDelay)
	}
	switch c.BadFiles {
	case "", BadFilesFail, BadFilesSkip:
	case BadFilesQuarantine:
		if c.QuarantineDir == "" {
			return errors.New("files: config: BadFiles \"quarantine\" needs QuarantineDir")
		}
		if vfs.IsURL(c.QuarantineDir) {
			return fmt.Errorf("files: config: QuarantineDir %q: want a local directory", c.QuarantineDir)
		}
	default:
		return fmt.Errorf("files: config: BadFiles %q: want fail, skip or quarantine", c.BadFiles)
	}
	switch c.OffsetsGone {
	case "", OffsetsGoneFail, OffsetsGoneSkip:
	default:
		return fmt.Errorf("files: config: OffsetsGone %q: want fail or skip", c.OffsetsGone)
	}
	return nil
}

func (c Config) String() string {
	return fmt.Sprintf("files{name=%s dir=%s log_dir=%s max_files_per_batch=%d max_rows_per_batch=%d settle_delay=%s bad_files=%s quarantine_dir=%s verify_files=%t offsets_gone=%s}",
		c.Name, c.Dir, c.LogDir, c.MaxFilesPerBatch, c.MaxRowsPerBatch, c.SettleDelay, c.BadFiles, c.QuarantineDir, c.VerifyFiles, c.OffsetsGone)
}

// Source is a directory of Parquet files read as a stream.
type Source struct {
	cfg    Config
	schema *arrow.Schema
	absDir string // cfg.Dir made absolute when New ran (Identity)
	ownFS  vfs.FS // the log's bucket New opened from a URL LogDir; Close closes it

	mu      sync.Mutex
	log     []logged          // the seen-file log, in offset order
	inLog   map[string]bool   // names in log
	dropped map[int64]dropped // recorded decisions to leave logged files out, by log index
	last    map[string]stat   // the previous listing, to prove files complete
	bounded bool
	// unlogged counts the files the last listing proved complete that
	// MaxFilesPerBatch kept out of the log: part of the backlog.
	unlogged int64
	// groups caches the rows of each row group of logged files, by log
	// index, for MaxRowsPerBatch (nil: the footer did not read; the file
	// is then one unit).
	groups map[int64][]int64

	// betweenListings, when set (by tests), runs between Latest's two
	// listings, standing in for a writer still at work.
	betweenListings func()
}

type stat struct {
	size    int64
	mtimeNs int64
}

var (
	_ sources.Stream  = (*Source)(nil)
	_ sources.Bounder = (*Source)(nil)
	_ sources.Backlog = (*Source)(nil)
	_ sources.Dropper = (*Source)(nil)
)

// New reads the seen-file log in cfg.LogDir and, without cfg.Schema, infers
// the schema from the first file.
func New(cfg Config) (*Source, error) {
	if cfg.Name == "" {
		cfg.Name = "files"
	}
	var opened vfs.FS // the log's bucket, when New opened it
	if cfg.FS == nil && vfs.IsURL(cfg.LogDir) {
		fsys, dir, err := vfs.Open(context.Background(), cfg.LogDir)
		if err != nil {
			return nil, fmt.Errorf("files %q: log: %w", cfg.Name, err)
		}
		cfg.FS, cfg.LogDir, opened = fsys, dir, fsys
		defer func() {
			if opened != nil {
				vfs.CloseFS(opened)
			}
		}()
	}
	if cfg.FS == nil {
		cfg.FS = vfs.OS{}
	}
	if cfg.SettleDelay == 0 {
		cfg.SettleDelay = DefaultSettleDelay
	}
	if cfg.BadFiles == "" {
		cfg.BadFiles = BadFilesFail
	}
	if cfg.OffsetsGone == "" {
		cfg.OffsetsGone = OffsetsGoneFail
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log, err := readLog(cfg.FS, cfg.LogDir)
	if err != nil {
		return nil, fmt.Errorf("files %q: read log: %w", cfg.Name, err)
	}
	names, err := cfg.FS.List(cfg.LogDir)
	if err != nil {
		return nil, fmt.Errorf("files %q: read log: %w", cfg.Name, err)
	}
	drops, err := readDropped(cfg.FS, cfg.LogDir, names, log)
	if err != nil {
		return nil, fmt.Errorf("files %q: read log: %w", cfg.Name, err)
	}
	absDir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("files %q: %w", cfg.Name, err)
	}
	s := &Source{cfg: cfg, schema: cfg.Schema, absDir: absDir, log: log, inLog: map[string]bool{}, dropped: drops}
	for _, f := range log {
		s.inLog[f.Name] = true
	}
	if s.schema == nil {
		if s.schema, err = s.inferSchema(context.Background()); err != nil {
			return nil, err
		}
	}
	s.ownFS, opened = opened, nil
	return s, nil
}

// Close closes the bucket New opened for a LogDir given as a URL (its
// connections); it does nothing otherwise, and the source must not be used
// after it.
func (s *Source) Close() error {
	if s.ownFS == nil {
		return nil
	}
	fsys := s.ownFS
	s.ownFS = nil
	return vfs.CloseFS(fsys)
}

// inferSchema reads the schema of the first logged file still present,
// else of the first candidate in the directory. Under a BadFiles policy
// other than fail, files that do not open are passed over (their batch
// decides and records what to do with them).
func (s *Source) inferSchema(ctx context.Context) (*arrow.Schema, error) {
	var cands []string
	for i, f := range s.log {
		if _, gone := s.dropped[int64(i)]; gone {
			continue
		}
		if _, err := os.Stat(s.path(f.Name)); err == nil {
			cands = append(cands, f.Name)
		}
	}
	listed, err := s.list()
	if err != nil {
		return nil, err
	}
	for _, f := range listed {
		cands = append(cands, f.Name)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("files %q: %w: Config.Schema is unset and %s has no file to infer it from", s.cfg.Name, ErrNoSchema, s.cfg.Dir)
	}
	var errs []error
	for _, name := range cands {
		t, err := parquet.Open(ctx, s.path(name))
		if err == nil {
			return t.Schema, nil
		}
		errs = append(errs, err)
		if s.cfg.BadFiles == BadFilesFail {
			break
		}
	}
	return nil, fmt.Errorf("files %q: infer schema: %w", s.cfg.Name, errors.Join(errs...))
}

func (s *Source) Name() string { return s.cfg.Name }

// Identity is "files dir=<absolute directory>": offsets number the files
// of that directory in the seen-file log's order.
func (s *Source) Identity() string { return "files dir=" + s.absDir }

func (s *Source) Schema() *arrow.Schema { return s.schema }

func (s *Source) Initial(context.Context) (sources.Offset, error) { return pos{}.encode(), nil }

// Latest assigns the files complete now to the next batch (see the package
// documentation) and logs them before returning.
func (s *Source) Latest(ctx context.Context, start sources.Offset) (sources.Offset, error) {
	at, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	n := at.files
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.through() > int64(len(s.log)) {
		return nil, fmt.Errorf("files %q: offset %s is past the %d files in the log %s: %w",
			s.cfg.Name, start, len(s.log), s.cfg.LogDir, sources.ErrBadOffset)
	}
	if n < int64(len(s.log)) {
		return s.capped(ctx, at, int64(len(s.log))).encode(), nil
	}
	if s.bounded {
		return start, nil
	}
	fresh, err := s.complete(ctx)
	if err != nil {
		return nil, err
	}
	s.unlogged = 0
	if m := s.cfg.MaxFilesPerBatch; m > 0 && len(fresh) > m {
		s.unlogged = int64(len(fresh) - m)
		fresh = fresh[:m]
	}
	if err := s.appendLog(fresh); err != nil {
		return nil, err
	}
	return s.capped(ctx, at, int64(len(s.log))).encode(), nil
}

// Backlog counts the files after end: logged for later batches, and those
// the last listing found complete but MaxFilesPerBatch left for later. It
// lists nothing. latest is the offset after all of them (files are counted
// in log order, so it is where the log will end once they are logged).
func (s *Source) Backlog(_ context.Context, end sources.Offset) (sources.Offset, int64, map[string]int64, error) {
	at, err := s.parse(end)
	if err != nil {
		return nil, 0, nil, err
	}
	n := at.files
	s.mu.Lock()
	defer s.mu.Unlock()
	all := int64(len(s.log)) + s.unlogged
	return pos{files: max(all, n)}.encode(), max(all-n, 0), nil, nil
}

// Bound logs every file complete now; later Latest calls never list the
// directory again, so the source ends there (an AvailableNow backfill).
func (s *Source) Bound(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bounded {
		return nil
	}
	fresh, err := s.complete(ctx)
	if err != nil {
		return err
	}
	if err := s.appendLog(fresh); err != nil {
		return err
	}
	s.bounded = true
	return nil
}

// capped returns the end of the batch that starts at at and may take the
// logged files up to end, under MaxFilesPerBatch and MaxRowsPerBatch
// (s.mu held).
func (s *Source) capped(ctx context.Context, at pos, end int64) pos {
	if m := int64(s.cfg.MaxFilesPerBatch); m > 0 && end-at.files > m {
		end = at.files + m // a file begun counts as one
	}
	limit := s.cfg.MaxRowsPerBatch
	if limit <= 0 {
		return pos{files: end}
	}
	var rows int64
	taken := false
	for i := at.files; i < end; i++ {
		g := 0
		if i == at.files {
			g = at.groups
		}
		gs := s.rowGroups(ctx, i)
		g = min(g, len(gs)) // an offset past the file's row groups: Splits says so
		for _, r := range gs[g:] {
			if taken && rows+r > limit {
				return pos{files: i, groups: g}
			}
			rows, taken = rows+r, true
			g++
		}
	}
	return pos{files: end}
}

// rowGroups returns the rows of each row group of logged file i, read from
// its footer once. A file left out, or whose footer does not read or whose
// size changed (judged by Splits, under BadFiles and OffsetsGone), is one
// unit of no rows: a batch takes it whole, with what follows (s.mu held).
func (s *Source) rowGroups(ctx context.Context, i int64) []int64 {
	if g, ok := s.groups[i]; ok {
		return g
	}
	f := s.log[i]
	g := []int64{0}
	if _, done := s.dropped[i]; !done {
		if t, err := parquet.Open(ctx, s.path(f.Name)); err == nil && len(t.Files) == 1 && t.Files[0].Size == f.Size {
			g = t.Files[0].RowGroupRows()
		}
	}
	if s.groups == nil {
		s.groups = map[int64][]int64{}
	}
	s.groups[i] = g
	return g
}

// appendLog makes fresh durable as the next log entry (s.mu held).
func (s *Source) appendLog(fresh []logged) error {
	if len(fresh) == 0 {
		return nil
	}
	if err := writeLog(s.cfg.FS, s.cfg.LogDir, int64(len(s.log)), fresh); err != nil {
		return fmt.Errorf("files %q: write log: %w", s.cfg.Name, err)
	}
	for _, f := range fresh {
		s.log = append(s.log, f)
		s.inLog[f.Name] = true
	}
	return nil
}

// complete lists the directory and returns the new files proven complete,
// in (mtime, name) order (s.mu held).
func (s *Source) complete(ctx context.Context) ([]logged, error) {
	first, err := s.list()
	if err != nil {
		return nil, err
	}
	settled := true
	for _, f := range first {
		if prev, ok := s.last[f.Name]; !ok || prev != (stat{f.Size, f.MtimeNs}) {
			settled = false
			break
		}
	}
	second := first
	if !settled {
		if s.betweenListings != nil {
			s.betweenListings()
		}
		t := time.NewTimer(s.cfg.SettleDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("files %q: wait for files to settle: %w", s.cfg.Name, ctx.Err())
		case <-t.C:
		}
		if second, err = s.list(); err != nil {
			return nil, err
		}
	}
	before := map[string]stat{}
	for _, f := range first {
		before[f.Name] = stat{f.Size, f.MtimeNs}
	}
	s.last = map[string]stat{}
	var out []logged
	for _, f := range second {
		st := stat{f.Size, f.MtimeNs}
		s.last[f.Name] = st
		if before[f.Name] == st {
			out = append(out, f)
		}
	}
	return out, nil
}

// list returns the candidate files of Dir not in the log, in (mtime, name)
// order: regular, not hidden, not empty.
func (s *Source) list() ([]logged, error) {
	ents, err := os.ReadDir(s.cfg.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("files %q: list %s: %w", s.cfg.Name, s.cfg.Dir, err)
	}
	var out []logged
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || !e.Type().IsRegular() || s.inLog[name] {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("files %q: list %s: %w", s.cfg.Name, s.cfg.Dir, err)
		}
		if info.Size() == 0 {
			continue // created, not yet written
		}
		out = append(out, logged{Name: name, Size: info.Size(), MtimeNs: info.ModTime().UnixNano()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MtimeNs != out[j].MtimeNs {
			return out[i].MtimeNs < out[j].MtimeNs
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Splits returns the Parquet splits of the files logged for (start, end],
// in log order.
func (s *Source) Splits(ctx context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	hi, err := s.parse(end)
	if err != nil {
		return nil, err
	}
	if hi.before(lo) {
		return nil, fmt.Errorf("files %q: end offset %s before start %s: %w", s.cfg.Name, end, start, sources.ErrBadOffset)
	}
	if !lo.before(hi) {
		return nil, nil
	}
	last := hi.through()
	s.mu.Lock()
	if last > int64(len(s.log)) {
		n := len(s.log)
		s.mu.Unlock()
		return nil, fmt.Errorf("files %q: offset %s is past the %d files in the log %s: %w",
			s.cfg.Name, end, n, s.cfg.LogDir, sources.ErrBadOffset)
	}
	batch := append([]logged(nil), s.log[lo.files:last]...)
	s.mu.Unlock()

	var out []sources.Split
	for i, f := range batch {
		idx := lo.files + int64(i)
		from, to := 0, -1 // the file's row groups [from, to); -1: to its end
		if idx == lo.files {
			from = lo.groups
		}
		if idx == hi.files {
			to = hi.groups
		}
		sp, err := s.fileSplits(ctx, idx, f, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, sp...)
	}
	return out, nil
}

// fileSplits returns the splits of row groups [from, to) (to -1: all from
// from on) of the logged file at idx, or none when it is left out: by a
// decision recorded earlier, or by one this call records under the
// BadFiles or OffsetsGone policy.
func (s *Source) fileSplits(ctx context.Context, idx int64, f logged, from, to int) ([]sources.Split, error) {
	p := s.path(f.Name)
	s.mu.Lock()
	d, done := s.dropped[idx]
	s.mu.Unlock()
	if done {
		// Decided by an earlier run of the batch, or another batch over
		// the same file: the same answer, whatever the policies are now.
		if d.Kind == sources.DropQuarantined {
			if err := quarantine(p, d.To, f.Size); err != nil {
				return nil, fmt.Errorf("files %q: %w", s.cfg.Name, err)
			}
		}
		return nil, nil
	}
	st, err := os.Stat(p)
	var gone string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		gone = "deleted before its batch ran"
	case err != nil:
		return nil, fmt.Errorf("files %q: %w", s.cfg.Name, err)
	case st.Size() != f.Size:
		gone = fmt.Sprintf("%d bytes, %d when logged: replaced", st.Size(), f.Size)
	}
	if gone != "" {
		if s.cfg.OffsetsGone != OffsetsGoneSkip {
			return nil, fmt.Errorf("files %q: %s was %s; set OffsetsGone \"skip\" to go on without it: %w", s.cfg.Name, p, gone, sources.ErrOffsetGone)
		}
		return nil, s.drop(dropped{Index: idx, RowGroup: from, Name: f.Name, Kind: sources.DropLost, Reason: gone})
	}
	t, err := parquet.Open(ctx, p)
	if err == nil {
		err = s.checkSchema(p, t.Schema)
	} else {
		err = fmt.Errorf("files %q: %w", s.cfg.Name, err)
	}
	if err == nil && s.cfg.VerifyFiles {
		err = s.verify(ctx, p, t)
	}
	if err != nil {
		if s.cfg.BadFiles == BadFilesFail || !isBadFile(err) {
			return nil, err
		}
		d := dropped{Index: idx, RowGroup: from, Name: f.Name, Kind: sources.DropSkipped, Reason: err.Error()}
		if s.cfg.BadFiles == BadFilesQuarantine {
			d.Kind, d.To = sources.DropQuarantined, filepath.Join(s.cfg.QuarantineDir, f.Name)
		}
		// Recorded first: a crash before the move is finished by the re-run.
		if err := s.drop(d); err != nil {
			return nil, err
		}
		if d.Kind == sources.DropQuarantined {
			if err := quarantine(p, d.To, f.Size); err != nil {
				return nil, fmt.Errorf("files %q: %w", s.cfg.Name, err)
			}
		}
		return nil, nil
	}
	rows := t.Files[0].RowGroupRows()
	if to < 0 {
		to = len(rows)
	}
	if from > to || to > len(rows) {
		return nil, fmt.Errorf("files %q: the batch reads row groups [%d, %d) of %s, which has %d: %w",
			s.cfg.Name, from, to, p, len(rows), sources.ErrBadOffset)
	}
	pss, _ := t.Splits(nil)
	out := make([]sources.Split, 0, len(pss))
	for _, ps := range pss {
		// Only the row groups [from, to): a batch of part of the file.
		var rgs []int
		var n int64
		for _, rg := range ps.RowGroups {
			if rg >= from && rg < to {
				rgs, n = append(rgs, rg), n+rows[rg]
			}
		}
		if len(rgs) == 0 {
			continue
		}
		ps.RowGroups, ps.NumRows = rgs, n
		out = append(out, &Split{Split: ps, schema: s.schema, source: s.cfg.Name, file: f.Name})
	}
	return out, nil
}

// verify reads every row group of t, discarding the rows.
func (s *Source) verify(ctx context.Context, p string, t *parquet.Table) error {
	pss, _ := t.Splits(nil)
	for _, ps := range pss {
		err := parquet.ReadSplit(ctx, memory.DefaultAllocator, ps, s.schema, nil, 0, func(r arrow.Record) error {
			r.Release()
			return nil
		})
		if err != nil {
			return fmt.Errorf("files %q: verify %s: %w", s.cfg.Name, p, err)
		}
	}
	return nil
}

// isBadFile tells a file's own fault (not Parquet, truncated, corrupt,
// conflicting or unreadable column types) from anything else (permissions,
// I/O, a cancelled context), which no policy passes over: by the
// sources/parquet sentinels the fault carries, so a passing I/O error is
// never recorded as a bad file for good.
func isBadFile(err error) bool {
	for _, bad := range []error{parquet.ErrNotParquet, parquet.ErrCorrupt, parquet.ErrSchemaConflict, parquet.ErrUnsupportedType} {
		if errors.Is(err, bad) {
			return true
		}
	}
	return false
}

// drop records d in the log dir and in memory.
func (s *Source) drop(d dropped) error {
	d.Version = dropVersion
	if err := writeDropped(s.cfg.FS, s.cfg.LogDir, d); err != nil {
		return fmt.Errorf("files %q: record %s of %s: %w", s.cfg.Name, d.Kind, s.path(d.Name), err)
	}
	s.mu.Lock()
	s.dropped[d.Index] = d
	s.mu.Unlock()
	return nil
}

// Drops returns the files left out of the batch (start, end], as recorded.
func (s *Source) Drops(start, end sources.Offset) []sources.Drop {
	lo, err1 := s.parse(start)
	hi, err2 := s.parse(end)
	if err1 != nil || err2 != nil {
		return nil
	}
	last := hi.through()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sources.Drop
	for i := lo.files; i < last; i++ {
		// A file some batches read part of is left out by the batch that
		// recorded the decision, from row group d.RowGroup: reported once.
		from := 0
		if i == lo.files {
			from = lo.groups
		}
		if d, ok := s.dropped[i]; ok && d.RowGroup == from {
			out = append(out, sources.Drop{Kind: d.Kind, Input: s.path(d.Name), Count: 1, Reason: d.Reason, To: d.To})
		}
	}
	return out
}

// checkSchema refuses a file whose columns have other types than the
// source schema's.
func (s *Source) checkSchema(path string, file *arrow.Schema) error {
	for _, want := range s.schema.Fields() {
		idx := file.FieldIndices(want.Name)
		if len(idx) == 0 {
			continue
		}
		if got := file.Field(idx[0]).Type; !arrow.TypeEqual(got, want.Type) {
			return fmt.Errorf("files %q: %s: %w: column %q is %s in the file, the source schema says %s",
				s.cfg.Name, path, parquet.ErrSchemaConflict, want.Name, got, want.Type)
		}
	}
	return nil
}

func (s *Source) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// Split reads some row groups of one logged file.
type Split struct {
	parquet.Split
	schema *arrow.Schema
	source string
	file   string // the name in the log: Path is Dir/file
}

var (
	_ sources.Split          = (*Split)(nil)
	_ sources.ColumnReader   = (*Split)(nil)
	_ sources.PositionReader = (*Split)(nil)
)

func (sp *Split) Rows() int64 { return sp.NumRows }

// splitKind names files splits in the sources envelope.
const splitKind = "files"

// splitBody is a split's plain data. The file is its name in the log, not
// its path: the decoding source finds it in its own Config.Dir.
type splitBody struct {
	File      string `json:"file"`
	RowGroups []int  `json:"row_groups"`
	Rows      int64  `json:"rows"`
}

// Encode is {"v":1,"kind":"files","name":<source>,"split":{"file":..,
// "row_groups":[..],"rows":..}}.
func (sp *Split) Encode() ([]byte, error) {
	if sp.file == "" {
		return nil, fmt.Errorf("files: encode split of %s: not made by a source", sp.Path)
	}
	return sources.MarshalSplit(splitKind, sp.source, splitBody{File: sp.file, RowGroups: sp.RowGroups, Rows: sp.NumRows})
}

// DecodeSplit rebuilds a split from Split.Encode's bytes, reading the file
// of that name in this source's Dir with this source's schema. It does not
// consult the log (an executor's copy may be older than the driver's); the
// driver's Splits checked the file when it made the split, and a file gone
// since fails the read with sources.ErrOffsetGone.
func (s *Source) DecodeSplit(b []byte) (sources.Split, error) {
	var body splitBody
	if err := sources.UnmarshalSplit(b, splitKind, s.cfg.Name, &body); err != nil {
		return nil, err
	}
	bad := func(why string) (sources.Split, error) {
		return nil, sources.BadSplitf(splitKind, s.cfg.Name, "file %q: %s", body.File, why)
	}
	switch {
	case body.File == "" || body.File == "." || body.File == ".." || filepath.Base(body.File) != body.File || strings.ContainsRune(body.File, '/'):
		return bad("not a file name in the directory")
	case len(body.RowGroups) == 0:
		return bad("no row groups")
	case body.Rows < 0:
		return bad("negative row count")
	}
	for i, rg := range body.RowGroups {
		if rg < 0 || i > 0 && rg <= body.RowGroups[i-1] {
			return bad(fmt.Sprintf("row groups %v are not ascending indexes", body.RowGroups))
		}
	}
	return &Split{
		Split:  parquet.Split{Path: s.path(body.File), RowGroups: body.RowGroups, NumRows: body.Rows},
		schema: s.schema, source: s.cfg.Name, file: body.File,
	}, nil
}

// Read emits the split's rows projected to the source schema, in records
// allocated from mem that emit owns.
func (sp *Split) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	return sp.ReadAt(ctx, mem, nil, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadColumns is Read building only the columns cols, in that order
// (sources.ColumnReader): the file's other columns are never decoded.
func (sp *Split) ReadColumns(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record) error) error {
	return sp.ReadAt(ctx, mem, cols, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadAt is ReadColumns (Read when cols is nil) naming each record's file,
// row group and file rows (sources.PositionReader).
func (sp *Split) ReadAt(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record, func() string) error) error {
	sch, err := parquet.Columns(sp.schema, cols)
	if err != nil {
		return fmt.Errorf("files %q: %s: %w", sp.source, sp.Path, err)
	}
	err = parquet.ReadSplitAt(ctx, mem, sp.Split, sch, nil, 0, func(rec arrow.Record, at parquet.Position) error {
		n := rec.NumRows()
		return emit(rec, func() string { return at.Describe(n) })
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("files %q: %s was deleted before its batch ran: %w: %w", sp.source, sp.Path, sources.ErrOffsetGone, err)
	}
	return err
}

// offset is the JSON form of a log position.
type offset struct {
	Files     *int64 `json:"files"`
	RowGroups int    `json:"row_groups"`
}

// pos is a position in the log: after files whole files and the first
// groups row groups of the next (MaxRowsPerBatch).
type pos struct {
	files  int64
	groups int
}

// through is one past the last file p reaches into.
func (p pos) through() int64 {
	if p.groups > 0 {
		return p.files + 1
	}
	return p.files
}

func (p pos) before(q pos) bool {
	return p.files < q.files || p.files == q.files && p.groups < q.groups
}

// encode is {"files":N}, or {"files":N,"row_groups":G} inside file N.
func (p pos) encode() sources.Offset {
	if p.groups == 0 {
		return sources.Offset(`{"files":` + strconv.FormatInt(p.files, 10) + `}`)
	}
	return sources.Offset(`{"files":` + strconv.FormatInt(p.files, 10) + `,"row_groups":` + strconv.Itoa(p.groups) + `}`)
}

func (s *Source) parse(off sources.Offset) (pos, error) {
	var o offset
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	err := d.Decode(&o)
	if err == nil {
		if _, e := d.Token(); e != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err != nil || o.Files == nil || *o.Files < 0 || o.RowGroups < 0 {
		return pos{}, fmt.Errorf("files %q: offset %q: want {\"files\":N} or {\"files\":N,\"row_groups\":G} with N, G >= 0: %w", s.cfg.Name, string(off), sources.ErrBadOffset)
	}
	return pos{files: *o.Files, groups: o.RowGroups}, nil
}
