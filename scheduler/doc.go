// Package scheduler runs a job's stages: in dependency order, each stage's
// tasks in parallel on an Executor, handing every task the locations of the
// map output blocks it reads and releasing a stage's blocks once no stage
// reads them.
//
// In: stages (id, dependencies, task count, output partitions) and an
// Executor. Out: every task's Result (block locations, commit messages,
// encoded metrics), the final stage's in task order.
//
// Invariants:
//  1. Stages run after the stages they read; the tasks of a stage run in
//     parallel, at most Config.Workers at a time.
//  2. The first task failure cancels the stage and is returned naming the
//     stage and task; a task's panic becomes that task's error.
//  3. A reduce task gets its partition's blocks in map-task order, so a
//     re-run reads its input in the same order (deterministic output).
//  4. Blocks stay where the task that made them ran (the Executor); the
//     scheduler holds locations only, never rows. A stage's blocks are
//     released once every stage reading them finished, or when the job fails.
//  5. The scheduler knows stages and tasks, never plans, operators, Kafka or
//     Parquet (internal/archtest checks its imports, transitively): what a
//     task does is the Executor's, which holds the query's compiled spec.
//
// Main loop:
//
//	for each stage in dependency order:
//	    results := run tasks 0..n-1 on the executor, each with its partition's block locations
//	    record the blocks by partition; release the stages no one reads any more
//	return the final stage's results
package scheduler
