package jobcli_test

import (
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
)

// --checkpoint-dir takes a URL: the test job's backfill keeps its two
// queries' checkpoints in this process's S3 server (one prefix per query),
// a second backfill over the same range resumes from them (nothing left to
// run), and checkpoint inspect and verify read them by URL.
func TestACheckpointDirOnS3(t *testing.T) {
	s3 := vfstest.NewS3(t, "ckpts")
	base := s3.URL("jobs")
	out := t.TempDir()
	backfill := []string{"backfill", "--from", "2024-01-01T00:00:00Z", "--to", "2024-01-01T00:00:03Z", "--progress", "never",
		"--checkpoint-dir", base, "--parquet", out}
	if r := run(t, nil, backfill...); r.code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, q := range []string{"rate", "counts"} {
		keys := s3.Keys("jobs/" + q + "/commits/")
		if len(keys) == 0 {
			t.Fatalf("no commits under s3://ckpts/jobs/%s/ after the backfill (bucket: %q)", q, s3.Keys(""))
		}
	}
	before := len(s3.Keys("jobs/counts/offsets/"))
	if r := run(t, nil, backfill...); r.code != 0 {
		t.Fatalf("second backfill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := len(s3.Keys("jobs/counts/offsets/")); after != before {
		t.Fatalf("the second backfill wrote %d offsets files more: it did not resume from the S3 checkpoint", after-before)
	}
	counts := vfs.Join(base, "counts")
	r := run(t, nil, "checkpoint", "inspect", counts)
	if r.code != 0 || !strings.Contains(r.stdout, "batches      committed 0..6 (7 batches)") || !strings.Contains(r.stdout, "checkpoint   "+counts) {
		t.Fatalf("inspect %s: exit %d\n%s%s", counts, r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, "checkpoint", "verify", counts); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("verify %s: exit %d\n%s%s", counts, r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, "checkpoint", "verify", "ftp://host/ck"); r.code != 1 || !strings.Contains(r.stderr, `unknown scheme "ftp"`) {
		t.Fatalf("verify ftp://: exit %d, want 1 naming the scheme\n%s%s", r.code, r.stdout, r.stderr)
	}
}
