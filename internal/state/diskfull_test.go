package state

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicedata/sluice/internal/vfs"
)

// fullFS is the local disk, full while full is set: writes fail with
// ENOSPC and the free space it reports is a few MiB, as a real full disk.
type fullFS struct {
	pebblevfs.FS
	full *atomic.Bool
}

type fullFile struct {
	pebblevfs.File
	full *atomic.Bool
}

func (f fullFS) Create(name string, cat pebblevfs.DiskWriteCategory) (pebblevfs.File, error) {
	if f.full.Load() {
		return nil, fmt.Errorf("create %s: %w", name, syscall.ENOSPC)
	}
	file, err := f.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return fullFile{file, f.full}, nil
}

func (f fullFile) Write(p []byte) (int, error) {
	if f.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f fullFS) GetDiskUsage(path string) (pebblevfs.DiskUsage, error) {
	u, err := f.FS.GetDiskUsage(path)
	if f.full.Load() {
		u.AvailBytes = 3 << 20
	}
	return u, err
}

// A full local disk under the disk backend: the commit fails at once with
// an error naming the local directory, the version and ENOSPC (it used to
// hang: pebble retries a failed flush forever while the writer waits), the
// committed state is intact, and once there is space again the batch
// commits and the store holds what the memory backend holds.
func TestDiskFullLocalDiskIsAnErrorNamingTheDirectory(t *testing.T) {
	var full atomic.Bool
	old := pebbleFS
	pebbleFS = fullFS{pebblevfs.Default, &full}
	defer func() { pebbleFS = old }()
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, mem)
	local := t.TempDir()
	opts := DiskOptions{LocalDir: local}
	batch := func(s Store, v int64) {
		var keys []refKey
		var vals []refVal
		for i := 0; i < 20000; i++ {
			keys = append(keys, mkKey(fmt.Sprintf("key-%d-%d", v, i%(5000*int(v))), false, 0))
			vals = append(vals, refVal{count: v, note: strings.Repeat("n", 64)})
		}
		put(t, s, mem, keys, vals)
	}
	s, err := OpenDisk(cfg, opts, 0)
	if err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 2; v++ {
		batch(s, v)
		if err := s.Commit(v); err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	batch(s, 3)
	done := make(chan error, 1)
	go func() { done <- s.Commit(3) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Commit on a full local disk did not return in 30 s")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), local) || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("Commit on a full local disk: %v; want ENOSPC naming %s and version 3", err, local)
	}
	if s.Version() != 2 {
		t.Fatalf("after the failed commit the store is at version %d, want 2", s.Version())
	}
	s.Close()
	// Space again: a restart loads version 2 and the batch commits.
	full.Store(false)
	s, err = OpenDisk(cfg, opts, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch(s, 3)
	if err := s.Commit(3); err != nil {
		t.Fatal(err)
	}
	m, err := Open(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := diff(contents(t, m), contents(t, s)); d != "" || s.Len() == 0 {
		t.Fatalf("after the retry, disk store vs the files (%d keys):\n%s", s.Len(), d)
	}
}
