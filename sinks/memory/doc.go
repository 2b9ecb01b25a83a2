// Package memory is a sink that keeps committed rows in memory, for tests
// and examples: the Arrow twin of Spark's memory sink.
//
// In: arrow.Records from tasks (Writer.Write copies them), and from the
// driver Commit or Abort of a batch. Out: the table as it stands after the
// committed batches (Rows), their ids (Batches), and one batch's rows
// while the table only grew after it (ReadBatch, sinks.BatchReader).
//
// Modes: Append adds a batch's rows; Complete replaces the table with them;
// Update upserts them by Config.Keys (a later row of a key replaces the
// earlier one, within a batch too), or appends when no key is declared.
//
// Invariants:
//  1. Only Commit moves tasks' rows into the table, so nothing is visible
//     before it. A task beside the driver leaves its rows in a pending area
//     of this Sink under a token its commit message carries (no encoding);
//     a task on a cluster executor (ctx marked by sinks.WithRemote) puts
//     them in its message as Arrow IPC, which the driver's Sink, another
//     instance of the same name, decodes into Config.Mem (internal/stage).
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
//	recs = rows of each message (pending, or decoded inline), in task order
//	table = apply(mode, table, recs)   // append | replace | upsert by key
//	mark batch committed; drop any other pending rows of the batch
package memory
