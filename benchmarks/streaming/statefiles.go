package main

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sluicedata/sluice/internal/vfs"
)

// stateBytes is the OS filesystem counting the bytes of the state files
// (state/<op>/<range>/<version>.<kind>.arrow) a query writes, by version
// and kind: what a batch's checkpoint costs in state, which should grow
// with the keys a batch changed (deltas), not with the state, except in
// the batches that also write a snapshot.
type stateBytes struct {
	vfs.OS
	mu    sync.Mutex
	delta map[string]int64 // by version
	snap  map[string]int64
}

func newStateBytes() *stateBytes {
	return &stateBytes{delta: map[string]int64{}, snap: map[string]int64{}}
}

func (c *stateBytes) add(path string, n int64) {
	if !strings.Contains(filepath.ToSlash(path), "/state/") {
		return
	}
	name := filepath.Base(path)
	version, kind, _ := strings.Cut(name, ".")
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(kind, "delta"):
		c.delta[version] += n
	case strings.HasPrefix(kind, "snapshot"):
		c.snap[version] += n
	}
}

func (c *stateBytes) WriteFileAtomic(path string, data []byte) error {
	if err := c.OS.WriteFileAtomic(path, data); err != nil {
		return err
	}
	c.add(path, int64(len(data)))
	return nil
}

func (c *stateBytes) Create(path string) (vfs.File, error) {
	f, err := c.OS.Create(path)
	if err != nil {
		return nil, err
	}
	return &countedFile{File: f, path: path, c: c}, nil
}

type countedFile struct {
	vfs.File
	path string
	n    int64
	c    *stateBytes
}

func (f *countedFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.n += int64(n)
	return n, err
}

func (f *countedFile) Commit() error {
	if err := f.File.Commit(); err != nil {
		return err
	}
	f.c.add(f.path, f.n)
	return nil
}

// summary fills the report's state file fields: per batch (version) the
// delta bytes' median and maximum, the snapshots' largest and count, and
// the total.
func (c *stateBytes) summary(r *report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var deltas []int64
	for _, n := range c.delta {
		deltas = append(deltas, n)
		r.StateFileBytes += n
	}
	slices.Sort(deltas)
	if len(deltas) > 0 {
		r.StateDeltaBytesP50, r.StateDeltaBytesMax = deltas[len(deltas)/2], deltas[len(deltas)-1]
	}
	for _, n := range c.snap {
		r.StateSnapshots++
		r.StateFileBytes += n
		r.StateSnapshotBytesMax = max(r.StateSnapshotBytesMax, n)
	}
}
