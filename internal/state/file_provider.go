package state

import (
	"fmt"
	"slices"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// FileProvider is the Provider of one checkpoint state directory: stores
// load from and commit to <dir>/<operator>/<lo>-<hi>/ on fs (format.md),
// and a store committed at the end of batch N stays in memory, warm, for
// batch N+1 instead of being loaded again from its snapshot and deltas
// (which made a batch's fixed cost grow with the state: 5 ms of a 7 ms
// one-row batch at 10 000 groups). A store is reused only at exactly the
// version asked for and with the same shape; anything else (a restart, a
// re-run of an uncommitted batch, another executor's range) loads from the
// files.
//
// The warm stores belong to the FileProvider, not to the process: two
// providers, even on one directory, never share a store.
type FileProvider struct{ warmProvider }

var _ Provider = (*FileProvider)(nil)

// NewFileProvider returns the provider of the state directory dir (a
// <checkpoint>/state) on fs. It reads nothing until the first Open.
func NewFileProvider(fs vfs.FS, dir string) *FileProvider {
	return &FileProvider{newWarmProvider(fs, dir, BackendMemory, func(cfg Config, version int64) (warmable, error) {
		if cfg.Log {
			st, err := openLog(cfg, version)
			if err != nil {
				return nil, err
			}
			return st, nil
		}
		st, err := openMem(cfg, version)
		if err != nil {
			return nil, err
		}
		return st, nil
	})}
}

// warmable is what a provider needs of its backend's stores to park them
// between batches.
type warmable interface {
	Store
	backend() string
	config() *Config
	pending() bool // uncommitted changes
	isClosed() bool
	// rewarm marks the store handed out again warm: not Loaded, returning
	// records from alloc (the allocator of the task that holds it now)
	// when alloc is not nil.
	rewarm(alloc memory.Allocator)
}

// warmProvider is what every backend's Provider shares: the stores
// committed at the end of a batch, parked for the next one, by operator
// and key-group range.
type warmProvider struct {
	fs   vfs.FS
	dir  string
	kind string // the backend its stores are
	open func(cfg Config, version int64) (warmable, error)

	mu     sync.Mutex
	warm   map[warmKey]warmStore
	closed bool
}

func newWarmProvider(fs vfs.FS, dir, kind string, open func(Config, int64) (warmable, error)) warmProvider {
	return warmProvider{fs: fs, dir: dir, kind: kind, open: open, warm: map[warmKey]warmStore{}}
}

type warmKey struct {
	op     string
	lo, hi int
}

// warmStore is a parked store and, optionally, what its operator derived
// from it at the same version (released with it).
type warmStore struct {
	st  warmable
	aux []arrow.Record
}

func (w warmStore) close() error {
	err := w.st.Close()
	releaseAll(w.aux)
	return err
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		if r != nil {
			r.Release()
		}
	}
}

// Open is OpenAux without the parked record.
func (p *warmProvider) Open(spec StoreSpec, version int64) (Store, error) {
	st, aux, err := p.OpenAux(spec, version)
	releaseAll(aux)
	return st, err
}

// OpenAux returns the parked store of spec's operator and range when it is
// at version and has spec's shape, else closes it and opens version from
// the files (the disk backend reusing its local database when it is at
// version).
func (p *warmProvider) OpenAux(spec StoreSpec, version int64) (Store, []arrow.Record, error) {
	k := warmKey{spec.Operator, spec.Lo, spec.Hi}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, fmt.Errorf("open state of %s [%d, %d) under %s: %w", spec.Operator, spec.Lo, spec.Hi, p.dir, ErrProviderClosed)
	}
	w, ok := p.warm[k]
	delete(p.warm, k)
	p.mu.Unlock()
	if ok {
		if w.st.Version() == version && sameShape(w.st.config().StoreSpec, spec) {
			w.st.rewarm(spec.Allocator)
			return w.st, w.aux, nil
		}
		w.close()
	}
	st, err := p.open(Config{FS: p.fs, Dir: p.dir, StoreSpec: spec}, version)
	if err != nil {
		return nil, nil, err
	}
	return st, nil, nil
}

// Keep parks st (and aux) for the next OpenAux of its operator and range;
// a store already parked there is closed. A store with uncommitted changes
// is closed instead.
func (p *warmProvider) Keep(s Store, aux []arrow.Record) {
	st, ok := s.(warmable)
	if !ok || st.backend() != p.kind {
		s.Close()
		releaseAll(aux)
		panic(fmt.Sprintf("state: Keep of a %T given to the %s provider of %s", s, p.kind, p.dir))
	}
	w := warmStore{st, aux}
	if cfg := st.config(); cfg.FS != p.fs || cfg.Dir != p.dir {
		w.close()
		panic(fmt.Sprintf("state: Keep of a store under %s given to the provider of %s", cfg.Dir, p.dir))
	}
	if st.isClosed() || st.pending() {
		w.close()
		return
	}
	k := warmKey{st.config().Operator, st.config().Lo, st.config().Hi}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		w.close()
		return
	}
	if old, ok := p.warm[k]; ok {
		if old.st != st {
			old.st.Close()
		}
		if !sameRecords(old.aux, aux) {
			releaseAll(old.aux)
		}
	}
	p.warm[k] = w
}

// sameRecords reports whether a and b are the same list of records (a
// store kept twice with its records).
func sameRecords(a, b []arrow.Record) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Backend is the kind of the provider's stores (executors open the same
// kind of provider).
func (p *warmProvider) Backend() string { return p.kind }

// Purge deletes the checkpoint's state files under the provider's
// directory that no version >= keepFrom needs (package Purge); parked
// stores and local databases are unaffected.
func (p *warmProvider) Purge(keepFrom int64) error {
	return Purge(p.fs, p.dir, keepFrom)
}

// Close closes the parked stores (a disk store's local database stays,
// for a restart to reuse); it is idempotent and reports the first error.
func (p *warmProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for k, w := range p.warm {
		if err := w.close(); err != nil && first == nil {
			first = err
		}
		delete(p.warm, k)
	}
	p.closed = true
	return first
}

// Shared returns where another process can open the provider's files
// (cluster executors; each keeps its own disk backend databases): its
// directory when it is on the operating system's filesystem (a directory
// every executor must reach), the URL of its directory on object storage
// (blobfs.Blob.Location: every executor opens the bucket itself, with its
// own credentials); false for an in-memory filesystem or bucket.
func (p *warmProvider) Shared() (string, bool) {
	if _, ok := p.fs.(vfs.OS); ok {
		return p.dir, true
	}
	if l, ok := p.fs.(interface{ Location(string) (string, bool) }); ok {
		return l.Location(p.dir)
	}
	return "", false
}

// sameShape reports whether a store made for a answers for b: the same
// pinned facts, and schemas with the same names and types (the check state
// files get, so a warm store is reused exactly when loading would succeed).
func sameShape(a, b StoreSpec) bool {
	snap := func(k int) int {
		if k == 0 {
			return DefaultSnapshotEvery
		}
		return k
	}
	return a.Operator == b.Operator && a.KeyGroups == b.KeyGroups && a.Lo == b.Lo && a.Hi == b.Hi &&
		snap(a.SnapshotEvery) == snap(b.SnapshotEvery) && a.TimeColumn == b.TimeColumn && a.Log == b.Log &&
		slices.Equal(a.PartKey, b.PartKey) && sameFields(a.KeySchema, b.KeySchema) && sameFields(a.ValueSchema, b.ValueSchema)
}

func sameFields(a, b *arrow.Schema) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.NumFields() != b.NumFields() {
		return false
	}
	for i := 0; i < a.NumFields(); i++ {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

// The warmable side of the two backends.

func (s *memStore) backend() string  { return BackendMemory }
func (s *memStore) config() *Config  { return &s.cfg }
func (s *memStore) pending() bool    { return len(s.dirty) > 0 || s.ntomb > 0 }
func (s *memStore) isClosed() bool   { return s.closed }
func (d *diskStore) backend() string { return BackendDisk }
func (d *diskStore) config() *Config { return &d.cfg }
func (d *diskStore) isClosed() bool  { return d.closed }

func (s *memStore) rewarm(alloc memory.Allocator) {
	if alloc != nil {
		s.cfg.Allocator = alloc
	}
	s.loaded = false
}

func (d *diskStore) rewarm(alloc memory.Allocator) {
	if alloc != nil {
		d.setAllocator(alloc)
	}
	d.loaded = false
}
