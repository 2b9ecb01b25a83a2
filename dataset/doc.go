// Package dataset is sluice's public Dataset API: one relational API for
// batch jobs over Parquet today and, through package microbatch, for streams.
//
// In: Parquet files/directories/globs (Read), records (FromRecords), Go
// structs (FromStructs), streams (ReadStream, run by package microbatch one
// micro-batch at a time through RunBatch: the same plan, with stateful
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
//  2. An action optimizes the plan (filter and projection pushdown), plans it
//     physically (splits, exchanges, partial/final aggregates), and runs it
//     with package scheduler. No action mutates a plan.
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
//	logical := d.node                      // built by transformations
//	opt := plan.Optimize(logical)          // pushdown, pruning
//	phys := plan.Physical(opt, partitions) // splits, exchanges
//	recs := scheduler.Run(ctx, phys, d.funcs) // stages in order, tasks in parallel
package dataset
