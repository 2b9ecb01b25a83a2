// Package plan holds sluice's plans: the logical plan the Dataset API builds,
// the optimizer, the physical plan, its compilation into a Spec (stages cut
// at exchanges), the task seam (TaskSpec, TaskEnv, results) and the
// executors that run a Spec's tasks: LocalExecutor in this process,
// RemoteExecutor on a cluster (through a Dispatcher, package cluster's
// Driver), and TaskServer, which runs the tasks a driver sends to an
// executor process.
//
// In: nodes made by the Dataset API (Scan, Filter, Project, Aggregate, Join,
// Union, Sort, Limit, MapBatches, Write). Out: a Spec, each stage a fragment
// of nodes that runs as one task per split or per shuffle partition; Build
// turns one task of a stage into a tree of exec.Operators; Spec.Stateful
// (identity.go) states what each stateful operator of a streaming plan keeps
// (kind, id, key and value schemas), the facts a checkpoint pins.
//
// Invariants:
//  1. A compiled Spec is plain data: expressions are expr.Expr trees,
//     functions, streams and sinks are referenced by name (resolved in the
//     task's Job), in-memory records and stream-static joins' bounded sides
//     by broadcast key. It encodes to JSON with a format version and decodes
//     to an equal Spec. Logical plans hold live tables, streams and records;
//     physical planning turns them into data.
//  2. A Spec holds no per-batch value: watermarks, state versions and batch
//     time reach tasks in a BatchContext, and tasks report what they saw in
//     exec.Metrics, returned with their result. No closure crosses a task.
//  3. A remote task crosses as a TaskRequest: the spec (once per node, by
//     hash), the TaskSpec, the state directory, the job's parameters (the
//     executor rebuilds the job's code from them) and the query's driver
//     epoch; a TaskServer refuses a task of an epoch older than one it
//     served (ErrFenced).
//  4. Every node's Schema is computed when it is made; Optimize and Physical
//     work on copies and re-derive schemas, so a plan is never mutated in place.
//  5. Optimize only drops work that provably cannot change the result:
//     filters keep running after the scan predicates they produce (pruning is
//     per row group), and pruning keeps every column something reads.
//  6. A stage reads either scans (one task per split) or exchanges with equal
//     partition counts (one task per partition), never both.
//  7. Shuffle inputs are read in map-task order, so reruns are deterministic.
//
// A task (RunTask):
//
//	ops := Build(stage, task, TaskEnv{batch, split, shuffle reader, state, job, broadcast, metrics})
//	drain ops -> partition by the exchange's keys -> keep blocks in the shuffle.Store, return their Locations
//	(the final stage of a sink write returns its commit messages instead)
//
// Physical shapes:
//
//	Aggregate     -> Aggregate final  <- Exchange hash(keys) <- Aggregate partial
//	Join          -> Join             <- Exchange hash(left keys), Exchange hash(right keys)
//	Sort [limit]  -> Sort             <- Exchange single     <- [Sort limit]
//	Limit         -> Limit            <- Exchange single     <- Limit
package plan
