package sinks

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var (
	// ErrBatchNotCommitted: BatchReader.ReadBatch of a batch the sink has
	// not committed (or no longer keeps apart from later batches).
	ErrBatchNotCommitted = errors.New("sinks: batch not committed")
)

// Mode is how a streaming query's result reaches the sink each batch.
type Mode string

const (
	// Append: each batch adds new rows; rows are never changed later.
	Append Mode = "append"
	// Update: each batch carries the rows (keys) that changed since the last.
	Update Mode = "update"
	// Complete: each batch carries the whole result, replacing the last.
	Complete Mode = "complete"
)

// Batch identifies one micro-batch (or one batch job) to a sink.
type Batch struct {
	ID     int64
	Mode   Mode
	Schema *arrow.Schema
	// Query is the id of the streaming query writing the batch, stable
	// across its restarts (its checkpoint's query id); "" for a batch job.
	// A sink that must tell its queries' batches apart in a shared output
	// (the Delta sink's txn appId) can use it.
	Query string
}

// CommitMessage is what a task hands the driver after preparing its output
// (files written, a transaction opened); plain data, so it can cross the
// network from an executor.
type CommitMessage = json.RawMessage

// Sink writes the output of batches exactly once.
//
// Contract:
//  1. Tasks call NewWriter(batch, task), Write any number of records and
//     Prepare; nothing is visible to readers yet. A task running in another
//     process than the driver's gets a ctx marked by WithRemote: its
//     commit message must then mean the same to the driver's own instance
//     of the Sink (same name and configuration) as to this one.
//  2. The driver calls Commit once with every task's message in task order.
//     Commit is atomic for readers and idempotent per batch id: committing a
//     batch that was already committed (a re-run after a crash between the
//     sink commit and commits/<N>) changes nothing and returns nil.
//  3. Abort discards what tasks of a batch prepared; it is idempotent and
//     safe after a crash (messages may be from an earlier run).
//  4. Records passed to Write are not retained.
//  5. Sinks validate Mode and Schema in Check before a query starts, and
//     return an error saying why a combination is unsupported.
type Sink interface {
	Name() string
	Check(mode Mode, schema *arrow.Schema) error
	NewWriter(ctx context.Context, b Batch, task int) (Writer, error)
	Commit(ctx context.Context, b Batch, msgs []CommitMessage) error
	Abort(ctx context.Context, b Batch, msgs []CommitMessage) error
}

type remoteKey struct{}

// WithRemote marks ctx as the context of a task that runs in another process than the
// driver's (a cluster executor): a Writer made with it must put in its commit message
// everything the driver's Commit needs (the rows themselves), never a token of this
// process's memory.
func WithRemote(ctx context.Context) context.Context {
	return context.WithValue(ctx, remoteKey{}, true)
}

// IsRemote reports whether ctx was marked by WithRemote.
func IsRemote(ctx context.Context) bool {
	r, _ := ctx.Value(remoteKey{}).(bool)
	return r
}

// InProcess is an optional ability of a Sink whose writers hand rows to the
// driver through memory: its commit messages name rows kept in this
// process, so its tasks must run in the driver's process, and a query that
// would run them elsewhere is refused at Start. InProcess says why,
// completing an error such as `sink memory "out" works in one process only:
// <why>`; "" means the sink works across processes after all (a wrapper,
// like Tee, answers for the sinks it wraps).
type InProcess interface {
	InProcess() string
}

// BatchReader is an optional ability of a Sink: reading back the rows a
// committed batch wrote, so a replay of the batch (microbatch.Replay) can
// prove it writes the same rows. The driver's tools call it; tasks never
// do.
//
// ReadBatch returns the rows batch wrote, as committed, allocated from mem
// (or shared, immutable, when the sink holds them in memory); the caller
// releases every record. Rows come in no promised order. Columns carry the
// batch's schema's names; a column the sink stores apart from the rows (a
// partition directory) may come back with another type holding the same
// values, so compare by value. A batch the sink has not committed, or no
// longer keeps apart, is an error wrapping ErrBatchNotCommitted; a
// committed batch that wrote nothing is no records and no error.
type BatchReader interface {
	ReadBatch(ctx context.Context, b Batch, mem memory.Allocator) ([]arrow.Record, error)
}

// Writer is the task side of a Sink for one batch.
type Writer interface {
	Write(rec arrow.Record) error
	// Prepare finishes the task's output and returns its commit message.
	Prepare() (CommitMessage, error)
	// Abort discards the task's output; after Prepare it is a no-op.
	Abort() error
}
