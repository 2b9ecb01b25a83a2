package vfs

import (
	"errors"
	"io/fs"
)

// DirSyncer is an optional ability of an FS: making the removals and
// renames already done in a directory durable. Remove and RemoveAll do not
// fsync the directory, so on some filesystems a crash can bring removed
// files back in any subset; a caller whose removal order matters (oldest
// first, say) syncs between steps.
type DirSyncer interface {
	// SyncDir fsyncs dir; a missing dir is not an error.
	SyncDir(dir string) error
}

var (
	_ DirSyncer = OS{}
	_ DirSyncer = (*Mem)(nil)
)

func (OS) SyncDir(dir string) error {
	if err := syncDir(dir); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// SyncDir is a no-op: Mem's successful removals are durable at once.
func (*Mem) SyncDir(string) error { return nil }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
