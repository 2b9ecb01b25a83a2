// Package shuffle is the seam between the tasks of a run and where their
// map output blocks live: the in-process executor keeps them in memory
// (Mem), a cluster executor in memory spilling to local Arrow IPC files and
// serves them to other nodes over Arrow Flight (package cluster). It also
// names what a process that runs tasks for a driver gives each task (Env)
// and the one call such a process makes (Runner), so package cluster
// carries tasks without knowing plans and package dataset/plan runs them
// without knowing the network.
//
// Invariants:
//  1. A block is the records one map task wrote for one partition, kept
//     whole and in order; a re-run task's block replaces the old one.
//  2. Fetch returns records the caller owns, in the order of locs; a
//     block that is not there is a *scheduler.FetchError naming it.
//  3. Release(stage) frees every block of the stage; nothing else does,
//     but closing the store.
package shuffle

import (
	"context"
	"errors"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/scheduler"
)

// Store keeps the blocks of one run.
type Store interface {
	// Put keeps recs (taking ownership) as block (stage, mapTask, part)
	// and returns its location.
	Put(stage, mapTask, part int, recs []arrow.Record) (scheduler.Location, error)
	// Fetch returns the records of locs in order; the caller owns them.
	Fetch(ctx context.Context, locs []scheduler.Location) ([]arrow.Record, error)
	// Release frees every block of stage.
	Release(stage int)
}

// Env is what a process running tasks for a driver gives one task.
type Env struct {
	// Node is this process's name in Locations.
	Node string
	// Blocks is the task's run's store.
	Blocks Store
	// Broadcast fetches key of what the task's driver serves under name
	// (the bounded sides of a query's stream-static joins, its in-memory
	// scans); the caller owns the records.
	Broadcast func(ctx context.Context, name, key string) ([]arrow.Record, error)
}

// Runner runs encoded tasks: dataset/plan's TaskServer. It returns the
// encoded result, or an error for the task.
type Runner interface {
	RunTask(ctx context.Context, task []byte, env Env) ([]byte, error)
}

// ErrNoBlock is the cause of a FetchError for a block the store does not have.
var ErrNoBlock = errors.New("no such block (released, lost, or never written)")

// Mem keeps blocks in memory: the shuffle of the in-process executor.
type Mem struct {
	Node string

	mu     sync.Mutex
	blocks map[key][]arrow.Record
}

type key struct{ stage, mapTask, part int }

var _ Store = (*Mem)(nil)

// Put implements Store.
func (s *Mem) Put(stage, mapTask, part int, recs []arrow.Record) (scheduler.Location, error) {
	loc := scheduler.Location{Node: s.Node, Stage: stage, Map: mapTask, Part: part}
	for _, r := range recs {
		loc.Rows += r.NumRows()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blocks == nil {
		s.blocks = map[key][]arrow.Record{}
	}
	k := key{stage, mapTask, part}
	release(s.blocks[k])
	s.blocks[k] = recs
	return loc, nil
}

// Fetch implements Store.
func (s *Mem) Fetch(_ context.Context, locs []scheduler.Location) ([]arrow.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrow.Record
	for _, l := range locs {
		recs, ok := s.blocks[key{l.Stage, l.Map, l.Part}]
		if !ok {
			release(out)
			return nil, &scheduler.FetchError{Loc: l, Err: ErrNoBlock}
		}
		for _, r := range recs {
			r.Retain()
			out = append(out, r)
		}
	}
	return out, nil
}

// Release implements Store.
func (s *Mem) Release(stage int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, recs := range s.blocks {
		if k.stage == stage {
			release(recs)
			delete(s.blocks, k)
		}
	}
}

// Close frees every block.
func (s *Mem) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, recs := range s.blocks {
		release(recs)
		delete(s.blocks, k)
	}
}

// Bytes is the memory the blocks hold.
func (s *Mem) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, recs := range s.blocks {
		n += Size(recs)
	}
	return n
}

// Size is the bytes of recs' buffers.
func Size(recs []arrow.Record) int64 {
	var n int64
	for _, r := range recs {
		for _, c := range r.Columns() {
			n += int64(dataSize(c.Data()))
		}
	}
	return n
}

func dataSize(d arrow.ArrayData) int {
	n := 0
	for _, b := range d.Buffers() {
		if b != nil {
			n += b.Len()
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}

func release(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}
