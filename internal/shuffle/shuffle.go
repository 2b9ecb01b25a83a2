// Package shuffle is the seam between the tasks of a run and where their
// map output blocks live: Local keeps a process's blocks in memory and,
// beyond a memory budget (a cluster executor's), in Arrow IPC files; a
// cluster executor serves them to other nodes over Arrow Flight (package
// cluster). It also
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
//  4. A block is kept in memory while its Budget allows (no budget: always)
//     and else written whole to one Arrow IPC file; either way Fetch reads
//     the same records.
package shuffle

import (
	"context"
	"errors"

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
