package state

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"

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
	warmProvider
	opts DiskOptions
}

var _ Provider = (*DiskProvider)(nil)

// NewDiskProvider returns the disk-backed provider of the state directory
// dir (a <checkpoint>/state) on fs, its local databases under
// opts.LocalDir. It reads nothing until the first Open.
func NewDiskProvider(fs vfs.FS, dir string, opts DiskOptions) *DiskProvider {
	return &DiskProvider{opts: opts, warmProvider: newWarmProvider(fs, dir, BackendDisk, func(cfg Config, version int64) (warmable, error) {
		st, err := openDisk(cfg, opts, version)
		if err != nil {
			return nil, err
		}
		return st, nil
	})}
}

// LocalDir is the root of the provider's local databases.
func (p *DiskProvider) LocalDir() string { return p.opts.LocalDir }

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
		opts := DiskOptions{LocalDir: localDir}
		switch v := os.Getenv(LogIndexesEnv); v {
		case "", "auto":
		case "always":
			opts.LogIndexes = IndexAlways
		case "never":
			opts.LogIndexes = IndexNever
		default:
			return nil, fmt.Errorf("state: $%s is %q: want auto, always or never", LogIndexesEnv, v)
		}
		return NewDiskProvider(fs, dir, opts), nil
	}
	return nil, fmt.Errorf("state: backend %q: want %q or %q", backend, BackendMemory, BackendDisk)
}

// LogIndexesEnv names the environment variable that sets the disk
// backend's DiskOptions.LogIndexes for NewProvider (the queries' and the
// executors' providers): auto (or unset), always or never. make test runs
// the join SIGKILL tests with it set to always, so that they kill joins
// reading through their indexes.
const LogIndexesEnv = "SLUICE_STATE_LOG_INDEXES"

// DefaultLocalDir is where a disk-backed provider of the state directory
// dir keeps its databases when not told: under the system's temporary
// directory, named after dir, so a restart of the same query on the same
// machine finds them and two queries never meet.
func DefaultLocalDir(dir string) string {
	if !vfs.IsURL(dir) { // an object store's directory: its URL names it
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	h := fnv.New64a()
	h.Write([]byte(dir))
	return filepath.Join(os.TempDir(), "sluice-state", fmt.Sprintf("%016x", h.Sum64()))
}
