package microbatch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/blobfs"
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// blobQuery is the aggregation of aggregate_test.go with its checkpoint at
// loc: a URL, or a directory of fsys when fsys is not nil.
func (f *fixture) blobQuery(src *srcmem.Source, sink sinks.Sink, fsys vfs.FS, loc string) *microbatch.StreamWriter {
	ds := aggJob(dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: f.mem, Parallelism: 2, ShufflePartitions: 3}))
	w := microbatch.WriteStream(ds, sink).Checkpoint(loc).OutputMode(sinks.Update)
	if fsys != nil {
		w.FS(fsys)
	}
	return w
}

// runOnce runs w with the Once trigger and says whether it ran a batch.
func runOnce(t *testing.T, w *microbatch.StreamWriter) bool {
	t.Helper()
	q, err := w.Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	return q.LastProgress() != nil
}

// A stateful streaming query with its checkpoint on object storage (the
// in-process S3 server by URL, gocloud's file and memory drivers) stops
// after every batch and resumes: its output is the batch aggregation's,
// every batch exactly once, and the checkpoint has the disk's layout.
func TestACheckpointOnObjectStorageStopsAndResumesExactlyOnce(t *testing.T) {
	f := newFixture(t, 31, 12)
	want := f.aggBatch(t)
	s3 := vfstest.NewS3(t, "ckpts")
	fb, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fsys vfs.FS
		loc  string
	}{
		{"s3 URL", nil, s3.URL("jobs/agg")},
		{"fileblob", blobfs.New(fb, "file:///fileblob"), "jobs/agg"},
		{"memblob", blobfs.New(memblob.OpenBucket(nil), "mem://test"), "jobs/agg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := f.source(t, 20)
			sink := newRecordingSink()
			batches := 0
			for runOnce(t, f.blobQuery(src, sink, tc.fsys, tc.loc)) {
				if batches++; batches > 100 {
					t.Fatal("no end after 100 batches")
				}
			}
			if batches < 4 {
				t.Fatalf("%d batches: want several, each in its own run", batches)
			}
			if got := latestPerKey(sink.rows()); !slices.Equal(got, want) {
				t.Fatalf("stream:\n%s\nbatch:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if sink.commits != batches {
				t.Fatalf("%d sink commits for %d batches", sink.commits, batches)
			}
			fsys, dir := tc.fsys, tc.loc
			if fsys == nil {
				if fsys, dir, err = blobfs.Open(context.Background(), tc.loc); err != nil {
					t.Fatal(err)
				}
				defer vfs.CloseFS(fsys)
			}
			// The disk's layout, key for key.
			for _, sub := range []string{"", "offsets", "commits"} {
				names, err := fsys.List(dir + "/" + sub)
				if err != nil {
					t.Fatal(err)
				}
				switch sub {
				case "":
					for _, n := range []string{"metadata.json", "offsets", "commits", "state", "epoch.json"} {
						if !slices.Contains(names, n) {
							t.Fatalf("%s holds %q; want %s", tc.loc, names, n)
						}
					}
				default:
					if last := strconv.Itoa(batches-1) + ".json"; !slices.Contains(names, last) {
						t.Fatalf("%s/%s holds %q; want %s", tc.loc, sub, names, last)
					}
				}
			}
			r, err := checkpoint.Verify(fsys, dir)
			if err != nil || !r.OK() {
				t.Fatalf("verify: %+v, %v", r, err)
			}
		})
	}
	if keys := s3.Keys("jobs/agg/state/"); len(keys) == 0 {
		t.Fatal("no state objects in the S3 bucket: the state provider did not write through the checkpoint's FS")
	}
}

// noLockFS takes no lock: a driver whose lease was lost, or another
// process that ignores it.
type noLockFS struct{ vfs.FS }

func (noLockFS) Lock(string) (io.Closer, error) { return io.NopCloser(nil), nil }

// Two drivers run one query on one S3 checkpoint at once, the lock out of
// the way (a lost lease): the put-if-absent logs make every batch one
// driver's; a driver that lost a race stops with ErrConflict; a final run
// finishes the input; the output is exactly-once and the checkpoint
// verifies.
func TestTwoDriversRacingOnOneS3CheckpointLoseNothingCommitted(t *testing.T) {
	f := newFixture(t, 37, 30)
	want := f.aggBatch(t)
	s3 := vfstest.NewS3(t, "ckpts")
	fsys, dir, err := blobfs.Open(context.Background(), s3.URL("race/agg"))
	if err != nil {
		t.Fatal(err)
	}
	defer vfs.CloseFS(fsys)
	sink := newRecordingSink() // shared: idempotent per batch id, as real sinks are
	// One batch first, so both drivers find metadata.json written.
	runOnce(t, f.blobQuery(f.source(t, 1), sink, fsys, dir))
	conflicts := 0
	for round := 0; round < 5 && conflicts == 0; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range errs {
			src := f.source(t, 1) // one row per batch: many batches to race on
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				q, err := f.blobQuery(src, sink, noLockFS{fsys}, dir).Trigger(microbatch.AvailableNow()).Start(context.Background())
				if err == nil {
					err = q.AwaitTermination()
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			switch {
			case err == nil:
			// Lost at the write (put-if-absent refused it: "another
			// writer") or just before (the log already held the other's
			// entry: "exists with different content").
			case errors.Is(err, checkpoint.ErrConflict):
				conflicts++
				t.Logf("round %d, driver %d lost: %v", round, i, err)
			default:
				t.Fatalf("round %d, driver %d: %v; want success or a lost race (ErrConflict)", round, i, err)
			}
		}
	}
	if conflicts == 0 {
		t.Fatal("two drivers on one checkpoint never collided in 5 rounds of one-row batches")
	}
	for runOnce(t, f.blobQuery(f.source(t, 1), sink, fsys, dir)) {
	}
	if got := latestPerKey(sink.rows()); !slices.Equal(got, want) {
		t.Fatalf("after the race:\n%s\nbatch:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r, err := checkpoint.Verify(fsys, dir); err != nil || !r.OK() {
		t.Fatalf("verify after the race: %+v, %v", r, err)
	}
}

// The lease keeps a second driver out while the first runs: Start fails
// with checkpoint.ErrLocked naming the lease object and its holder.
func TestASecondDriverOnAnS3CheckpointIsRefusedByTheLease(t *testing.T) {
	f := newFixture(t, 41, 6)
	s3 := vfstest.NewS3(t, "ckpts")
	// A short lease: the second Start watches the first's until a renewal
	// is due (ttl/3 + 2 s, or ttl + 1 s) before refusing.
	loc := s3.URL("lease/agg", "lease_ttl=1500ms")
	src := f.source(t, 10)
	q, err := f.blobQuery(src, newRecordingSink(), nil, loc).Trigger(microbatch.ProcessingTime(time.Hour)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	_, err = f.blobQuery(f.source(t, 10), newRecordingSink(), nil, loc).Trigger(microbatch.Once()).Start(context.Background())
	if !errors.Is(err, checkpoint.ErrLocked) || !strings.Contains(err.Error(), "s3://ckpts/lease/agg/lock") ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second driver: %v; want ErrLocked naming the lease and its holder", err)
	}
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	// Stop released the lease: a new driver starts at once.
	if !runOnce(t, f.blobQuery(src, newRecordingSink(), nil, loc)) {
		t.Log("no batch left after the first driver (it ran them all)")
	}
}

func TestAnUnreachableCheckpointURLIsAnErrorNamingIt(t *testing.T) {
	f := newFixture(t, 43, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	loc := "s3://nowhere/ckpt?endpoint=http://" + addr + "&region=us-east-1&use_path_style=true&disable_https=true&anonymous=true"
	began := time.Now()
	_, err = f.blobQuery(f.source(t, 10), newRecordingSink(), nil, loc).Trigger(microbatch.Once()).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "s3://nowhere/ckpt") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("start on an unreachable endpoint: %v; want an error naming the URL and the endpoint", err)
	}
	t.Logf("refused in %v: %v", time.Since(began).Round(time.Millisecond), err)
}

func TestAnUnknownCheckpointSchemeIsRefused(t *testing.T) {
	f := newFixture(t, 47, 2)
	_, err := f.blobQuery(f.source(t, 10), newRecordingSink(), nil, "ftp://host/ckpt").Trigger(microbatch.Once()).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `unknown scheme "ftp"`) || !strings.Contains(err.Error(), "ftp://host/ckpt") {
		t.Fatalf("start with ftp://: %v; want an error naming the scheme and the URL", err)
	}
	_, err = f.blobQuery(f.source(t, 10), newRecordingSink(), vfs.NewMem(), "s3://b/ckpt").Trigger(microbatch.Once()).Start(context.Background())
	if !errors.Is(err, microbatch.ErrInvalidQuery) {
		t.Fatalf("a URL checkpoint beside FS(...): %v; want ErrInvalidQuery", err)
	}
}

// A bucket that refuses writes (a policy without write permission): the
// batch fails with an error naming the object and the batch; nothing
// already committed is lost, and once writes are allowed again a restart
// finishes exactly-once.
func TestABucketWithoutWritePermissionFailsNamingTheObjectAndBatch(t *testing.T) {
	f := newFixture(t, 53, 10)
	want := f.aggBatch(t)
	for _, denied := range []string{"offsets", "commits"} {
		t.Run(denied, func(t *testing.T) {
			s3 := vfstest.NewS3(t, "ckpts")
			loc := s3.URL("perm/agg")
			src := f.source(t, 15)
			sink := newRecordingSink()
			runOnce(t, f.blobQuery(src, sink, nil, loc))
			runOnce(t, f.blobQuery(src, sink, nil, loc))
			s3.DenyWrites("perm/agg/" + denied + "/")
			q, err := f.blobQuery(src, sink, nil, loc).Trigger(microbatch.Once()).Start(context.Background())
			if err == nil {
				err = q.AwaitTermination()
			}
			obj := fmt.Sprintf("s3://ckpts/perm/agg/%s/2.json", denied)
			if err == nil || !strings.Contains(err.Error(), obj) || !strings.Contains(err.Error(), "batch 2") || !errors.Is(err, os.ErrPermission) {
				t.Fatalf("batch 2 on a bucket refusing writes to %s/: %v; want a permission error naming %s and batch 2", denied, err, obj)
			}
			before := slices.Clone(s3.Keys("perm/agg/commits/"))
			if len(before) != 2 {
				t.Fatalf("committed batches after the failure: %q; want 0 and 1 kept", before)
			}
			s3.AllowWrites()
			for runOnce(t, f.blobQuery(src, sink, nil, loc)) {
			}
			if got := latestPerKey(sink.rows()); !slices.Equal(got, want) {
				t.Fatalf("after the restart:\n%s\nbatch:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// The query runs as a separate process with its checkpoint in this test
// process's S3 server (the sink, a Parquet table, on local disk), killed
// with SIGKILL at seeded random points and restarted until it finishes:
// its output equals a never-killed run's. A killed process leaves its
// lease behind; the restart, started at once, waits for it to expire
// (lease_ttl) and goes on.
func TestAQueryWithItsCheckpointOnS3KilledAtRandomPointsWritesEveryRowExactlyOnce(t *testing.T) {
	const (
		// Each kill costs the lease's expiry (~1.3 s) before the restart,
		// so fewer kills and batches than the disk's kill test.
		minKills  = 8
		total     = 12_000
		batchRows = 1_500
		leaseTTL  = 300 * time.Millisecond
	)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(killSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", killSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, killSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x733362))
	s3 := vfstest.NewS3(t, "ckpts")
	runs := 0
	cfg := func() killChild {
		runs++
		return killChild{Checkpoint: s3.URL(fmt.Sprintf("run-%d/checkpoint", runs), "lease_ttl="+leaseTTL.String()),
			Out: t.TempDir(), OrdersSeed: seed, Total: total, BatchRows: batchRows}
	}
	lastCommit := func(c killChild) int64 {
		prefix := strings.TrimPrefix(strings.SplitN(c.Checkpoint, "?", 2)[0], "s3://ckpts/") + "/commits/"
		last := int64(-1)
		for _, k := range s3.Keys(prefix) {
			if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(k, prefix), ".json"), 10, 64); err == nil {
				last = max(last, n)
			}
		}
		return last
	}

	ref := cfg()
	began := time.Now()
	r := killtest.Start(t, killChildEnv, ref)
	if r.RunOrKill(t, 10*time.Minute) {
		t.Fatal("reference run was killed")
	}
	var batches int
	var runUs, startUs int64
	if _, err := fmt.Sscanf(r.Stdout(), "killtest: %d batches in %dus from %d", &batches, &runUs, &startUs); err != nil {
		t.Fatalf("reference run printed %q: %v", r.Stdout(), err)
	}
	if want := total / batchRows; batches != want {
		t.Fatalf("reference run: %d batches, want %d", batches, want)
	}
	want := readOutput(t, ref.Out)
	if d := diffRows(want, batchJobRows(t, seed, total)); d != "" {
		t.Fatalf("seed %d: the never-killed run differs from the batch job: %s", seed, d)
	}
	if got := lastCommit(ref); got != int64(batches-1) {
		t.Fatalf("reference run: last commit in S3 %d, want %d", got, batches-1)
	}
	batchTime := time.Duration(runUs) * time.Microsecond / time.Duration(batches)
	startup := max(time.UnixMicro(startUs).Sub(began), time.Millisecond)
	t.Logf("reference: %d rows in %d batches; start-up %v, a batch %v (checkpoint on the fake S3)", len(want), batches, startup.Round(time.Millisecond), batchTime.Round(time.Microsecond))

	maxDelay := startup + 2*batchTime
	kills, reruns := 0, 0
	for kills < minKills {
		c := cfg()
		killed, noProgress, prev := 0, 0, int64(-1)
		for {
			delay := time.Duration(rng.Int64N(int64(maxDelay)))
			if killed > 0 {
				// Past the wait for the killed run's lease (at most
				// ttl + 1 s), so kills land in the run, not the wait.
				delay += leaseTTL + time.Second
			}
			if !killtest.Start(t, killChildEnv, c).RunOrKill(t, delay) {
				break
			}
			killed++
			lc := lastCommit(c)
			if lc > prev {
				prev, noProgress = lc, 0
			} else if noProgress++; noProgress == 8 {
				maxDelay *= 2
				noProgress = 0
			}
			if s := killtest.ReadProgress("", c.Out); s.LastSink > lc {
				reruns++ // the sink is ahead of commits/: the restart re-runs a batch
			}
			// The killed holder's lease lives until it expires (+1s for
			// S3's whole-second modification times): the restart, at
			// once, waits it out (blobfs's Lock) instead of failing.
		}
		kills += killed
		if d := diffRows(readOutput(t, c.Out), want); d != "" {
			t.Fatalf("seed %d: run %d, killed %d times: %s", seed, runs, killed, d)
		}
	}
	t.Logf("%d kills over %d runs in %v; %d left the sink ahead of the checkpoint", kills, runs-1, time.Since(began).Round(time.Millisecond), reruns)
}

// BenchmarkCheckpointLocation runs the aggregation of aggregate_test.go
// (update mode, state in the checkpoint) over 40 batches with its
// checkpoint on local disk and on the in-process S3 server, and reports
// per batch the wall time and the process's CPU time (user+sys, the fake
// server's included: it runs in this process).
//
//	go test -run '^$' -bench CheckpointLocation -benchtime 5x ./microbatch/
func BenchmarkCheckpointLocation(b *testing.B) {
	const batches = 40
	f := &fixture{mem: memory.NewCheckedAllocator(memory.NewGoAllocator())}
	f.recs = input(f.mem, 3, batches)
	defer func() {
		for _, r := range f.recs {
			r.Release()
		}
	}()
	rows := int64(0)
	for _, r := range f.recs {
		rows += r.NumRows()
	}
	s3 := vfstest.NewS3(b, "bench")
	runs := 0 // every run a new checkpoint (b.Run calls its function more than once)
	for _, loc := range []struct {
		name string
		url  func(i int) string
	}{
		{"disk", func(i int) string { return filepath.Join(b.TempDir(), "ckpt") }},
		{"fake-s3", func(int) string { runs++; return s3.URL(fmt.Sprintf("run-%d", runs)) }},
	} {
		b.Run(loc.name, func(b *testing.B) {
			var cpu time.Duration
			var wall time.Duration
			n := 0
			reqs0 := s3.Requests()
			for i := 0; i < b.N; i++ {
				src, err := srcmem.New(srcmem.Config{Name: "orders", Schema: schema, MaxRowsPerBatch: (rows + batches - 1) / batches})
				if err != nil {
					b.Fatal(err)
				}
				src.Append(f.recs...)
				c0, t0 := cpuTime(), time.Now()
				q, err := f.blobQuery(src, newRecordingSink(), nil, loc.url(i)).Logger(slog.New(slog.DiscardHandler)).
					Trigger(microbatch.AvailableNow()).Start(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if err := q.AwaitTermination(); err != nil {
					b.Fatal(err)
				}
				wall += time.Since(t0)
				cpu += cpuTime() - c0
				n += len(q.RecentProgress())
				src.Close()
			}
			b.ReportMetric(float64(wall.Microseconds())/float64(n)/1000, "wall-ms/batch")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n)/1000, "cpu-ms/batch")
			b.ReportMetric(float64(n)/float64(b.N), "batches/run")
			if loc.name == "fake-s3" {
				for kind, c := range s3.Requests() {
					b.ReportMetric(float64(c-reqs0[kind])/float64(n), kind+"/batch")
				}
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// An owner whose lease another owner took over (here: the lease object
// overwritten behind its back, as a taker of a lease it thought expired
// would) stops at its next renewal and says why.
func TestAQueryWhoseLeaseIsTakenOverStopsNamingIt(t *testing.T) {
	f := newFixture(t, 59, 4)
	s3 := vfstest.NewS3(t, "ckpts")
	loc := s3.URL("taken/agg", "lease_ttl=300ms")
	q, err := f.blobQuery(f.source(t, 10), newRecordingSink(), nil, loc).Trigger(microbatch.ProcessingTime(time.Hour)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	fsys, dir, err := blobfs.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer vfs.CloseFS(fsys)
	if err := fsys.WriteFileAtomic(dir+"/lock", []byte(`{"owner":"other/1/x","host":"other","pid":1,"ttl_ms":300}`)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.AwaitTermination() }()
	select {
	case err := <-done:
		if !errors.Is(err, vfs.ErrLocked) || !strings.Contains(err.Error(), "lease lost") || !strings.Contains(err.Error(), "s3://ckpts/taken/agg/lock") {
			t.Fatalf("query after its lease was taken: %v; want a lost lease naming the lease object", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the query still runs 10 s after its lease was taken over")
	}
}
