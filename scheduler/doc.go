// Package scheduler runs physical plans: it cuts them into stages at
// exchanges, runs every stage's tasks on an Executor, and keeps the shuffle
// data between stages.
//
// In: a physical plan (package plan). Out: the final stage's records, in
// task order.
//
// Invariants:
//  1. Stages run after the stages they read; the tasks of a stage run in
//     parallel, at most Config.Workers at a time.
//  2. The first task failure cancels the stage and is returned naming the
//     stage and task; a task's panic becomes that task's error.
//  3. Shuffle partitions hold map outputs in map-task order and are released
//     as soon as every stage reading them has finished.
//  4. The scheduler knows plans and operators, never Kafka or Parquet: tasks
//     are built by plan.Build behind the Executor interface, so executors on
//     other machines can run the same tasks.
//
// Main loop:
//
//	for each stage in dependency order:
//	    outs := run tasks 0..n-1 on the executor pool
//	    if the stage feeds an exchange: hash-partition outs by its keys
//	    else: return outs (the result)
package scheduler
