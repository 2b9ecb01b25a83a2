package microbatch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/sluicedata/sluice/internal/vfs"
)

// scratchFS is the filesystem a replay's state runs on: reads fall
// through to the checkpoint's filesystem, writes stay in memory, so the
// batch's state commit (version N+1) never reaches the checkpoint. It
// removes and locks nothing of the base: a replay that tried would be a
// bug, and it fails loudly instead of silently succeeding.
type scratchFS struct {
	base vfs.FS
	mem  *vfs.Mem
}

var _ vfs.FS = (*scratchFS)(nil)

func newScratchFS(base vfs.FS) *scratchFS { return &scratchFS{base: base, mem: vfs.NewMem()} }

func (s *scratchFS) WriteFileAtomic(path string, data []byte) error {
	return s.mem.WriteFileAtomic(path, data)
}

// CreateExclusive sees the base's files too: a path the checkpoint holds
// exists for a replay as well.
func (s *scratchFS) CreateExclusive(path string, data []byte) error {
	if _, err := s.base.ReadFile(path); err == nil {
		return fmt.Errorf("replay: create %s: %w", path, fs.ErrExist)
	}
	return s.mem.CreateExclusive(path, data)
}

func (s *scratchFS) Create(path string) (vfs.File, error) { return s.mem.Create(path) }

func (s *scratchFS) ReadFile(path string) ([]byte, error) {
	b, err := s.mem.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s.base.ReadFile(path)
	}
	return b, err
}

func (s *scratchFS) List(dir string) ([]string, error) {
	a, err := s.base.List(dir)
	if err != nil {
		return nil, err
	}
	b, err := s.mem.List(dir)
	if err != nil {
		return nil, err
	}
	out := append(a, b...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s *scratchFS) Remove(path string) error {
	if _, err := s.base.ReadFile(path); err == nil {
		return fmt.Errorf("replay: remove %s: the checkpoint is read-only to a replay", path)
	}
	return s.mem.Remove(path)
}

func (s *scratchFS) RemoveAll(path string) error {
	return fmt.Errorf("replay: remove %s: the checkpoint is read-only to a replay", path)
}

func (s *scratchFS) Lock(path string) (io.Closer, error) {
	return nil, fmt.Errorf("replay: lock %s: a replay takes no lock", path)
}
