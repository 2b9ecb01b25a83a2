package vfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/sluicedata/sluice/internal/vfs/vfstest"
)

type contractImpl struct {
	name string
	// fs returns an empty FS and the directory to work under; the FS is
	// closed when the test ends.
	fs func(t *testing.T) (FS, string)
}

// contractImpls is every FS the contract tests run against: the same
// table of cases for each.
func contractImpls() []contractImpl {
	return []contractImpl{
		{"OS", func(t *testing.T) (FS, string) { return OS{}, t.TempDir() }},
		{"Mem", func(t *testing.T) (FS, string) { return NewMem(), "/ckpt" }},
		{"Blob/memblob", func(t *testing.T) (FS, string) {
			x := NewBlob(memblob.OpenBucket(nil), "mem://test")
			t.Cleanup(func() { x.Close() })
			return x, "ckpt"
		}},
		{"Blob/fileblob", func(t *testing.T) (FS, string) {
			b, err := fileblob.OpenBucket(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			x := NewBlob(b, "file:///test")
			t.Cleanup(func() { x.Close() })
			return x, "ckpt"
		}},
		{"Blob/s3", func(t *testing.T) (FS, string) {
			s3 := vfstest.NewS3(t, "bucket")
			fsys, dir, err := Open(context.Background(), s3.URL("prefix/ckpt"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { CloseFS(fsys) })
			return fsys, dir
		}},
	}
}

func TestContractCreateExclusive(t *testing.T) {
	for _, impl := range contractImpls() {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.fs(t)
			p := filepath.Join(root, "offsets", "7.json")
			if err := fsys.CreateExclusive(p, []byte("first")); err != nil {
				t.Fatalf("first create: %v", err)
			}
			err := fsys.CreateExclusive(p, []byte("second"))
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "offsets/7.json") {
				t.Fatalf("second create = %v; want fs.ErrExist naming offsets/7.json", err)
			}
			if got, err := fsys.ReadFile(p); err != nil || string(got) != "first" {
				t.Fatalf("after a refused create: %q, %v; want the first content", got, err)
			}
			// A file WriteFileAtomic made is there for CreateExclusive too.
			q := filepath.Join(root, "offsets", "8.json")
			if err := fsys.WriteFileAtomic(q, []byte("w")); err != nil {
				t.Fatal(err)
			}
			if err := fsys.CreateExclusive(q, []byte("c")); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("create over a written file = %v; want fs.ErrExist", err)
			}
			if names, err := fsys.List(filepath.Join(root, "offsets")); err != nil || !slices.Equal(names, []string{"7.json", "8.json"}) {
				t.Fatalf("List = %q, %v; want [7.json 8.json] (no temp names)", names, err)
			}
		})
	}
}

// TestContractCreateExclusiveRace: of writers racing on one name exactly
// one wins, and the content is the winner's, whole.
func TestContractCreateExclusiveRace(t *testing.T) {
	for _, impl := range contractImpls() {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.fs(t)
			const writers = 8
			for round := range 3 {
				p := filepath.Join(root, "commits", fmt.Sprintf("%d.json", round))
				var wg sync.WaitGroup
				errs := make([]error, writers)
				start := make(chan struct{})
				for i := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = fsys.CreateExclusive(p, []byte(strings.Repeat(fmt.Sprint(i), 1000)))
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Fatalf("round %d: writers %d and %d both created %s", round, winner, i, p)
					case err == nil:
						winner = i
					case !errors.Is(err, fs.ErrExist):
						t.Fatalf("round %d: writer %d: %v; want fs.ErrExist", round, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: no writer created %s", round, p)
				}
				got, err := fsys.ReadFile(p)
				if err != nil || string(got) != strings.Repeat(fmt.Sprint(winner), 1000) {
					t.Fatalf("round %d: content %.20q..., %v; want writer %d's", round, got, err, winner)
				}
			}
		})
	}
}

func TestContractCreate(t *testing.T) {
	for _, impl := range contractImpls() {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.fs(t)
			p := filepath.Join(root, "state", "op", "3.snapshot")
			if err := fsys.WriteFileAtomic(p, []byte("old")); err != nil {
				t.Fatal(err)
			}
			f, err := fsys.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for i := range 100 {
				chunk := []byte(strings.Repeat(fmt.Sprint(i%10), 1000))
				want = append(want, chunk...)
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := fsys.ReadFile(p); string(got) != "old" {
				t.Fatalf("before Commit the path reads %.20q; want the old content", got)
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			if got, err := fsys.ReadFile(p); err != nil || string(got) != string(want) {
				t.Fatalf("after Commit: %d bytes, %v; want %d", len(got), err, len(want))
			}
			if err := f.Abort(); err != nil {
				t.Fatalf("Abort after Commit = %v; want nil", err)
			}
			if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
				t.Fatalf("Write after Commit = %v; want fs.ErrClosed", err)
			}

			// An aborted file leaves the old content, and no stray name.
			g, err := fsys.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			g.Write([]byte("never"))
			if err := g.Abort(); err != nil {
				t.Fatal(err)
			}
			if got, _ := fsys.ReadFile(p); string(got) != string(want) {
				t.Fatalf("after Abort the path changed: %.20q", got)
			}
			if names, err := fsys.List(filepath.Dir(p)); err != nil || !slices.Equal(names, []string{"3.snapshot"}) {
				t.Fatalf("List after Abort = %q, %v; want [3.snapshot]", names, err)
			}
			// A new path aborted never appears.
			h, err := fsys.Create(filepath.Join(root, "state", "op", "4.snapshot"))
			if err != nil {
				t.Fatal(err)
			}
			h.Write([]byte("never"))
			h.Abort()
			if _, err := fsys.ReadFile(filepath.Join(root, "state", "op", "4.snapshot")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("an aborted new file reads %v; want fs.ErrNotExist", err)
			}
		})
	}
}

func TestContractLock(t *testing.T) {
	for _, impl := range contractImpls() {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.fs(t)
			p := filepath.Join(root, "lock")
			l, err := fsys.Lock(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Lock(p); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "lock") {
				t.Fatalf("second Lock = %v; want ErrLocked", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2, err := fsys.Lock(p)
			if err != nil {
				t.Fatalf("Lock after Close: %v", err)
			}
			l2.Close()
		})
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
	defer CloseFS(fsys)
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
// process) is taken once it expires, not before; and a holder whose lease
// was taken over reports it from Close.
func TestBlobLeaseExpiry(t *testing.T) {
	for _, impl := range contractImpls() {
		if !strings.HasPrefix(impl.name, "Blob/") {
			continue
		}
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
			if _, err := x.Lock(p); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by pid") {
				t.Fatalf("Lock of a renewed lease = %v; want ErrLocked naming the holder", err)
			}
			// A dead holder: stop its renewals without releasing.
			dead := l.(*leaseLock)
			close(dead.stop)
			<-dead.done
			deadline := time.Now().Add(10 * time.Second)
			var l2 interface{ Close() error }
			for {
				l2, err = x.Lock(p)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
					t.Fatalf("Lock of an expired lease: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
