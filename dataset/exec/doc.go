// Package exec holds sluice's physical operators over Arrow record batches:
// scans, filter, project, hash aggregate, hash join, sort, limit, union,
// user functions (MapBatches) and Parquet writes, one operator per file.
//
// In: records from scans or shuffle reads. Out: records, pulled by Next.
//
// Invariants:
//  1. Every operator obeys the Operator contract (operator.go): Next hands the
//     caller an owned record or io.EOF; Close is idempotent and closes inputs.
//  2. Hot loops run on typed slices (Int64Values, string offsets and bytes);
//     no per-row interface calls or allocations.
//  3. Every operator allocates from the allocator it is given; tests run on
//     memory.NewCheckedAllocator and assert zero bytes outstanding.
//  4. Operators are deterministic: the same input records in the same order
//     give the same output records.
//  5. User code reaches operators only as arguments: plans name user
//     functions, and a task finds them in its job's registry (Funcs, in
//     plan.TaskEnv's Job). There is no process-wide registry.
//  6. Stateful operators reach their state only through the state.Provider
//     in their StateSpec (open a store for operator, key-group range and
//     version; Keep it once committed): exec knows no files, directories or
//     checkpoints.
//  7. Operators report what they observe (rows read, max event time, late
//     and evicted rows, state size) into the task's Metrics, plain data
//     returned with the task's result; no operator calls back into the
//     driver.
//
// Main loop of a task (see plan.Build and plan.RunTask):
//
//	op := plan.Build(stage, task, env)   // env: allocator, batch values, shuffle reader, state, job, metrics
//	for rec, err := op.Next(ctx); err != io.EOF; rec, err = op.Next(ctx) { out = append(out, rec) }
//	op.Close()
package exec
