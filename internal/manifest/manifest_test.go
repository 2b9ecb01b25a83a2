package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
)

func files(batch int64, n int) []File {
	var fs []File
	for i := range n {
		fs = append(fs, File{Path: fmt.Sprintf("part-%d-%d-00000.parquet", batch, i), Rows: 1, Bytes: 10})
	}
	return fs
}

func paths(fs []File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

func TestLog(t *testing.T) {
	t.Run("a committed batch is listed and a second commit changes nothing", func(t *testing.T) {
		l := Open(vfs.NewMem(), "/t", 0)
		if ok, err := l.Commit(3, files(3, 2)); err != nil || !ok {
			t.Fatalf("Commit = %v, %v", ok, err)
		}
		if ok, err := l.Commit(3, files(3, 5)); err != nil || ok {
			t.Fatalf("second Commit = %v, %v; want false, nil", ok, err)
		}
		snap, err := l.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := paths(snap.Files), paths(files(3, 2)); !slices.Equal(got, want) {
			t.Errorf("files %v, want %v", got, want)
		}
		if c, _ := l.Committed(3); !c {
			t.Error("batch 3 not committed")
		}
		if c, _ := l.Committed(4); c {
			t.Error("batch 4 committed")
		}
	})

	t.Run("checkpoints fold entries in and old entries are deleted", func(t *testing.T) {
		mem := vfs.NewMem()
		l := Open(mem, "/t", 3)
		var want []string
		for b := int64(0); b < 10; b++ {
			if _, err := l.Commit(b, files(b, 1)); err != nil {
				t.Fatal(err)
			}
			want = append(want, paths(files(b, 1))...)
		}
		// Checkpoints at 2, 5, 8; entries covered by 5 are gone.
		got, _ := mem.List("/t/" + LogDir)
		wantNames := []string{"5.checkpoint.json", "6.json", "7.json", "8.checkpoint.json", "8.json", "9.json"}
		if !slices.Equal(got, wantNames) {
			t.Errorf("log dir %v, want %v", got, wantNames)
		}
		snap, err := l.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(paths(snap.Files), want) {
			t.Errorf("files %v, want %v", paths(snap.Files), want)
		}
		if !slices.Equal(snap.Batches, []Range{{0, 9}}) {
			t.Errorf("batches %v", snap.Batches)
		}
		for b := int64(0); b < 10; b++ {
			if ok, err := l.Commit(b, files(b, 3)); ok || err != nil {
				t.Fatalf("re-commit of %d = %v, %v", b, ok, err)
			}
		}
	})

	t.Run("a failure or crash at any step leaves the batch committed or not, never half", func(t *testing.T) {
		run := func(mem *vfs.Mem) {
			l := Open(mem, "/t", 2)
			for b := int64(0); b < 6; b++ {
				l.Commit(b, files(b, 1))
			}
		}
		clean := vfs.NewMem()
		run(clean)
		for n := 0; n <= clean.Mutations(); n++ {
			mem := vfs.NewMem()
			mem.FailAfter(n, nil)
			run(mem)
			mem.FailAfter(-1, nil)
			mem.Crash()
			l := Open(mem, "/t", 2)
			snap, err := l.Snapshot()
			if err != nil {
				t.Fatalf("step %d: %v", n, err)
			}
			// Whatever survived, every committed batch lists exactly its file.
			var want []string
			for b := int64(0); b < 6; b++ {
				if snap.Committed(b) {
					want = append(want, paths(files(b, 1))...)
				}
			}
			if !slices.Equal(paths(snap.Files), want) {
				t.Errorf("step %d: files %v, want %v", n, paths(snap.Files), want)
			}
			// And the driver can carry on.
			run(mem)
			snap, err = l.Snapshot()
			if err != nil || len(snap.Files) != 6 {
				t.Errorf("step %d: after rerun %d files, %v", n, len(snap.Files), err)
			}
		}
	})

	t.Run("a corrupt entry is an error naming it", func(t *testing.T) {
		mem := vfs.NewMem()
		l := Open(mem, "/t", 0)
		l.Commit(1, files(1, 1))
		mem.Corrupt("/t/"+LogDir+"/1.json", func(b []byte) []byte { b[len(b)-5] ^= 1; return b })
		_, err := l.Snapshot()
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})

	t.Run("paths leaving the directory are refused", func(t *testing.T) {
		l := Open(vfs.NewMem(), "/t", 0)
		for _, p := range []string{"../x.parquet", "/abs.parquet", "a/../../b", ""} {
			if _, err := l.Commit(1, []File{{Path: p}}); err == nil {
				t.Errorf("path %q accepted", p)
			}
		}
	})
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := Read(dir); ok || err != nil {
		t.Fatalf("plain dir: ok=%v err=%v", ok, err)
	}
	if err := os.Mkdir(filepath.Join(dir, LogDir), 0o755); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Read(dir)
	if !ok || err != nil || len(got) != 0 {
		t.Fatalf("empty log: %v %v %v", got, ok, err)
	}
	Open(vfs.OS{}, dir, 0).Commit(7, []File{{Path: "d=1/part-7-0-00000.parquet"}})
	got, ok, err = Read(dir)
	if want := []string{filepath.Join(dir, "d=1", "part-7-0-00000.parquet")}; !ok || err != nil || !slices.Equal(got, want) {
		t.Fatalf("Read = %v %v %v, want %v", got, ok, err, want)
	}
}
