package state

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testenv"
	"github.com/sluicedata/sluice/internal/vfs"
)

// TestPyarrowReadsStateFiles: a snapshot is a plain Arrow IPC file whose
// columns and metadata format.md describes.
func TestPyarrowReadsStateFiles(t *testing.T) {
	mem := checked(t)
	dir := t.TempDir()
	cfg := testConfig(vfs.OS{}, mem)
	cfg.Dir = dir
	commitVersions(t, cfg, 3)
	path := filepath.Join(dir, "agg-0", "32-64", "3.snapshot.arrow")
	out := testenv.RunPython(t, `
import sys, pyarrow.ipc as ipc
r = ipc.open_file(sys.argv[1])
t = r.read_all()
md = {k.decode(): v.decode() for k, v in r.schema.metadata.items()}
print(",".join(t.column_names), t.num_rows, md["sluice.state.format"], md["sluice.state.kind"],
      md["sluice.state.key_group_range"], md["sluice.state.rows"], sum(t.column("__deleted").to_pylist()))
`, path)
	s, err := Open(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := "name,wend,count,sum,note,__deleted " + strconv.Itoa(s.Len()) + " 1 snapshot 32-64 " + strconv.Itoa(s.Len()) + " 0"
	if strings.TrimSpace(out) != want {
		t.Fatalf("pyarrow read %q, want %q", strings.TrimSpace(out), want)
	}
}
