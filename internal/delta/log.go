package delta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/internal/vfs"
)

// LogDir is the name of a table's log directory.
const LogDir = "_delta_log"

const lastCheckpointFile = "_last_checkpoint"

// Table is a Delta table's location: its root directory (a local path or a
// location inside fsys) and its log under it.
type Table struct {
	fs   vfs.FS
	root string
}

// Open returns the table at root on fsys; nothing is read yet.
func Open(fsys vfs.FS, root string) *Table {
	return &Table{fs: fsys, root: root}
}

// Root is the table's location as given to Open.
func (t *Table) Root() string { return t.root }

func (t *Table) logPath(name string) string { return path.Join(t.root, LogDir, name) }

// CommitName is the name of version v's commit file.
func CommitName(v int64) string { return fmt.Sprintf("%020d.json", v) }

// CheckpointName is the name of version v's single-part checkpoint.
func CheckpointName(v int64) string { return fmt.Sprintf("%020d.checkpoint.parquet", v) }

// Snapshot is the state of a table at one version. Files and Txns are the
// snapshot's own; callers must not change them.
type Snapshot struct {
	Table    string // the root, for error messages
	Version  int64
	Protocol Protocol
	Metadata Metadata
	Files    map[string]*Add  // by path as written in the log
	Txns     map[string]int64 // appId -> highest committed version
}

// TxnVersion is the last version application appID committed, or -1.
func (s *Snapshot) TxnVersion(appID string) int64 {
	if v, ok := s.Txns[appID]; ok {
		return v
	}
	return -1
}

// SortedFiles returns the snapshot's files ordered by path.
func (s *Snapshot) SortedFiles() []*Add {
	out := make([]*Add, 0, len(s.Files))
	for _, a := range s.Files {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FilePath turns an add's path (a URI relative to the table, or an
// absolute file URI) into a path on the table's filesystem.
func (s *Snapshot) FilePath(p string) (string, error) {
	fp, err := FilePath(s.Table, p)
	if err != nil {
		return "", fmt.Errorf("version %d: %w", s.Version, err)
	}
	return fp, nil
}

// FilePath turns an add or remove path of the table at root into a path on
// the table's filesystem.
func FilePath(root, p string) (string, error) {
	u, err := url.Parse(p)
	if err != nil {
		return "", fmt.Errorf("%w: table %s: file path %q: %v", ErrCorrupt, root, p, err)
	}
	if u.Scheme == "" {
		return path.Join(root, filepath.ToSlash(u.Path)), nil
	}
	if u.Scheme == "file" {
		return u.Path, nil
	}
	return "", fmt.Errorf("%w: table %s: file %q on another store", ErrUnsupported, root, p)
}

func (s *Snapshot) clone() *Snapshot {
	c := *s
	c.Files = make(map[string]*Add, len(s.Files))
	for k, v := range s.Files {
		c.Files[k] = v
	}
	c.Txns = make(map[string]int64, len(s.Txns))
	for k, v := range s.Txns {
		c.Txns[k] = v
	}
	return &c
}

// apply replays one action; file names the log file it came from.
func (s *Snapshot) apply(a *Action, file string) error {
	switch {
	case a.Add != nil:
		if len(a.Add.DeletionVector) > 0 && string(a.Add.DeletionVector) != "null" {
			return fmt.Errorf("%w: table %s: %s: file %s has a deletion vector", ErrUnsupported, s.Table, file, a.Add.Path)
		}
		s.Files[a.Add.Path] = a.Add
	case a.Remove != nil:
		delete(s.Files, a.Remove.Path)
	case a.MetaData != nil:
		s.Metadata = *a.MetaData
	case a.Protocol != nil:
		s.Protocol = *a.Protocol
	case a.Txn != nil:
		s.Txns[a.Txn.AppID] = a.Txn.Version
	}
	return nil
}

// logListing is what a listing of the log found.
type logListing struct {
	commits     map[int64]bool
	checkpoints map[int64][]string // version -> part names (complete sets only)
	latest      int64              // highest commit, -1 if none
}

func (t *Table) list() (*logListing, error) {
	names, err := t.fs.List(path.Join(t.root, LogDir))
	if err != nil {
		return nil, fmt.Errorf("delta: table %s: list %s: %w", t.root, LogDir, err)
	}
	l := &logListing{commits: map[int64]bool{}, checkpoints: map[int64][]string{}, latest: -1}
	parts := map[int64]map[string]int{} // version -> name -> total parts
	for _, n := range names {
		digits, rest, ok := strings.Cut(n, ".")
		if !ok || len(digits) != 20 {
			continue
		}
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			continue
		}
		switch {
		case rest == "json":
			l.commits[v] = true
			l.latest = max(l.latest, v)
		case rest == "checkpoint.parquet":
			l.checkpoints[v] = []string{n}
		case strings.HasPrefix(rest, "checkpoint.") && strings.HasSuffix(rest, ".parquet"):
			// multi-part: <v>.checkpoint.<part>.<parts>.parquet
			f := strings.Split(strings.TrimSuffix(strings.TrimPrefix(rest, "checkpoint."), ".parquet"), ".")
			if len(f) != 2 {
				continue // a UUID-named (v2) checkpoint: not read here
			}
			total, err := strconv.Atoi(f[1])
			if err != nil {
				continue
			}
			if parts[v] == nil {
				parts[v] = map[string]int{}
			}
			parts[v][n] = total
		}
	}
	for v, ps := range parts {
		if _, single := l.checkpoints[v]; single {
			continue
		}
		var names []string
		total := 0
		for n, tot := range ps {
			names = append(names, n)
			total = tot
		}
		if len(names) == total {
			sort.Strings(names)
			l.checkpoints[v] = names
		}
	}
	return l, nil
}

// Latest reads the table's newest snapshot.
func (t *Table) Latest() (*Snapshot, error) { return t.Snapshot(-1) }

// Snapshot reads the table at version (-1: the latest). A table without a
// log is ErrNoTable; a version not in the log is ErrNoVersion.
func (t *Table) Snapshot(version int64) (*Snapshot, error) {
	l, err := t.list()
	if err != nil {
		return nil, err
	}
	if l.latest < 0 {
		return nil, fmt.Errorf("%w: %s has no commits in %s", ErrNoTable, t.root, LogDir)
	}
	if version < 0 {
		version = l.latest
	}
	if version > l.latest {
		return nil, fmt.Errorf("%w: table %s: version %d, latest is %d", ErrNoVersion, t.root, version, l.latest)
	}
	cp := t.checkpointFor(l, version)
	s := &Snapshot{Table: t.root, Version: -1, Files: map[string]*Add{}, Txns: map[string]int64{}}
	if cp >= 0 {
		if err := t.readCheckpoint(s, cp, l.checkpoints[cp]); err != nil {
			return nil, err
		}
		s.Version = cp
	} else if !l.commits[0] {
		return nil, fmt.Errorf("%w: table %s: version %d: no checkpoint at or below it and %s is gone (log cleaned up)", ErrNoVersion, t.root, version, CommitName(0))
	}
	return t.replay(s, version, l)
}

// Update brings s up to the table's latest version (s itself is not
// changed): it reads the commits after s.Version one by one until one is
// missing, without listing the log, so a long-running writer's cost per
// batch does not grow with the log.
func (t *Table) Update(s *Snapshot) (*Snapshot, error) {
	var out *Snapshot
	for v := s.Version + 1; ; v++ {
		name := path.Join(LogDir, CommitName(v))
		b, err := t.fs.ReadFile(t.logPath(CommitName(v)))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: version %d: read %s: %v", ErrCorrupt, t.root, v, name, err)
		}
		acts, err := ParseCommit(b)
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: version %d: %s: %v", ErrCorrupt, t.root, v, name, err)
		}
		if out == nil {
			out = s.clone()
		}
		for i := range acts {
			if err := out.apply(&acts[i], name); err != nil {
				return nil, err
			}
		}
		out.Version = v
	}
	if out == nil {
		return s, nil
	}
	if err := CheckRead(out.Protocol, out.Metadata); err != nil {
		return nil, fmt.Errorf("table %s version %d: %w", t.root, out.Version, err)
	}
	return out, nil
}

// checkpointFor is the newest complete checkpoint at or below version, or
// -1. _last_checkpoint is only a hint: the listing decides.
func (t *Table) checkpointFor(l *logListing, version int64) int64 {
	if b, err := t.fs.ReadFile(t.logPath(lastCheckpointFile)); err == nil {
		var lc struct {
			Version int64 `json:"version"`
		}
		if json.Unmarshal(b, &lc) == nil && lc.Version == version && l.checkpoints[lc.Version] != nil {
			return lc.Version
		}
	}
	best := int64(-1)
	for v := range l.checkpoints {
		if v <= version && v > best {
			best = v
		}
	}
	return best
}

// replay applies the JSON commits after s.Version up to version.
func (t *Table) replay(s *Snapshot, version int64, l *logListing) (*Snapshot, error) {
	for v := s.Version + 1; v <= version; v++ {
		name := CommitName(v)
		if !l.commits[v] {
			return nil, fmt.Errorf("%w: table %s: version %d: %s is missing (commits %d..%d are needed)", ErrCorrupt, t.root, v, path.Join(LogDir, name), s.Version+1, version)
		}
		b, err := t.fs.ReadFile(t.logPath(name))
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: version %d: read %s: %v", ErrCorrupt, t.root, v, path.Join(LogDir, name), err)
		}
		acts, err := ParseCommit(b)
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: version %d: %s: %v", ErrCorrupt, t.root, v, path.Join(LogDir, name), err)
		}
		for i := range acts {
			if err := s.apply(&acts[i], path.Join(LogDir, name)); err != nil {
				return nil, err
			}
		}
		s.Version = v
	}
	if s.Metadata.SchemaString == "" {
		return nil, fmt.Errorf("%w: table %s: version %d has no metaData action", ErrCorrupt, t.root, version)
	}
	if err := CheckRead(s.Protocol, s.Metadata); err != nil {
		return nil, fmt.Errorf("table %s version %d: %w", t.root, version, err)
	}
	return s, nil
}

// ParseCommit parses a commit file: one JSON action per line.
func ParseCommit(b []byte) ([]Action, error) {
	var acts []Action
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	line := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var a Action
		if err := json.Unmarshal(l, &a); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		acts = append(acts, a)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if line == 0 {
		return nil, errors.New("empty commit file")
	}
	return acts, nil
}

// readerFeatures this package reads correctly: none change how the files
// it reads are interpreted.
var readerFeatures = map[string]bool{"timestampNtz": true}

// CheckRead refuses a protocol this package cannot read correctly.
func CheckRead(p Protocol, m Metadata) error {
	switch {
	case p.MinReaderVersion <= 1:
	case p.MinReaderVersion == 2:
		if mode := m.Configuration["delta.columnMapping.mode"]; mode != "" && mode != "none" {
			return fmt.Errorf("%w: column mapping mode %q", ErrUnsupported, mode)
		}
	case p.MinReaderVersion == 3:
		for _, f := range p.ReaderFeatures {
			if !readerFeatures[f] {
				return fmt.Errorf("%w: reader feature %q (protocol %d/%d)", ErrUnsupported, f, p.MinReaderVersion, p.MinWriterVersion)
			}
		}
	default:
		return fmt.Errorf("%w: reader version %d", ErrUnsupported, p.MinReaderVersion)
	}
	return nil
}

// writerFeatures this package honours when appending: append-only forbids
// removes, which it never writes.
var writerFeatures = map[string]bool{"appendOnly": true}

// CheckWrite refuses to append to a table whose protocol asks writers for
// more than this package does (invariants, constraints, generated columns...).
func CheckWrite(p Protocol) error {
	switch {
	case p.MinWriterVersion <= 2:
		return nil
	case p.MinWriterVersion == 7:
		for _, f := range p.WriterFeatures {
			if !writerFeatures[f] {
				return fmt.Errorf("%w: writer feature %q (protocol %d/%d)", ErrUnsupported, f, p.MinReaderVersion, p.MinWriterVersion)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: writer version %d (this writer implements 2)", ErrUnsupported, p.MinWriterVersion)
}

// Commit writes actions as version v with put-if-absent. When v exists
// already the error wraps ErrConflict (and fs.ErrExist) and names the file.
func (t *Table) Commit(v int64, actions []Action) error {
	var buf bytes.Buffer
	for i := range actions {
		b, err := json.Marshal(&actions[i])
		if err != nil {
			return fmt.Errorf("delta: table %s: version %d: encode action %d: %w", t.root, v, i, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	name := path.Join(LogDir, CommitName(v))
	err := t.fs.CreateExclusive(t.logPath(CommitName(v)), buf.Bytes())
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: table %s: version %d (%s) was committed by another writer first: %w", ErrConflict, t.root, v, name, err)
	}
	if err != nil {
		return fmt.Errorf("delta: table %s: write version %d (%s): %w", t.root, v, name, err)
	}
	return nil
}

// LatestVersion is the newest version in the log (listing only), or an
// error wrapping ErrNoTable.
func (t *Table) LatestVersion() (int64, error) {
	l, err := t.list()
	if err != nil {
		return -1, err
	}
	if l.latest < 0 {
		return -1, fmt.Errorf("%w: %s has no commits in %s", ErrNoTable, t.root, LogDir)
	}
	return l.latest, nil
}

// ReadCommit returns the actions of version v's commit file. A missing
// file wraps fs.ErrNotExist (the log was cleaned up, or v is in the
// future); one that does not parse wraps ErrCorrupt.
func (t *Table) ReadCommit(v int64) ([]Action, error) {
	name := path.Join(LogDir, CommitName(v))
	b, err := t.fs.ReadFile(t.logPath(CommitName(v)))
	if err != nil {
		return nil, fmt.Errorf("delta: table %s: version %d: read %s: %w", t.root, v, name, err)
	}
	acts, err := ParseCommit(b)
	if err != nil {
		return nil, fmt.Errorf("%w: table %s: version %d: %s: %v", ErrCorrupt, t.root, v, name, err)
	}
	return acts, nil
}
