package killjoin

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/clustertest"
	"github.com/sluicedata/sluice/internal/killtest"
	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
	"github.com/sluicedata/sluice/microbatch"
)

// The stream-stream join into the Parquet sink of the test above, its
// tasks on three executor processes that are SIGKILLed at seeded random
// points (and replaced), its driver killed now and then and restarted
// from its checkpoint: the table each run leaves equals, row for row, a
// cluster run never killed, which equals the batch join of the same files.
func TestAClusterJoinWithExecutorsAndDriverKilledWritesEveryRowExactlyOnce(t *testing.T) {
	// SLUICE_SOAK=N multiplies both for a long soak.
	clusterJoinUnderChurn(t, nil, testenv.Soak(t, 30), testenv.Soak(t, 3))
}

// The same with the checkpoint (offsets, commits and the join's state) on
// object storage, an S3 server in this process: the executors open the
// bucket from the checkpoint's URL and read and write the state there; a
// driver restarted at once waits out the killed one's lease.
func TestAClusterJoinWithItsCheckpointOnS3AndExecutorsKilledWritesEveryRowExactlyOnce(t *testing.T) {
	clusterJoinUnderChurn(t, vfstest.NewS3(t, "ckpts"), testenv.Soak(t, 16), testenv.Soak(t, 2))
}

// leaseTTL is the S3 checkpoint's lease: a killed driver's lease blocks a
// restart this long (+1 s: S3's modification times are whole seconds).
const leaseTTL = 300 * time.Millisecond

func clusterJoinUnderChurn(t *testing.T, s3 *vfstest.S3, minExecutorKills, minDriverKills int) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x636c6a6e))
	ordersDir, paymentsDir := writeInput(t, seed, t.TempDir())
	cl := clustertest.Start(t, clustertest.Options{Executors: 3})
	n := 0
	cfg := func() child {
		dir := t.TempDir()
		c := child{Checkpoint: filepath.Join(dir, "checkpoint"), Out: filepath.Join(dir, "out"), Orders: ordersDir, Payments: paymentsDir, Cluster: cl.Join()}
		if s3 != nil {
			n++
			c.Checkpoint = s3.URL(fmt.Sprintf("run-%d/checkpoint", n), "lease_ttl="+leaseTTL.String())
		}
		return c
	}
	// progress is how far a run's checkpoint and sink got.
	progress := func(c child) killtest.Progress {
		if s3 == nil {
			return readKillState(c)
		}
		p := killtest.ReadProgress("", c.Out)
		prefix := strings.TrimPrefix(strings.SplitN(c.Checkpoint, "?", 2)[0], "s3://ckpts/") + "/"
		p.LastOffsets, p.LastCommit = -1, -1
		for _, k := range s3.Keys(prefix) {
			log, file, _ := strings.Cut(strings.TrimPrefix(k, prefix), "/")
			v, err := strconv.ParseInt(strings.TrimSuffix(file, ".json"), 10, 64)
			switch {
			case err != nil:
			case log == "offsets":
				p.LastOffsets = max(p.LastOffsets, v)
			case log == "commits":
				p.LastCommit = max(p.LastCommit, v)
			}
		}
		return p
	}

	ref := cfg()
	began := time.Now()
	if killtest.Start(t, childEnv, ref).RunOrKill(t, 10*time.Minute) {
		t.Fatal("reference run was killed")
	}
	took := time.Since(began)
	want := read(t, ref.Out)
	if d := diff(withoutSentinel(want), withoutSentinel(batchJoin(t, ordersDir, paymentsDir))); d != "" {
		t.Fatalf("seed %d: the never-killed cluster run differs from the batch join: %s", seed, d)
	}
	t.Logf("reference: %d rows in %v", len(want), took.Round(time.Millisecond))
	if s3 != nil {
		// The state really went to the bucket, written by the executors.
		prefix := strings.TrimPrefix(strings.SplitN(ref.Checkpoint, "?", 2)[0], "s3://ckpts/") + "/state/"
		if keys := s3.Keys(prefix); len(keys) == 0 {
			t.Fatalf("no state file under s3://ckpts/%s after the reference run", prefix)
		} else {
			t.Logf("reference: %d state files in the bucket", len(keys))
		}
		if p := progress(ref); p.LastCommit < 1 || p.LastCommit != p.LastSink {
			t.Fatalf("reference run on S3: last commit %d, sink's last batch %d", p.LastCommit, p.LastSink)
		}
	}
	if os.Getenv(microbatch.StateBackendEnv) == "disk" {
		// The pass with the disk backend must really have put the join's
		// state in the executors' local databases.
		dbs := 0
		for _, d := range cl.StateDirs() {
			// <query>/<operator>/<key-group range>/MANIFEST-*
			m, _ := filepath.Glob(filepath.Join(d, "*", "*", "*", "MANIFEST-*"))
			dbs += len(m)
		}
		if dbs == 0 {
			t.Fatalf("%s=disk but no executor has a local state database under %v", microbatch.StateBackendEnv, cl.StateDirs())
		}
		t.Logf("disk state backend: %d local databases on the executors", dbs)
	}

	churn := &clustertest.Churn{Rng: rng, ExecutorEvery: max(took/4, 100*time.Millisecond), DriverWithin: took / 2,
		MinExecutorKill: minExecutorKills, MinDriverKills: minDriverKills}
	runs := 0
	for !churn.Done() {
		runs++
		c := cfg()
		// After a driver kill a reader sees exactly the batches the sink
		// committed.
		churn.AfterDriverKill = func(kill int) {
			if err := progress(c).CheckSink(); err != nil {
				t.Fatalf("seed %d: run %d, driver kill %d: %v", seed, runs, kill, err)
			}
		}
		churn.Run(t, cl, func() *killtest.Child { return killtest.Start(t, childEnv, c) })
		if d := diff(read(t, c.Out), want); d != "" {
			t.Fatalf("seed %d: run %d: %s", seed, runs, d)
		}
		t.Logf("run %d: the table equals the reference; executor kills so far %d, driver kills %d", runs, churn.ExecutorKills, churn.DriverKills)
	}
	t.Logf("%d executor kills and %d driver kills over %d runs in %v", churn.ExecutorKills, churn.DriverKills, runs, time.Since(began).Round(time.Millisecond))
}
