// Package scheduler runs a job's stages: in dependency order, each stage's
// tasks in parallel on an Executor, placed on nodes, handing every task the
// locations of the map output blocks it reads, retrying attempts that lost
// their node and releasing a stage's blocks once no stage reads them.
//
// In: stages (id, dependencies, task count, output partitions, sticky) and
// an Executor; with Config.Nodes, the live nodes and their slots. Out:
// exactly one successful attempt's Result per task (block locations,
// commit messages, encoded metrics), the final stage's in task order.
//
// Invariants:
//  1. Stages run after the stages they read; the tasks of a stage run in
//     parallel, at most Config.Workers at a time (without nodes) or each
//     node's slots (with nodes).
//  2. A task of a sticky (stateful) stage runs on the node rendezvous
//     hashing picks for (stage, task) among the live nodes: the same node
//     batch after batch, and when nodes join or leave only the tasks whose
//     pick changed move. Other tasks take the node with most free slots.
//  3. An attempt that failed with ErrNodeLost, or a FetchError naming a
//     block's node, marks that node lost for the job: it gets no more tasks,
//     its blocks are recomputed (the map tasks that wrote them re-run from
//     their own inputs, recursively) and the attempt is retried elsewhere.
//     The first loss of a node does not count against Config.MaxAttempts
//     (it is not the task's fault); every other error fails the job at once,
//     naming stage and task, and a task's panic is that task's error.
//     Each lost node, retried attempt and re-run of lost map output is
//     logged at Warn through Config.Logger (stage, task, node, error).
//  4. A reduce task gets its partition's blocks in map-task order, so a
//     re-run reads its input in the same order (deterministic output).
//  5. Blocks stay where the task that made them ran (the Executor); the
//     scheduler holds locations only, never rows. Without nodes, a stage's
//     blocks are released once every stage reading them finished; with
//     nodes they stay until the job ends (a re-run needs its inputs).
//     Everything is released when the job fails.
//  6. The scheduler knows stages and tasks, never plans, operators, Kafka or
//     Parquet (internal/archtest checks its imports, transitively): what a
//     task does is the Executor's, which holds the query's compiled spec.
//
// Main loop:
//
//	for each stage in dependency order:
//	    until every task has a result:
//	        nodes := live nodes less those lost in this job (wait a while if none)
//	        run the pending tasks, each placed on a node, with its partition's block locations
//	        for each attempt that lost a node: mark it lost, recover the stages it held blocks of
//	    record the blocks; release the stages no one reads any more (without nodes)
//	return the final stage's results
package scheduler
