package vfs_test

import (
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
