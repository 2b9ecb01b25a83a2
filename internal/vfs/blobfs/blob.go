// Package blobfs is vfs.FS on object storage through gocloud.dev/blob
// (S3, GCS, Azure Blob; the file and memory drivers in tests), and Open,
// which turns a checkpoint location (a path or a URL) into an FS. It is a
// package of its own so that the cloud SDKs (and their gRPC and HTTP
// stacks) reach only the packages that open checkpoints (microbatch,
// jobcli), not everything that writes through vfs (dataset, the state
// store, sources and sinks): see internal/archtest.
package blobfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/sluicedata/sluice/internal/vfs"
)

// Blob is an FS (vfs.FS) on a bucket of object storage (gocloud.dev/blob): S3, GCS,
// Azure Blob, and the file and memory drivers. Paths are object keys:
// "a/b/c" is the key "a/b/c" ("/a/b" and "a/b" name the same key), and a
// directory is a key prefix ending in "/" (object stores have no
// directories; List asks for one level under a prefix with the "/"
// delimiter).
//
// Why these map cleanly: an object upload is atomic (the object appears
// whole, with its new content, or the old one stays), so WriteFileAtomic
// and Create need no temp name and no rename, which object stores do not
// have; CreateExclusive is the store's conditional write (WriterOptions.
// IfNotExist: S3 If-None-Match: *, GCS ifGenerationMatch=0, Azure
// If-None-Match: *), which the store decides atomically. Lock is a lease
// object (lease.go).
//
// Every call runs under its own deadline (OpTimeout), since the vfs.FS
// interface carries no context: an unreachable endpoint fails the call
// with an error naming the object's URL rather than hanging a batch.
type Blob struct {
	b    *blob.Bucket
	name string // the bucket's URL without query, for errors: s3://bucket

	// OpTimeout bounds each call (default 2 minutes; 0 keeps the default).
	OpTimeout time.Duration
	// LeaseTTL is how long a Lock lease lives without renewal (default
	// 30 s); the holder renews it every LeaseTTL/3.
	LeaseTTL time.Duration

	// query is the URL query Open was given (driver options, lease_ttl),
	// for Location; shared says whether another process opening the same
	// URL reaches the same objects (not mem://).
	query  string
	shared bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ vfs.FS        = (*Blob)(nil)
	_ vfs.DirSyncer = (*Blob)(nil)
	_ io.Closer     = (*Blob)(nil)
)

const (
	defaultOpTimeout = 2 * time.Minute
	defaultLeaseTTL  = 30 * time.Second
)

// New returns an FS (vfs.FS) on b; name is how errors name the bucket (its URL
// without query, "s3://my-bucket"). Close closes b.
func New(b *blob.Bucket, name string) *Blob {
	return &Blob{b: b, name: strings.TrimRight(name, "/")}
}

// Close closes the bucket (its connections); once.
func (x *Blob) Close() error {
	x.closeOnce.Do(func() {
		if err := x.b.Close(); err != nil {
			x.closeErr = fmt.Errorf("vfs: close %s: %w", x.name, err)
		}
	})
	return x.closeErr
}

// key maps a path to an object key: cleaned, slash-separated, without a
// leading "/"; the root is "".
func key(p string) string {
	k := strings.TrimLeft(path.Clean("/"+strings.ReplaceAll(p, "\\", "/")), "/")
	return k
}

// URL is the object URL of path p, as errors name it: s3://bucket/key.
func (x *Blob) URL(p string) string { return x.url(key(p)) }

// url names key in errors.
func (x *Blob) url(k string) string { return x.name + "/" + k }

// Location is the URL that opens directory dir of this bucket from another
// process (Open's options included), and whether there is one: a bucket
// made by New, or an in-memory one, has none.
func (x *Blob) Location(dir string) (string, bool) {
	if !x.shared {
		return "", false
	}
	loc := x.name + "/" + strings.Trim(dir, "/")
	if x.query != "" {
		loc += "?" + x.query
	}
	return loc, true
}

func (x *Blob) ctx() (context.Context, context.CancelFunc) {
	d := x.OpTimeout
	if d <= 0 {
		d = defaultOpTimeout
	}
	return context.WithTimeout(context.Background(), d)
}

// wrap names the object and maps the driver's codes onto fs errors.
func (x *Blob) wrap(verb, k string, err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("vfs: %s %s: %w (%v)", verb, x.url(k), fs.ErrNotExist, err)
	case gcerrors.PermissionDenied:
		return fmt.Errorf("vfs: %s %s: %w (%v)", verb, x.url(k), fs.ErrPermission, err)
	}
	return fmt.Errorf("vfs: %s %s: %w", verb, x.url(k), err)
}

var writeOpts = func() *blob.WriterOptions {
	// A fixed content type: without one the driver sniffs the first 512
	// bytes, for nothing.
	return &blob.WriterOptions{ContentType: "application/octet-stream"}
}

// WriteFileAtomic is one upload: the object store makes it visible whole.
func (x *Blob) WriteFileAtomic(p string, data []byte) error {
	k := key(p)
	if k == "" {
		return fmt.Errorf("vfs: write %s: the bucket's root is not an object", x.url(k))
	}
	ctx, cancel := x.ctx()
	defer cancel()
	if err := x.b.WriteAll(ctx, k, data, writeOpts()); err != nil {
		return x.wrap("write", k, err)
	}
	return nil
}

// CreateExclusive is one conditional upload (IfNotExist): the store
// refuses it with a failed precondition when the object exists.
func (x *Blob) CreateExclusive(p string, data []byte) error {
	k := key(p)
	if k == "" {
		return fmt.Errorf("vfs: create %s: the bucket's root is not an object", x.url(k))
	}
	ctx, cancel := x.ctx()
	defer cancel()
	o := writeOpts()
	o.IfNotExist = true
	if err := x.b.WriteAll(ctx, k, data, o); err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return fmt.Errorf("vfs: create %s: %w", x.url(k), fs.ErrExist)
		}
		return x.wrap("create", k, err)
	}
	return nil
}

func (x *Blob) ReadFile(p string) ([]byte, error) {
	k := key(p)
	ctx, cancel := x.ctx()
	defer cancel()
	b, err := x.b.ReadAll(ctx, k)
	if err != nil {
		return nil, x.wrap("read", k, err)
	}
	return b, nil
}

// List lists one level under dir's prefix: objects and "subdirectories"
// (common prefixes), by name, sorted.
func (x *Blob) List(dir string) ([]string, error) {
	prefix := key(dir)
	if prefix != "" {
		prefix += "/"
	}
	ctx, cancel := x.ctx()
	defer cancel()
	it := x.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	seen := map[string]bool{}
	var names []string
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, x.wrap("list", prefix, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/")
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

func (x *Blob) Remove(p string) error {
	k := key(p)
	ctx, cancel := x.ctx()
	defer cancel()
	if err := x.b.Delete(ctx, k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return x.wrap("remove", k, err)
	}
	return nil
}

// RemoveAll deletes the object p and every object under p's prefix, one
// by one (not atomic: a crash leaves a subset, as on a disk).
func (x *Blob) RemoveAll(p string) error {
	k := key(p)
	prefix := k
	if prefix != "" {
		prefix += "/"
	}
	ctx, cancel := x.ctx()
	defer cancel()
	it := x.b.List(&blob.ListOptions{Prefix: prefix})
	var keys []string
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.wrap("remove", k, err)
		}
		keys = append(keys, obj.Key)
	}
	if k != "" {
		// Only if p is an object itself (fileblob would try to delete the
		// directory behind the prefix).
		if ok, err := x.b.Exists(ctx, k); err != nil {
			return x.wrap("remove", k, err)
		} else if ok {
			keys = append(keys, k)
		}
	}
	for _, o := range keys {
		if err := x.b.Delete(ctx, o); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return x.wrap("remove", o, err)
		}
	}
	return nil
}

// SyncDir is a no-op: a delete an object store acknowledged is durable.
func (x *Blob) SyncDir(string) error { return nil }

// Create opens a streaming upload; Commit closes it (the object appears
// then, whole), Abort cancels its context, which discards the upload
// (gocloud's contract: a Writer whose context is cancelled before Close
// writes nothing).
func (x *Blob) Create(p string) (vfs.File, error) {
	k := key(p)
	if k == "" {
		return nil, fmt.Errorf("vfs: create %s: the bucket's root is not an object", x.url(k))
	}
	// Not bounded by OpTimeout: a streaming write lasts as long as its
	// writer needs; Abort ends it.
	ctx, cancel := context.WithCancel(context.Background())
	w, err := x.b.NewWriter(ctx, k, writeOpts())
	if err != nil {
		cancel()
		return nil, x.wrap("create", k, err)
	}
	return &blobFile{x: x, k: k, w: w, cancel: cancel}, nil
}

type blobFile struct {
	x      *Blob
	k      string
	w      *blob.Writer
	cancel context.CancelFunc
	done   bool
}

func (f *blobFile) Write(p []byte) (int, error) {
	if f.done {
		return 0, fmt.Errorf("vfs: write %s: %w", f.x.url(f.k), fs.ErrClosed)
	}
	n, err := f.w.Write(p)
	if err != nil {
		return n, f.x.wrap("write", f.k, err)
	}
	return n, nil
}

func (f *blobFile) Commit() error {
	if f.done {
		return fmt.Errorf("vfs: commit %s: %w", f.x.url(f.k), fs.ErrClosed)
	}
	f.done = true
	defer f.cancel()
	if err := f.w.Close(); err != nil {
		return f.x.wrap("write", f.k, err)
	}
	return nil
}

func (f *blobFile) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	f.cancel()
	// Close after cancel reports the cancellation; the upload is dropped.
	if err := f.w.Close(); err != nil && !errors.Is(err, context.Canceled) && gcerrors.Code(err) != gcerrors.Canceled {
		return f.x.wrap("abort", f.k, err)
	}
	return nil
}
