// Package delta is a streaming source over a Delta table: the rows of its
// current snapshot first, then the rows every later version appends, as
// Spark's Delta source reads a table.
//
// In: a Delta table directory (internal/delta reads its log). Out: per
// batch, the Parquet splits (row groups) of the files the batch's versions
// add, with partition columns from the log, read as Arrow records of the
// source schema (the table's at New).
//
// Offsets are table versions, {"version":V}: batch (start, end] reads, for
// start = -1 (Initial), every file of the snapshot of version end, and
// otherwise the files added with dataChange by versions start+1 .. end.
// Latest is the table's newest version, capped at MaxVersionsPerBatch
// versions past start and at the version Bound fixed (AvailableNow: a
// backfill reads the table as it was when the query started).
//
// Invariants:
//  1. Splits(start, end) depends only on the log: committed versions never
//     change, so a re-run reads the same files in the same order (sorted by
//     path within a version, versions in order).
//  2. A version that removes files with dataChange (a delete, update or
//     overwrite) is an error naming it: the source reads append-only
//     tables, as Spark's does by default. Removes without dataChange
//     (compaction) and their re-adds are skipped.
//  3. A commit file cleaned up before its batch ran, or a data file deleted
//     since, is sources.ErrOffsetGone naming it.
//  4. A file whose column types differ from the source schema is an error
//     naming the file and the column; columns a file lacks read as nulls.
package delta
