package vfs

import (
	"io"
	"path"
	"path/filepath"
	"strings"
)

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
