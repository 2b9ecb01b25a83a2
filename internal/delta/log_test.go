package delta

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/blobfs"
	"gocloud.dev/blob/memblob"
)

func str(s string) *string { return &s }

func newTable(t *testing.T, fsys vfs.FS, root string) *Table {
	t.Helper()
	schema, err := SchemaString(arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "day", Type: arrow.BinaryTypes.String},
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	tb := Open(fsys, root)
	err = tb.Commit(0, []Action{
		{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &Metadata{ID: "t-1", Format: Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString: schema, PartitionColumns: []string{"day"}, Configuration: map[string]string{}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func addAction(n int) Action {
	day := str(fmt.Sprintf("d%d", n%3))
	if n%5 == 0 {
		day = nil // a null partition value
	}
	return Action{Add: &Add{Path: fmt.Sprintf("day=d%d/part-%d.parquet", n%3, n), Size: int64(100 + n),
		PartitionValues: map[string]*string{"day": day}, DataChange: true, Stats: `{"numRecords":1}`}}
}

// commitBatches commits versions 1..n, each adding one file and a txn.
func commitBatches(t *testing.T, tb *Table, n int) {
	t.Helper()
	for v := 1; v <= n; v++ {
		acts := []Action{addAction(v), {Txn: &Txn{AppID: "q", Version: int64(v - 1)}}}
		if v%4 == 0 { // a remove now and then
			acts = append(acts, Action{Remove: &Remove{Path: addAction(v - 1).Add.Path, DataChange: true}})
		}
		if err := tb.Commit(int64(v), acts); err != nil {
			t.Fatal(err)
		}
	}
}

func files(s *Snapshot) string {
	var out []string
	for _, a := range s.SortedFiles() {
		pv := "null"
		if p := a.PartitionValues["day"]; p != nil {
			pv = *p
		}
		out = append(out, fmt.Sprintf("%s(%d,%s)", a.Path, a.Size, pv))
	}
	return strings.Join(out, " ")
}

// want is the file set after version v by replaying the rule by hand.
func want(v int) string {
	live := map[int]bool{}
	for i := 1; i <= v; i++ {
		live[i] = true
		if i%4 == 0 {
			delete(live, i-1)
		}
	}
	s := &Snapshot{Files: map[string]*Add{}}
	for i := range live {
		a := addAction(i).Add
		s.Files[a.Path] = a
	}
	return files(s)
}

func TestReplayEveryVersionWithAndWithoutCheckpoint(t *testing.T) {
	for _, cp := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint=%v", cp), func(t *testing.T) {
			fsys := vfs.NewMem()
			tb := newTable(t, fsys, "/t")
			commitBatches(t, tb, 12)
			if cp {
				s, err := tb.Snapshot(7)
				if err != nil {
					t.Fatal(err)
				}
				if err := tb.WriteCheckpoint(s); err != nil {
					t.Fatal(err)
				}
				// Without the commits before it, only the checkpoint can give version 7.
				for v := 0; v <= 7; v++ {
					fsys.Remove("/t/_delta_log/" + CommitName(int64(v)))
				}
			}
			from := 0
			if cp {
				from = 7
			}
			for v := from; v <= 12; v++ {
				s, err := tb.Snapshot(int64(v))
				if err != nil {
					t.Fatalf("version %d: %v", v, err)
				}
				if got, w := files(s), want(v); got != w {
					t.Fatalf("version %d:\n got %s\nwant %s", v, got, w)
				}
				if got := s.TxnVersion("q"); got != int64(v-1) {
					t.Fatalf("version %d: txn version %d, want %d", v, got, v-1)
				}
				if s.Metadata.PartitionColumns[0] != "day" || s.Protocol.MinWriterVersion != 2 {
					t.Fatalf("version %d: metadata %+v protocol %+v", v, s.Metadata, s.Protocol)
				}
			}
			if cp {
				if _, err := tb.Snapshot(3); !errors.Is(err, ErrNoVersion) && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("version 3 after cleanup: %v", err)
				}
			}
		})
	}
}

func TestUpdateReadsOnlyNewCommits(t *testing.T) {
	fsys := vfs.NewMem()
	tb := newTable(t, fsys, "/t")
	commitBatches(t, tb, 3)
	s, err := tb.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Commit(4, []Action{addAction(4), {Txn: &Txn{AppID: "other", Version: 9}}}); err != nil {
		t.Fatal(err)
	}
	u, err := tb.Update(s)
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 4 || u.TxnVersion("other") != 9 || s.Version != 3 || len(s.Files) != 3 {
		t.Fatalf("update: %d %d; old %d %d", u.Version, u.TxnVersion("other"), s.Version, len(s.Files))
	}
	if got, w := files(u), files(mustLatest(t, tb)); got != w {
		t.Fatalf("update %s\nfresh %s", got, w)
	}
}

func mustLatest(t *testing.T, tb *Table) *Snapshot {
	t.Helper()
	s, err := tb.Latest()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecondWriterOfAVersionLoses(t *testing.T) {
	for _, store := range []string{"mem", "local", "object store"} {
		t.Run(store, func(t *testing.T) {
			var fsys vfs.FS = vfs.NewMem()
			root := "/t"
			switch store {
			case "local":
				fsys, root = vfs.OS{}, t.TempDir()
			case "object store": // the conditional write of blobfs, on gocloud's in-memory bucket
				b := blobfs.New(memblob.OpenBucket(nil), "mem://test")
				t.Cleanup(func() { b.Close() })
				fsys, root = b, "tables/t"
			}
			tb := newTable(t, fsys, root)
			const writers = 8
			var wg sync.WaitGroup
			errs := make([]error, writers)
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = Open(fsys, root).Commit(1, []Action{addAction(i), {Txn: &Txn{AppID: fmt.Sprint("w", i), Version: 0}}})
				}()
			}
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won >= 0:
					t.Fatalf("writers %d and %d both committed version 1", won, i)
				case err == nil:
					won = i
				case !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), CommitName(1)):
					t.Fatalf("writer %d: %v, want ErrConflict naming the file", i, err)
				}
			}
			s := mustLatest(t, tb)
			if won < 0 || s.TxnVersion(fmt.Sprint("w", won)) != 0 || len(s.Files) != 1 {
				t.Fatalf("winner %d, snapshot %s txns %v", won, files(s), s.Txns)
			}
		})
	}
}

func TestBrokenLogIsAnErrorNamingFileAndVersion(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(fsys *vfs.Mem)
		want   []string
	}{
		{"a missing commit", func(m *vfs.Mem) { m.Remove("/t/_delta_log/" + CommitName(2)) }, []string{CommitName(2), "version 2", "missing"}},
		{"a commit that is not JSON", func(m *vfs.Mem) {
			m.Corrupt("/t/_delta_log/"+CommitName(3), func(b []byte) []byte { return append([]byte("{garbage\n"), b...) })
		}, []string{CommitName(3), "version 3", "line 1"}},
		{"an empty commit", func(m *vfs.Mem) {
			m.Corrupt("/t/_delta_log/"+CommitName(1), func(b []byte) []byte { return nil })
		}, []string{CommitName(1), "version 1", "empty"}},
		{"a corrupt checkpoint", func(m *vfs.Mem) {
			m.Corrupt("/t/_delta_log/"+CheckpointName(4), func(b []byte) []byte { return b[:len(b)/2] })
		}, []string{CheckpointName(4), "version 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			tb := newTable(t, fsys, "/t")
			commitBatches(t, tb, 5)
			s, err := tb.Snapshot(4)
			if err != nil {
				t.Fatal(err)
			}
			if err := tb.WriteCheckpoint(s); err != nil {
				t.Fatal(err)
			}
			c.break_(fsys)
			v := int64(5)
			if strings.Contains(c.name, "checkpoint") {
				v = 4
			} else {
				fsys.Remove("/t/_delta_log/" + CheckpointName(4))
				fsys.Remove("/t/_delta_log/_last_checkpoint")
			}
			_, err = tb.Snapshot(v)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			for _, w := range append(c.want, "/t") {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCheckpointIsReadFromDiskByName(t *testing.T) {
	root := t.TempDir()
	tb := newTable(t, vfs.OS{}, root)
	commitBatches(t, tb, 10)
	s := mustLatest(t, tb)
	if err := tb.WriteCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, LogDir, lastCheckpointFile))
	if err != nil || !strings.Contains(string(b), `"version":10`) {
		t.Fatalf("_last_checkpoint %s %v", b, err)
	}
	for v := 0; v <= 10; v++ {
		os.Remove(filepath.Join(root, LogDir, CommitName(int64(v))))
	}
	os.WriteFile(filepath.Join(root, LogDir, CommitName(10)), []byte(`{"commitInfo":{}}`+"\n"), 0o644)
	got := mustLatest(t, tb)
	if files(got) != want(10) || got.TxnVersion("q") != 9 || got.Metadata.SchemaString != s.Metadata.SchemaString {
		t.Fatalf("from checkpoint: %s txn %d", files(got), got.TxnVersion("q"))
	}
}

func TestUnsupportedProtocolIsRefused(t *testing.T) {
	fsys := vfs.NewMem()
	tb := newTable(t, fsys, "/t")
	if err := tb.Commit(1, []Action{{Protocol: &Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors"}, WriterFeatures: []string{"deletionVectors"}}}}); err != nil {
		t.Fatal(err)
	}
	_, err := tb.Latest()
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "deletionVectors") {
		t.Fatalf("got %v", err)
	}
	if err := CheckWrite(Protocol{MinReaderVersion: 1, MinWriterVersion: 4}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("writer 4: %v", err)
	}
}
