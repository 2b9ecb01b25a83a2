//go:build unix

package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Lock takes an flock on path (created, with its directory, if missing)
// and records this process's pid in it. The file stays after Close: removing
// it would let a process that opened the old file and one that creates a
// new one both "hold" the lock.
func (OS) Lock(path string) (io.Closer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("vfs: lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vfs: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		content, _ := io.ReadAll(io.LimitReader(f, 64))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("vfs: lock %s: held by %s: %w", path, holderText(content), ErrLocked)
		}
		return nil, fmt.Errorf("vfs: lock %s: %w", path, err)
	}
	// The pid is a courtesy for the error above, not part of the lock:
	// failing to record it does not fail the lock.
	pid := lockPid()
	if old, err := io.ReadAll(io.LimitReader(f, 64)); err != nil || string(old) != string(pid) {
		if f.Truncate(0) == nil {
			f.WriteAt(pid, 0)
		}
	}
	return &osLock{f: f}, nil
}

type osLock struct {
	once sync.Once
	f    *os.File
	err  error
}

// Close releases the flock by closing the file (the lock belongs to the
// open file description).
func (l *osLock) Close() error {
	l.once.Do(func() {
		if err := l.f.Close(); err != nil {
			l.err = fmt.Errorf("vfs: unlock %s: %w", l.f.Name(), err)
		}
	})
	return l.err
}
