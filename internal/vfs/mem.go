package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Mem is an in-memory FS for tests, with fault injection (FailAfter,
// FailLate), power loss (Crash) and damage to stored files (Corrupt). It is
// safe for concurrent use.
//
// Mem keeps two views of every path: what a running process sees, and what
// survives a Crash. A WriteFileAtomic, CreateExclusive, File.Commit, Remove
// or RemoveAll that returned nil is durable (the model of OS, which fsyncs
// the file and its directory; see invariant 1). A write that failed changes
// nothing durable: after a Crash the path holds its old content, or nothing
// if it had none, never part of the new data.
//
// Directories are implicit: a directory exists while a file lies under it.
type Mem struct {
	mu      sync.Mutex
	files   map[string][]byte // what the running process sees
	durable map[string][]byte // what survives Crash

	failAfter int   // successful mutating calls left before failures; -1: never fail
	failErr   error // the error injected failures wrap
	failLate  bool  // failed writes land (visible) but are not durable
	mutations int   // mutating calls made so far, failed ones included

	locks   map[string]uint64 // held locks by path, with the holder's token
	lockSeq uint64
}

var _ FS = (*Mem)(nil)

// NewMem returns an empty Mem that never fails.
func NewMem() *Mem {
	return &Mem{files: map[string][]byte{}, durable: map[string][]byte{}, failAfter: -1}
}

// FailAfter lets the next n mutating calls (WriteFileAtomic,
// CreateExclusive, File.Commit, Remove, RemoveAll) succeed and fails every later one with an error wrapping err,
// until FailAfter(-1, nil) clears it. FailAfter(0, err) fails the very next
// mutating call.
func (m *Mem) FailAfter(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < 0 {
		m.failAfter, m.failErr = -1, nil
		return
	}
	if err == nil {
		err = errors.New("vfs: injected failure")
	}
	m.failAfter, m.failErr = n, err
}

// FailLate chooses where an injected write failure (WriteFileAtomic,
// CreateExclusive, File.Commit) happens. Off
// (the default), it fails before the rename: the old content stays. On, it
// fails after the rename but before the directory fsync: the running
// process reads the new content, and a Crash brings back the old one.
// Failed Remove and RemoveAll calls never change anything.
func (m *Mem) FailLate(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failLate = on
}

// Mutations returns how many mutating calls were made, failed ones included;
// a test can loop FailAfter over 0..Mutations() of a fault-free run to fail
// every step of it.
func (m *Mem) Mutations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mutations
}

// Crash simulates power loss and a restart: every path goes back to its
// durable content and every lock is released. Injected failures stay armed;
// clear them with FailAfter(-1, nil).
func (m *Mem) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files = cloneFiles(m.durable)
	m.locks = nil
}

// Corrupt replaces the stored content of path (the durable copy too) by
// fn(old); fn receives a copy it may modify. It panics when path is not a
// file: a test asked to damage something that is not there.
func (m *Mem) Corrupt(path string, fn func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = clean(path)
	old, ok := m.files[path]
	if !ok {
		panic(fmt.Sprintf("vfs: Mem.Corrupt: no file %s", path))
	}
	m.files[path] = clone(fn(clone(old)))
	if d, ok := m.durable[path]; ok {
		m.durable[path] = clone(fn(clone(d)))
	}
}

// Files returns the paths of all files the running process sees, sorted.
func (m *Mem) Files() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	paths := make([]string, 0, len(m.files))
	for p := range m.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// fail counts a mutating call and reports the error to inject, if any.
// Callers hold m.mu.
func (m *Mem) fail() error {
	m.mutations++
	if m.failAfter < 0 {
		return nil
	}
	if m.failAfter > 0 {
		m.failAfter--
		return nil
	}
	return m.failErr
}

func (m *Mem) WriteFileAtomic(path string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.write(clean(path), data, false)
}

// CreateExclusive is put-if-absent under m's mutex. Finding path taken is
// not a mutating call (nothing is written), so it does not count towards
// FailAfter.
func (m *Mem) CreateExclusive(path string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.write(clean(path), data, true)
}

// write is WriteFileAtomic, or CreateExclusive when exclusive; injected
// failures behave the same for both (FailLate: visible, not durable).
// Callers hold m.mu.
func (m *Mem) write(path string, data []byte, exclusive bool) error {
	verb := "write"
	if exclusive {
		verb = "create"
	}
	if m.isDir(path) {
		return fmt.Errorf("vfs: %s %s: is a directory", verb, path)
	}
	for d := filepath.Dir(path); d != "." && d != "/"; d = filepath.Dir(d) {
		if _, ok := m.files[d]; ok {
			return fmt.Errorf("vfs: create dir for %s: %s is a file", path, d)
		}
	}
	if _, ok := m.files[path]; ok && exclusive {
		return fmt.Errorf("vfs: create %s: %w", path, fs.ErrExist)
	}
	if err := m.fail(); err != nil {
		if m.failLate {
			m.files[path] = clone(data)
			return fmt.Errorf("vfs: sync dir %s: %w", filepath.Dir(path), err)
		}
		return fmt.Errorf("vfs: %s %s: %w", verb, path, err)
	}
	m.files[path] = clone(data)
	m.durable[path] = clone(data)
	return nil
}

// Create buffers the bytes; Commit is one WriteFileAtomic of them (one
// mutating call, failing as WriteFileAtomic does).
func (m *Mem) Create(path string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = clean(path)
	if m.isDir(path) {
		return nil, fmt.Errorf("vfs: create %s: is a directory", path)
	}
	return &memFile{m: m, path: path}, nil
}

type memFile struct {
	m    *Mem
	path string
	buf  []byte
	done bool
}

func (f *memFile) Write(p []byte) (int, error) {
	if f.done {
		return 0, fmt.Errorf("vfs: write %s: %w", f.path, fs.ErrClosed)
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *memFile) Commit() error {
	if f.done {
		return fmt.Errorf("vfs: commit %s: %w", f.path, fs.ErrClosed)
	}
	f.done = true
	return f.m.WriteFileAtomic(f.path, f.buf)
}

func (f *memFile) Abort() error {
	f.done, f.buf = true, nil
	return nil
}

func (m *Mem) ReadFile(path string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = clean(path)
	b, ok := m.files[path]
	if !ok {
		if m.isDir(path) {
			return nil, fmt.Errorf("vfs: read %s: is a directory", path)
		}
		return nil, fmt.Errorf("vfs: read %s: %w", path, fs.ErrNotExist)
	}
	return clone(b), nil
}

func (m *Mem) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	if _, ok := m.files[dir]; ok {
		return nil, fmt.Errorf("vfs: list %s: not a directory", dir)
	}
	seen := map[string]bool{}
	var names []string
	for p := range m.files {
		rest, ok := under(dir, p)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if !seen[name] && !strings.HasPrefix(name, tempPrefix) {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (m *Mem) Remove(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = clean(path)
	if m.isDir(path) {
		return fmt.Errorf("vfs: remove %s: directory not empty", path)
	}
	if err := m.fail(); err != nil {
		return fmt.Errorf("vfs: remove %s: %w", path, err)
	}
	delete(m.files, path)
	delete(m.durable, path)
	return nil
}

func (m *Mem) RemoveAll(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = clean(path)
	if err := m.fail(); err != nil {
		return fmt.Errorf("vfs: remove %s: %w", path, err)
	}
	for _, files := range []map[string][]byte{m.files, m.durable} {
		for p := range files {
			if _, ok := under(path, p); ok || p == path {
				delete(files, p)
			}
		}
	}
	return nil
}

// isDir reports whether some visible file lies under path. Callers hold m.mu.
func (m *Mem) isDir(path string) bool {
	for p := range m.files {
		if _, ok := under(path, p); ok {
			return true
		}
	}
	return false
}

// under returns p relative to dir when p lies strictly below dir.
func under(dir, p string) (string, bool) {
	switch dir {
	case ".":
		return p, !filepath.IsAbs(p) && p != "."
	case "/":
		return strings.TrimPrefix(p, "/"), p != "/" && strings.HasPrefix(p, "/")
	}
	rest, ok := strings.CutPrefix(p, dir+"/")
	return rest, ok && rest != ""
}

func clean(path string) string { return filepath.ToSlash(filepath.Clean(path)) }

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}

func cloneFiles(files map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for p, b := range files {
		out[p] = clone(b)
	}
	return out
}
