// Package dataset is sluice's public Dataset API: one relational API for
// batch jobs over Parquet today and, through package microbatch, for streams.
//
// In: Parquet files/directories/globs (Read), records (FromRecords), Go
// structs (FromStructs), streams (ReadStream, run by package microbatch one
// micro-batch at a time: CompileStream compiles the query once and
// StreamQuery.RunBatch runs the same spec per batch, with stateful
// operators keeping state between batches). Out: an Arrow table (Collect), structs
// (CollectStructs), a text table (Show), Parquet (Write), plans (Explain).
//
//	ds := dataset.Read("s3like/orders/")                     // Hive dirs become columns
//	top := ds.Filter(dataset.Col("day").Ge(dataset.Lit("2026-11-01"))).
//		GroupBy("region").
//		Agg(dataset.Sum(dataset.Col("amount")).As("revenue")).
//		OrderBy(dataset.Desc("revenue"))
//	err := top.Show(ctx, 20)
//
// Invariants:
//  1. A Dataset is immutable and lazy: transformations build a logical plan
//     (package plan) and check it (types, column names) at once; the first
//     failure is carried to every later action, which returns it.
//  2. An action compiles the plan once (plan.Compile: filter and projection
//     pushdown, splits, exchanges, partial/final aggregates, stages) and runs
//     the spec's tasks on an executor through package scheduler. No action
//     mutates a plan.
//  3. Every record of a job is allocated from Config.Allocator and released
//     before the action returns, except what the action hands to the caller
//     (Collect's table), which the caller releases.
//  4. Results are deterministic for the same input and config: task outputs
//     are combined in task order, never in completion order.
//  5. Write is atomic: files appear under the target only when every task
//     succeeded, followed by a _SUCCESS marker.
//  6. User functions (MapBatches, FlatMapGroupsWithState) belong to the
//     Dataset that registered them and to the Datasets made from it: the plan
//     names them, the Dataset carries them in an exec.Funcs (merged by Union
//     and Join; a name means one registration per plan), and every task gets
//     that registry. Nothing is registered process-wide.
//
// Main loop of an action:
//
//	logical := d.node                           // built by transformations
//	spec := plan.Compile(logical, partitions)   // pushdown, pruning, splits, exchanges, stages
//	out := executor.Execute(ctx, spec, run)     // scheduler.Run: stages in order, tasks in parallel (local or on a cluster)
//	recs := out.Fetch(ctx, out.FinalBlocks())   // the final stage's blocks; out.Release() frees them
package dataset
