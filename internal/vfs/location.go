package vfs

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// openers open URL locations by scheme: the packages that implement them
// register themselves (blobfs: s3, gs, azblob, mem, file), so code that
// must not link a cloud SDK (dataset's task server, which opens a query's
// state where the driver says) opens whatever the program linked.
var openers sync.Map // scheme -> func(context.Context, string) (FS, string, error)

// RegisterOpener makes Open resolve URLs of scheme with open.
func RegisterOpener(scheme string, open func(ctx context.Context, loc string) (FS, string, error)) {
	openers.Store(scheme, open)
}

// Open resolves a location into the FS that reaches it and the directory
// inside it: a path is the OS filesystem; a URL goes to the opener
// registered for its scheme (blobfs.Open's rules), an error naming the
// location when the program linked none. Close the FS with CloseFS.
func Open(ctx context.Context, loc string) (FS, string, error) {
	if !IsURL(loc) {
		if loc == "" {
			return nil, "", fmt.Errorf("vfs: open: empty location")
		}
		return OS{}, loc, nil
	}
	scheme, _, _ := strings.Cut(loc, "://")
	open, ok := openers.Load(scheme)
	if !ok {
		return nil, "", fmt.Errorf("vfs: open %s: no filesystem for scheme %q in this program", strings.SplitN(loc, "?", 2)[0], scheme)
	}
	return open.(func(context.Context, string) (FS, string, error))(ctx, loc)
}

// IsURL reports whether loc is a URL (scheme://...) rather than a path.
func IsURL(loc string) bool {
	scheme, _, ok := strings.Cut(loc, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, `/\`)
}

// CloseFS closes what blobfs.Open opened (a bucket's connections): any
// FS that is an io.Closer; nil for OS and Mem.
func CloseFS(fsys FS) error {
	if c, ok := fsys.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Join appends path elements to a location, a path or a URL (into the
// URL's path, keeping its query): Join("s3://b/ckpt?region=x", "q1") is
// "s3://b/ckpt/q1?region=x".
func Join(loc string, elem ...string) string {
	if !IsURL(loc) {
		return filepath.Join(append([]string{loc}, elem...)...)
	}
	base, query, _ := strings.Cut(loc, "?")
	scheme, rest, _ := strings.Cut(base, "://")
	host, p, _ := strings.Cut(rest, "/")
	joined := strings.TrimLeft(path.Join(append([]string{"/" + p}, elem...)...), "/")
	out := scheme + "://" + host + "/" + joined
	if query != "" {
		out += "?" + query
	}
	return out
}
