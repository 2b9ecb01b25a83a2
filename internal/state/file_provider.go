package state

import (
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

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
type FileProvider struct {
	fs  vfs.FS
	dir string

	mu     sync.Mutex
	warm   map[warmKey]warmStore
	closed bool
}

var _ Provider = (*FileProvider)(nil)

type warmKey struct {
	op     string
	lo, hi int
}

// warmStore is a parked store and, optionally, what its operator derived
// from it at the same version (released with it).
type warmStore struct {
	st  *memStore
	aux arrow.Record
}

func (w warmStore) close() {
	w.st.Close()
	if w.aux != nil {
		w.aux.Release()
	}
}

// NewFileProvider returns the provider of the state directory dir (a
// <checkpoint>/state) on fs. It reads nothing until the first Open.
func NewFileProvider(fs vfs.FS, dir string) *FileProvider {
	return &FileProvider{fs: fs, dir: dir, warm: map[warmKey]warmStore{}}
}

// Open is OpenAux without the parked record.
func (p *FileProvider) Open(spec StoreSpec, version int64) (Store, error) {
	st, aux, err := p.OpenAux(spec, version)
	if aux != nil {
		aux.Release()
	}
	return st, err
}

// OpenAux returns the parked store of spec's operator and range when it is
// at version and has spec's shape, else closes it and loads version.
func (p *FileProvider) OpenAux(spec StoreSpec, version int64) (Store, arrow.Record, error) {
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
		if w.st.Version() == version && sameShape(w.st.cfg.StoreSpec, spec) {
			// The store returns records from the allocator of the task that
			// holds it now.
			if spec.Allocator != nil {
				w.st.cfg.Allocator = spec.Allocator
			}
			w.st.loaded = false
			return w.st, w.aux, nil
		}
		w.close()
	}
	st, err := openMem(Config{FS: p.fs, Dir: p.dir, StoreSpec: spec}, version)
	if err != nil {
		return nil, nil, err
	}
	return st, nil, nil
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
		snap(a.SnapshotEvery) == snap(b.SnapshotEvery) && a.TimeColumn == b.TimeColumn &&
		sameFields(a.KeySchema, b.KeySchema) && sameFields(a.ValueSchema, b.ValueSchema)
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

// Keep parks st (and aux) for the next OpenAux of its operator and range;
// a store already parked there is closed.
func (p *FileProvider) Keep(s Store, aux arrow.Record) {
	st, ok := s.(*memStore)
	if !ok {
		s.Close()
		if aux != nil {
			aux.Release()
		}
		panic(fmt.Sprintf("state: Keep of a %T given to the file provider of %s", s, p.dir))
	}
	w := warmStore{st, aux}
	if st.cfg.FS != p.fs || st.cfg.Dir != p.dir {
		w.close()
		panic(fmt.Sprintf("state: Keep of a store under %s given to the provider of %s", st.cfg.Dir, p.dir))
	}
	if st.closed || len(st.dirty) > 0 || st.ntomb > 0 {
		w.close()
		return
	}
	k := warmKey{st.cfg.Operator, st.cfg.Lo, st.cfg.Hi}
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
		if old.aux != nil && old.aux != aux {
			old.aux.Release()
		}
	}
	p.warm[k] = w
}

// Purge deletes the state files under the provider's directory that no
// version >= keepFrom needs (package Purge).
func (p *FileProvider) Purge(keepFrom int64) error {
	return Purge(p.fs, p.dir, keepFrom)
}

// Close closes the parked stores; it is idempotent.
func (p *FileProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, w := range p.warm {
		w.close()
		delete(p.warm, k)
	}
	p.closed = true
	return nil
}

// Shared returns the provider's directory when it is on the operating
// system's filesystem, where another process can open the same files
// (cluster executors, given a shared directory); false for an in-memory
// filesystem.
func (p *FileProvider) Shared() (string, bool) {
	_, ok := p.fs.(vfs.OS)
	return p.dir, ok
}
