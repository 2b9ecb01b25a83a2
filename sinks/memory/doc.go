// Package memory is a sink that keeps committed rows in memory, for tests
// and examples: the Arrow twin of Spark's memory sink.
//
// In: arrow.Records from tasks of the same process (Writer.Write copies
// them), and from the driver Commit or Abort of a batch. Out: the table as
// it stands after the committed batches (Rows), and their ids (Batches).
//
// Modes: Append adds a batch's rows; Complete replaces the table with them;
// Update upserts them by Config.Keys (a later row of a key replaces the
// earlier one, within a batch too), or appends when no key is declared.
//
// Invariants:
//  1. Tasks' rows live in a pending area keyed by a token that the commit
//     message carries; only Commit moves them into the table, so nothing is
//     visible before it. Messages only mean something to the Sink that made
//     them: driver and tasks share one process, which the Sink declares
//     by being sinks.InProcess.
//  2. Commit is idempotent per batch id: a committed batch is remembered and
//     a later Commit of it only drops pending rows of that id (a re-run).
//     Abort drops the batch's pending rows and is a no-op once committed.
//  3. Write copies the record into the sink's allocator; it never retains
//     the caller's. Rows returns retained records the caller releases;
//     Close releases everything the sink holds.
//
// Commit, in pseudo-code:
//
//	if batch committed: drop its pending rows; return
//	recs = pending rows of each message, in task order
//	table = apply(mode, table, recs)   // append | replace | upsert by key
//	mark batch committed; drop any other pending rows of the batch
package memory
