// Package console is a sink that prints each committed batch as an aligned
// table, for demos and debugging (Spark's console sink).
//
// In: arrow.Records from tasks (Writer.Write keeps at most MaxRows rows of
// each task), and from the driver Commit or Abort of a batch. Out: text on Config.Out, per committed batch:
//
//	-------------------------------------------
//	Batch: 7
//	-------------------------------------------
//	+---+----+
//	| id|name|
//	+---+----+
//	|  1|  n1|
//	+---+----+
//	only showing top 20 of 31 rows            (when rows were cut)
//
// The table comes from Config.Format (the caller may inject the engine's
// formatter; sinks must not import dataset), FormatTable by default.
//
// Invariants:
//  1. Nothing is printed before Commit; a batch's rows print once, in task
//     order, in one Write to Out. A committed batch is remembered: a second
//     Commit (a re-run) prints nothing.
//  2. A task beside the driver keeps its rows in this Sink under a token
//     its message carries; a task on a cluster executor (ctx marked by
//     sinks.WithRemote) puts them, and the count of rows written, in its
//     message as Arrow IPC, so the driver's Sink (another instance) prints
//     the same text (internal/stage).
//  3. Write copies (at most MaxRows rows per task) or, remote, encodes
//     them; it never retains the caller's record. Close releases
//     everything pending.
//
// All modes are accepted: each batch prints what the query hands the sink
// (new rows, changed rows, or the whole result).
package console
