// Package vfs is the one filesystem interface durable writes go through
// (STYLE.md habit 7), so tests can fail any write or simulate a crash that
// keeps only synced bytes.
//
// Invariants:
//  1. WriteFileAtomic either leaves the old content (or no file) or the
//     complete new content at path, never a mix, across crashes: it writes a
//     temp file in the same directory, fsyncs it, renames it over path and
//     fsyncs the directory.
//  2. Every error names the path it concerns.
//  3. At most one Lock of a path is held at a time, across processes for
//     OS (an flock) and within the Mem for Mem; a holder that dies releases
//     it.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FS is the filesystem contract of checkpoints and state files.
type FS interface {
	// WriteFileAtomic replaces path with data durably (see invariant 1),
	// creating parent directories as needed.
	WriteFileAtomic(path string, data []byte) error
	// ReadFile returns the content of path; a missing file is an error
	// satisfying errors.Is(err, fs.ErrNotExist).
	ReadFile(path string) ([]byte, error)
	// List returns the names (not paths) in dir, sorted; a missing dir is empty.
	List(dir string) ([]string, error)
	// Remove deletes a file; a missing file is not an error.
	Remove(path string) error
	// RemoveAll deletes a directory tree; a missing one is not an error.
	RemoveAll(path string) error
	// Lock takes the exclusive lock named by path, or fails at once with
	// an error wrapping ErrLocked that names path and, when known, the pid
	// of the holder. Close of the returned lock releases it (once; later
	// calls do nothing). The lock dies with the process that holds it (see
	// lock.go), so a crashed holder never blocks the next one.
	Lock(path string) (io.Closer, error)
}

// OS is the real filesystem.
type OS struct{}

var _ FS = OS{}

// tempPrefix marks files WriteFileAtomic has not yet renamed into place;
// List never returns them.
const tempPrefix = ".tmp-"

func (OS) WriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vfs: create dir for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("vfs: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("vfs: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("vfs: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vfs: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vfs: rename into %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("vfs: sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("vfs: sync dir %s: %w", dir, err)
	}
	return nil
}

func (OS) ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vfs: read %s: %w", path, err)
	}
	return b, nil
}

func (OS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vfs: list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func (OS) Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vfs: remove %s: %w", path, err)
	}
	return nil
}

func (OS) RemoveAll(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("vfs: remove %s: %w", path, err)
	}
	return nil
}
