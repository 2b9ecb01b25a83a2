package blobfs

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/sluicedata/sluice/internal/vfs"
)

func init() {
	// vfs.Open reaches these schemes wherever this package is linked.
	for _, scheme := range []string{"s3", "gs", "azblob", "mem", "file"} {
		vfs.RegisterOpener(scheme, Open)
	}
}

// Open resolves a location, a directory path or a URL, into the FS that
// reaches it and the directory inside that FS:
//
//	/var/ckpt, ckpt, file:///var/ckpt  -> vfs.OS, the path
//	s3://bucket/prefix?region=...      -> Blob on the bucket, "prefix"
//	gs://bucket/prefix, azblob://container/prefix
//	mem://bucket/prefix                -> Blob on a new, empty in-memory bucket (tests)
//
// file:// is the OS filesystem (vfs.OS), not gocloud's file driver: the disk keeps
// its flock, fsync and rename. A URL's query goes to the driver (S3:
// region, endpoint, use_path_style, disable_https; see gocloud's URL
// docs) except lease_ttl (a duration: how long a Lock lease lives unrenewed, default
// 30s), which is ours. Close the FS (vfs.CloseFS) when done: a Blob holds
// connections. Open does not contact the store: an unreachable one fails
// the first call, with an error naming the object's URL.
func Open(ctx context.Context, loc string) (vfs.FS, string, error) {
	if !vfs.IsURL(loc) {
		return vfs.Open(ctx, loc) // a path: the OS filesystem
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
		return vfs.OS{}, u.Path, nil
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
	x := New(b, u.Scheme+"://"+u.Host)
	x.LeaseTTL = ttl
	x.query, x.shared = u.RawQuery, u.Scheme != "mem"
	dir := strings.Trim(path.Clean("/"+u.Path), "/")
	if dir == "" {
		dir = "."
	}
	return x, dir, nil
}
