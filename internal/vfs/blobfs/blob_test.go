package blobfs

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
)

type impl struct {
	name string
	fs   func(t *testing.T) (vfs.FS, string)
}

// impls are the Blobs the contract runs against: gocloud's memory and
// file drivers, and S3 (the in-process server) opened by URL.
func impls() []impl {
	return []impl{
		{"memblob", func(t *testing.T) (vfs.FS, string) {
			x := New(memblob.OpenBucket(nil), "mem://test")
			x.LeaseTTL = testLeaseTTL
			t.Cleanup(func() { x.Close() })
			return x, "ckpt"
		}},
		{"fileblob", func(t *testing.T) (vfs.FS, string) {
			b, err := fileblob.OpenBucket(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			x := New(b, "file:///test")
			x.LeaseTTL = testLeaseTTL
			t.Cleanup(func() { x.Close() })
			return x, "ckpt"
		}},
		{"s3", func(t *testing.T) (vfs.FS, string) {
			s3 := vfstest.NewS3(t, "bucket")
			fsys, dir, err := Open(context.Background(), s3.URL("prefix/ckpt", "lease_ttl="+testLeaseTTL.String()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { vfs.CloseFS(fsys) })
			return fsys, dir
		}},
	}
}

// testLeaseTTL keeps the contract's refusal of a second Lock short: it
// watches a live holder's lease until a renewal is due (ttl/3 + 2 s).
const testLeaseTTL = 1500 * time.Millisecond

func TestContract(t *testing.T) {
	for _, i := range impls() {
		t.Run(i.name, func(t *testing.T) { vfstest.Contract(t, i.fs) })
	}
}

// TestS3HonoursPreconditions pins what the fake S3 server must do for
// the tests above to mean anything: refuse a put-if-absent of an existing
// key with 412 (which gocloud reports as FailedPrecondition), atomically.
// Checked through the driver, not around it.
func TestS3HonoursPreconditions(t *testing.T) {
	s3 := vfstest.NewS3(t, "bucket")
	fsys, dir, err := Open(context.Background(), s3.URL("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer vfs.CloseFS(fsys)
	x := fsys.(*Blob)
	k := dir + "/k"
	if err := x.CreateExclusive(k, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := x.CreateExclusive(k, []byte("b")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("put-if-absent of an existing key = %v; want fs.ErrExist from a 412", err)
	}
	// If-Match: the conditional overwrite an expired lease is taken with.
	etag, err := x.etag(k)
	if err != nil || etag == "" {
		t.Fatalf("etag = %q, %v", etag, err)
	}
	ctx := context.Background()
	if ok, err := x.replaceIfMatch(ctx, k, []byte("c"), `"0123456789abcdef0123456789abcdef"`); !ok || err == nil {
		t.Fatalf("overwrite with a stale etag = %v, %v; want a refused write", ok, err)
	}
	if ok, err := x.replaceIfMatch(ctx, k, []byte("c"), etag); !ok || err != nil {
		t.Fatalf("overwrite with the current etag = %v, %v; want success", ok, err)
	}
	if got, _ := x.ReadFile(k); string(got) != "c" {
		t.Fatalf("content %q; want c", got)
	}
}

// TestBlobLeaseExpiry: a lease whose holder stopped renewing (a killed
// process) is waited out and taken once it expires, not before; a renewed
// one is refused; and a holder whose lease was taken over reports it from
// Close.
func TestBlobLeaseExpiry(t *testing.T) {
	for _, impl := range impls() {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.fs(t)
			x := fsys.(*Blob)
			x.LeaseTTL = 600 * time.Millisecond
			p := filepath.Join(root, "lock")
			l, err := x.Lock(p)
			if err != nil {
				t.Fatal(err)
			}
			// Renewal keeps it held past its ttl.
			time.Sleep(1500 * time.Millisecond)
			if _, err := x.Lock(p); !errors.Is(err, vfs.ErrLocked) || !strings.Contains(err.Error(), "held by pid") {
				t.Fatalf("Lock of a renewed lease = %v; want vfs.ErrLocked naming the holder", err)
			}
			// A dead holder: stop its renewals without releasing. Lock
			// waits its lease out and takes it, at once if it already
			// expired: a restart after a crash needs no retry loop.
			dead := l.(*leaseLock)
			close(dead.stop)
			<-dead.done
			began := time.Now()
			l2, err := x.Lock(p)
			if err != nil {
				t.Fatalf("Lock of a lease whose holder stopped renewing: %v", err)
			}
			// Renewed at most ttl/3 before the stop, it expires at least
			// 2/3 ttl after it (less the store's whole-second truncation).
			if took := time.Since(began); took > 600*time.Millisecond+3*time.Second || took < 300*time.Millisecond {
				t.Fatalf("Lock took %v to take a stopped holder's lease (ttl 600ms): want it waited out, not taken early", took)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		loc, dir string
		blob     bool
	}{
		{"/var/ckpt", "/var/ckpt", false},
		{"rel/ckpt", "rel/ckpt", false},
		{"file:///var/ckpt", "/var/ckpt", false},
		{"mem://b/jobs/q1", "jobs/q1", true},
		{"mem://b", ".", true},
		{"s3://bucket/a/b/?region=us-east-1&anonymous=true&lease_ttl=5s", "a/b", true},
	} {
		fsys, dir, err := Open(ctx, c.loc)
		if err != nil {
			t.Fatalf("Open(%s): %v", c.loc, err)
		}
		x, isBlob := fsys.(*Blob)
		if dir != c.dir || isBlob != c.blob {
			t.Errorf("Open(%s) = %T, %q; want blob %v, %q", c.loc, fsys, dir, c.blob, c.dir)
		}
		if strings.Contains(c.loc, "lease_ttl=5s") && x.LeaseTTL != 5*time.Second {
			t.Errorf("Open(%s): lease ttl %v", c.loc, x.LeaseTTL)
		}
		if isBlob {
			// Location is what an executor opens the same directory with:
			// the same bucket, dir and options; none for a memory bucket,
			// which no other process reaches.
			loc, ok := x.Location(dir + "/state")
			if ok != strings.HasPrefix(c.loc, "s3:") {
				t.Errorf("Open(%s).Location: %q, %v", c.loc, loc, ok)
			}
			if ok {
				f2, d2, err := Open(ctx, loc)
				if err != nil || d2 != c.dir+"/state" || f2.(*Blob).name != x.name || f2.(*Blob).LeaseTTL != x.LeaseTTL {
					t.Errorf("Open(Location %s) = %v, %q; want %s, %q, lease ttl %v", loc, err, d2, x.name, c.dir+"/state", x.LeaseTTL)
				}
				vfs.CloseFS(f2)
			}
		}
		vfs.CloseFS(fsys)
	}
	for _, c := range []struct{ loc, want string }{
		{"ftp://host/ckpt", `unknown scheme "ftp"`},
		{"s3:///ckpt", "no bucket"},
		{"file://otherhost/ckpt", "not host"},
		{"s3://b/c?lease_ttl=soon", "lease_ttl"},
		{"s3://b/c?nonsense=1", "nonsense"},
	} {
		if _, _, err := Open(ctx, c.loc); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), strings.SplitN(c.loc, "?", 2)[0]) {
			t.Errorf("Open(%s) = %v; want an error naming the location and %q", c.loc, err, c.want)
		}
	}
	if got := vfs.Join("s3://b/ck?region=x", "q1"); got != "s3://b/ck/q1?region=x" {
		t.Errorf("Join = %s", got)
	}
	if got := vfs.Join("/data/ck", "q1"); got != "/data/ck/q1" {
		t.Errorf("Join = %s", got)
	}
}

// TestLargeCreate streams a file bigger than one upload part (S3's
// transfer manager switches to a multipart upload past 8 MiB): committed,
// it reads back whole; aborted midway, the old content stays.
func TestLargeCreate(t *testing.T) {
	for _, i := range impls() {
		t.Run(i.name, func(t *testing.T) {
			fsys, root := i.fs(t)
			p := filepath.Join(root, "state", "big.snapshot")
			write := func(fill byte, n int) vfs.File {
				f, err := fsys.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				chunk := make([]byte, 64<<10)
				for j := range chunk {
					chunk[j] = fill
				}
				for range n / len(chunk) {
					if _, err := f.Write(chunk); err != nil {
						t.Fatal(err)
					}
				}
				return f
			}
			const size = 12 << 20
			if err := write('a', size).Commit(); err != nil {
				t.Fatal(err)
			}
			if err := write('b', size).Abort(); err != nil {
				t.Fatal(err)
			}
			got, err := fsys.ReadFile(p)
			if err != nil || len(got) != size || got[0] != 'a' || got[size-1] != 'a' {
				t.Fatalf("after commit of a and abort of b: %d bytes, first %q, %v; want %d bytes of a", len(got), got[:min(1, len(got))], err, size)
			}
		})
	}
}
