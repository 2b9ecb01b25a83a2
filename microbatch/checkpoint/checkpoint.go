package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicedata/sluice/internal/vfs"
)

var (
	// ErrCorrupt: a file failed its checksum, is truncated or unparsable,
	// or the logs have a gap, a commit without offsets, or logs without
	// metadata.json.
	ErrCorrupt = errors.New("corrupt checkpoint")
	// ErrVersion: a file has a format version this build does not read.
	ErrVersion = errors.New("unsupported checkpoint format version")
	// ErrConflict: a write that disagrees with what the checkpoint holds
	// (different content for an existing batch or metadata, or a batch out
	// of order).
	ErrConflict = errors.New("conflicting checkpoint write")
	// ErrForeign: an offsets file names another query or other sources
	// than metadata.json (a file copied from another checkpoint, say). The
	// error names the file and what differs.
	ErrForeign = errors.New("checkpoint file of another query")
	// ErrLocked: another owner holds the checkpoint's lock (Lock); the
	// error also wraps vfs.ErrLocked and names the holder when known.
	ErrLocked = errors.New("checkpoint is owned by another running query")
)

// DefaultKeyGroups is used when WriteMetadata gets KeyGroups == 0.
const DefaultKeyGroups = 128

// Metadata pins whose the checkpoint is; written once, at creation.
type Metadata struct {
	QueryID       string `json:"query_id"`       // stable id of the query (uuid-like, made by the driver)
	FormatVersion int    `json:"format_version"` // FormatVersion; 0 in WriteMetadata means current
	KeyGroups     int    `json:"key_groups"`     // pinned at creation (0 in WriteMetadata means DefaultKeyGroups)
	// Identity is what the state and offsets belong to (stored canonical;
	// its KeyGroups equals KeyGroups, 0 in WriteMetadata meaning the same).
	Identity Identity `json:"identity"`
	// IdentityHash is Identity.Hash(), filled by WriteMetadata.
	IdentityHash string            `json:"identity_hash"`
	Config       map[string]string `json:"config,omitempty"` // other pinned settings, printable
}

// SourceOffsets is one source's range of a batch, in the source's own JSON
// encoding. A nil offset is stored as JSON null and reads back as nil.
type SourceOffsets struct {
	// Identity is the source's identity (as in metadata.json): what data
	// Start and End count.
	Identity string          `json:"identity"`
	Start    json.RawMessage `json:"start"`
	End      json.RawMessage `json:"end"`
}

// OffsetEntry is offsets/<N>.json, written before batch N runs. Its query
// id and source identities must be metadata.json's: writes and Recover
// check them (ErrForeign).
type OffsetEntry struct {
	Batch     int64                    `json:"batch"`
	QueryID   string                   `json:"query_id"`
	Sources   map[string]SourceOffsets `json:"sources"`      // by source name
	Watermark int64                    `json:"watermark_us"` // event-time watermark in effect for the batch, µs since epoch (math.MinInt64 = none)
	Timestamp int64                    `json:"timestamp_us"` // the batch's processing time, read by current_timestamp and processing-time windows
	// PrevWatermark is the watermark the previous batch ran with: operators
	// fed by another stateful operator drop rows as late only behind it
	// (math.MinInt64 = none; absent in logs of older versions = none).
	PrevWatermark *int64 `json:"prev_watermark_us,omitempty"`
	// Active is, for each input that declares idleness (keyed by watermark
	// id), the batch time (µs) of the last batch up to this one whose
	// offsets moved for its sources: where the next batch counts idleness
	// from. Idle lists the inputs Watermark left out as idle. Both are
	// absent for queries without idleness and in logs of older versions
	// (counting then starts at the next batch).
	Active map[string]int64 `json:"active_us,omitempty"`
	Idle   []string         `json:"idle_inputs,omitempty"`
}

// CommitEntry is commits/<N>.json, written after the sink and state commit.
type CommitEntry struct {
	Batch         int64 `json:"batch"`
	NextWatermark int64 `json:"next_watermark_us"` // watermark computed from this batch's data, used by batch N+1
	// Watermarks are the per-input watermarks NextWatermark combines (by a
	// min or max policy), keyed by the input's watermark id; absent when the
	// query declares none.
	Watermarks map[string]int64 `json:"watermarks_us,omitempty"`
}

// Recovery is what the driver does on start.
type Recovery struct {
	Next  int64        // the batch to run next
	Rerun *OffsetEntry // non-nil: batch Next must be re-run with exactly these offsets, watermark and timestamp
	Last  *CommitEntry // the last committed batch, nil when none
	// LastOffsets are the offsets of Last's batch (nil when Last is nil):
	// their ends are where batch Next starts when Rerun is nil.
	LastOffsets *OffsetEntry
}

// Checkpoint is a query's checkpoint directory. Its methods are safe for
// concurrent use; one owner at a time may write a directory, which Lock
// enforces for owners that take it.
type Checkpoint struct {
	fs   vfs.FS
	dir  string
	mu   sync.Mutex               // serialises writers: each checks the logs, then writes
	meta atomic.Pointer[Metadata] // metadata.json once read or written: it never changes
}

// Open returns the checkpoint in dir; it creates nothing until the first
// write.
func Open(fsys vfs.FS, dir string) (*Checkpoint, error) {
	if fsys == nil {
		return nil, errors.New("checkpoint: open: nil filesystem")
	}
	if dir == "" {
		return nil, errors.New("checkpoint: open: empty directory")
	}
	dir = filepath.Clean(dir)
	if _, err := fsys.List(dir); err != nil {
		return nil, fmt.Errorf("checkpoint: open %s: %w", dir, err)
	}
	return &Checkpoint{fs: fsys, dir: dir}, nil
}

func (c *Checkpoint) Dir() string { return c.dir }

const (
	metadataName = "metadata.json"
	offsetsDir   = "offsets"
	commitsDir   = "commits"
	lockName     = "lock"
)

// Lock makes the caller the checkpoint's one owner until it closes the
// returned lock: a second Lock of the same directory, in this process or
// another, fails at once with ErrLocked, naming the directory and, when
// the FS records it, the holder's pid. It is vfs.FS.Lock on
// <dir>/lock: on a local filesystem an flock, released by the kernel when
// the owner exits however it exits, so a crashed owner never blocks a
// restart (vfs/lock.go says why a lock and not a lease); on object
// storage a lease that a crashed owner holds until it expires
// (vfs/blobfs/lease.go, and format.md on what a lease cannot promise: the
// put-if-absent logs are what keep a second writer out of a batch). Lock
// writes nothing the logs hold; the lock file is left in place after
// Close (a lease object is deleted).
func (c *Checkpoint) Lock() (io.Closer, error) {
	l, err := c.fs.Lock(filepath.Join(c.dir, lockName))
	if errors.Is(err, vfs.ErrLocked) {
		return nil, fmt.Errorf("checkpoint: %s: %w: %w", c.dir, ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: lock %s: %w", c.dir, err)
	}
	return l, nil
}

func (c *Checkpoint) path(sub string, n int64) string {
	return filepath.Join(c.dir, sub, strconv.FormatInt(n, 10)+".json")
}

// Metadata reads metadata.json; false means a new checkpoint. A missing
// metadata.json beside non-empty logs is ErrCorrupt, never "new".
func (c *Checkpoint) Metadata() (*Metadata, bool, error) {
	if m := c.meta.Load(); m != nil {
		return cloneMetadata(m), true, nil
	}
	path := filepath.Join(c.dir, metadataName)
	data, err := c.fs.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		l, lerr := c.layout()
		if lerr != nil {
			return nil, false, lerr
		}
		if len(l.offsets) > 0 {
			return nil, false, fmt.Errorf("checkpoint: %s: missing while %s holds batches %d..%d: %w",
				path, filepath.Join(c.dir, offsetsDir), l.offsets[0], l.offsets[len(l.offsets)-1], ErrCorrupt)
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint: read metadata: %w", err)
	}
	var m Metadata
	if err := decode(path, data, &m); err != nil {
		return nil, false, err
	}
	switch {
	case m.FormatVersion != FormatVersion: // the header said FormatVersion
		return nil, false, fmt.Errorf("checkpoint: %s: format_version %d in a version %d file: %w", path, m.FormatVersion, FormatVersion, ErrCorrupt)
	case m.QueryID == "" || m.KeyGroups < 1:
		return nil, false, fmt.Errorf("checkpoint: %s: query_id %q, key_groups %d: want an id and key groups >= 1: %w",
			path, m.QueryID, m.KeyGroups, ErrCorrupt)
	case m.Identity.KeyGroups != m.KeyGroups:
		return nil, false, fmt.Errorf("checkpoint: %s: key_groups %d, identity.key_groups %d: want them equal: %w",
			path, m.KeyGroups, m.Identity.KeyGroups, ErrCorrupt)
	case m.IdentityHash != m.Identity.Hash():
		return nil, false, fmt.Errorf("checkpoint: %s: identity_hash %q, the identity's hash is %q: %w",
			path, m.IdentityHash, m.Identity.Hash(), ErrCorrupt)
	}
	m.Identity = m.Identity.Canonical()
	c.meta.Store(cloneMetadata(&m))
	return &m, true, nil
}

// metadata is Metadata without the copy, for reading only: the cached
// metadata once known (WriteOffsets runs every batch).
func (c *Checkpoint) metadata() (*Metadata, bool, error) {
	if m := c.meta.Load(); m != nil {
		return m, true, nil
	}
	return c.Metadata()
}

func cloneMetadata(m *Metadata) *Metadata {
	n := *m
	n.Identity = m.Identity.Canonical()
	n.Config = maps.Clone(m.Config)
	return &n
}

// WriteMetadata writes metadata.json once; writing it again is accepted when
// the content is the same (after defaults) and ErrConflict otherwise.
func (c *Checkpoint) WriteMetadata(m *Metadata) error {
	path := filepath.Join(c.dir, metadataName)
	if m == nil {
		return fmt.Errorf("checkpoint: write %s: nil metadata", path)
	}
	n := *cloneMetadata(m)
	if n.FormatVersion == 0 {
		n.FormatVersion = FormatVersion
	}
	if n.KeyGroups == 0 {
		n.KeyGroups = DefaultKeyGroups
	}
	if n.Identity.KeyGroups == 0 {
		n.Identity.KeyGroups = n.KeyGroups
	}
	switch {
	case n.FormatVersion != FormatVersion:
		return fmt.Errorf("checkpoint: write %s: format_version %d, this build writes only %d: %w", path, n.FormatVersion, FormatVersion, ErrVersion)
	case n.KeyGroups < 0 || n.QueryID == "":
		return fmt.Errorf("checkpoint: write %s: query_id %q, key_groups %d: want an id and key groups >= 0",
			path, n.QueryID, n.KeyGroups)
	case n.Identity.KeyGroups != n.KeyGroups:
		return fmt.Errorf("checkpoint: write %s: key_groups %d, identity key groups %d: want them equal", path, n.KeyGroups, n.Identity.KeyGroups)
	case n.IdentityHash != "" && n.IdentityHash != n.Identity.Hash():
		return fmt.Errorf("checkpoint: write %s: identity_hash %q, the identity's hash is %q", path, n.IdentityHash, n.Identity.Hash())
	}
	n.IdentityHash = n.Identity.Hash()
	c.mu.Lock()
	defer c.mu.Unlock()
	old, exists, err := c.Metadata()
	if err != nil {
		return err
	}
	if exists {
		if d := old.Identity.Diff(n.Identity); len(d) > 0 {
			return fmt.Errorf("checkpoint: %s: exists with another identity (%s): %w", path, strings.Join(d, "; "), ErrConflict)
		}
		return sameOrConflict(path, old, &n)
	}
	// Put-if-absent: of two drivers creating one checkpoint at once (each
	// with its own query id) exactly one writes metadata.json; the other
	// reads it back and conflicts, unless it wrote the same.
	if err := c.create(path, fmt.Sprintf("write %s", metadataName), &n); errors.Is(err, fs.ErrExist) {
		c.meta.Store(nil)
		old, _, rerr := c.Metadata()
		if rerr != nil {
			return rerr
		}
		return sameOrConflict(path, old, &n)
	} else if err != nil {
		return err
	}
	c.meta.Store(cloneMetadata(&n))
	return nil
}

// WriteOffsets writes offsets/<N>.json before batch N runs. metadata.json
// must exist and name the entry's query id and source identities
// (ErrForeign otherwise). N must follow the last batch, which must be
// committed (any N >= 0 starts an empty log); rewriting an existing batch
// is accepted only with the same content.
func (c *Checkpoint) WriteOffsets(e *OffsetEntry) error {
	if e == nil || e.Batch < 0 {
		return fmt.Errorf("checkpoint: write offsets: want an entry with batch >= 0, got %+v", e)
	}
	path := c.path(offsetsDir, e.Batch)
	n := *e
	if n.Sources == nil {
		n.Sources = map[string]SourceOffsets{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	meta, ok, err := c.metadata()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("checkpoint: write %s: no %s yet (it is written before the first offsets): %w", path, metadataName, ErrConflict)
	}
	if err := checkOwner(path, &n, meta); err != nil {
		return err
	}
	l, err := c.layout()
	if err != nil {
		return err
	}
	if slices.Contains(l.offsets, e.Batch) {
		old, err := c.Offsets(e.Batch)
		if err != nil {
			return err
		}
		return sameOrConflict(path, old, &n)
	}
	if last, ok := l.lastOffsets(); ok {
		lastCommit, committed := l.lastCommit()
		if e.Batch != last+1 || !committed || lastCommit != last {
			return fmt.Errorf("checkpoint: %s: batch %d out of order (latest offsets %d, %s): %w",
				path, e.Batch, last, l.commitState(), ErrConflict)
		}
	}
	return c.create(path, fmt.Sprintf("write offsets for batch %d", e.Batch), &n)
}

// WriteCommit writes commits/<N>.json after batch N's sink and state commit.
// N must be the latest batch in offsets/; rewriting an existing commit is
// accepted only with the same content.
func (c *Checkpoint) WriteCommit(e *CommitEntry) error {
	if e == nil || e.Batch < 0 {
		return fmt.Errorf("checkpoint: write commit: want an entry with batch >= 0, got %+v", e)
	}
	path := c.path(commitsDir, e.Batch)
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.layout()
	if err != nil {
		return err
	}
	if slices.Contains(l.commits, e.Batch) {
		old, err := c.Commit(e.Batch)
		if err != nil {
			return err
		}
		return sameOrConflict(path, old, e)
	}
	if last, ok := l.lastOffsets(); !ok || last != e.Batch {
		return fmt.Errorf("checkpoint: %s: batch %d is not the latest in %s (%s): %w",
			path, e.Batch, filepath.Join(c.dir, offsetsDir), l.offsetState(), ErrConflict)
	}
	return c.create(path, fmt.Sprintf("write commit for batch %d", e.Batch), e)
}

// Offsets reads offsets/<n>.json; a missing one satisfies
// errors.Is(err, fs.ErrNotExist).
func (c *Checkpoint) Offsets(n int64) (*OffsetEntry, error) {
	var e OffsetEntry
	if err := c.read(offsetsDir, n, &e, &e.Batch); err != nil {
		return nil, err
	}
	if e.Sources == nil {
		e.Sources = map[string]SourceOffsets{}
	}
	for name, s := range e.Sources {
		e.Sources[name] = SourceOffsets{Identity: s.Identity, Start: compact(s.Start), End: compact(s.End)}
	}
	return &e, nil
}

// Commit reads commits/<n>.json; a missing one satisfies
// errors.Is(err, fs.ErrNotExist).
func (c *Checkpoint) Commit(n int64) (*CommitEntry, error) {
	var e CommitEntry
	if err := c.read(commitsDir, n, &e, &e.Batch); err != nil {
		return nil, err
	}
	return &e, nil
}

// LatestOffsets reads the highest batch in offsets/; false when empty.
func (c *Checkpoint) LatestOffsets() (*OffsetEntry, bool, error) {
	l, err := c.layout()
	if err != nil {
		return nil, false, err
	}
	n, ok := l.lastOffsets()
	if !ok {
		return nil, false, nil
	}
	e, err := c.Offsets(n)
	return e, err == nil, err
}

// LatestCommit reads the highest batch in commits/; false when empty.
func (c *Checkpoint) LatestCommit() (*CommitEntry, bool, error) {
	l, err := c.layout()
	if err != nil {
		return nil, false, err
	}
	n, ok := l.lastCommit()
	if !ok {
		return nil, false, nil
	}
	e, err := c.Commit(n)
	return e, err == nil, err
}

// Recover reads the logs and says which batch runs next (see doc.go). The
// offsets it returns (Rerun, LastOffsets) must name metadata.json's query
// and source identities: a file copied from another query is ErrForeign,
// naming the file and what differs.
func (c *Checkpoint) Recover() (*Recovery, error) {
	l, err := c.layout()
	if err != nil {
		return nil, err
	}
	r := &Recovery{}
	if _, ok := l.lastOffsets(); !ok {
		return r, nil
	}
	meta, ok, err := c.metadata()
	if err != nil {
		return nil, err
	}
	if !ok { // Metadata reports missing metadata beside logs as corrupt
		return nil, fmt.Errorf("checkpoint: %s: no %s beside the logs: %w", c.dir, metadataName, ErrCorrupt)
	}
	offsets := func(n int64) (*OffsetEntry, error) {
		e, err := c.Offsets(n)
		if err != nil {
			return nil, err
		}
		return e, checkOwner(c.path(offsetsDir, n), e, meta)
	}
	if lc, ok := l.lastCommit(); ok {
		if r.Last, err = c.Commit(lc); err != nil {
			return nil, err
		}
		if r.LastOffsets, err = offsets(lc); err != nil {
			return nil, err
		}
		r.Next = lc + 1
	}
	if lo, ok := l.lastOffsets(); ok && (r.Last == nil || lo > r.Last.Batch) {
		if r.Rerun, err = offsets(lo); err != nil {
			return nil, err
		}
		r.Next = lo
	}
	return r, nil
}

// checkOwner refuses an offsets entry whose query id or sources are not
// metadata's.
func checkOwner(path string, e *OffsetEntry, meta *Metadata) error {
	if d := ownerDiff(e, meta); len(d) > 0 {
		return fmt.Errorf("checkpoint: %s: written for another query or other sources than %s (%s): %w",
			path, metadataName, strings.Join(d, "; "), ErrForeign)
	}
	return nil
}

// Purge keeps the last keep committed batches (and an uncommitted one after
// them) in offsets/ and commits/ and deletes older files, oldest first, each
// commit before its offsets, so a crash at any point leaves logs Recover
// accepts. The newest offsets and commit are never deleted.
func (c *Checkpoint) Purge(keep int) error {
	if keep < 1 {
		return fmt.Errorf("checkpoint: purge %s: keep %d, want >= 1", c.dir, keep)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.layout()
	if err != nil {
		return err
	}
	lc, ok := l.lastCommit()
	if !ok {
		return nil
	}
	cut := lc - int64(keep) + 1 // first batch kept
	commits, offsets := l.commits, l.offsets
	for len(commits) > 0 && commits[0] < cut || len(offsets) > 0 && offsets[0] < cut {
		// The lower of the two heads goes next; at a tie, the commit first.
		if len(commits) > 0 && commits[0] < cut && (len(offsets) == 0 || commits[0] <= offsets[0]) {
			if err := c.remove(commitsDir, commits[0]); err != nil {
				return err
			}
			commits = commits[1:]
			continue
		}
		if err := c.remove(offsetsDir, offsets[0]); err != nil {
			return err
		}
		offsets = offsets[1:]
	}
	return nil
}

// remove deletes one log file and, where the FS can, syncs its directory
// so removals persist in order.
func (c *Checkpoint) remove(sub string, n int64) error {
	path := c.path(sub, n)
	if err := c.fs.Remove(path); err != nil {
		return fmt.Errorf("checkpoint: purge: %w", err)
	}
	if s, ok := c.fs.(vfs.DirSyncer); ok {
		if err := s.SyncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("checkpoint: purge: %w", err)
		}
	}
	return nil
}

func (c *Checkpoint) write(path string, v any) error {
	data, err := encode(v)
	if err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", path, err)
	}
	if err := c.fs.WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// create writes a new log entry (or metadata.json) with put-if-absent
// (vfs.FS.CreateExclusive): the log was just checked not to hold it, so
// finding it there means another writer (a second driver on the
// checkpoint, its lock lost or never taken) wrote it in between. That
// writer won; this one gets an error wrapping ErrConflict and
// fs.ErrExist and must write nothing more for the batch. what says what
// was being written ("write offsets for batch 3"), for the error.
func (c *Checkpoint) create(path, what string, v any) error {
	data, err := encode(v)
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %s: %w", what, path, err)
	}
	err = c.fs.CreateExclusive(path, data)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("checkpoint: %s: %s was written by another writer since this one read the log "+
			"(a second driver on this checkpoint?); this writer lost: %w: %w", what, path, ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %w", what, err)
	}
	return nil
}

// read decodes <sub>/<n>.json into v and checks that *batch, the batch the
// file names inside, is n.
func (c *Checkpoint) read(sub string, n int64, v any, batch *int64) error {
	path := c.path(sub, n)
	data, err := c.fs.ReadFile(path)
	if err != nil {
		return fmt.Errorf("checkpoint: read %s batch %d: %w", sub, n, err)
	}
	if err := decode(path, data, v); err != nil {
		return err
	}
	if *batch != n {
		return fmt.Errorf("checkpoint: %s: holds batch %d: %w", path, *batch, ErrCorrupt)
	}
	return nil
}

// layout is the batch numbers present in offsets/ and commits/, sorted.
type layout struct {
	offsets, commits []int64
}

func (l layout) lastOffsets() (int64, bool) { return last(l.offsets) }
func (l layout) lastCommit() (int64, bool)  { return last(l.commits) }

func last(s []int64) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	return s[len(s)-1], true
}

func (l layout) commitState() string {
	if n, ok := l.lastCommit(); ok {
		return fmt.Sprintf("latest commit %d", n)
	}
	return "no commits"
}

func (l layout) offsetState() string {
	if n, ok := l.lastOffsets(); ok {
		return fmt.Sprintf("latest offsets %d", n)
	}
	return "no offsets"
}

// layout lists both logs and checks their shape:
//   - each log is a contiguous run of batches;
//   - every commit has its offsets;
//   - only the newest batch may lack a commit, apart from one batch below
//     the first commit that an interrupted Purge left behind.
func (c *Checkpoint) layout() (layout, error) {
	var l layout
	var err error
	if l.offsets, err = c.list(offsetsDir); err != nil {
		return l, err
	}
	if l.commits, err = c.list(commitsDir); err != nil {
		return l, err
	}
	offDir, comDir := filepath.Join(c.dir, offsetsDir), filepath.Join(c.dir, commitsDir)
	corrupt := func(dir, format string, args ...any) error {
		return fmt.Errorf("checkpoint: %s: %s: %w", dir, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	for _, log := range []struct {
		dir     string
		batches []int64
	}{{offDir, l.offsets}, {comDir, l.commits}} {
		for i := 1; i < len(log.batches); i++ {
			if prev, n := log.batches[i-1], log.batches[i]; n != prev+1 {
				return l, corrupt(log.dir, "batch %d follows batch %d (missing %s)", n, prev, missingRange(prev+1, n-1))
			}
		}
	}
	lo, hasOffsets := l.lastOffsets()
	lc, hasCommits := l.lastCommit()
	switch {
	case !hasCommits && len(l.offsets) > 1:
		return l, corrupt(comDir, "empty while %s holds batches %d..%d (only the newest batch may be uncommitted)", offDir, l.offsets[0], lo)
	case !hasCommits:
		return l, nil
	case !hasOffsets || l.commits[0] < l.offsets[0] || lc > lo:
		return l, corrupt(comDir, "commits %d..%d without their offsets in %s (%s)", l.commits[0], lc, offDir, l.offsetState())
	case lo > lc+1:
		return l, corrupt(offDir, "batches %s have offsets but no commit after the latest commit %d (only the newest batch may be uncommitted)", missingRange(lc+1, lo), lc)
	case l.offsets[0] < l.commits[0]-1:
		return l, corrupt(comDir, "batches %s have offsets but no commit before the first commit %d", missingRange(l.offsets[0], l.commits[0]-1), l.commits[0])
	}
	return l, nil
}

func missingRange(from, to int64) string {
	if from == to {
		return strconv.FormatInt(from, 10)
	}
	return fmt.Sprintf("%d..%d", from, to)
}

// list returns the batch numbers named in dir, sorted numerically. Names
// other than a canonical decimal number + ".json" are not ours and ignored.
func (c *Checkpoint) list(sub string) ([]int64, error) {
	dir := filepath.Join(c.dir, sub)
	names, err := c.fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", dir, err)
	}
	var ns []int64
	for _, name := range names {
		stem, ok := strings.CutSuffix(name, ".json")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != stem {
			continue
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns, nil
}

// sameOrConflict accepts a rewrite whose encoding equals the stored
// value's, and otherwise returns ErrConflict naming the fields that differ.
func sameOrConflict(path string, stored, given any) error {
	a, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	b, err := json.Marshal(given)
	if err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", path, err)
	}
	if bytes.Equal(a, b) {
		return nil
	}
	var fa, fb map[string]json.RawMessage
	_ = json.Unmarshal(a, &fa)
	_ = json.Unmarshal(b, &fb)
	var diffs []string
	all := map[string]json.RawMessage{}
	maps.Copy(all, fa)
	maps.Copy(all, fb)
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if !bytes.Equal(fa[k], fb[k]) {
			diffs = append(diffs, fmt.Sprintf("%s stored %s, given %s", k, short(fa[k]), short(fb[k])))
		}
	}
	return fmt.Errorf("checkpoint: %s: exists with different content (%s): %w", path, strings.Join(diffs, "; "), ErrConflict)
}

func short(b json.RawMessage) string {
	if b == nil {
		return "nothing"
	}
	const max = 160
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// compact undoes the file's indentation inside a source offset, and turns
// JSON null back into nil.
func compact(b json.RawMessage) json.RawMessage {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil || out.String() == "null" {
		return nil
	}
	return out.Bytes()
}

const epochName = "epoch.json"

type epochEntry struct {
	Epoch int64 `json:"epoch"`
}

// NextEpoch counts one more owner of the checkpoint and returns the
// count: each start of the query (under Lock) gets a higher epoch than any
// before it. Executors that ran tasks for an earlier epoch refuse its
// tasks from then on, so a driver that lost the checkpoint (a zombie after
// a partition) can no longer run anything.
func (c *Checkpoint) NextEpoch() (int64, error) {
	path := filepath.Join(c.dir, epochName)
	var e epochEntry
	data, err := c.fs.ReadFile(path)
	switch {
	case err == nil:
		if err := decode(path, data, &e); err != nil {
			return 0, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("checkpoint: read %s: %w", path, err)
	}
	e.Epoch++
	if err := c.write(path, e); err != nil {
		return 0, err
	}
	return e.Epoch, nil
}
