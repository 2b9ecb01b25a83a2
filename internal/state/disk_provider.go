package state

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/internal/vfs"
)

// Backend names, as --state-backend spells them.
const (
	BackendMemory = "memory"
	BackendDisk   = "disk"
)

// DiskProvider is FileProvider with disk-backed stores: the checkpoint
// files under dir are the same (format.md) and remain the source of truth;
// each store's committed state lives in a local pebble database under
// opts.LocalDir, which a restart reuses when it proves current and rebuilds
// from the files otherwise. Stores committed at the end of a batch stay
// open, warm, for the next one, exactly as FileProvider keeps them.
type DiskProvider struct {
	fs   vfs.FS
	dir  string
	opts DiskOptions

	mu     sync.Mutex
	warm   map[warmKey]diskWarm
	closed bool
}

var _ Provider = (*DiskProvider)(nil)

type diskWarm struct {
	st  *diskStore
	aux arrow.Record
}

func (w diskWarm) close() {
	w.st.Close()
	if w.aux != nil {
		w.aux.Release()
	}
}

// NewDiskProvider returns the disk-backed provider of the state directory
// dir (a <checkpoint>/state) on fs, its local databases under
// opts.LocalDir. It reads nothing until the first Open.
func NewDiskProvider(fs vfs.FS, dir string, opts DiskOptions) *DiskProvider {
	return &DiskProvider{fs: fs, dir: dir, opts: opts, warm: map[warmKey]diskWarm{}}
}

// Backend is BackendDisk (executors open the same kind of provider).
func (p *DiskProvider) Backend() string { return BackendDisk }

// LocalDir is the root of the provider's local databases.
func (p *DiskProvider) LocalDir() string { return p.opts.LocalDir }

// Open is OpenAux without the parked record.
func (p *DiskProvider) Open(spec StoreSpec, version int64) (Store, error) {
	st, aux, err := p.OpenAux(spec, version)
	if aux != nil {
		aux.Release()
	}
	return st, err
}

// OpenAux returns the parked store of spec's operator and range when it is
// at version and has spec's shape, else closes it and opens version
// (reusing or rebuilding the local database).
func (p *DiskProvider) OpenAux(spec StoreSpec, version int64) (Store, arrow.Record, error) {
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
			if spec.Allocator != nil {
				w.st.setAllocator(spec.Allocator)
			}
			w.st.loaded = false
			return w.st, w.aux, nil
		}
		w.close()
	}
	st, err := openDisk(Config{FS: p.fs, Dir: p.dir, StoreSpec: spec}, p.opts, version)
	if err != nil {
		return nil, nil, err
	}
	return st, nil, nil
}

// Keep parks st (and aux) for the next OpenAux of its operator and range;
// a store already parked there is closed.
func (p *DiskProvider) Keep(s Store, aux arrow.Record) {
	st, ok := s.(*diskStore)
	if !ok {
		s.Close()
		if aux != nil {
			aux.Release()
		}
		panic(fmt.Sprintf("state: Keep of a %T given to the disk provider of %s", s, p.dir))
	}
	w := diskWarm{st, aux}
	if st.cfg.FS != p.fs || st.cfg.Dir != p.dir {
		w.close()
		panic(fmt.Sprintf("state: Keep of a store under %s given to the provider of %s", st.cfg.Dir, p.dir))
	}
	if st.closed || st.pending() {
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

// Purge deletes the checkpoint's state files that no version >= keepFrom
// needs (package Purge); local databases are caches and unaffected.
func (p *DiskProvider) Purge(keepFrom int64) error {
	return Purge(p.fs, p.dir, keepFrom)
}

// Close closes the parked stores (their local databases stay, for a
// restart to reuse); it is idempotent.
func (p *DiskProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for k, w := range p.warm {
		if err := w.st.Close(); err != nil && first == nil {
			first = err
		}
		if w.aux != nil {
			w.aux.Release()
		}
		delete(p.warm, k)
	}
	p.closed = true
	return first
}

// Shared is FileProvider.Shared: the checkpoint state directory when
// another process can open it (each executor then keeps its own local
// databases).
func (p *DiskProvider) Shared() (string, bool) {
	_, ok := p.fs.(vfs.OS)
	return p.dir, ok
}

// NewProvider returns the provider of backend (BackendMemory, the default
// when "", or BackendDisk) for the state directory dir on fs. localDir
// roots the disk backend's databases; "" = DefaultLocalDir(dir).
func NewProvider(backend string, fs vfs.FS, dir, localDir string) (Provider, error) {
	switch backend {
	case "", BackendMemory:
		return NewFileProvider(fs, dir), nil
	case BackendDisk:
		if localDir == "" {
			localDir = DefaultLocalDir(dir)
		}
		return NewDiskProvider(fs, dir, DiskOptions{LocalDir: localDir}), nil
	}
	return nil, fmt.Errorf("state: backend %q: want %q or %q", backend, BackendMemory, BackendDisk)
}

// DefaultLocalDir is where a disk-backed provider of the state directory
// dir keeps its databases when not told: under the system's temporary
// directory, named after dir, so a restart of the same query on the same
// machine finds them and two queries never meet.
func DefaultLocalDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	h := fnv.New64a()
	h.Write([]byte(dir))
	return filepath.Join(os.TempDir(), "sluice-state", fmt.Sprintf("%016x", h.Sum64()))
}
