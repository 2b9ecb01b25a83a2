package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicedata/sluice/internal/vfs"
)

// DefaultCacheBytes is the in-memory budget of a disk-backed store when
// DiskOptions leaves it 0: 64 MiB holds about 900 000 rows of the target
// state at memStore's 71 B/key, more than a micro-batch of the Nexmark
// queries touches, while a process with a handful of stateful ranges stays
// in the hundreds of MiB however large the state grows.
const DefaultCacheBytes = 64 << 20

// DefaultBlockCacheBytes is the size of the pebble block cache the disk
// stores of a process share when DiskOptions leaves BlockCacheBytes 0.
// pebble's default, 8 MiB per database, held neither the filter nor the
// index blocks of a few million keys: measured on the streaming window job
// (4 M keys), 70% of the CPU went to re-reading and decompressing them.
const DefaultBlockCacheBytes = 128 << 20

// DiskOptions places and sizes the local part of disk-backed stores.
type DiskOptions struct {
	// LocalDir is the root of the stores' local databases, one per store
	// under <LocalDir>/<operator>/<lo>-<hi>. It is only a cache of the
	// checkpoint files: anything in it may be deleted at any time the
	// store is closed, and is rebuilt from the files.
	LocalDir string
	// CacheBytes bounds the rows kept in memory after a Commit (the rows a
	// batch read or changed); 0 = DefaultCacheBytes.
	CacheBytes int64
	// BlockCacheBytes sizes the pebble block cache (uncompressed blocks,
	// and the memtables' reservations) that every open disk store of the
	// process with the same size shares; 0 = DefaultBlockCacheBytes. It
	// is memory outside the Go heap: GOMEMLIMIT does not count it.
	BlockCacheBytes int64
	// LogIndexes says when a Log store (a stream join's side) keeps the
	// index entries its TimeColumn and PartKey ask for: IndexAuto (the
	// default) while its rows outlive many commits, IndexAlways, or
	// IndexNever. Other stores always keep theirs.
	LogIndexes IndexMode
}

// IndexMode is DiskOptions.LogIndexes.
type IndexMode int

const (
	// IndexAuto keeps a Log store's indexes while its live rows are at
	// least IndexOnLife times the rows a commit adds (smoothed over
	// commits): rows that stay for that many batches. It builds them from
	// the rows when the ratio reaches it and drops them when the ratio
	// falls below IndexOffLife.
	//
	// Why: every row then costs an entry in each index, written and
	// deleted through pebble's compactions, while a batch that reads every
	// row instead pays once per batch the row stays. Measured on q7 on the
	// disk backend (benchmarks/RESULTS.md): rows staying about 3 batches
	// (500 000-row batches) 41 CPU-s scanning, 72 indexed; about 11
	// batches 97 and 114; about 140 batches 79 and 35.
	IndexAuto IndexMode = iota
	IndexAlways
	IndexNever
)

// The live rows per rows added, smoothed, at which IndexAuto builds a Log
// store's indexes (IndexOnLife) and drops them (IndexOffLife).
const (
	IndexOnLife  = 32
	IndexOffLife = 12
)

// blockCaches are the process's shared pebble block caches by size, each
// with the number of open stores using it; the last store to close drops
// the cache's own reference (a pebble.DB holds one of its own while open).
var blockCaches = struct {
	sync.Mutex
	m map[int64]*sharedCache
}{m: map[int64]*sharedCache{}}

type sharedCache struct {
	c    *pebble.Cache
	refs int
}

func acquireBlockCache(size int64) *pebble.Cache {
	blockCaches.Lock()
	defer blockCaches.Unlock()
	sc := blockCaches.m[size]
	if sc == nil {
		sc = &sharedCache{c: pebble.NewCache(size)}
		blockCaches.m[size] = sc
	}
	sc.refs++
	return sc.c
}

func releaseBlockCache(size int64) {
	blockCaches.Lock()
	defer blockCaches.Unlock()
	sc := blockCaches.m[size]
	if sc == nil {
		panic(fmt.Sprintf("state: release of block cache size %d that is not held", size))
	}
	if sc.refs--; sc.refs == 0 {
		delete(blockCaches.m, size)
		sc.c.Unref()
	}
}

// Local database layout (keys are ordered bytewise, like canonical keys),
// in two pebble databases: the rows, in <local>,
//
//	'r' ++ canonical key                      -> raw value row (valueCodec)
//	'm'                                        -> meta (version, live count,
//	                                              checksum of the file that
//	                                              recorded it, identity)
//
// and, for a store with a TimeColumn or a PartKey, their index entries in
// <local>.index (indexDir),
//
//	't' ++ be64(time ^ 1<<63) ++ canonical key -> "" (StoreSpec.TimeColumn)
//	'x' ++ part ++ canonical key               -> "" (StoreSpec.PartKey; the
//	                                              part as partIndex cuts it:
//	                                              self-delimiting, so a part's
//	                                              entries are one key range)
//	'm'                                        -> the rows' meta of the same
//	                                              version
//
// Two databases, because the three key orders differ: a stream join's rows
// come in key order, so their sstables move down the LSM without being
// rewritten, but a flush holding index entries too spans the index's key
// ranges and overlaps every sstable below it, and compacting it rewrote
// the rows again and again (q7 at the default rate: compactions 4.6 ->
// 21.6 CPU-s with the join's two indexes in the rows' database).
//
// Each meta key is written in the same pebble batch as its database's
// entries of its version, the index's batch first: a database is at the
// version its meta says or has no meta, and the pair is reused only when
// both metas are equal.
const (
	pfxRow  byte = 'r'
	pfxTime byte = 't'
	pfxPart byte = 'x'
)

var metaKey = []byte{'m'}

// metaMagic starts the meta value; a change of layout changes it, so an
// old database is rebuilt instead of misread.
const metaMagic = "sluice-state-disk-3\x00"

// diskStore is the disk-backed Store: the committed state lives in a local
// pebble database, the rows a batch reads or changes in a memStore used as
// a cache (rows read from pebble are inserted untracked, so the cache's
// dirty and tombstone marks are exactly the batch's changes, and its
// writeDelta writes the same delta bytes memStore would). Commit writes the
// delta (and, when one is due, a snapshot streamed from the merged state)
// before it touches pebble, so the files stay the source of
// truth: pebble is written without fsync and rebuilt from the files when it
// cannot prove it is at the version asked for.
//
// Difference from memStore a caller can see: after a Commit that left the
// cache over CacheBytes, the next Lookup, Put, Delete or EvictWhere drops
// the cache, and with it the slots handed out before that Commit
// (operators use slots within a batch only).
type diskStore struct {
	cfg    Config
	opts   DiskOptions
	local  string    // the database directory
	unlock io.Closer // <local>.lock, held while the store is open
	db     *pebble.DB
	ix     *pebble.DB    // the index entries (indexDir); nil without TimeColumn and PartKey, or while a Log store keeps none
	blocks *pebble.Cache // shared (blockCaches), released by Close
	cache  *memStore
	valc   *codec // raw (lossless) value rows: floats keep -0 and NaN bits
	ident  string

	version int64
	count   int64 // live keys at version
	// snapAt, since: the last snapshot's version and the rows of the
	// deltas after it (snapshotDue), kept in the meta with version.
	snapAt, since int64
	loaded        bool
	closed        bool
	// broken is set when a Commit wrote the index database but not the
	// rows' one: the two disagree until the store is reopened (which
	// rebuilds them), so every call fails with it.
	broken error
	// lives and adds are the live rows after a commit and the rows it
	// added, smoothed over commits (IndexAuto; adds < 0 before the first
	// commit); added counts the rows the pending commit adds.
	lives, adds float64
	added       int64
	tcol        int // TimeColumn as EvictWhere's col, -1 = none

	// visited counts the pebble keys ScanWhere and EvictWhere read through
	// the time index, partVisited those ScanPart reads through the part
	// index (tests check they are only the rows returned).
	visited, partVisited int64
	trim                 bool // the cache is over budget: drop it before the next key operation

	// Scratch.
	rk, tk  []byte
	pk      []byte
	fillBuf []byte // fill's scratch: values read from pebble
	miss    []int  // fill's scratch: rows the cache missed, then those found
	ends    []int  // fill's scratch: the found values' ends in fillBuf
	vbuf    []byte
	voffs   []int
}

var _ Store = (*diskStore)(nil)

// OpenDisk opens cfg's store at version with the disk backend, its local
// database under opts.LocalDir: reused when it proves to be at exactly
// version of the same store, else rebuilt from the checkpoint files (the
// last snapshot at or before version, then the deltas after it). Errors are
// Open's, naming the file, and an error naming the local directory when it
// cannot be created or written.
func OpenDisk(cfg Config, opts DiskOptions, version int64) (Store, error) {
	d, err := openDisk(cfg, opts, version)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func openDisk(cfg Config, opts DiskOptions, version int64) (*diskStore, error) {
	if opts.LocalDir == "" {
		return nil, errors.New("state: disk options: LocalDir is empty")
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.BlockCacheBytes <= 0 {
		opts.BlockCacheBytes = DefaultBlockCacheBytes
	}
	c, err := newStore(cfg)
	if err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, fmt.Errorf("state: open version %d: negative version", version)
	}
	c.sumFiles = true
	vt, _ := typesOf(cfg.ValueSchema)
	d := &diskStore{
		cfg:   c.cfg,
		opts:  opts,
		cache: c,
		valc:  newCodec(rawTypes(vt)),
		tcol:  -1,
		adds:  -1,
	}
	for i, f := range append(cfg.KeySchema.Fields(), cfg.ValueSchema.Fields()...) {
		if cfg.TimeColumn != "" && f.Name == cfg.TimeColumn {
			d.tcol = i
		}
	}
	d.ident = fmt.Sprintf("%s\x00%s\x00%d\x00%d-%d\x00%s\x00%s", cfg.Dir, cfg.Operator, cfg.KeyGroups,
		cfg.Lo, cfg.Hi, fieldsString(c.fileSch), cfg.TimeColumn)
	if len(cfg.PartKey) > 0 {
		// A database written without the index (or another) is rebuilt.
		d.ident += fmt.Sprintf("\x00part %q", cfg.PartKey)
	}
	if err := d.claim(filepath.Join(opts.LocalDir, cfg.Operator, fmt.Sprintf("%d-%d", cfg.Lo, cfg.Hi))); err != nil {
		return nil, err
	}
	d.blocks = acquireBlockCache(opts.BlockCacheBytes)
	if err := d.openLocal(version); err != nil {
		d.unlock.Close()
		releaseBlockCache(opts.BlockCacheBytes)
		return nil, err
	}
	d.cacheIndexes(c)
	return d, nil
}

// rawTypes is the value codec's recipe: fixed-width numbers as their raw
// little-endian bytes (canonical bytes fold -0 and NaNs, which keys want and
// values must not).
func rawTypes(vt []colType) []colType {
	out := make([]colType, len(vt))
	for i, t := range vt {
		switch t.kind {
		case kSigned, kUnsigned, kFloat32, kFloat64:
			t.kind = kFixedBinary
		}
		out[i] = t
	}
	return out
}

// claim takes the first local directory base, base~1, ... whose lock no
// other open store (of this or another process) holds: two stores never
// share a database, and a second copy of a store (a test reopening, an
// executor racing a retry) gets a cache of its own.
func (d *diskStore) claim(base string) error {
	var lastErr error
	for i := 0; i < 64; i++ {
		dir := base
		if i > 0 {
			dir = fmt.Sprintf("%s~%d", base, i)
		}
		claimed.Lock()
		taken := claimed.dirs[dir]
		claimed.dirs[dir] = true
		claimed.Unlock()
		if taken {
			continue
		}
		l, err := vfs.OS{}.Lock(dir + ".lock")
		if err == nil {
			d.local, d.unlock = dir, dirClaim{dir, l}
			return nil
		}
		unclaim(dir)
		if !errors.Is(err, vfs.ErrLocked) {
			return fmt.Errorf("state: local state directory %s: %w", dir, err)
		}
		lastErr = err
	}
	return fmt.Errorf("state: local state directory %s: 64 copies are open: %w", base, lastErr)
}

// claimed holds the local directories of this process's open stores. The
// flock alone is not enough: a store leaked without Close keeps its pebble
// database open (pebble refuses a second one in the process) while the
// collector may close its lock file.
var claimed = struct {
	sync.Mutex
	dirs map[string]bool
}{dirs: map[string]bool{}}

func unclaim(dir string) {
	claimed.Lock()
	delete(claimed.dirs, dir)
	claimed.Unlock()
}

// dirClaim releases a claimed directory: its flock, then the process's
// claim.
type dirClaim struct {
	dir  string
	lock io.Closer
}

func (c dirClaim) Close() error {
	err := c.lock.Close()
	unclaim(c.dir)
	return err
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("state: pebble: "+format, args...))
}

func (d *diskStore) pebbleOptions(mustExist bool) *pebble.Options {
	o := &pebble.Options{
		// The delta files are the durable record; a database that lost
		// its unflushed memtable has an older meta and is rebuilt.
		DisableWAL:       true,
		ErrorIfNotExists: mustExist,
		Logger:           quietLogger{},
		// Set, so that pebble does not wrap it in its disk-health
		// checker, whose goroutine a failed Open (a damaged cache)
		// leaks; a slow disk would only be logged, and we log nothing.
		FS:    pebbleFS,
		Cache: d.blocks,
	}
	// Lookups of keys new to the state are most of a batch's misses.
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	return o
}

// openPebble opens dir, turning a panic of a damaged database into an
// error (the database is a cache: the caller rebuilds it).
func (d *diskStore) openPebble(dir string, mustExist bool) (db *pebble.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("pebble: %v", p)
		}
	}()
	return pebble.Open(dir, d.pebbleOptions(mustExist))
}

// indexDir is the index database's directory, next to the rows'.
func (d *diskStore) indexDir() string { return d.local + ".index" }

// wantsIndex reports whether the spec asks for index entries (an index
// database).
func (d *diskStore) wantsIndex() bool { return d.tcol >= 0 || d.cache.pix != nil }

// optionalIndex reports whether the store keeps its index entries only
// when they pay (DiskOptions.LogIndexes), starting without them.
func (d *diskStore) optionalIndex() bool {
	return d.wantsIndex() && d.cfg.Log && d.opts.LogIndexes != IndexAlways
}

// closeDBs closes the databases (after a failed open).
func (d *diskStore) closeDBs() {
	if d.db != nil {
		d.db.Close()
	}
	if d.ix != nil {
		d.ix.Close()
	}
	d.db, d.ix = nil, nil
}

type diskMeta struct {
	version, count int64
	snapAt, since  int64 // the store's snapshotDue inputs at version
	kind           string
	sum            uint32
	ident          string
}

func (m diskMeta) encode() []byte {
	b := binary.BigEndian.AppendUint64([]byte(metaMagic), uint64(m.version))
	b = binary.BigEndian.AppendUint64(b, uint64(m.count))
	b = binary.BigEndian.AppendUint64(b, uint64(m.snapAt))
	b = binary.BigEndian.AppendUint64(b, uint64(m.since))
	b = binary.BigEndian.AppendUint32(b, m.sum)
	b = append(b, byte(len(m.kind)))
	b = append(b, m.kind...)
	return append(b, m.ident...)
}

func decodeMeta(b []byte) (diskMeta, bool) {
	var m diskMeta
	rest, ok := bytes.CutPrefix(b, []byte(metaMagic))
	if !ok || len(rest) < 37 {
		return m, false
	}
	m.version = int64(binary.BigEndian.Uint64(rest))
	m.count = int64(binary.BigEndian.Uint64(rest[8:]))
	m.snapAt = int64(binary.BigEndian.Uint64(rest[16:]))
	m.since = int64(binary.BigEndian.Uint64(rest[24:]))
	m.sum = binary.BigEndian.Uint32(rest[32:])
	kl := int(rest[36])
	if len(rest) < 37+kl {
		return m, false
	}
	m.kind = string(rest[37 : 37+kl])
	m.ident = string(rest[37+kl:])
	return m, true
}

// openLocal makes d.db the state at version: the local database when its
// meta proves it is that version of this store, else a rebuild.
func (d *diskStore) openLocal(version int64) error {
	if version > 0 && d.reuse(version) {
		return nil
	}
	for _, dir := range []string{d.local, d.indexDir()} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("state: local state directory %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(d.local, 0o755); err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	db, err := d.openPebble(d.local, false)
	if err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	d.db, d.count, d.version = db, 0, 0
	if d.wantsIndex() && !d.optionalIndex() {
		if d.ix, err = d.openPebble(d.indexDir(), false); err != nil {
			d.closeDBs()
			return fmt.Errorf("state: local state directory %s: %w", d.indexDir(), err)
		}
	}
	if err := d.rebuild(version); err != nil {
		d.closeDBs()
		return err
	}
	d.loaded = version > 0
	return nil
}

// reuse opens the local database if its meta names this store at version
// and the checkpoint file that recorded version still has the bytes it
// had: a restart of the same query finds its state without reading the
// snapshot and deltas.
func (d *diskStore) reuse(version int64) bool {
	if _, err := os.Stat(d.local); err != nil {
		return false
	}
	db, err := d.openPebble(d.local, true)
	if err != nil {
		return false
	}
	v, closer, err := db.Get(metaKey)
	var m diskMeta
	ok := false
	if err == nil {
		m, ok = decodeMeta(v)
		v = bytes.Clone(v)
		closer.Close()
	}
	var ix *pebble.DB
	_, statErr := os.Stat(d.indexDir())
	if ok && d.optionalIndex() && statErr != nil {
		// A Log store that kept no indexes.
	} else if ok && d.wantsIndex() {
		// The index database must be at the same version.
		if ix, err = d.openPebble(d.indexDir(), true); err != nil {
			ok = false
		} else if iv, closer, err := ix.Get(metaKey); err != nil {
			ok = false
		} else {
			ok = bytes.Equal(iv, v)
			closer.Close()
		}
	}
	if ok && m.ident == d.ident && m.version == version && (m.kind == kindDelta || m.kind == kindSnapshot) {
		data, err := d.cfg.FS.ReadFile(filepath.Join(d.cache.dir, fileName(version, m.kind)))
		ok = err == nil && crc32.Checksum(data, castagnoli) == m.sum
	} else {
		ok = false
	}
	if !ok {
		db.Close()
		if ix != nil {
			ix.Close()
		}
		return false
	}
	d.db, d.ix, d.version, d.count = db, ix, version, m.count
	d.snapAt, d.since = m.snapAt, m.since
	return true
}

// rebuild loads version into the empty database: the last snapshot at or
// before it, then the deltas after it, each checked as memStore checks them.
func (d *diskStore) rebuild(version int64) error {
	m := diskMeta{ident: d.ident, kind: kindDelta}
	if version > 0 {
		names, err := d.cfg.FS.List(d.cache.dir)
		if err != nil {
			return fmt.Errorf("state: open version %d: %w", version, err)
		}
		snap := lastSnapshot(names, version)
		if snap > 0 {
			if m.sum, _, err = d.applyFile(snap, kindSnapshot); err != nil {
				return err
			}
			m.kind = kindSnapshot
		}
		m.snapAt = snap
		for v := snap + 1; v <= version; v++ {
			var rows int64
			if m.sum, rows, err = d.applyFile(v, kindDelta); err != nil {
				return err
			}
			m.kind, m.since = kindDelta, m.since+rows
		}
	}
	m.version, m.count = version, d.count
	d.snapAt, d.since = m.snapAt, m.since
	if d.ix != nil {
		if err := d.ix.Set(metaKey, m.encode(), pebble.NoSync); err != nil {
			return fmt.Errorf("state: local state directory %s: %w", d.indexDir(), err)
		}
	}
	if err := d.db.Set(metaKey, m.encode(), pebble.NoSync); err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	d.version = version
	return nil
}

// applyFile writes state file v of kind into the database (into an empty
// one for a snapshot), checked as memStore.loadFile checks it, and returns
// the checksum of its bytes.
func (d *diskStore) applyFile(v int64, kind string) (uint32, int64, error) {
	c := d.cache
	var rows int64
	nk := len(c.keyTypes)
	b, xb := d.newBatches()
	defer func() { closeBatches(b, xb) }()
	var (
		buf, kb, vb       []byte
		offs, koffs, voff []int
		dbErr             error
	)
	evict := func(e evictions) error {
		// Before the delta's rows (format.md), in a batch of its own:
		// below reads the database, which the rows' batch does not change.
		eb, xeb := d.newBatches()
		defer closeBatches(eb, xeb)
		for _, col := range e.cols() {
			var rows rowBuf
			if err := d.below(col, e[col], false, &rows); err != nil {
				return err
			}
			for i := 0; i < rows.n(); i++ {
				if err := d.del(eb, xeb, rows.key(i)); err != nil {
					return err
				}
			}
		}
		return d.commitBatches(eb, xeb)
	}
	sum, err := c.readStateFile(v, kind, evict, func(rec arrow.Record, crc io.Writer) error {
		n := int(rec.NumRows())
		rows += int64(n)
		cols := rec.Columns()
		buf, offs = c.fullc.encode(cols, n, buf, offs)
		crc.Write(buf)
		del := cols[len(cols)-1]
		if del.NullN() > 0 {
			return fmt.Errorf("%s has nulls", deletedField)
		}
		bits := del.Data().Buffers()[1].Bytes()
		kb, koffs = c.keyc.encode(cols[:nk], n, kb, koffs)
		vb, voff = d.valc.encode(cols[nk:len(cols)-1], n, vb, voff)
		for i := 0; i < n; i++ {
			k := kb[koffs[i]:koffs[i+1]]
			if bitutil.BitIsSet(bits, del.Data().Offset()+i) {
				if kind == kindSnapshot {
					return fmt.Errorf("row %d of a snapshot is a tombstone", i)
				}
				if dbErr = d.del(b, xb, k); dbErr != nil {
					return dbErr
				}
				continue
			}
			if dbErr = d.set(b, xb, k, vb[voff[i]:voff[i+1]], kind == kindDelta); dbErr != nil {
				return dbErr
			}
		}
		// A file's keys are distinct, so committing part of it early
		// changes no lookup of the rest; it bounds the batch's memory.
		if b.Len() >= 32<<20 {
			if dbErr = d.commitBatches(b, xb); dbErr != nil {
				return dbErr
			}
			closeBatches(b, xb)
			b, xb = d.newBatches()
		}
		return nil
	})
	if dbErr != nil {
		return 0, 0, fmt.Errorf("state: local state directory %s: load version %d: %w", d.local, v, dbErr)
	}
	if err != nil {
		return 0, 0, err
	}
	if err := d.commitBatches(b, xb); err != nil {
		return 0, 0, fmt.Errorf("state: local state directory %s: load version %d: %w", d.local, v, err)
	}
	return sum, rows, nil
}

// newBatches returns a batch of the rows' database and one of the index
// database (nil without one).
func (d *diskStore) newBatches() (b, xb *pebble.Batch) {
	b = d.db.NewBatch()
	if d.ix != nil {
		xb = d.ix.NewBatch()
	}
	return b, xb
}

func closeBatches(b, xb *pebble.Batch) {
	b.Close()
	if xb != nil {
		xb.Close()
	}
}

// commitBatches commits the index batch, then the rows' one, when the disk
// has room for both. A failure of the second leaves the databases apart:
// the store is broken until reopened (which rebuilds them).
func (d *diskStore) commitBatches(b, xb *pebble.Batch) error {
	n := b.Len()
	if xb != nil {
		n += xb.Len()
	}
	if err := d.checkSpace(n); err != nil {
		return err
	}
	if xb != nil {
		if err := xb.Commit(pebble.NoSync); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		if xb != nil {
			d.broken = fmt.Errorf("state: local state directory %s: the index database is ahead of the rows' (%v): reopen the store", d.local, err)
		}
		return err
	}
	return nil
}

func (d *diskStore) rowKey(k []byte) []byte {
	d.rk = append(append(d.rk[:0], pfxRow), k...)
	return d.rk
}

// partKey is the part index entry of key k, its value columns (if PartKey
// has any) from raw value row v or, when v is nil, from cache slot sl.
func (d *diskStore) partKey(k []byte, sl int32, v []byte) []byte {
	d.pk = d.cache.partBytes(append(d.pk[:0], pfxPart), k, sl, v, d.valc)
	d.pk = append(d.pk, k...)
	return d.pk
}

func (d *diskStore) timeKey(t int64, k []byte) []byte {
	d.tk = append(d.tk[:0], pfxTime)
	d.tk = binary.BigEndian.AppendUint64(d.tk, uint64(t)^1<<63)
	d.tk = append(d.tk, k...)
	return d.tk
}

// get returns a copy of the committed value of key k, if it is live.
func (d *diskStore) get(k []byte) ([]byte, bool, error) {
	return d.getAppend(nil, k)
}

// getAppend appends the committed value of key k, if it is live, to dst.
func (d *diskStore) getAppend(dst, k []byte) ([]byte, bool, error) {
	v, closer, err := d.db.Get(d.rowKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	dst = append(dst, v...)
	closer.Close()
	return dst, true, nil
}

// set puts k -> v into b and its index entries into xb (nil: none kept),
// keeping the live count; check says k may be live already (its old index
// entries are then removed).
func (d *diskStore) set(b, xb *pebble.Batch, k, v []byte, check bool) error {
	existed := false
	if check {
		old, ok, err := d.get(k)
		if err != nil {
			return err
		}
		existed = ok
		if ok && xb != nil && d.cache.pix != nil && d.cache.pix.vals {
			// The row's part may change with its value: the old entry goes
			// (a Set of the same entry below wins in the batch).
			if err := xb.Delete(d.partKey(k, -1, old), nil); err != nil {
				return err
			}
		}
		if ok && xb != nil && d.tcol >= 0 {
			if t, ok := d.rowInt(d.tcol, k, old); ok {
				if err := xb.Delete(d.timeKey(t, k), nil); err != nil {
					return err
				}
			}
		}
	}
	if !existed {
		d.count++
	}
	return d.put(b, xb, k, v)
}

// put writes k -> v into b and its index entries into xb.
func (d *diskStore) put(b, xb *pebble.Batch, k, v []byte) error {
	if err := b.Set(d.rowKey(k), v, nil); err != nil {
		return err
	}
	return d.putIndex(xb, k, v)
}

// putIndex writes the index entries of committed row k -> v into xb (none
// when xb is nil: no index database).
func (d *diskStore) putIndex(xb *pebble.Batch, k, v []byte) error {
	if xb == nil {
		return nil
	}
	if d.cache.pix != nil {
		if err := xb.Set(d.partKey(k, -1, v), nil, nil); err != nil {
			return err
		}
	}
	if d.tcol >= 0 {
		if t, ok := d.rowInt(d.tcol, k, v); ok {
			return xb.Set(d.timeKey(t, k), nil, nil)
		}
	}
	return nil
}

// del removes k (if live) from b and its index entries from xb, keeping
// the live count.
func (d *diskStore) del(b, xb *pebble.Batch, k []byte) error {
	old, ok, err := d.get(k)
	if err != nil || !ok {
		return err
	}
	d.count--
	if err := b.Delete(d.rowKey(k), nil); err != nil {
		return err
	}
	if xb == nil {
		return nil
	}
	if d.cache.pix != nil {
		if err := xb.Delete(d.partKey(k, -1, old), nil); err != nil {
			return err
		}
	}
	if d.tcol >= 0 {
		if t, ok := d.rowInt(d.tcol, k, old); ok {
			return xb.Delete(d.timeKey(t, k), nil)
		}
	}
	return nil
}

// rowInt decodes signed column col (EvictWhere's numbering) of a committed
// row: canonical key k, raw value v.
func (d *diskStore) rowInt(col int, k, v []byte) (int64, bool) {
	nk := len(d.cache.keyTypes)
	if col < nk {
		return d.cache.keyIntOf(k, col)
	}
	b, ok := d.valc.field(v, col-nk)
	if !ok {
		return 0, false
	}
	return leInt(b, len(b)), true
}

func leInt(b []byte, w int) int64 {
	if w == 4 {
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// cacheInt is rowInt of cache slot sl.
func (d *diskStore) cacheInt(sl int32, col int) (int64, bool) {
	c := d.cache
	nk := len(c.keyTypes)
	if col < nk {
		return c.keyInt(sl, col)
	}
	cl := &c.vals[col-nk]
	if !bitutil.BitIsSet(cl.valid, int(sl)) {
		return 0, false
	}
	w := cl.t.width
	return leInt(cl.data[int(sl)*w:], w), true
}

func (d *diskStore) checkOpen() error {
	if d.closed {
		return ErrClosed
	}
	return d.broken
}

func (d *diskStore) Version() int64 { return d.version }
func (d *diskStore) Loaded() bool   { return d.loaded }

// Len is the committed count plus the batch's new keys minus its
// tombstones (rows the cache holds clean are counted in d.count).
func (d *diskStore) Len() int {
	c := d.cache
	n := d.count - int64(c.ntomb)
	for _, sl := range c.dirty {
		if c.flags[sl]&(fLive|fNew) == fLive|fNew {
			n++
		}
	}
	return int(n)
}

// SizeBytes is the cache's memory; pebble's memtable and block cache are
// bounded by its options and not counted.
func (d *diskStore) SizeBytes() int64 { return d.cache.SizeBytes() }

// fill reads the keys encoded in the cache's scratch (rows [0, n)) that the
// cache does not hold from pebble into it, as clean rows: after it, the
// cache answers every question about them as memStore would.
//
// The misses are read in key order through one iterator rather than with a
// Get each: a Get builds and drops an iterator stack per key, and keys in
// order read each block (and each filter and index block) once per call
// instead of once per key. SeekPrefixGE (the whole row key is the prefix:
// pebble's default Split) consults the bloom filters, so a key new to the
// state costs a filter probe, not a data block.
func (d *diskStore) fill(n int) error {
	c := d.cache
	miss := d.miss[:0]
	for i := 0; i < n; i++ {
		r := c.row(i)
		if _, sl := c.find(c.hash(r), r); sl < 0 {
			miss = append(miss, i)
		}
	}
	d.miss = miss
	if len(miss) == 0 {
		return nil
	}
	if len(miss) > 1 {
		sortByKey(miss, c.row)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxRow}, UpperBound: []byte{pfxRow + 1}})
	if err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	found := miss[:0]  // rows found in pebble, overwriting miss as it goes
	ends := d.ends[:0] // their values' ends in d.fillBuf
	d.fillBuf = d.fillBuf[:0]
	var prev []byte
	for _, i := range miss {
		r := c.row(i)
		if prev != nil && bytes.Equal(prev, r) {
			continue // a key twice in the call: read (and entered) once
		}
		prev = r
		rk := d.rowKey(r)
		if !it.SeekPrefixGE(rk) || !bytes.Equal(it.Key(), rk) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("state: local state directory %s: %w", d.local, err)
		}
		d.fillBuf = append(d.fillBuf, v...)
		found = append(found, i)
		ends = append(ends, len(d.fillBuf))
	}
	d.ends = ends
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	if len(found) == 0 {
		return nil
	}
	slots := make([]int32, len(found))
	vals := make([][]byte, len(found))
	start := 0
	for j, i := range found {
		slots[j] = c.upsert(c.row(i), false)
		vals[j], start = d.fillBuf[start:ends[j]], ends[j]
	}
	arrs := d.valc.decode(c.cfg.Allocator, vals)
	c.setCols(arrs, nil, slots)
	for _, a := range arrs {
		a.Release()
	}
	return nil
}

// startOp drops an over-budget cache before the first key operation after
// a Commit.
func (d *diskStore) startOp() error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	if d.trim {
		d.resetCache()
	}
	return nil
}

// encodeFill encodes keys into the cache's scratch (once: the cache's
// *Encoded methods then work on them) and fills the cache with the rows
// of them that only pebble holds; it returns the number of keys.
func (d *diskStore) encodeFill(keys arrow.Record) (int, error) {
	if err := d.startOp(); err != nil {
		return 0, err
	}
	n, err := d.cache.encodeKeys(keys)
	if err != nil {
		return 0, err
	}
	return n, d.fill(n)
}

func (d *diskStore) Lookup(keys arrow.Record, out []int32) error {
	n, err := d.encodeFill(keys)
	if err != nil {
		return err
	}
	return d.cache.lookupEncoded(n, out)
}

func (d *diskStore) Put(keys, values arrow.Record, slots []int32) error {
	n, err := d.encodeFill(keys)
	if err != nil {
		return err
	}
	return d.cache.putEncoded(n, values, slots)
}

func (d *diskStore) Update(slots []int32, values arrow.Record) error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	return d.cache.Update(slots, values)
}

// DeleteLive enters the keys the cache lacks as live without reading
// pebble (the caller vouches for them), then deletes them: a stream join's
// evictions sought every evicted row in pebble (18% of q7's CPU on this
// backend). A store with a time index on a value column needs the old
// values to drop their index entries: there it is Delete.
func (d *diskStore) DeleteLive(keys arrow.Record) error {
	if d.tcol >= len(d.cache.keyTypes) {
		return d.Delete(keys)
	}
	if err := d.startOp(); err != nil {
		return err
	}
	c := d.cache
	n, err := c.encodeKeys(keys)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		r := c.row(i)
		if _, sl := c.find(c.hash(r), r); sl < 0 {
			c.upsert(r, false) // live in pebble: entered without values, then deleted
		}
	}
	c.deleteEncoded(n)
	return nil
}

// EvictLive enters the keys the cache lacks as live and unchanged without
// reading pebble, as DeleteLive does, then evicts them: no index, no seek.
func (d *diskStore) EvictLive(keys arrow.Record, col int, less int64) error {
	if err := d.startOp(); err != nil { // may replace the cache
		return err
	}
	c := d.cache
	n, err := c.encodeEvictLive(keys, col, less)
	if err != nil {
		return err // before any key is entered
	}
	if d.tcol >= len(c.keyTypes) {
		// A time index on a value column needs the old values (DeleteLive).
		if err := d.fill(n); err != nil {
			return err
		}
	} else {
		for i := 0; i < n; i++ {
			r := c.row(i)
			if _, sl := c.find(c.hash(r), r); sl < 0 {
				c.upsert(r, false) // live in pebble: entered without values, then evicted
			}
		}
	}
	return c.evictEncoded(n, col, less)
}

func (d *diskStore) Delete(keys arrow.Record) error {
	n, err := d.encodeFill(keys)
	if err != nil {
		return err
	}
	d.cache.deleteEncoded(n)
	return nil
}

func (d *diskStore) Values(slots []int32) (arrow.Record, error) {
	if err := d.checkOpen(); err != nil {
		return nil, err
	}
	return d.cache.Values(slots)
}

// rowBuf collects rows for records: each a key and either a cache slot or
// a raw value, copied into one arena.
type rowBuf struct {
	arena  []byte
	ko, vo []int
	slot   []int32
}

func (b *rowBuf) add(k, v []byte, sl int32) {
	b.ko = append(b.ko, len(b.arena))
	b.arena = append(b.arena, k...)
	b.vo = append(b.vo, len(b.arena))
	b.arena = append(b.arena, v...)
	b.slot = append(b.slot, sl)
}

func (b *rowBuf) n() int { return len(b.slot) }

func (b *rowBuf) key(i int) []byte { return b.arena[b.ko[i]:b.vo[i]] }

func (b *rowBuf) value(i int) []byte {
	end := len(b.arena)
	if i+1 < len(b.ko) {
		end = b.ko[i+1]
	}
	return b.arena[b.vo[i]:end]
}

func (b *rowBuf) reset() {
	b.arena, b.ko, b.vo, b.slot = b.arena[:0], b.ko[:0], b.vo[:0], b.slot[:0]
}

// records builds the key and value records of rows idx of b (the caller
// releases them).
func (d *diskStore) records(b *rowBuf, idx []int) (arrow.Record, arrow.Record) {
	c := d.cache
	mem := c.cfg.Allocator
	keys := make([][]byte, len(idx))
	vals := make([][]byte, len(idx))
	var (
		cs []int32
		ci []int
	)
	for x, i := range idx {
		keys[x] = b.key(i)
		if sl := b.slot[i]; sl >= 0 {
			cs = append(cs, sl)
			ci = append(ci, x)
		} else {
			vals[x] = b.value(i)
		}
	}
	if len(cs) > 0 {
		rec := c.valuesRecord(cs)
		d.vbuf, d.voffs = d.valc.encode(rec.Columns(), len(cs), d.vbuf, d.voffs)
		rec.Release()
		for y, x := range ci {
			vals[x] = d.vbuf[d.voffs[y]:d.voffs[y+1]]
		}
	}
	kr := newRecord(c.cfg.KeySchema, c.keyc.decode(mem, keys), len(idx))
	vr := newRecord(c.cfg.ValueSchema, d.valc.decode(mem, vals), len(idx))
	return kr, vr
}

func seq(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// merged calls fn with every live row in canonical key order: pebble's
// committed rows, overridden by the cache's rows and hidden by its
// tombstones. A cache row has sl >= 0; a pebble row has sl -1 and its raw
// value v. k and v are valid during the call only.
func (d *diskStore) merged(fn func(k []byte, sl int32, v []byte) error) error {
	c := d.cache
	var cs []int32
	for sl, f := range c.flags {
		if f&(fLive|fTomb) != 0 {
			cs = append(cs, int32(sl))
		}
	}
	sortByKey(cs, c.key)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxRow}, UpperBound: []byte{pfxRow + 1}})
	if err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	ok := it.First()
	i := 0
	for ok || i < len(cs) {
		if i < len(cs) {
			ck := c.key(cs[i])
			cmp := -1
			if ok {
				cmp = bytes.Compare(ck, it.Key()[1:])
			}
			if cmp <= 0 {
				sl := cs[i]
				i++
				if cmp == 0 {
					ok = it.Next()
				}
				if c.flags[sl]&fLive == 0 {
					continue
				}
				if err := fn(ck, sl, nil); err != nil {
					it.Close()
					return err
				}
				continue
			}
		}
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key()[1:], -1, v)
		}
		if err != nil {
			it.Close()
			return err
		}
		ok = it.Next()
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	return nil
}

// chunks streams the merged rows that keep accepts (nil: all) to fn in
// records of at most size rows, released after fn returns.
func (d *diskStore) chunks(size int, keep func(k []byte, sl int32, v []byte) bool, fn func(keys, values arrow.Record) error) error {
	var b rowBuf
	flush := func() error {
		if b.n() == 0 {
			return nil
		}
		k, v := d.records(&b, seq(b.n()))
		err := fn(k, v)
		k.Release()
		v.Release()
		b.reset()
		return err
	}
	err := d.merged(func(k []byte, sl int32, v []byte) error {
		if keep != nil && !keep(k, sl, v) {
			return nil
		}
		b.add(k, v, sl)
		if b.n() == size {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

func (d *diskStore) Scan(fn func(keys, values arrow.Record) error) error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	return d.chunks(ScanChunk, nil, fn)
}

// checkCol checks ScanWhere/EvictWhere's col: a key or value column of a
// 32- or 64-bit signed integer type.
func (d *diskStore) checkCol(op string, col int) error {
	return d.cache.checkTimeCol(op, col)
}

// below collects into b the live rows whose column col is not null and
// less than less, in no particular order. On the time column it reads only
// the index entries below less (and the rows they name that the cache does
// not hold); on another column it visits every row.
func (d *diskStore) below(col int, less int64, values bool, b *rowBuf) error {
	c := d.cache
	if col != d.tcol || d.ix == nil {
		return d.merged(func(k []byte, sl int32, v []byte) error {
			var t int64
			var ok bool
			if sl >= 0 {
				t, ok = d.cacheInt(sl, col)
			} else {
				t, ok = d.rowInt(col, k, v)
			}
			if ok && t < less {
				if !values {
					v = nil
				}
				b.add(k, v, sl)
			}
			return nil
		})
	}
	hi := bytes.Clone(d.timeKey(less, nil))
	it, err := d.ix.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxTime}, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		d.visited++
		k := it.Key()[9:]
		if _, sl := c.find(c.hash(k), k); sl >= 0 {
			continue // the cache's row (maybe changed since) decides below
		}
		var v []byte
		if values {
			var found bool
			if v, found, err = d.get(k); err != nil || !found {
				it.Close()
				if err == nil {
					err = fmt.Errorf("state: local state directory %s: time index names a missing row", d.local)
				}
				return err
			}
		}
		b.add(k, v, -1)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	for sl, f := range c.flags {
		if f&fLive == 0 {
			continue
		}
		if t, ok := d.cacheInt(int32(sl), col); ok && t < less {
			b.add(c.key(int32(sl)), nil, int32(sl))
		}
	}
	return nil
}

func (d *diskStore) ScanWhere(col int, less int64, fn func(keys, values arrow.Record) error) error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	if err := d.checkCol("scan", col); err != nil {
		return err
	}
	if col != d.tcol || d.ix == nil {
		return d.chunks(ScanChunk, func(k []byte, sl int32, v []byte) bool {
			if sl >= 0 {
				t, ok := d.cacheInt(sl, col)
				return ok && t < less
			}
			t, ok := d.rowInt(col, k, v)
			return ok && t < less
		}, fn)
	}
	var b rowBuf
	if err := d.below(col, less, true, &b); err != nil {
		return err
	}
	return d.sorted(&b, fn)
}

// sorted hands fn the rows of b in key order, ScanChunk rows a call.
func (d *diskStore) sorted(b *rowBuf, fn func(keys, values arrow.Record) error) error {
	idx := seq(b.n())
	sortByKey(idx, b.key)
	for a := 0; a < len(idx); a += ScanChunk {
		k, v := d.records(b, idx[a:min(a+ScanChunk, len(idx))])
		err := fn(k, v)
		k.Release()
		v.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// ScanPart reads each distinct part's range of the part index (the
// committed rows with it) and the cache's chain of it (the rows the batch
// read or changed, which decide over pebble's), then the values of the
// committed rows in key order through one iterator, as fill does.
func (d *diskStore) ScanPart(parts arrow.Record, fn func(keys, values arrow.Record) error) error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	c := d.cache
	rows, err := c.encodeParts(parts)
	if err != nil {
		return err
	}
	if d.ix == nil {
		// A Log store keeping no indexes: every row, filtered.
		want := make(map[string]bool, len(rows))
		for _, i := range rows {
			want[string(c.partRow(i))] = true
		}
		var p []byte
		return d.chunks(ScanChunk, func(k []byte, sl int32, v []byte) bool {
			if sl >= 0 {
				p = c.partOf(p[:0], sl)
			} else {
				p = c.partBytes(p[:0], k, -1, v, d.valc)
			}
			return want[string(p)]
		}, fn)
	}
	var (
		b     rowBuf
		slots []int32
		keys  rowBuf // committed keys the cache does not hold
	)
	it, err := d.ix.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxPart}, UpperBound: []byte{pfxPart + 1}})
	if err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	var lo []byte
	for _, i := range rows {
		p := c.partRow(i)
		lo = append(append(lo[:0], pfxPart), p...)
		for ok := it.SeekGE(lo); ok && bytes.HasPrefix(it.Key(), lo); ok = it.Next() {
			d.partVisited++
			k := it.Key()[len(lo):]
			if _, sl := c.find(c.hash(k), k); sl >= 0 {
				continue // the cache's row (maybe changed or deleted) decides
			}
			keys.add(k, nil, -1)
		}
		slots = c.partSlots(slots, p)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state: local state directory %s: %w", d.local, err)
	}
	if keys.n() > 0 {
		idx := seq(keys.n())
		sortByKey(idx, keys.key)
		rit, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxRow}, UpperBound: []byte{pfxRow + 1}})
		if err != nil {
			return fmt.Errorf("state: local state directory %s: %w", d.local, err)
		}
		for _, i := range idx {
			k := keys.key(i)
			rk := d.rowKey(k)
			if !rit.SeekPrefixGE(rk) || !bytes.Equal(rit.Key(), rk) {
				rit.Close()
				return fmt.Errorf("state: local state directory %s: part index names a missing row", d.local)
			}
			v, err := rit.ValueAndErr()
			if err != nil {
				rit.Close()
				return fmt.Errorf("state: local state directory %s: %w", d.local, err)
			}
			b.add(k, v, -1)
		}
		if err := errors.Join(rit.Error(), rit.Close()); err != nil {
			return fmt.Errorf("state: local state directory %s: %w", d.local, err)
		}
	}
	for _, sl := range slots {
		b.add(c.key(sl), nil, sl)
	}
	return d.sorted(&b, fn)
}

func (d *diskStore) EvictWhere(col int, less int64) (int, error) {
	if err := d.startOp(); err != nil {
		return 0, err
	}
	if err := d.checkCol("evict", col); err != nil {
		return 0, err
	}
	var b rowBuf
	if err := d.below(col, less, false, &b); err != nil {
		return 0, err
	}
	c := d.cache
	n := 0
	for i := 0; i < b.n(); i++ {
		k := b.key(i)
		_, sl := c.find(c.hash(k), k)
		if sl < 0 {
			// Committed and not cached: enter it untracked, unchanged,
			// so that its eviction is recorded as memStore's is.
			sl = c.upsert(k, false)
		}
		if c.flags[sl]&fLive == 0 {
			continue
		}
		c.evict(sl, col, less)
		n++
	}
	c.maybeCompactArena()
	return n, nil
}

// Commit writes the delta (the cache's changes, memStore's bytes), when one
// is due (snapshotDue) a snapshot streamed from the merged state, then
// applies the changes to pebble in one batch with the new meta, and trims
// the cache to its budget. A failure before the pebble batch leaves pebble
// and the cache as they were (retry or Abort); the batch is atomic.
func (d *diskStore) Commit(version int64) error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	if version != d.version+1 {
		return fmt.Errorf("state: commit version %d: store is at version %d, want %d", version, d.version, d.version+1)
	}
	c := d.cache
	rows, err := c.writeDelta(version)
	if err != nil {
		return err
	}
	m := diskMeta{version: version, kind: kindDelta, sum: c.lastSum, ident: d.ident, snapAt: d.snapAt, since: d.since + rows}
	if snapshotDue(version, d.snapAt, m.since, int64(d.Len()), d.cfg.SnapshotEvery) {
		if err := d.writeSnapshot(version); err != nil {
			return err
		}
		m.kind, m.sum, m.snapAt, m.since = kindSnapshot, c.lastSum, version, 0
	}
	count := d.count
	d.added = 0
	b, xb := d.newBatches()
	defer closeBatches(b, xb)
	// The meta goes first, keeping the batches in key order
	// (applyChanges); its count is the one Len gives now.
	m.count = int64(d.Len())
	err = b.Set(metaKey, m.encode(), nil)
	if err == nil && xb != nil {
		err = xb.Set(metaKey, m.encode(), nil)
	}
	if err == nil {
		err = d.applyChanges(b, xb)
	}
	if err == nil && d.count != m.count {
		err = fmt.Errorf("%d live keys after the batch, want %d (a changed row missing from the local database)", d.count, m.count)
	}
	if err == nil {
		err = d.commitBatches(b, xb)
	}
	if err != nil {
		d.count = count
		return fmt.Errorf("state: commit version %d: local state directory %s: %w", version, d.local, err)
	}
	c.settle(version)
	d.version, d.snapAt, d.since = version, m.snapAt, m.since
	d.adaptIndex()
	// Trimmed when the next batch starts touching keys, not here: slots
	// handed out before this Commit stay valid until then.
	d.trim = c.SizeBytes() > d.opts.CacheBytes
	return nil
}

// adaptIndex builds or drops a Log store's indexes after a commit
// (IndexAuto, IndexNever): it smooths the live rows and the rows a commit
// adds over commits, and builds them from the rows once the ratio of the
// two reaches IndexOnLife, drops them below IndexOffLife. Either is only a
// matter of cost, so a failure to build leaves the store without them (the
// rows are then read by scans) rather than failing the committed batch.
func (d *diskStore) adaptIndex() {
	if !d.optionalIndex() {
		return
	}
	if d.adds < 0 {
		d.lives, d.adds = float64(d.count), float64(d.added)
	} else {
		// A quarter a commit: a few commits that add nothing (a stream's
		// last, idle ones) do not tip it.
		d.lives += (float64(d.count) - d.lives) / 4
		d.adds += (float64(d.added) - d.adds) / 4
	}
	life := d.lives / max(d.adds, 1)
	on := d.opts.LogIndexes == IndexAuto && life >= IndexOnLife
	off := d.opts.LogIndexes == IndexNever || life < IndexOffLife
	switch {
	case d.ix == nil && on:
		d.switchIndex(true)
	case d.ix != nil && off:
		d.switchIndex(false)
	}
}

// switchIndex builds or drops the index database right after a Commit,
// and the cache's part chains with it (ScanPart walks them for the rows
// the cache holds, all committed and with their values).
func (d *diskStore) switchIndex(on bool) {
	if on {
		if err := d.buildIndex(); err != nil {
			d.dropIndex()
		}
	} else {
		d.dropIndex()
	}
	d.cache.partChains(d.ix != nil)
}

// buildIndex writes the index entries of every committed row into a new
// index database, then the rows' meta (a database left without it by a
// crash is not reused).
func (d *diskStore) buildIndex() error {
	dir := d.indexDir()
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	ix, err := d.openPebble(dir, false)
	if err != nil {
		return err
	}
	d.ix = ix
	xb := ix.NewBatch()
	defer func() { xb.Close() }()
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxRow}, UpperBound: []byte{pfxRow + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := d.putIndex(xb, it.Key()[1:], v); err != nil {
			return err
		}
		if xb.Len() >= 32<<20 {
			if err := d.checkSpace(xb.Len()); err != nil {
				return err
			}
			if err := xb.Commit(pebble.NoSync); err != nil {
				return err
			}
			xb.Close()
			xb = ix.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	meta, closer, err := d.db.Get(metaKey)
	if err != nil {
		return err
	}
	err = xb.Set(metaKey, meta, nil)
	closer.Close()
	if err == nil {
		err = d.checkSpace(xb.Len())
	}
	if err != nil {
		return err
	}
	return xb.Commit(pebble.NoSync)
}

// dropIndex closes and deletes the index database: the store reads its
// rows by scans from now on.
func (d *diskStore) dropIndex() {
	if d.ix != nil {
		d.ix.Close()
		d.ix = nil
	}
	os.RemoveAll(d.indexDir())
}

// applyChanges writes the cache's changed rows and tombstones into b, whose
// first entry the caller made the meta key, in key order, and their time
// and part index entries into xb (nil: none kept) in theirs (a row's part
// entry on key columns changes only when the row comes or goes). pebble sorts a batch larger than half a
// memtable before applying it (newFlushableBatch), and a sorted one costs
// it one pass: unsorted, the sort was 14% of the disk backend's CPU on the
// streaming window job.
func (d *diskStore) applyChanges(b, xb *pebble.Batch) error {
	c := d.cache
	var slots []int32 // live dirty rows and tombstones: disjoint by flags
	for _, sl := range c.dirty {
		if c.flags[sl]&fLive != 0 {
			slots = append(slots, sl)
		}
	}
	for _, sl := range c.tombs {
		if c.flags[sl]&fTomb != 0 {
			slots = append(slots, sl)
		}
	}
	sortByKey(slots, c.key)
	// Without an index, or with one on a key column, a committed row's
	// index entry never changes: the batch's rows need no reads. On a
	// value column, the old entries of committed rows are read in key
	// order through one iterator.
	ix := xb != nil                                     // index entries are kept
	tv := ix && d.tcol >= len(c.keyTypes)               // a time index on a value column
	pv := ix && c.pix != nil && c.pix.vals              // a part index on a value column
	pk := ix && c.pix != nil && !c.pix.vals             // a part index on key columns
	tk := ix && d.tcol >= 0 && d.tcol < len(c.keyTypes) // a time index on a key column
	var it *pebble.Iterator
	if tv || pv {
		var err error
		if it, err = d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pfxRow}, UpperBound: []byte{pfxRow + 1}}); err != nil {
			return err
		}
		defer it.Close()
	}
	var (
		tops rowBuf // time and part index entries: slot 1 = set, 0 = delete
		live []int32
		prev int32 = -1
	)
	for a := 0; a < len(slots); a += fileChunk {
		part := slots[a:min(a+fileChunk, len(slots))]
		live = live[:0]
		for _, sl := range part {
			if c.flags[sl]&fLive != 0 {
				live = append(live, sl)
			}
		}
		if len(live) > 0 {
			rec := c.valuesRecord(live)
			d.vbuf, d.voffs = d.valc.encode(rec.Columns(), len(live), d.vbuf, d.voffs)
			rec.Release()
		}
		li := 0
		for _, sl := range part {
			if sl == prev {
				continue // a key deleted, put back and deleted again is in c.tombs twice
			}
			prev = sl
			k := c.key(sl)
			var old []byte
			existed := c.flags[sl]&fNew == 0 // a committed row: in pebble
			if it != nil && existed {
				if rk := d.rowKey(k); it.SeekPrefixGE(rk) && bytes.Equal(it.Key(), rk) {
					v, err := it.ValueAndErr()
					if err != nil {
						return err
					}
					old = v
				} else {
					existed = false
				}
			}
			if old != nil && tv {
				if t, ok := d.rowInt(d.tcol, k, old); ok {
					tops.add(d.timeKey(t, k), nil, 0)
				}
			}
			if old != nil && pv {
				tops.add(d.partKey(k, -1, old), nil, 0)
			}
			if c.flags[sl]&fLive == 0 {
				if existed {
					d.count--
					if err := b.Delete(d.rowKey(k), nil); err != nil {
						return err
					}
					if pk {
						tops.add(d.partKey(k, sl, nil), nil, 0)
					}
				}
				if tk {
					if t, ok := c.keyIntOf(k, d.tcol); ok {
						tops.add(d.timeKey(t, k), nil, 0)
					}
				}
				continue
			}
			v := d.vbuf[d.voffs[li]:d.voffs[li+1]]
			li++
			if !existed {
				d.count++
				d.added++
			}
			if (pk && !existed) || pv {
				tops.add(d.partKey(k, sl, nil), nil, 1)
			}
			if err := b.Set(d.rowKey(k), v, nil); err != nil {
				return err
			}
			// A committed row's entry on a key column is already there.
			if (tk && c.flags[sl]&fNew != 0) || tv {
				if t, ok := d.rowInt(d.tcol, k, v); ok {
					tops.add(d.timeKey(t, k), nil, 1)
				}
			}
		}
	}
	idx := seq(tops.n())
	sortByKey(idx, tops.key)
	for x, i := range idx {
		k := tops.key(i)
		var err error
		if tops.slot[i] == 1 {
			err = xb.Set(k, nil, nil)
		} else if x+1 < len(idx) && bytes.Equal(tops.key(idx[x+1]), k) {
			continue // a row's entry deleted and set again: kept
		} else if x > 0 && bytes.Equal(tops.key(idx[x-1]), k) {
			continue
		} else {
			err = xb.Delete(k, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeSnapshot writes the merged state as snapshot v, memStore's bytes,
// in two streamed passes (the file's schema carries the row count and
// checksum, so they are computed first): neither the rows nor their Arrow
// records are ever all in memory, only the encoded file (vfs.FS writes
// whole files).
func (d *diskStore) writeSnapshot(v int64) error {
	c := d.cache
	crc := crc32.New(castagnoli)
	var (
		rows int64
		buf  []byte
		offs []int
	)
	err := d.fileRecords(func(rec arrow.Record) error {
		n := int(rec.NumRows())
		buf, offs = c.fullc.encode(rec.Columns(), n, buf, offs)
		crc.Write(buf)
		rows += int64(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: snapshot version %d: %w", v, err)
	}
	return c.writeRecords(v, kindSnapshot, rows, crc.Sum32(), nil, d.fileRecords)
}

// fileRecords hands fn the merged state as records of the file schema
// (__deleted all false), fileChunk rows each.
func (d *diskStore) fileRecords(fn func(arrow.Record) error) error {
	c := d.cache
	boolType := colType{kind: kBool, width: 1, dt: arrow.FixedWidthTypes.Boolean}
	return d.chunks(fileChunk, nil, func(keys, values arrow.Record) error {
		n := int(keys.NumRows())
		cols := append(append([]arrow.Array{}, keys.Columns()...), values.Columns()...)
		del := newColBuilder(c.cfg.Allocator, boolType, n).finish()
		cols = append(cols, del)
		rec := array.NewRecord(c.fileSch, cols, int64(n))
		del.Release()
		err := fn(rec)
		rec.Release()
		return err
	})
}

// resetCache drops every cached row (all clean after a Commit, or the
// batch's changes on Abort): pebble has the committed state.
func (d *diskStore) resetCache() {
	c, _ := newStore(d.cfg) // d.cfg validated when the store opened
	c.sumFiles = true
	c.cfg.Allocator = d.cache.cfg.Allocator
	c.version = d.version
	d.cacheIndexes(c)
	d.cache = c
	d.trim = false
}

// cacheIndexes sets which indexes cache c keeps: never a time index (the
// cache's rows are found by scanning it, below), and a part index only
// while the store keeps its index database (ScanPart then walks the
// cache's chains for the rows the batch holds).
func (d *diskStore) cacheIndexes(c *memStore) {
	c.tix = nil
	if c.pix != nil {
		c.pix.off = d.ix == nil
	}
}

// Abort drops the batch's changes: pebble is only written by Commit.
func (d *diskStore) Abort() error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	if len(d.cache.dirty) == 0 && d.cache.ntomb == 0 {
		return nil
	}
	d.resetCache()
	return nil
}

// setAllocator makes the store allocate what it returns from mem (a warm
// store handed to another task).
func (d *diskStore) setAllocator(mem memory.Allocator) {
	d.cfg.Allocator = mem
	d.cache.cfg.Allocator = mem
}

// pending reports whether the store has uncommitted changes.
func (d *diskStore) pending() bool { return len(d.cache.dirty) > 0 || d.cache.ntomb > 0 }

// Close flushes pebble's memtable (so a restart can reuse the database:
// the WAL is off) and closes it. Idempotent. On a local disk without room
// for the flush it skips it (a flush that cannot write is retried forever
// and Close would hang): the database then has an older meta and a restart
// rebuilds it from the checkpoint files.
func (d *diskStore) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.cache = &memStore{cfg: d.cfg, closed: true}
	var errs []error
	for _, db := range []*pebble.DB{d.ix, d.db} {
		if db == nil {
			continue
		}
		if d.checkSpace(0) == nil && d.broken == nil {
			if err := db.Flush(); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, db.Close())
	}
	d.db, d.ix = nil, nil
	releaseBlockCache(d.opts.BlockCacheBytes)
	d.blocks = nil
	errs = append(errs, d.unlock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("state: close local state directory %s: %w", d.local, err)
	}
	return nil
}

// localSize is the bytes under the store's local directory (tests,
// reports).
func (d *diskStore) localSize() int64 {
	var n int64
	for _, dir := range []string{d.local, d.indexDir()} {
		filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				n += fi.Size()
			}
			return nil
		})
	}
	return n
}

// pebbleFS is the filesystem pebble databases live on (tests make it full).
var pebbleFS = pebblevfs.Default

// minFreeBytes is the free space a local database keeps beyond twice what
// a pebble batch adds. pebble flushes memtables in the background, retries
// a flush that failed for want of space forever, and meanwhile makes
// writers wait: a full local disk hung the query's commit. So a batch that
// would leave less refuses to start, with an error naming the directory.
// (A disk that another process fills after the check can still stall.)
const minFreeBytes = 64 << 20

// checkSpace fails, wrapping syscall.ENOSPC, when the local directory's
// filesystem has less free space than a batch of batchBytes needs.
func (d *diskStore) checkSpace(batchBytes int) error {
	u, err := pebbleFS.GetDiskUsage(d.local)
	if err != nil {
		return nil // unknown (not every filesystem says): go on
	}
	need := 2*uint64(batchBytes) + minFreeBytes
	if u.AvailBytes < need {
		return fmt.Errorf("%d MiB free, a batch of %d MiB needs %d MiB: %w", u.AvailBytes>>20, batchBytes>>20, need>>20, syscall.ENOSPC)
	}
	return nil
}

// Indexed is false while a Log store keeps no indexes (LogIndexes).
func (d *diskStore) Indexed() bool { return d.ix != nil || !d.optionalIndex() }
