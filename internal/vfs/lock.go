package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrLocked: Lock found the lock held by someone else (another process, or
// another holder in this one).
var ErrLocked = errors.New("vfs: already locked")

// Why an OS lock (flock) and not a lease: an flock is released by the
// kernel when its holder exits, however it exits, so a SIGKILLed or
// OOM-killed owner never blocks a restart, and there is no clock, renewal
// or expiry to get wrong. It needs a filesystem that implements flock for
// every process that opens the directory: a local disk, or a shared one
// whose locks are coherent (NFSv4 maps flock to byte-range locks). Object
// storage has no locks at all: Blob implements Lock as a lease (a lock
// object with an owner and an expiry the owner renews; blobfs/lease.go), which is
// why Lock is part of the FS interface: callers did not change. A lease
// cannot fence a stalled holder, so what must never have two writers (the
// checkpoint's logs) uses CreateExclusive as well.

// lockPid is what a holder records in the lock file: its pid, for the
// error another process gets.
func lockPid() []byte { return strconv.AppendInt(nil, int64(os.Getpid()), 10) }

// holderText renders a lock file's content for an error: "pid N" when it
// holds a pid.
func holderText(content []byte) string {
	s := strings.TrimSpace(string(content))
	if _, err := strconv.Atoi(s); err != nil || s == "" {
		return "another process"
	}
	return "pid " + s
}

// memLock is a Mem lock; token tells it apart from a lock of the same path
// taken after a Crash released it.
type memLock struct {
	m     *Mem
	path  string
	token uint64
}

// Lock takes path's lock within m (no file is written: a Mem models one
// machine's filesystem, whose locks live in the kernel, not on disk).
// Crash releases every lock, as the death of the process that held it
// would; a lock closed after that releases nothing.
func (m *Mem) Lock(path string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = clean(path)
	if m.isDir(path) {
		return nil, fmt.Errorf("vfs: lock %s: is a directory", path)
	}
	if _, held := m.locks[path]; held {
		return nil, fmt.Errorf("vfs: lock %s: held by pid %d (this process): %w", path, os.Getpid(), ErrLocked)
	}
	if m.locks == nil {
		m.locks = map[string]uint64{}
	}
	m.lockSeq++
	m.locks[path] = m.lockSeq
	return &memLock{m: m, path: path, token: m.lockSeq}, nil
}

func (l *memLock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.locks[l.path] == l.token {
		delete(l.m.locks, l.path)
	}
	return nil
}
