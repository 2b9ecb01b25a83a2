// Package vfs is the one filesystem interface durable writes go through
// (STYLE.md habit 7), so tests can fail any write or simulate a crash that
// keeps only synced bytes. Implementations: OS (a local or shared disk),
// Mem (tests: fault injection and crashes), and, in the subpackage blobfs
// (kept apart so the cloud SDKs reach only what opens checkpoints), Blob:
// object storage through gocloud.dev/blob (S3, GCS, Azure; the file and
// memory drivers in tests). blobfs.Open turns a checkpoint location (a
// path or a URL) into an FS and the directory inside it; IsURL and Join
// (location.go) work on locations without opening anything.
//
// Invariants:
//  1. WriteFileAtomic, CreateExclusive and a committed Create either leave
//     the old content (or no file) or the complete new content at path,
//     never a mix, across crashes. OS writes a temp file in the same
//     directory, fsyncs it, renames (or, for CreateExclusive, links) it to
//     path and fsyncs the directory; Blob uploads one object, which object
//     stores make visible whole or not at all.
//  2. CreateExclusive is put-if-absent: of any number of callers creating
//     the same path, across processes and machines sharing the FS, exactly
//     one succeeds; the others get an error wrapping fs.ErrExist and change
//     nothing. OS relies on link(2) failing on an existing name (on a
//     filesystem without hard links it falls back to check-then-rename,
//     exclusive only among holders of the flock), Mem on its mutex, Blob
//     on the store's conditional write (S3 If-None-Match: *, GCS
//     DoesNotExist, Azure If-None-Match: *).
//  3. Every error names the path it concerns (Blob: the object's URL).
//  4. At most one Lock of a path is held at a time: across processes for
//     OS (an flock), within the Mem for Mem; a holder that dies releases
//     it (OS, Mem at once; Blob when its lease expires: see blobfs/lease.go for
//     what a lease can and cannot promise).
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
	"syscall"
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
	// CreateExclusive creates path with data durably (invariant 1) if
	// nothing is there yet, creating parent directories as needed; when
	// path exists it changes nothing and returns an error wrapping
	// fs.ErrExist (invariant 2). It is how an append-only log gets one
	// writer per entry without a lock.
	CreateExclusive(path string, data []byte) error
	// Create starts a streaming replacement of path: the returned File's
	// bytes become path's content (as WriteFileAtomic would, invariant 1)
	// only at Commit; Abort, or a crash before Commit, leaves path as it
	// was. It lets a large file be written without holding it whole in
	// memory.
	Create(path string) (File, error)
	// Lock takes the exclusive lock named by path, or fails at once with
	// an error wrapping ErrLocked that names path and, when known, the pid
	// of the holder. Close of the returned lock releases it (once; later
	// calls do nothing). The lock dies with the process that holds it (see
	// lock.go), so a crashed holder never blocks the next one.
	Lock(path string) (io.Closer, error)
}

// File is a write in progress from FS.Create. It is not safe for
// concurrent use. Exactly one of Commit or Abort ends it; Abort after
// Commit (or a second Abort) does nothing and returns nil, so
// `defer f.Abort()` is always safe.
type File interface {
	io.Writer
	// Commit makes what was written path's content, durably; on error path
	// keeps its old content and the File is aborted.
	Commit() error
	// Abort discards what was written.
	Abort() error
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

// CreateExclusive writes a synced temp file and links it to path: link(2)
// fails with EEXIST when path exists, atomically, on every local
// filesystem and on NFS (where O_EXCL is historically unreliable).
func (OS) CreateExclusive(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vfs: create dir for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("vfs: create %s: %w", path, err)
	}
	tmp := f.Name()
	// The temp name goes whatever happens: on success path is a second
	// link to the same inode.
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("vfs: create %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vfs: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vfs: close %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("vfs: create %s: %w", path, fs.ErrExist)
		}
		if !noHardLinks(err) {
			return fmt.Errorf("vfs: create %s: %w", path, err)
		}
		// A filesystem without hard links (some FUSE and SMB mounts): check,
		// then rename, as checkpoints were written before CreateExclusive.
		// The content stays atomic; exclusivity then rests on the
		// checkpoint's flock alone.
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("vfs: create %s: %w", path, fs.ErrExist)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("vfs: rename into %s: %w", path, err)
		}
	}
	return syncDir(dir)
}

// noHardLinks reports whether a link(2) error says the filesystem makes no
// hard links (rather than that the name exists or the write failed).
func noHardLinks(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EXDEV)
}

// Create writes a temp file beside path; Commit fsyncs it, renames it
// over path and fsyncs the directory, as WriteFileAtomic does.
func (OS) Create(path string) (File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vfs: create dir for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return nil, fmt.Errorf("vfs: create %s: %w", path, err)
	}
	return &osFile{f: f, path: path}, nil
}

type osFile struct {
	f    *os.File
	path string
	done bool
}

func (o *osFile) Write(p []byte) (int, error) {
	if o.done {
		return 0, fmt.Errorf("vfs: write %s: %w", o.path, fs.ErrClosed)
	}
	n, err := o.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("vfs: write %s: %w", o.path, err)
	}
	return n, nil
}

func (o *osFile) Commit() error {
	if o.done {
		return fmt.Errorf("vfs: commit %s: %w", o.path, fs.ErrClosed)
	}
	o.done = true
	tmp := o.f.Name()
	fail := func(format string, err error) error {
		o.f.Close()
		os.Remove(tmp)
		return fmt.Errorf(format, o.path, err)
	}
	if err := o.f.Sync(); err != nil {
		return fail("vfs: sync %s: %w", err)
	}
	if err := o.f.Close(); err != nil {
		return fail("vfs: close %s: %w", err)
	}
	if err := os.Rename(tmp, o.path); err != nil {
		return fail("vfs: rename into %s: %w", err)
	}
	return syncDir(filepath.Dir(o.path))
}

func (o *osFile) Abort() error {
	if o.done {
		return nil
	}
	o.done = true
	o.f.Close()
	if err := os.Remove(o.f.Name()); err != nil {
		return fmt.Errorf("vfs: abort %s: %w", o.path, err)
	}
	return nil
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
