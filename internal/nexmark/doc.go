// Package nexmark is the Nexmark benchmark as a library: the queries
// (q0-q5, q7, q8, q11 and q4-winning, one file each) over the person,
// auction and bid streams of sources/generate's Nexmark generator, the
// generator's events written as Parquet files (WriteFiles), and the runner
// (Run) that runs a query as a stream and reports throughput the way the
// published numbers are reported: events per second per CPU core actually
// used. `sluice nexmark` (cmd/sluice) and the benchmark runner
// (benchmarks/nexmark, which adds the RESULTS.md tables) are thin mains
// over Commands, so an installed sluice binary runs every query, on one
// process or on executor processes of itself, with no Go toolchain.
//
// In: a query name and either an event count (the in-process generator,
// BatchEvents events per micro-batch) or a generated directory (DIR/person,
// DIR/auction, DIR/bid and DIR/nexmark.json, sources/files: per stream and
// batch at most one file and BatchEvents rows, in whole row groups). Out: the query's rows into a discarding sink that
// counts them, or the streaming Parquet sink of a directory; and a Report.
//
//	Run(o):
//	    streams  = one dataset.ReadStream per kind (generator or files)
//	    out      = queries[o.Query](streams)      // only the streams it reads enter the plan
//	    progress = WriteStream(out, sink).AvailableNow().Checkpoint(tmp).OutputMode(append | update for q4)
//	    check every kind the plan read: rows read == kindIn(kind, events)
//	    report   = events, rows, wall and CPU time, batch percentiles, peak RSS
//
// Invariants:
//  1. Events [0, N) of one (seed, event rate) are the same rows in the
//     generator's stream, in its Parquet files and on every executor (the
//     generator is deterministic per event id), so a stream, a batch query
//     over the files and a run on a cluster are comparable row for row.
//  2. A run over the generator reads every event of the kinds its query
//     uses, or it is an error; a fast run that skipped input is no result.
//  3. A query that emits nothing (no window, session or auction closed by
//     the final watermark) is a Report with 0 output rows, not an error.
//  4. A generated directory is written into an empty one only, and removed
//     again on error (WriteFiles).
//
// Queries (the semantics of the Flink SQL versions; each file quotes the
// SQL and says how it maps to sluice):
//
//	q0  pass-through of bids: every column
//	q1  auction, bidder, 0.908 * price AS price (float64), dateTime, extra
//	q2  auction, price of the bids with auction % 123 == 0
//	q3  name, city, state, id: people in OR, ID or CA selling in category
//	    10; an unbounded stream-stream inner join, no watermark
//	q4  category, avg: the average winning bid per category, in update mode
//	    (q4-winning feeding an updating aggregation)
//	q4-winning  id, category, final: q4's inner query, the highest bid of
//	    each auction placed while it was open, emitted once it expires
//	q5  auction, num: the auctions with the most bids per 10 s window
//	    sliding by 2 s, ties kept (count, max of the counts, joined back)
//	q7  auction, price, bidder, dateTime, extra: the highest bids of each
//	    10 s tumbling window (max, joined back to the bids)
//	q8  id, name, starttime: people who registered and opened an auction in
//	    the same 10 s tumbling window (a window join)
//	q11 bidder, count(*) AS bid_count, starttime, endtime per session (gap
//	    10 s) of each bidder
//
// Windows and auctions are emitted once, when the watermark (dateTime - 4
// s; q4-winning also expires - 4 s) passes their end; a batch query ignores
// watermarks and returns every window. At the default event rate 10 M events
// span 1 s of event time, so the watermark stays before the first event:
// no window, session or auction closes by the end of the input and q4-winning,
// q5, q7, q8 and q11 emit nothing (0 output rows; they still build all their
// state); --event-rate 100000 (100 s of event time) closes windows.
//
// Report fields (run --json, one line):
//
//	events                 events of all kinds the input covers (bids are 46 in 50)
//	event_rate             the generator's events per second of event time (absent: 10 M)
//	state_backend          the state backend (--state-backend; absent: memory)
//	input_rows             events of the kinds the query read; bids the bids among them
//	output_rows            rows the sink committed (0 when no window closed)
//	seconds                wall time of the streaming run (start to termination)
//	events_per_sec         events / seconds
//	cpu_seconds            process user + system CPU time during the run (getrusage)
//	events_per_cpu_second  events / cpu_seconds: events per second per core used
//	batch_p50/p99/max_ms   per batch latestOffset + walCommit + triggerExecution
//	peak_rss_bytes         the process's peak RSS (getrusage ru_maxrss)
//	final_watermark        the watermark after the last batch (append mode
//	                       emitted the windows that end at or before it)
//
// The discarding sink counts rows: each task's commit message is its row
// count, so it costs the same in the driver's process as on an executor.
//
// Cluster mode (run --cluster N). The runner writes a dev CA, certificates
// and a gossip key to its temp dir, starts N executor processes of its own
// executable (internal/localcluster; the command line is the executable,
// Commands.ExecutorArgs, then the hidden `executor --join ... --key-file
// ... --tls-*` subcommand: `sluice nexmark executor` for the sluice
// binary) on 127.0.0.1 with ports chosen at run time, and a cluster.Driver
// in its own process, and runs the query with dataset.Config{Cluster:
// driver, Params: {query, events, seed, event_rate, batch_events,
// checkpoint, sink}}: each executor rebuilds the same generator streams,
// query and counting sink from the parameters (StreamJob); generator
// splits cross processes. Only the generator input and the counting sink
// are supported. Extra report fields:
//
//	cpu_seconds              the runner's CPU time (the driver's) plus every
//	                         executor's during the run: utime + stime of
//	                         /proc/<pid>/stat, read before and after it
//	driver_cpu_seconds, executor_cpu_seconds  the two parts
//	executor_peak_rss_bytes  the executors' VmHWM, summed
//	task_attempts, tasks_failed  attempts the executors were sent, failed
//	shuffle_gets, shuffle_blocks, shuffle_bytes  DoGet calls the executors
//	                         served, the blocks and the Arrow IPC bytes they
//	                         sent (cluster.Driver.ExecutorStats, before and
//	                         after): reduce tasks' fetches from the other
//	                         executor and the driver's; blocks read from an
//	                         executor's own memory do not count
//	shuffle_bytes_per_sec    shuffle_bytes / seconds
//	shuffle_bytes_per_cpu_second  shuffle_bytes / cpu_seconds
//
// With --cpuprofile FILE, executor i writes its profile to
// FILE.executor-<i> (its whole life, startup included). --memprofile FILE
// writes a heap profile of the runner's process each time its live heap
// grows by a tenth over the largest seen (sampled every 50 ms), so the file
// shows what the heap was made of near its peak.
//
// The tests check, for each query, that the stream over the generator (in
// several micro-batches) gives the rows the batch query over the Parquet of
// the same events gives, and that the batch query matches a plain Go loop,
// all at 1 M events: q0-q2 also streamed over the Parquet into a Parquet
// sink; q11 at 10 000 events/s of event time (so sessions close), where the
// stream emits exactly the batch sessions that end at or before the final
// watermark (max dateTime - 4 s); q3, q4-winning, q5, q7 and q8 at 10 000
// events/s of event time (100 s, so windows close), where the stream emits
// exactly the batch rows final by its final watermark (checked against the
// events' maxima), and q8 is also streamed over the Parquet into a Parquet
// sink. q4 (update mode, 300 000 events) ends with each category's average
// of the winning bids the Go loop finds for the auctions closed by then.
// Every query's EXPLAIN is pinned in testdata/spec. In make test's cluster
// pass (SLUICE_TEST_CLUSTER=3) the same tests run every batch query and
// stream also on a driver and three executor processes of the test binary,
// which rebuild a run's job by name from its parameters (StreamJob), and
// compare with the local answers; the isolated pass
// (SLUICE_EXECUTOR=local-isolated) runs them with every task crossing as
// bytes.
package nexmark
