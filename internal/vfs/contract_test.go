package vfs_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
)

// TestContract runs the FS contract (vfstest.Contract, the table every
// implementation shares) against OS and Mem; internal/vfs/blobfs runs it
// against Blob.
func TestContract(t *testing.T) {
	t.Run("OS", func(t *testing.T) {
		vfstest.Contract(t, func(t *testing.T) (vfs.FS, string) { return vfs.OS{}, t.TempDir() })
	})
	t.Run("Mem", func(t *testing.T) {
		vfstest.Contract(t, func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "/ckpt" })
	})
}

// BenchmarkOSLogWrite compares what a log entry costs on disk written the
// old way (WriteFileAtomic: temp, fsync, rename, fsync dir) and the new
// (CreateExclusive: temp, fsync, link, unlink temp, fsync dir).
//
//	go test -run '^$' -bench OSLogWrite ./internal/vfs/
func BenchmarkOSLogWrite(b *testing.B) {
	data := []byte(strings.Repeat("x", 300)) // about an offsets entry
	for _, c := range []struct {
		name  string
		write func(fsys vfs.OS, path string) error
	}{
		{"WriteFileAtomic", func(fsys vfs.OS, p string) error { return fsys.WriteFileAtomic(p, data) }},
		{"CreateExclusive", func(fsys vfs.OS, p string) error { return fsys.CreateExclusive(p, data) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			for i := 0; i < b.N; i++ {
				if err := c.write(vfs.OS{}, filepath.Join(dir, strconv.Itoa(i)+".json")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
