// Package cluster runs a job's tasks on executor processes: membership by
// gossip (hashicorp/memberlist, encrypted with a shared key), task dispatch
// and shuffle over Arrow Flight (gRPC) with mutual TLS from a cluster CA.
// It carries tasks as bytes and blocks as Arrow records; what a task does
// is the job's (dataset/plan's TaskServer, a shuffle.Runner), where it runs
// and what is retried is the scheduler's.
//
// In: a Config (seeds, gossip key, TLS identity, addresses, slots) and, on
// an executor, the job's Runner. Out: a Driver, which is dataset/plan's
// Dispatcher (set it as dataset.Config.Cluster), and Executors.
//
// Roles:
//   - An Executor joins through seeds, gossips its Flight address, slots,
//     build fingerprint and incarnation, runs the tasks drivers send
//     (DoAction "task"), keeps their map output blocks by run and serves
//     them (DoGet) to reduce tasks on other executors and to the driver.
//   - A Driver is a member too: it lists the live executors of its own
//     fingerprint (others are logged and get no work), sends tasks with a
//     deadline, fetches final blocks, releases runs, and serves broadcast
//     keys (in-memory scans, stream-static joins' bounded sides) to
//     executors (DoGet).
//
// Invariants:
//  1. Nothing is served without mutual TLS: a plain-text client, a client
//     without a certificate or with one of another CA gets no task run and
//     no block. Gossip without the key is refused at join.
//  2. Default addresses are 127.0.0.1; a member reachable from other
//     machines is configured so (Bind, Flight, Advertise).
//  3. A transport failure of a task (the executor died, hung past the
//     keepalive or the task deadline, or left) is scheduler.ErrNodeLost; a
//     reduce task that could not read a block returns it as a
//     scheduler.FetchError naming the block and its node; a task's own
//     error names the executor that ran it. The scheduler retries the
//     first two elsewhere.
//  4. Each process start is a new member (a new name): a restarted
//     executor never inherits the blocks or tasks of its previous life.
//
// Main loop (executor):
//
//	StartExecutor: listen for Flight; join the seeds
//	on DoAction "task" {run, driver, body}: runner.RunTask(body, blocks of run, broadcast from driver)
//	on DoGet {run, blocks}: stream the blocks (each record tagged with its block)
//	on DoAction "release" {run, stage}: free the stage's blocks (or the run's)
//	on DoAction "stats": its counters as JSON (ExecutorStats: task attempts,
//	    failed ones, DoGet calls, blocks and bytes served), which
//	    Driver.ExecutorStats gathers from every executor for benchmarks
package cluster
