package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/blobfs"
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
)

var errInjected = errors.New("injected")

// filesystems runs a test against every FS the checkpoint must work on.
func filesystems(t *testing.T, f func(t *testing.T, fsys vfs.FS, dir string)) {
	t.Run("Mem", func(t *testing.T) { f(t, vfs.NewMem(), "/q/ckpt") })
	t.Run("OS", func(t *testing.T) { f(t, vfs.OS{}, filepath.Join(t.TempDir(), "ckpt")) })
	t.Run("Blob/memblob", func(t *testing.T) {
		x := blobfs.New(memblob.OpenBucket(nil), "mem://test")
		defer x.Close()
		f(t, x, "q/ckpt")
	})
	t.Run("Blob/s3", func(t *testing.T) {
		fsys, dir, err := blobfs.Open(context.Background(), vfstest.NewS3(t, "bucket").URL("q/ckpt"))
		if err != nil {
			t.Fatal(err)
		}
		defer vfs.CloseFS(fsys)
		f(t, fsys, dir)
	})
}

func open(t *testing.T, fsys vfs.FS, dir string) *Checkpoint {
	t.Helper()
	c, err := Open(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const testQueryID = "5f0c6f1e-query"

func testIdentity() Identity {
	return Identity{
		Sources: []SourceIdentity{{Name: "orders", Identity: "kafka topics=orders"}},
		Operators: []OperatorIdentity{{Kind: "aggregate", ID: "agg-0", KeySchema: "customer: utf8",
			ValueSchema: "total: int64, n: int64 not null", Aggregates: []string{"sum", "count"}}},
	}
}

func testMetadata() *Metadata {
	return &Metadata{QueryID: testQueryID, Identity: testIdentity(), Config: map[string]string{"watermark.policy": "min"}}
}

// offsetsFor and commitFor are what a deterministic driver writes for batch n.
func offsetsFor(n int64) *OffsetEntry {
	start := json.RawMessage(fmt.Sprintf(`{"p0":%d}`, n*10))
	if n == 0 {
		start = nil
	}
	return &OffsetEntry{
		Batch:   n,
		QueryID: testQueryID,
		Sources: map[string]SourceOffsets{
			"orders": {Identity: "kafka topics=orders", Start: start, End: json.RawMessage(fmt.Sprintf(`{"p0":%d}`, n*10+10))},
		},
		Watermark: map[bool]int64{true: math.MinInt64, false: n * 1000}[n == 0],
		Timestamp: 1_700_000_000_000_000 + n,
	}
}

func commitFor(n int64) *CommitEntry { return &CommitEntry{Batch: n, NextWatermark: n*1000 + 1000} }

// runBatches writes metadata if new, recovers, re-runs an uncommitted batch
// and runs batches until `until` is committed, purging to keep after each.
// It stops at the first error, as the driver does.
func runBatches(c *Checkpoint, until int64, keep int) error {
	if _, ok, err := c.Metadata(); err != nil {
		return err
	} else if !ok {
		if err := c.WriteMetadata(testMetadata()); err != nil {
			return err
		}
	}
	rec, err := c.Recover()
	if err != nil {
		return err
	}
	n := rec.Next
	if rec.Rerun != nil {
		if err := c.WriteCommit(commitFor(n)); err != nil {
			return err
		}
		n++
	}
	if err := c.Purge(keep); err != nil { // what an interrupted Purge left
		return err
	}
	for ; n <= until; n++ {
		if err := c.WriteOffsets(offsetsFor(n)); err != nil {
			return err
		}
		if err := c.WriteCommit(commitFor(n)); err != nil {
			return err
		}
		if err := c.Purge(keep); err != nil {
			return err
		}
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
		c := open(t, fsys, dir)
		if c.Dir() != dir {
			t.Fatalf("Dir() = %q; want %q", c.Dir(), dir)
		}
		if _, ok, err := c.Metadata(); ok || err != nil {
			t.Fatalf("Metadata() of a new checkpoint = %v, %v; want false, nil", ok, err)
		}
		if err := c.WriteMetadata(testMetadata()); err != nil {
			t.Fatal(err)
		}
		want := testMetadata()
		want.FormatVersion, want.KeyGroups, want.Identity.KeyGroups = FormatVersion, DefaultKeyGroups, DefaultKeyGroups
		want.IdentityHash = want.Identity.Hash()
		if got, ok, err := c.Metadata(); err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Metadata() = %+v, %v, %v; want %+v", got, ok, err, want)
		}
		for n := range int64(3) {
			if err := c.WriteOffsets(offsetsFor(n)); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteCommit(commitFor(n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.WriteOffsets(offsetsFor(3)); err != nil {
			t.Fatal(err)
		}

		c = open(t, fsys, dir) // a fresh process reads the same
		for n := range int64(4) {
			if got, err := c.Offsets(n); err != nil || !reflect.DeepEqual(got, offsetsFor(n)) {
				t.Fatalf("Offsets(%d) = %+v, %v; want %+v", n, got, err, offsetsFor(n))
			}
		}
		for n := range int64(3) {
			if got, err := c.Commit(n); err != nil || !reflect.DeepEqual(got, commitFor(n)) {
				t.Fatalf("Commit(%d) = %+v, %v; want %+v", n, got, err, commitFor(n))
			}
		}
		if got, ok, err := c.LatestOffsets(); err != nil || !ok || got.Batch != 3 {
			t.Fatalf("LatestOffsets() = %+v, %v, %v; want batch 3", got, ok, err)
		}
		if got, ok, err := c.LatestCommit(); err != nil || !ok || got.Batch != 2 {
			t.Fatalf("LatestCommit() = %+v, %v, %v; want batch 2", got, ok, err)
		}
		if _, err := c.Offsets(4); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Offsets(4) = %v; want fs.ErrNotExist", err)
		}
		if _, err := c.Commit(3); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Commit(3) = %v; want fs.ErrNotExist", err)
		}
	})
}

func TestLatestOfEmptyCheckpoint(t *testing.T) {
	c := open(t, vfs.NewMem(), "/ckpt")
	if e, ok, err := c.LatestOffsets(); e != nil || ok || err != nil {
		t.Fatalf("LatestOffsets() = %v, %v, %v; want nil, false, nil", e, ok, err)
	}
	if e, ok, err := c.LatestCommit(); e != nil || ok || err != nil {
		t.Fatalf("LatestCommit() = %v, %v, %v; want nil, false, nil", e, ok, err)
	}
}

func TestRecover(t *testing.T) {
	tests := []struct {
		name      string
		offsets   int64 // batches 0..offsets-1 get offsets
		commits   int64 // batches 0..commits-1 get commits
		wantNext  int64
		wantRerun bool
	}{
		{"a new checkpoint starts at batch zero", 0, 0, 0, false},
		{"a first batch without commit is re-run", 1, 0, 0, true},
		{"all batches committed continue after the last", 3, 3, 3, false},
		{"an uncommitted last batch is re-run", 4, 3, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
				c := open(t, fsys, dir)
				must(c.WriteMetadata(testMetadata()))
				for n := range tt.offsets {
					if err := c.WriteOffsets(offsetsFor(n)); err != nil {
						t.Fatal(err)
					}
					if n < tt.commits {
						if err := c.WriteCommit(commitFor(n)); err != nil {
							t.Fatal(err)
						}
					}
				}
				rec, err := open(t, fsys, dir).Recover()
				if err != nil {
					t.Fatal(err)
				}
				if rec.Next != tt.wantNext {
					t.Errorf("Next = %d; want %d", rec.Next, tt.wantNext)
				}
				if tt.wantRerun != (rec.Rerun != nil) || tt.wantRerun && !reflect.DeepEqual(rec.Rerun, offsetsFor(tt.wantNext)) {
					t.Errorf("Rerun = %+v; want rerun %v of %+v", rec.Rerun, tt.wantRerun, offsetsFor(tt.wantNext))
				}
				if tt.commits == 0 && (rec.Last != nil || rec.LastOffsets != nil) {
					t.Errorf("Last = %+v, LastOffsets = %+v; want nil", rec.Last, rec.LastOffsets)
				}
				if tt.commits > 0 && (!reflect.DeepEqual(rec.Last, commitFor(tt.commits-1)) || !reflect.DeepEqual(rec.LastOffsets, offsetsFor(tt.commits-1))) {
					t.Errorf("Last = %+v, LastOffsets = %+v; want batch %d", rec.Last, rec.LastOffsets, tt.commits-1)
				}
			})
		})
	}
}

func TestRewrites(t *testing.T) {
	changed := func(f func(e *OffsetEntry)) *OffsetEntry { e := offsetsFor(1); f(e); return e }
	tests := []struct {
		name    string
		write   func(c *Checkpoint) error
		wantErr error // nil: accepted
		wantMsg string
	}{
		{"an identical offsets rewrite is accepted", func(c *Checkpoint) error { return c.WriteOffsets(offsetsFor(1)) }, nil, ""},
		{"offsets reformatted inside a source offset are the same offsets", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) {
				e.Sources["orders"] = SourceOffsets{Identity: "kafka topics=orders", Start: json.RawMessage(`{ "p0" : 10 }`), End: json.RawMessage("{\"p0\":\n20}")}
			}))
		}, nil, ""},
		{"offsets with another end are refused", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) {
				e.Sources["orders"] = SourceOffsets{Identity: "kafka topics=orders", Start: json.RawMessage(`{"p0":10}`), End: json.RawMessage(`{"p0":99}`)}
			}))
		}, ErrConflict, `/offsets/1.json: exists with different content (sources stored {"orders":{"identity":"kafka topics=orders","start":{"p0":10},"end":{"p0":20}}}, given {"orders":{"identity":"kafka topics=orders","start":{"p0":10},"end":{"p0":99}}})`},
		{"offsets naming another query are refused", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) { e.QueryID = "other-query" }))
		}, ErrForeign, `/offsets/1.json: written for another query or other sources than metadata.json (query_id is "other-query", metadata.json's is "5f0c6f1e-query")`},
		{"offsets with another source identity are refused", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) {
				s := e.Sources["orders"]
				s.Identity = "kafka topics=orders2"
				e.Sources["orders"] = s
			}))
		}, ErrForeign, `(source "orders": identity is "kafka topics=orders2", metadata.json's is "kafka topics=orders")`},
		{"offsets with another source are refused", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) { e.Sources["payments"] = SourceOffsets{Identity: "memory name=payments"} }))
		}, ErrForeign, `(source "payments" (identity "memory name=payments") is not in metadata.json)`},
		{"offsets with another watermark are refused", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) { e.Watermark++ }))
		}, ErrConflict, "watermark_us stored 1000, given 1001"},
		{"offsets with another timestamp are refused", func(c *Checkpoint) error {
			return c.WriteOffsets(changed(func(e *OffsetEntry) { e.Timestamp = 7 }))
		}, ErrConflict, "timestamp_us stored"},
		{"offsets skipping a batch are refused", func(c *Checkpoint) error { return c.WriteOffsets(offsetsFor(3)) }, ErrConflict, "batch 3 out of order (latest offsets 1, latest commit 1)"},
		{"an identical commit rewrite is accepted", func(c *Checkpoint) error { return c.WriteCommit(commitFor(1)) }, nil, ""},
		{"a commit with another watermark is refused", func(c *Checkpoint) error {
			return c.WriteCommit(&CommitEntry{Batch: 1, NextWatermark: 5})
		}, ErrConflict, "/commits/1.json: exists with different content (next_watermark_us stored 2000, given 5)"},
		{"a commit without offsets is refused", func(c *Checkpoint) error { return c.WriteCommit(commitFor(2)) }, ErrConflict, "batch 2 is not the latest"},
		{"an identical metadata rewrite is accepted", func(c *Checkpoint) error { return c.WriteMetadata(testMetadata()) }, nil, ""},
		{"metadata spelling out the defaults is the same metadata", func(c *Checkpoint) error {
			m := testMetadata()
			m.FormatVersion, m.KeyGroups, m.Identity.KeyGroups = 2, 128, 128
			m.IdentityHash = m.Identity.Hash()
			return c.WriteMetadata(m)
		}, nil, ""},
		{"metadata with another identity is refused", func(c *Checkpoint) error {
			m := testMetadata()
			m.Identity.Sources[0].Identity = "kafka topics=orders2"
			return c.WriteMetadata(m)
		}, ErrConflict, `metadata.json: exists with another identity (source "orders": identity was "kafka topics=orders" and is now "kafka topics=orders2")`},
		{"metadata with other key groups is refused", func(c *Checkpoint) error {
			m := testMetadata()
			m.KeyGroups = 64
			return c.WriteMetadata(m)
		}, ErrConflict, "exists with another identity (key groups were 128 and are now 64)"},
		{"metadata of a newer format is refused", func(c *Checkpoint) error {
			m := testMetadata()
			m.FormatVersion = 3
			return c.WriteMetadata(m)
		}, ErrVersion, "format_version 3, this build writes only 2"},
		{"metadata of an older format is refused", func(c *Checkpoint) error {
			m := testMetadata()
			m.FormatVersion = 1
			return c.WriteMetadata(m)
		}, ErrVersion, "format_version 1, this build writes only 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := vfs.NewMem()
			c := open(t, m, "/ckpt")
			if err := runBatches(c, 1, 100); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, m)
			err := tt.write(c)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v; want accepted", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v; want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if after := snapshot(t, m); !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused write changed the checkpoint")
			}
		})
	}
}

func TestWriteOrder(t *testing.T) {
	c := open(t, vfs.NewMem(), "/ckpt")
	if err := c.WriteOffsets(offsetsFor(0)); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "/ckpt/offsets/0.json: no metadata.json yet") {
		t.Fatalf("offsets before metadata: %v; want ErrConflict", err)
	}
	must(c.WriteMetadata(testMetadata()))
	if err := c.WriteOffsets(offsetsFor(0)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteOffsets(offsetsFor(1)); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no commits") {
		t.Fatalf("offsets while the previous batch is uncommitted: %v; want ErrConflict", err)
	}
	if err := c.WriteOffsets(&OffsetEntry{Batch: -1}); err == nil {
		t.Fatal("negative batch accepted")
	}
	if err := c.WriteMetadata(&Metadata{}); err == nil {
		t.Fatal("metadata without a query id accepted")
	}
	m := testMetadata()
	m.IdentityHash = "0123456789abcdef"
	if err := open(t, vfs.NewMem(), "/ckpt").WriteMetadata(m); err == nil || !strings.Contains(err.Error(), `identity_hash "0123456789abcdef", the identity's hash is`) {
		t.Fatalf("metadata with a wrong identity hash: %v", err)
	}
	m = testMetadata()
	m.KeyGroups, m.Identity.KeyGroups = 64, 32
	if err := open(t, vfs.NewMem(), "/ckpt").WriteMetadata(m); err == nil || !strings.Contains(err.Error(), "key_groups 64, identity key groups 32") {
		t.Fatalf("metadata with two key group counts: %v", err)
	}
}

func snapshot(t *testing.T, m *vfs.Mem) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range m.Files() {
		b, err := m.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = string(b)
	}
	return out
}

func TestDamagedFiles(t *testing.T) {
	files := []struct {
		name string
		path string
		read func(c *Checkpoint) error
	}{
		{"offsets", "/ckpt/offsets/2.json", func(c *Checkpoint) error { _, err := c.Recover(); return err }},
		{"commit", "/ckpt/commits/2.json", func(c *Checkpoint) error { _, err := c.Recover(); return err }},
		{"metadata", "/ckpt/metadata.json", func(c *Checkpoint) error { _, _, err := c.Metadata(); return err }},
	}
	damages := []struct {
		name    string
		damage  func([]byte) []byte
		wantErr error
		wantMsg string
	}{
		{"a truncated file is corrupt", func(b []byte) []byte { return b[:len(b)-5] }, ErrCorrupt, "truncated body, checksum mismatch (stored "},
		{"a file cut inside its header is corrupt", func(b []byte) []byte { return b[:6] }, ErrCorrupt, "truncated in the header line"},
		{"an empty file is corrupt", func([]byte) []byte { return nil }, ErrCorrupt, "empty file"},
		{"a flipped byte fails the checksum", func(b []byte) []byte { b[len(b)-4] ^= 0x01; return b }, ErrCorrupt, "checksum mismatch (stored "},
		{"a newer version is refused", func(b []byte) []byte { return append([]byte("v3"), b[2:]...) }, ErrVersion, "format version 3, this build reads only version 2"},
		{"an older version is refused, not upgraded", func(b []byte) []byte { return append([]byte("v1"), b[2:]...) }, ErrVersion,
			"format version 1, written by an older sluice; this build reads only version 2 and does not upgrade checkpoints"},
		{"a foreign JSON file is corrupt", func([]byte) []byte { return []byte(`{"batch": 2}` + "\n") }, ErrCorrupt, `not a checkpoint file (first line "{\"batch\": 2}"`},
		{"a file that is not JSON at all is corrupt", func([]byte) []byte { return []byte("\x00\x01binary junk") }, ErrCorrupt, "not a checkpoint file"},
		{"a malformed checksum is corrupt", func(b []byte) []byte { return append([]byte("v2 crc32c=xyz"), b[bytesIndex(b, '\n'):]...) }, ErrCorrupt, "malformed header"},
		{"a valid envelope around a broken body is corrupt", func([]byte) []byte { return envelope("{\"batch\": ") }, ErrCorrupt, "body: "},
		{"a valid envelope around another batch is corrupt", func([]byte) []byte { return envelope(`{"batch": 9, "query_id": ""}`) }, ErrCorrupt, ""},
	}
	for _, f := range files {
		for _, d := range damages {
			t.Run(f.name+": "+d.name, func(t *testing.T) {
				m := vfs.NewMem()
				c := open(t, m, "/ckpt")
				if err := runBatches(c, 2, 100); err != nil {
					t.Fatal(err)
				}
				m.Corrupt(f.path, d.damage)
				err := f.read(open(t, m, "/ckpt"))
				if !errors.Is(err, d.wantErr) || !strings.Contains(err.Error(), "checkpoint: "+f.path+": ") || !strings.Contains(err.Error(), d.wantMsg) {
					t.Fatalf("err = %v; want %v naming %s and saying %q", err, d.wantErr, f.path, d.wantMsg)
				}
			})
		}
	}
}

func TestDamagedFileOnOS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	c := open(t, vfs.OS{}, dir)
	if err := runBatches(c, 1, 100); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "offsets", "1.json")
	b, err := vfs.OS{}.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0x20
	if err := (vfs.OS{}).WriteFileAtomic(path, b); err != nil {
		t.Fatal(err)
	}
	_, err = c.Recover()
	if !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), "checkpoint: "+path+": checksum mismatch (stored ") {
		t.Fatalf("err = %v; want a checksum mismatch naming %s", err, path)
	}
}

func bytesIndex(b []byte, c byte) int { return slices.Index(b, c) }

// envelope wraps body in a correct header, so only the body is wrong.
func envelope(body string) []byte {
	return append(fmt.Appendf(nil, "v%d crc32c=%08x\n", FormatVersion, crc([]byte(body))), body...)
}

func TestBrokenLogs(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(m *vfs.Mem)
		wantMsg string
	}{
		{"a gap in the offsets is corrupt", func(m *vfs.Mem) {
			must(m.Remove("/ckpt/commits/1.json"))
			must(m.Remove("/ckpt/offsets/1.json"))
		}, "checkpoint: /ckpt/offsets: batch 2 follows batch 0 (missing 1): corrupt checkpoint"},
		{"a gap in the commits is corrupt", func(m *vfs.Mem) { must(m.Remove("/ckpt/commits/1.json")) },
			"checkpoint: /ckpt/commits: batch 2 follows batch 0 (missing 1)"},
		{"a commit without its offsets is corrupt", func(m *vfs.Mem) { must(m.Remove("/ckpt/offsets/3.json")) },
			"checkpoint: /ckpt/commits: commits 0..3 without their offsets in /ckpt/offsets (latest offsets 2)"},
		{"an old commit without its offsets is corrupt", func(m *vfs.Mem) { must(m.Remove("/ckpt/offsets/0.json")) },
			"checkpoint: /ckpt/commits: commits 0..3 without their offsets"},
		{"two uncommitted batches are corrupt", func(m *vfs.Mem) {
			must(m.Remove("/ckpt/commits/3.json"))
			must(m.Remove("/ckpt/commits/2.json"))
		}, "checkpoint: /ckpt/offsets: batches 2..3 have offsets but no commit after the latest commit 1"},
		{"old offsets far below the first commit are corrupt", func(m *vfs.Mem) {
			must(m.Remove("/ckpt/commits/0.json"))
			must(m.Remove("/ckpt/commits/1.json"))
		}, "checkpoint: /ckpt/commits: batches 0..1 have offsets but no commit before the first commit 2"},
		{"uncommitted offsets without any commit are corrupt", func(m *vfs.Mem) { must(m.RemoveAll("/ckpt/commits")) },
			"checkpoint: /ckpt/commits: empty while /ckpt/offsets holds batches 0..3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := vfs.NewMem()
			if err := runBatches(open(t, m, "/ckpt"), 3, 100); err != nil {
				t.Fatal(err)
			}
			tt.damage(m)
			c := open(t, m, "/ckpt")
			for name, call := range map[string]func() error{
				"Recover":       func() error { _, err := c.Recover(); return err },
				"LatestOffsets": func() error { _, _, err := c.LatestOffsets(); return err },
				"LatestCommit":  func() error { _, _, err := c.LatestCommit(); return err },
				"Purge":         func() error { return c.Purge(1) },
				"WriteOffsets":  func() error { return c.WriteOffsets(offsetsFor(4)) },
				"WriteCommit":   func() error { return c.WriteCommit(commitFor(3)) },
			} {
				if err := call(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("%s: err = %v; want ErrCorrupt saying %q", name, err, tt.wantMsg)
				}
			}
		})
	}
}

func TestMissingMetadataBesideLogs(t *testing.T) {
	m := vfs.NewMem()
	if err := runBatches(open(t, m, "/ckpt"), 1, 100); err != nil {
		t.Fatal(err)
	}
	must(m.Remove("/ckpt/metadata.json"))
	c := open(t, m, "/ckpt")
	const want = "checkpoint: /ckpt/metadata.json: missing while /ckpt/offsets holds batches 0..1: corrupt checkpoint"
	if _, _, err := c.Metadata(); !errors.Is(err, ErrCorrupt) || err.Error() != want {
		t.Fatalf("Metadata() err = %v; want %q", err, want)
	}
	if err := c.WriteMetadata(testMetadata()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("WriteMetadata() over lost metadata = %v; want ErrCorrupt", err)
	}
}

func TestForeignNamesAreIgnored(t *testing.T) {
	m := vfs.NewMem()
	c := open(t, m, "/ckpt")
	if err := runBatches(c, 1, 100); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"README", "7.json.bak", "007.json", "-3.json", "x.json", "1.crc", ".2.json.crc", "18446744073709551616.json"} {
		must(m.WriteFileAtomic("/ckpt/offsets/"+name, []byte("junk")))
		must(m.WriteFileAtomic("/ckpt/commits/"+name, []byte("junk")))
	}
	must(m.WriteFileAtomic("/ckpt/offsets/sub/5.json", []byte("junk")))
	rec, err := c.Recover()
	if err != nil || rec.Next != 2 || rec.Rerun != nil {
		t.Fatalf("Recover() = %+v, %v; want next batch 2", rec, err)
	}
	if err := runBatches(c, 3, 1); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.Files(), "/ckpt/offsets/007.json") {
		t.Fatal("Purge deleted a file that is not ours")
	}
}

func TestPurge(t *testing.T) {
	tests := []struct {
		name        string
		batches     int64 // committed batches 0..batches-1
		uncommitted bool  // offsets of one more batch
		keep        int
		wantFirst   int64 // first batch left in both logs
	}{
		{"keeping one leaves only the newest batch", 5, false, 1, 4},
		{"keeping three leaves the last three", 5, false, 3, 2},
		{"keeping more than exist deletes nothing", 5, false, 100, 0},
		{"an uncommitted batch is kept beside the last committed ones", 5, true, 2, 3},
		{"keeping one with an uncommitted batch keeps the last commit", 5, true, 1, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
				c := open(t, fsys, dir)
				if err := runBatches(c, tt.batches-1, 1000); err != nil {
					t.Fatal(err)
				}
				if tt.uncommitted {
					must(c.WriteOffsets(offsetsFor(tt.batches)))
				}
				if err := c.Purge(tt.keep); err != nil {
					t.Fatal(err)
				}
				lastOffsets := tt.batches - 1
				if tt.uncommitted {
					lastOffsets++
				}
				l, err := c.layout()
				if err != nil {
					t.Fatal(err)
				}
				if want := batchRange(tt.wantFirst, lastOffsets); !slices.Equal(l.offsets, want) {
					t.Errorf("offsets = %v; want %v", l.offsets, want)
				}
				if want := batchRange(tt.wantFirst, tt.batches-1); !slices.Equal(l.commits, want) {
					t.Errorf("commits = %v; want %v", l.commits, want)
				}
				rec, err := c.Recover()
				if err != nil || rec.Next != tt.batches || (rec.Rerun != nil) != tt.uncommitted {
					t.Fatalf("Recover() after Purge = %+v, %v", rec, err)
				}
			})
		})
	}
	if err := open(t, vfs.NewMem(), "/ckpt").Purge(0); err == nil {
		t.Fatal("Purge(0) accepted")
	}
	if err := open(t, vfs.NewMem(), "/ckpt").Purge(1); err != nil {
		t.Fatalf("Purge of an empty checkpoint: %v", err)
	}
}

func batchRange(from, to int64) []int64 {
	var out []int64
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// TestFailureAtEveryStep fails each mutating call of a three-batch run
// (metadata, offsets, commits, purges), optionally crashes, and checks that
// Recover yields a consistent state and that the run then completes with
// the same logs as a run that never failed.
func TestFailureAtEveryStep(t *testing.T) {
	const last, keep = 2, 1
	clean := vfs.NewMem()
	if err := runBatches(open(t, clean, "/ckpt"), last, keep); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, clean)
	steps := clean.Mutations()

	for _, late := range []bool{false, true} {
		for _, crash := range []bool{false, true} {
			for step := range steps {
				name := fmt.Sprintf("failing mutation %d of %d (late %v, crash %v) recovers", step+1, steps, late, crash)
				t.Run(name, func(t *testing.T) {
					m := vfs.NewMem()
					m.FailLate(late)
					m.FailAfter(step, errInjected)
					err := runBatches(open(t, m, "/ckpt"), last, keep)
					if !errors.Is(err, errInjected) {
						t.Fatalf("run: %v; want the injected failure", err)
					}
					m.FailAfter(-1, nil)
					if crash {
						m.Crash()
					}
					c := open(t, m, "/ckpt")
					rec, err := c.Recover()
					if err != nil {
						t.Fatalf("Recover: %v", err)
					}
					switch {
					case rec.Rerun != nil && !reflect.DeepEqual(rec.Rerun, offsetsFor(rec.Next)):
						t.Fatalf("Rerun = %+v; want the written %+v", rec.Rerun, offsetsFor(rec.Next))
					case rec.Next == 0 && rec.Last != nil,
						rec.Next > 0 && !reflect.DeepEqual(rec.Last, commitFor(rec.Next-1)):
						t.Fatalf("Next = %d with Last = %+v", rec.Next, rec.Last)
					case rec.Rerun == nil:
						if _, err := c.Offsets(rec.Next); !errors.Is(err, fs.ErrNotExist) {
							t.Fatalf("next batch %d already has offsets: %v", rec.Next, err)
						}
					}
					if err := runBatches(c, last, keep); err != nil {
						t.Fatalf("resumed run: %v", err)
					}
					if got := snapshot(t, m); !reflect.DeepEqual(got, want) {
						t.Fatalf("after resuming, files = %v; want %v", keys(got), keys(want))
					}
				})
			}
		}
	}
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestFileFormat(t *testing.T) {
	m := vfs.NewMem()
	c := open(t, m, "/ckpt")
	must(c.WriteMetadata(testMetadata()))
	must(c.WriteOffsets(offsetsFor(0)))
	must(c.WriteCommit(commitFor(0)))
	must(c.WriteOffsets(offsetsFor(1)))
	golden := map[string]string{
		"/ckpt/metadata.json": `v2 crc32c=` + crcOf(`{
  "query_id": "5f0c6f1e-query",
  "format_version": 2,
  "key_groups": 128,
  "identity": {
    "key_groups": 128,
    "sources": [
      {
        "name": "orders",
        "identity": "kafka topics=orders"
      }
    ],
    "stateful_operators": [
      {
        "kind": "aggregate",
        "id": "agg-0",
        "key_schema": "customer: utf8",
        "value_schema": "total: int64, n: int64 not null",
        "aggregates": [
          "sum",
          "count"
        ]
      }
    ]
  },
  "identity_hash": "c0b58a35f6cd0bee",
  "config": {
    "watermark.policy": "min"
  }
}
`),
		"/ckpt/offsets/0.json": `v2 crc32c=` + crcOf(`{
  "batch": 0,
  "query_id": "5f0c6f1e-query",
  "sources": {
    "orders": {
      "identity": "kafka topics=orders",
      "start": null,
      "end": {
        "p0": 10
      }
    }
  },
  "watermark_us": -9223372036854775808,
  "timestamp_us": 1700000000000000
}
`),
		"/ckpt/offsets/1.json": `v2 crc32c=` + crcOf(`{
  "batch": 1,
  "query_id": "5f0c6f1e-query",
  "sources": {
    "orders": {
      "identity": "kafka topics=orders",
      "start": {
        "p0": 10
      },
      "end": {
        "p0": 20
      }
    }
  },
  "watermark_us": 1000,
  "timestamp_us": 1700000000000001
}
`),
		"/ckpt/commits/0.json": `v2 crc32c=` + crcOf(`{
  "batch": 0,
  "next_watermark_us": 1000
}
`),
	}
	got := snapshot(t, m)
	if !reflect.DeepEqual(got, golden) {
		for p, g := range got {
			if g != golden[p] {
				t.Errorf("%s:\n%s\nwant:\n%s", p, g, golden[p])
			}
		}
		t.FailNow()
	}
	// The checksum is CRC-32C (Castagnoli): its check value pins the polynomial.
	if got := crc([]byte("123456789")); got != 0xe3069283 {
		t.Errorf("crc(123456789) = %08x; want CRC-32C e3069283", got)
	}
}

func crcOf(body string) string { return fmt.Sprintf("%08x\n", crc([]byte(body))) + body }

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// TestFormatDocExample keeps format.md's example file readable.
func TestFormatDocExample(t *testing.T) {
	doc, err := vfs.OS{}.ReadFile("format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```\nv2 crc32c=")
	example, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("format.md has no example file")
	}
	var e CommitEntry
	if err := decode("format.md example", []byte("v2 crc32c="+example), &e); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, *commitFor(0)) {
		t.Fatalf("example decodes to %+v", e)
	}
}
