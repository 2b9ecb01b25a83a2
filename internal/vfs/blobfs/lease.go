package blobfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/gcerrors"

	"github.com/sluicedata/sluice/internal/vfs"
)

// A Blob's Lock is a lease: an object at the lock's path naming its owner
// and how long it lives (ttl) past its last write, which the holder renews
// every ttl/3 in the background while it holds it.
//
//	take:   CreateExclusive(lease)            -> held
//	        exists, its last write + ttl > now -> watch it until a renewal is due:
//	                                              renewed -> vfs.ErrLocked, naming the owner
//	                                              not     -> wait until it expires, then as below
//	        exists and expired                 -> replace it (see below)
//	renew:  every ttl/3, rewrite it (conditional on S3: If-Match its ETag)
//	close:  stop renewing; delete it if it is still ours
//
// Expiry is judged by the store's clock (the object's modification time)
// against the reader's, so only the skew between a taker and the store
// matters, and a ttl of tens of seconds absorbs ordinary skew.
//
// What a lease cannot promise, and why the checkpoint does not rely on it:
//   - A holder that stalls (GC pause, a partition) longer than ttl loses the
//     lease without knowing it until its next renewal fails; meanwhile a new
//     holder runs. Each renewal checks the lease is still its own (on S3 the
//     conditional write does); a holder that lost it is told through Lost
//     (the query stops) and Close, but writes it made in between are not
//     fenced by the lease.
//   - Replacing an expired lease is atomic only where the store offers a
//     conditional overwrite that gocloud exposes here: S3 (If-Match on the
//     ETag read, honoured by S3 since 2024 and by the test's fake server).
//     Elsewhere (GCS, Azure, the file and memory drivers) an expired lease is
//     deleted and then taken with CreateExclusive: two takers racing on the
//     same expired lease can both believe they hold it.
//
// So the lease keeps a second driver out in the ordinary case (a restart
// while the old one still runs, an operator's mistake), and the
// put-if-absent offsets and commits logs (CreateExclusive) are what
// guarantee that of two drivers on one checkpoint the second writer of a
// batch loses: see microbatch/checkpoint/format.md.

// leaseRecord is the lease object's content.
type leaseRecord struct {
	Owner string `json:"owner"` // host, pid and a random token: unique per Lock
	Host  string `json:"host"`
	Pid   int    `json:"pid"`
	TTLms int64  `json:"ttl_ms"`
}

func (r leaseRecord) String() string { return fmt.Sprintf("pid %d on %s (%s)", r.Pid, r.Host, r.Owner) }

func (x *Blob) leaseTTL() time.Duration {
	if x.LeaseTTL > 0 {
		return x.LeaseTTL
	}
	return defaultLeaseTTL
}

// Lock takes the lease at path (see above).
func (x *Blob) Lock(p string) (io.Closer, error) {
	k := key(p)
	ttl := x.leaseTTL()
	host, _ := os.Hostname()
	var tok [8]byte
	rand.Read(tok[:])
	rec := leaseRecord{Owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(tok[:])),
		Host: host, Pid: os.Getpid(), TTLms: ttl.Milliseconds()}
	data, _ := json.Marshal(rec)

	err := x.CreateExclusive(p, data)
	if errors.Is(err, fs.ErrExist) {
		err = x.takeExpired(k, data)
	}
	if err != nil {
		return nil, err
	}
	etag, _ := x.etag(k)
	l := &leaseLock{x: x, k: k, rec: rec, data: data, etag: etag, ttl: ttl,
		stop: make(chan struct{}), done: make(chan struct{}), lostCh: make(chan struct{})}
	go l.renew()
	return l, nil
}

// takeExpired takes the lease at k from a holder whose lease expired, or
// fails with vfs.ErrLocked naming it. A lease not yet expired is watched
// rather than refused at once: its holder rewrites it every ttl/3, so one
// rewritten since it was first read has a live holder (refused); one not
// rewritten for longer than a renewal period belongs to a holder that
// stopped (killed, or stalled), and is waited out until it expires and
// taken, so a restart after a crash does not fail for up to ttl. The wait
// is at most ttl + 1 s; refusing a live holder takes up to ttl/3 + 2 s.
func (x *Blob) takeExpired(k string, data []byte) error {
	seen := "" // the lease's version (ETag, modification time) when first read
	for {
		ctx, cancel := x.ctx()
		attrs, err := x.b.Attributes(ctx, k)
		if gcerrors.Code(err) == gcerrors.NotFound {
			cancel()
			// Released between our create and this look: one more try.
			return x.CreateExclusive(k, data)
		}
		if err != nil {
			cancel()
			return x.wrap("lock", k, err)
		}
		old, err := x.b.ReadAll(ctx, k)
		cancel()
		if err != nil {
			return x.wrap("lock", k, err)
		}
		var held leaseRecord
		holder := "an unreadable lease"
		ttl := x.leaseTTL()
		if json.Unmarshal(old, &held) == nil && held.Owner != "" {
			holder = held.String()
			if held.TTLms > 0 {
				ttl = time.Duration(held.TTLms) * time.Millisecond
			}
		}
		version := attrs.ETag + "@" + attrs.ModTime.String()
		// +1s: S3 and Azure report the modification time in whole seconds
		// (HTTP dates), truncated.
		until := attrs.ModTime.Add(ttl + time.Second)
		if time.Now().Before(until) {
			refuse := fmt.Errorf("vfs: lock %s: held by %s, lease renewed %s, expires in %s unless renewed: %w",
				x.url(k), holder, attrs.ModTime.UTC().Format(time.RFC3339), time.Until(until).Round(time.Second), vfs.ErrLocked)
			if seen != "" && version != seen {
				return refuse // renewed while watched: a live holder
			}
			// A renewal is due within ttl/3 of the last write (+1 s of
			// whole-second times, +1 s for the write itself).
			renewBy := attrs.ModTime.Add(min(ttl/3+2*time.Second, ttl+time.Second))
			if seen == "" && time.Now().Before(renewBy) {
				seen = version
				time.Sleep(time.Until(renewBy))
				continue
			}
			seen = version
			time.Sleep(time.Until(until))
			continue
		}
		if seen != "" && version != seen {
			return fmt.Errorf("vfs: lock %s: the lease of %s changed while it was waited out: %w", x.url(k), holder, vfs.ErrLocked)
		}
		return x.replaceExpired(k, data, attrs.ETag, holder)
	}
}

// replaceExpired takes the expired lease at k (whose ETag was etag).
func (x *Blob) replaceExpired(k string, data []byte, etag, holder string) error {
	ctx, cancel := x.ctx()
	defer cancel()
	ok, err := x.replaceIfMatch(ctx, k, data, etag)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return fmt.Errorf("vfs: lock %s: another owner took the expired lease of %s first: %w", x.url(k), holder, vfs.ErrLocked)
		}
		return x.wrap("lock", k, err)
	}
	if ok {
		return nil
	}
	// No conditional overwrite on this store: delete, then put-if-absent.
	// Two takers of one expired lease can both get here (lease.go's doc).
	if err := x.b.Delete(ctx, k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return x.wrap("lock", k, err)
	}
	if err := x.CreateExclusive(k, data); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("vfs: lock %s: another owner took the expired lease of %s first: %w", x.url(k), holder, vfs.ErrLocked)
	} else if err != nil {
		return err
	}
	return nil
}

// replaceIfMatch overwrites k with data only if its ETag is still etag,
// where the driver lets us say so (S3: If-Match). ok is false when it
// cannot (nothing was written); a lost race is a FailedPrecondition error.
func (x *Blob) replaceIfMatch(ctx context.Context, k string, data []byte, etag string) (ok bool, err error) {
	var client *s3.Client
	if etag == "" || !x.b.As(&client) {
		return false, nil
	}
	o := writeOpts()
	o.BeforeWrite = func(as func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !as(&in) {
			return fmt.Errorf("vfs: s3blob no longer exposes its upload request: cannot make the write conditional")
		}
		in.IfMatch = &etag
		return nil
	}
	return true, x.b.WriteAll(ctx, k, data, o)
}

func (x *Blob) etag(k string) (string, error) {
	ctx, cancel := x.ctx()
	defer cancel()
	a, err := x.b.Attributes(ctx, k)
	if err != nil {
		return "", err
	}
	return a.ETag, nil
}

type leaseLock struct {
	x    *Blob
	k    string
	rec  leaseRecord
	data []byte
	ttl  time.Duration

	mu       sync.Mutex
	etag     string
	lost     error         // set by a renewal that found the lease gone or another's
	lostOnce sync.Once     // closes lostCh
	lostCh   chan struct{} // closed when lost is set

	once       sync.Once
	stop, done chan struct{}
	closeErr   error
}

func (l *leaseLock) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.renewOnce(); err != nil {
			l.mu.Lock()
			l.lost = err
			l.mu.Unlock()
			l.lostOnce.Do(func() { close(l.lostCh) })
			return
		}
	}
}

// renewOnce rewrites the lease if it is still ours: conditionally on S3,
// else after reading the owner back (racy where the store has no
// conditional overwrite; the doc above says so).
func (l *leaseLock) renewOnce() error {
	ctx, cancel := l.x.ctx()
	defer cancel()
	l.mu.Lock()
	etag := l.etag
	l.mu.Unlock()
	ok, err := l.x.replaceIfMatch(ctx, l.k, l.data, etag)
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return fmt.Errorf("vfs: lock %s: lease lost: another owner replaced it: %w", l.x.url(l.k), vfs.ErrLocked)
	}
	if err != nil {
		// A failed renewal is not yet a lost lease: the next one may work
		// before the ttl runs out.
		return nil
	}
	if !ok {
		cur, err := l.x.b.ReadAll(ctx, l.k)
		if gcerrors.Code(err) == gcerrors.NotFound {
			return fmt.Errorf("vfs: lock %s: lease lost: removed by someone else: %w", l.x.url(l.k), vfs.ErrLocked)
		}
		if err != nil {
			return nil
		}
		var r leaseRecord
		if json.Unmarshal(cur, &r) != nil || r.Owner != l.rec.Owner {
			return fmt.Errorf("vfs: lock %s: lease lost: now held by %s: %w", l.x.url(l.k), r, vfs.ErrLocked)
		}
		if err := l.x.b.WriteAll(ctx, l.k, l.data, writeOpts()); err != nil {
			return nil
		}
	}
	if e, err := l.x.etag(l.k); err == nil {
		l.mu.Lock()
		l.etag = e
		l.mu.Unlock()
	}
	return nil
}

// Lost is closed when a renewal finds the lease taken over or removed:
// the holder is no longer the owner and should stop (Close then returns
// why). A holder that cannot reach the store does not see this until the
// store answers again.
func (l *leaseLock) Lost() <-chan struct{} { return l.lostCh }

// Close stops renewing and deletes the lease if it is still ours, so the
// next owner need not wait for it to expire. It returns the error of a
// renewal that found the lease lost.
func (l *leaseLock) Close() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		lost := l.lost
		l.mu.Unlock()
		if lost != nil {
			l.closeErr = lost
			return
		}
		ctx, cancel := l.x.ctx()
		defer cancel()
		cur, err := l.x.b.ReadAll(ctx, l.k)
		var r leaseRecord
		if err != nil || json.Unmarshal(cur, &r) != nil || r.Owner != l.rec.Owner {
			return
		}
		if err := l.x.b.Delete(ctx, l.k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			l.closeErr = l.x.wrap("unlock", l.k, err)
		}
	})
	return l.closeErr
}
