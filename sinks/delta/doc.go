// Package delta is the Delta Lake sink: a streaming query's append output
// becomes a Delta table (Parquet data files plus the _delta_log written by
// internal/delta) that delta-rs, Spark and sluice's own reader read
// transactionally.
//
// In: arrow.Records of one schema per batch (Writer.Write), and from the
// driver Commit or Abort of each batch. Out: Parquet files (written by
// sinks/parquet's FileWriter, Hive-style partition directories) named
// part-<app>-<batch>-<task>-<attempt>-<n>.parquet, and one log version per
// committed batch holding their add actions and txn{appId: AppID,
// version: batch id}; a checkpoint every CheckpointEvery versions. AppID
// is Config.AppID, else the writing query's id (sinks.Batch.Query), as in
// Spark's Delta sink. See format.md.
//
// Invariants:
//  1. A batch's rows are in the table exactly when a log version holds its
//     txn: Commit writes that version with put-if-absent after fsyncing
//     every file and directory it names. Files of a batch that never
//     committed are in no version, so no reader of the table sees them.
//  2. Exactly once: a batch whose id is at or below the table's txn version
//     for AppID is committed already; its writers write nothing and its
//     Commit is a no-op (removing files a zombie attempt wrote meanwhile).
//  3. Commit races other writers of the table: losing a version to another
//     writer re-reads the log; if the winner committed this batch (same
//     AppID) the Commit is a no-op, otherwise this blind append tries the
//     next version (appends commute, as in Delta's own conflict rules) up to
//     maxCommitAttempts times, then fails with delta.ErrConflict.
//  4. Abort removes every file of an uncommitted batch of this AppID (those
//     its messages name and any a crashed run left, found by name) and is a
//     no-op once the batch is committed.
//  5. A table that exists is appended to only if its schema (names and
//     types), partition columns and writer protocol match what this sink
//     writes; Check says why not, naming the table and its version.
//  6. A writer of batch b when the table holds a later batch of AppID is
//     refused: the query's checkpoint is newer than the table (a fresh
//     checkpoint under an old AppID would otherwise skip its first batches
//     as "committed", losing them).
//
// Commit(batch b, files):
//
//	fsync the files' directories
//	loop:
//	    snap = log's latest snapshot
//	    if snap.txn[AppID] >= b: remove files not in snap; return nil
//	    v = snap.version + 1 (or 0 with protocol and metaData)
//	    CreateExclusive(_delta_log/v.json, adds + txn(AppID, b) + commitInfo)
//	    lost the race: loop; other error: return it
//	if v % CheckpointEvery == 0: write the checkpoint of v
package delta
