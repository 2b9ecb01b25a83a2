package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/internal/vfs"
)

// LogDir is the name of the log directory inside a table directory. Readers
// that do not know the log (Spark, pyarrow) skip it, as any name starting
// with "_".
const LogDir = "_sluice_log"

// Version is the format version written in every log file.
const Version = 1

// DefaultCheckpointEvery is how many uncovered entries trigger a checkpoint.
const DefaultCheckpointEvery = 10

const (
	entrySuffix      = ".json"
	checkpointSuffix = ".checkpoint.json"
)

var (
	// ErrCorrupt is returned for a log file that does not parse or whose
	// checksum does not match.
	ErrCorrupt = errors.New("manifest: corrupt log file")
	// ErrVersion is returned for a log file of an unknown format version.
	ErrVersion = errors.New("manifest: unknown format version")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File is one data file of a committed batch.
type File struct {
	Path  string `json:"path"` // slash-separated, relative to the table directory
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// Range is an inclusive range of batch ids.
type Range struct {
	Lo int64 `json:"lo"`
	Hi int64 `json:"hi"`
}

// entry is the body of <batch>.json.
type entry struct {
	Version  int    `json:"version"`
	Batch    int64  `json:"batch"`
	Files    []File `json:"files"`
	Checksum string `json:"checksum"`
}

// checkpoint is the body of <batch>.checkpoint.json.
type checkpoint struct {
	Version  int     `json:"version"`
	Batch    int64   `json:"batch"`   // the entry this checkpoint was written after
	Batches  []Range `json:"batches"` // every committed batch it covers, sorted, disjoint
	Files    []File  `json:"files"`
	Checksum string  `json:"checksum"`
}

// Snapshot is the committed state of a table directory.
type Snapshot struct {
	Files   []File  // live files, in commit order
	Batches []Range // committed batch ids, sorted, disjoint
}

// Committed reports whether batch is among the committed batches.
func (s Snapshot) Committed(batch int64) bool { return covers(s.Batches, batch) }

// Log reads and appends the log of one table directory. It is not safe for
// concurrent Commits (one driver commits); readers may run beside it.
type Log struct {
	fs    vfs.FS
	dir   string // the table directory; the log is dir/_sluice_log
	every int
}

// Open returns the log of table directory dir on fsys. checkpointEvery <= 0
// means DefaultCheckpointEvery. Nothing is read or written yet.
func Open(fsys vfs.FS, dir string, checkpointEvery int) *Log {
	if checkpointEvery <= 0 {
		checkpointEvery = DefaultCheckpointEvery
	}
	return &Log{fs: fsys, dir: dir, every: checkpointEvery}
}

// Read returns the paths (dir joined with each file's path) of the files
// committed to the log of table directory dir on the OS filesystem. ok is
// false, with no error, when dir has no _sluice_log directory: a plain
// directory whose files are all live.
func Read(dir string) (files []string, ok bool, err error) {
	st, err := os.Stat(filepath.Join(dir, LogDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("manifest: %w", err)
	}
	if !st.IsDir() {
		return nil, false, fmt.Errorf("manifest: %s is not a directory", filepath.Join(dir, LogDir))
	}
	snap, err := Open(vfs.OS{}, dir, 0).Snapshot()
	if err != nil {
		return nil, false, err
	}
	files = make([]string, len(snap.Files))
	for i, f := range snap.Files {
		files[i] = filepath.Join(dir, filepath.FromSlash(f.Path))
	}
	return files, true, nil
}

// listing is what the log directory holds, by kind, ids sorted ascending.
type listing struct {
	entries     []int64
	checkpoints []int64
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, LogDir, name) }

func (l *Log) list() (listing, error) {
	names, err := l.fs.List(filepath.Join(l.dir, LogDir))
	if err != nil {
		return listing{}, fmt.Errorf("manifest: %w", err)
	}
	var ls listing
	for _, n := range names {
		if s, ok := strings.CutSuffix(n, checkpointSuffix); ok {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil {
				ls.checkpoints = append(ls.checkpoints, id)
			}
			continue
		}
		if s, ok := strings.CutSuffix(n, entrySuffix); ok {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil {
				ls.entries = append(ls.entries, id)
			}
		}
	}
	slices.Sort(ls.entries)
	slices.Sort(ls.checkpoints)
	return ls, nil
}

// Snapshot reads the committed state: the latest checkpoint plus every
// entry it does not cover.
func (l *Log) Snapshot() (Snapshot, error) {
	ls, err := l.list()
	if err != nil {
		return Snapshot{}, err
	}
	return l.snapshot(ls)
}

func (l *Log) snapshot(ls listing) (Snapshot, error) {
	var snap Snapshot
	if n := len(ls.checkpoints); n > 0 {
		cp, err := l.readCheckpoint(ls.checkpoints[n-1])
		if err != nil {
			return Snapshot{}, err
		}
		snap.Files = cp.Files
		snap.Batches = cp.Batches
	}
	covered := slices.Clone(snap.Batches)
	for _, id := range ls.entries {
		if covers(covered, id) {
			continue
		}
		e, err := l.readEntry(id)
		if err != nil {
			return Snapshot{}, err
		}
		snap.Files = append(snap.Files, e.Files...)
		snap.Batches = addBatch(snap.Batches, id)
	}
	return snap, nil
}

// Committed reports whether batch is committed.
func (l *Log) Committed(batch int64) (bool, error) {
	ls, err := l.list()
	if err != nil {
		return false, err
	}
	if slices.Contains(ls.entries, batch) {
		return true, nil
	}
	if n := len(ls.checkpoints); n > 0 {
		cp, err := l.readCheckpoint(ls.checkpoints[n-1])
		if err != nil {
			return false, err
		}
		return covers(cp.Batches, batch), nil
	}
	return false, nil
}

// Commit records batch with its files, unless it is already committed
// (then it returns false and changes nothing). Once the entry is written the
// batch is committed: an error from the compaction that may follow says so,
// and a retried Commit is a no-op.
func (l *Log) Commit(batch int64, files []File) (written bool, err error) {
	for _, f := range files {
		if err := checkPath(f.Path); err != nil {
			return false, fmt.Errorf("manifest: commit batch %d: %w", batch, err)
		}
	}
	ls, err := l.list()
	if err != nil {
		return false, err
	}
	if slices.Contains(ls.entries, batch) {
		return false, nil
	}
	var latest *checkpoint
	if n := len(ls.checkpoints); n > 0 {
		if latest, err = l.readCheckpoint(ls.checkpoints[n-1]); err != nil {
			return false, err
		}
		if covers(latest.Batches, batch) {
			return false, nil
		}
	}
	if files == nil {
		files = []File{}
	}
	e := entry{Version: Version, Batch: batch, Files: files}
	b, err := seal(&e, &e.Checksum)
	if err != nil {
		return false, err
	}
	if err := l.fs.WriteFileAtomic(l.path(entryName(batch)), b); err != nil {
		return false, fmt.Errorf("manifest: commit batch %d: %w", batch, err)
	}
	ls.entries = append(ls.entries, batch)
	slices.Sort(ls.entries)
	if err := l.maybeCompact(ls, latest, batch); err != nil {
		return true, fmt.Errorf("manifest: batch %d is committed, but compacting the log failed: %w", batch, err)
	}
	return true, nil
}

// maybeCompact writes <batch>.checkpoint.json once enough entries are not
// covered by the latest checkpoint, then deletes what the previous
// checkpoint covers (keeping it), so a reader mid-listing still finds files.
func (l *Log) maybeCompact(ls listing, latest *checkpoint, batch int64) error {
	var covered []Range
	if latest != nil {
		covered = latest.Batches
	}
	uncovered := 0
	for _, id := range ls.entries {
		if !covers(covered, id) {
			uncovered++
		}
	}
	if uncovered < l.every {
		return nil
	}
	snap, err := l.snapshot(ls)
	if err != nil {
		return err
	}
	cp := checkpoint{Version: Version, Batch: batch, Batches: snap.Batches, Files: snap.Files}
	if cp.Files == nil {
		cp.Files = []File{}
	}
	b, err := seal(&cp, &cp.Checksum)
	if err != nil {
		return err
	}
	if err := l.fs.WriteFileAtomic(l.path(checkpointName(batch)), b); err != nil {
		return err
	}
	if latest == nil {
		return nil
	}
	// Keep the previous checkpoint and the entries after it; older ones are
	// covered twice over.
	var errs []error
	for _, id := range ls.entries {
		if covers(latest.Batches, id) {
			errs = append(errs, l.fs.Remove(l.path(entryName(id))))
		}
	}
	for _, id := range ls.checkpoints {
		if id < latest.Batch {
			errs = append(errs, l.fs.Remove(l.path(checkpointName(id))))
		}
	}
	return errors.Join(errs...)
}

func entryName(batch int64) string      { return strconv.FormatInt(batch, 10) + entrySuffix }
func checkpointName(batch int64) string { return strconv.FormatInt(batch, 10) + checkpointSuffix }

func (l *Log) readEntry(batch int64) (*entry, error) {
	p := l.path(entryName(batch))
	var e entry
	if err := l.readSealed(p, &e, &e.Version, &e.Checksum); err != nil {
		return nil, err
	}
	if e.Batch != batch {
		return nil, fmt.Errorf("%w: %s holds batch %d", ErrCorrupt, p, e.Batch)
	}
	return &e, nil
}

func (l *Log) readCheckpoint(batch int64) (*checkpoint, error) {
	p := l.path(checkpointName(batch))
	var cp checkpoint
	if err := l.readSealed(p, &cp, &cp.Version, &cp.Checksum); err != nil {
		return nil, err
	}
	if cp.Batch != batch {
		return nil, fmt.Errorf("%w: %s holds batch %d", ErrCorrupt, p, cp.Batch)
	}
	return &cp, nil
}

// seal marshals v with its checksum field set to the CRC-32C of v
// marshalled with an empty checksum.
func seal(v any, sum *string) ([]byte, error) {
	*sum = ""
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	*sum = fmt.Sprintf("%08x", crc32.Checksum(b, castagnoli))
	b, err = json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	return append(b, '\n'), nil
}

func (l *Log) readSealed(p string, v any, version *int, sum *string) error {
	b, err := l.fs.ReadFile(p)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if *version != Version {
		return fmt.Errorf("%w: %s has version %d, want %d", ErrVersion, p, *version, Version)
	}
	got := *sum
	*sum = ""
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if want := fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)); got != want {
		return fmt.Errorf("%w: %s: checksum %q, body has %q", ErrCorrupt, p, got, want)
	}
	*sum = got
	return nil
}

// checkPath refuses paths that would leave the table directory or hide in
// it, so a reader never follows the log outside the table.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, `\`) || path.Clean(p) != p || p == "." ||
		p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("bad file path %q", p)
	}
	return nil
}

func covers(rs []Range, id int64) bool {
	i, found := slices.BinarySearchFunc(rs, id, func(r Range, id int64) int {
		switch {
		case r.Hi < id:
			return -1
		case r.Lo > id:
			return 1
		}
		return 0
	})
	_ = i
	return found
}

// addBatch inserts id into sorted disjoint ranges, merging neighbours.
func addBatch(rs []Range, id int64) []Range {
	if covers(rs, id) {
		return rs
	}
	out := make([]Range, 0, len(rs)+1)
	inserted := false
	for _, r := range rs {
		if !inserted && id < r.Lo {
			out = append(out, Range{id, id})
			inserted = true
		}
		out = append(out, r)
	}
	if !inserted {
		out = append(out, Range{id, id})
	}
	merged := out[:1]
	for _, r := range out[1:] {
		last := &merged[len(merged)-1]
		if r.Lo <= last.Hi+1 {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}
