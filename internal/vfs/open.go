package vfs

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// IsURL reports whether loc is a URL (scheme://...) rather than a path.
func IsURL(loc string) bool {
	scheme, _, ok := strings.Cut(loc, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, `/\`)
}

// Open resolves a location, a directory path or a URL, into the FS that
// reaches it and the directory inside that FS:
//
//	/var/ckpt, ckpt, file:///var/ckpt  -> OS, the path
//	s3://bucket/prefix?region=...      -> Blob on the bucket, "prefix"
//	gs://bucket/prefix, azblob://container/prefix
//	mem://bucket/prefix                -> Blob on a new, empty in-memory bucket (tests)
//
// file:// is the OS filesystem, not gocloud's file driver: the disk keeps
// its flock, fsync and rename. A URL's query goes to the driver (S3:
// region, endpoint, use_path_style, disable_https; see gocloud's URL
// docs) except lease_ttl (a duration: how long a Lock lease lives unrenewed, default
// 30s), which is ours. Close the FS (CloseFS) when done: a Blob holds
// connections. Open does not contact the store: an unreachable one fails
// the first call, with an error naming the object's URL.
func Open(ctx context.Context, loc string) (FS, string, error) {
	if !IsURL(loc) {
		if loc == "" {
			return nil, "", fmt.Errorf("vfs: open: empty location")
		}
		return OS{}, loc, nil
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, "", fmt.Errorf("vfs: open %s: %w", loc, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", fmt.Errorf("vfs: open %s: a file URL names a local path (file:///dir), not host %q", loc, u.Host)
		}
		if u.Path == "" {
			return nil, "", fmt.Errorf("vfs: open %s: no path", loc)
		}
		return OS{}, u.Path, nil
	case "s3", "gs", "azblob", "mem":
	default:
		return nil, "", fmt.Errorf("vfs: open %s: unknown scheme %q (want a path, file://, s3://, gs://, azblob:// or mem://)", loc, u.Scheme)
	}
	if u.Host == "" && u.Scheme != "mem" {
		return nil, "", fmt.Errorf("vfs: open %s: no bucket (want %s://bucket/prefix)", loc, u.Scheme)
	}
	q := u.Query()
	var ttl time.Duration
	if s := q.Get("lease_ttl"); s != "" {
		if ttl, err = time.ParseDuration(s); err != nil || ttl <= 0 {
			return nil, "", fmt.Errorf("vfs: open %s: lease_ttl %q: want a positive duration", loc, s)
		}
		q.Del("lease_ttl")
	}
	bucketURL := url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: q.Encode()}
	b, err := blob.OpenBucket(ctx, bucketURL.String())
	if err != nil {
		return nil, "", fmt.Errorf("vfs: open %s: %w", loc, err)
	}
	x := NewBlob(b, u.Scheme+"://"+u.Host)
	x.LeaseTTL = ttl
	dir := strings.Trim(path.Clean("/"+u.Path), "/")
	if dir == "" {
		dir = "."
	}
	return x, dir, nil
}

// CloseFS closes what Open opened (a Blob's bucket); nil for OS and Mem.
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
