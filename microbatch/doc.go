// Package microbatch runs a Dataset continuously as a sequence of
// micro-batches with exactly-once output: the streaming query of DESIGN.md's
// data path.
//
// In: a Dataset reading one or more sources.Stream (dataset.ReadStream), a
// sinks.Sink, a Trigger and a checkpoint directory. Out: the sink's committed
// batches, the checkpoint (package checkpoint) and per-batch Progress.
//
// Invariants:
//  1. offsets/<N> (start and end offset of every source, the batch's
//     watermark and timestamp) is durable before batch N reads anything.
//  2. commits/<N> is written only after the sink committed batch N; the sink
//     commit is idempotent per batch id, so a crash between the two re-runs N
//     and the sink ignores the second commit.
//  3. On restart, a batch with offsets but no commit is re-run with exactly
//     its recorded offsets, watermark and timestamp: same input, same output.
//  4. A checkpoint is pinned to its query: metadata.json holds its identity
//     (key groups, each source's name and identity, the stateful operators'
//     kinds, ids and schemas: typed facts, never EXPLAIN text) and every
//     offsets file names the query and its sources. Start refuses another
//     query's checkpoint, or a foreign offsets file, naming the file and
//     what differs, and changes nothing in it.
//  5. One instance owns a checkpoint at a time: Start takes its lock (an
//     flock that dies with the process, so a crash never blocks a restart;
//     on object storage a lease, which a crashed owner holds until it
//     expires: Start waits that out, up to its ttl + 1 s, and refuses an
//     owner that renews it) and the query releases it when it ends,
//     however it ends.
//     Should two instances run anyway (a lost lease), the put-if-absent
//     offsets and commits logs make the second writer of a batch fail.
//     The checkpoint is a directory or a URL (Checkpoint: s3://, gs://,
//     azblob://, file://; blobfs.Open), with the same layout.
//  6. Batches run only when some source has new data, when the watermark
//     moved (so windows close and event-time timeouts fire; an input turning
//     idle moves it too), or, under a
//     periodic ProcessingTime trigger, every interval for a query with
//     processing-time timeouts.
//
// Main loop:
//
//	compile the query once (dataset.CompileStream: a plan.Spec)
//	check the checkpoint's identity and offsets (read only); take its lock
//	recover from the checkpoint; re-run an uncommitted batch
//	for each trigger tick:
//	    end[s] = s.Latest(start[s]) for every source
//	    watermark = last commit's, over the inputs not idle (idle.go); nothing new -> wait
//	    backlog[s] = s.Backlog(end[s]) where a source can tell (latest offset, lag)
//	    checkpoint.WriteOffsets(OffsetEntry{N, start/end per source, watermark, previous watermark, now, idle inputs})
//	    splits of (start, end] per source; drops[s] = s.Drops(start, end) where a source
//	        left input out under a policy (sources.Dropper: progress, Warn log, metric)
//	    res = StreamQuery.RunBatch(BatchContext of N, the splits)
//	    late rows, then sink.Commit(N, res.Commit); next watermark from res.Metrics
//	    checkpoint.WriteCommit(N); sources' Commit(end); purge old batches
//	    Progress of N -> RecentProgress, Metrics, one Info log line, OnProgress
//
// Restarts (restart.go). A query that fails with a transient error
// (Transient: by identity, never text: unreachable brokers, a retriable
// Kafka error code, a refused, reset or timed-out connection, a
// deadline, a lost executor; a corrupt or foreign checkpoint, a fenced
// driver, mismatched state, a poison record, a full disk never are)
// restarts itself under its RestartStrategy (fixed delay, failure rate,
// or exponential delay with seeded jitter; DefaultRestartStrategy is
// Flink's: exponential from 1 s, ×1.5, at most 1 min, unbounded). A
// restart is what a new process on the checkpoint does, short of taking
// the lock it still holds:
//
//	err := loop(recovery)
//	while err is transient and the strategy allows (wait = Next(now)):
//	    log "query restarting", count it (Progress.Restarts, sluice_query_restarts_total)
//	    sleep wait on the query's Clock (Stop ends it)
//	    close the compiled query and the state provider; compile and open them anew
//	    check the checkpoint's identity; recover (offsets/N without commits/N: re-run N)
//	    take a new driver epoch (fences the failed run's tasks)
//	    err = loop(recovery)
//
// Observability. A query logs through StreamWriter.Logger (log/slog,
// default slog.Default()): start (query id, run id, name, checkpoint, next
// and re-run batch), a refused Start with its reason, each batch (Debug at
// its start, one Info line at its end: batch, rows in and out, durations in
// ms, watermark, lag, state rows; the heartbeat an operator reads, at most
// one line per trigger), bad records a source skipped or dead-lettered
// (Warn, per batch), rows a sink dead-lettered (Warn, per batch), input a
// source's policy left out (Warn, one line per file or offset range: "input
// dropped"), failed source commits, restarts (Warn), and how it stopped (Info) or
// failed (Error, "fenced" when a newer driver took over). Every record
// carries query=<name, else id>. StreamWriter.Metrics publishes Prometheus
// metrics (NewMetrics lists them) that several queries share; they are
// updated once per batch from its Progress, never per row. Counts that
// tasks return in their metrics (rows in and out, state, late rows, bad
// records skipped or dead-lettered: sources.BadRecordCounter, and
// sinks.BadRecordCounter) cover tasks on executors too.
//
// Stateful operators keep their state in package state (internal/state), per
// key-group range, versioned by batch (batch N reads version N and commits
// N+1):
// aggregations (update, complete, or append with an event-time window),
// tumbling, sliding and session windows (sessions merge across batches),
// DropDuplicates, FlatMapGroupsWithState (user Go state per key, with
// event-time or processing-time timeouts read from the batch's recorded
// watermark and timestamp, never the wall clock), and joins of two streams
// (each side's rows, evicted by watermark and time range or by a TTL of
// batch time). They reach it through the query's state provider over
// <checkpoint>/state (state.FileProvider, or state.DiskProvider with
// StateBackend(state.BackendDisk, ...) for state larger than memory: the
// same files), which keeps committed stores warm for the next batch;
// the query purges old versions through it and closes it when it ends. A
// stream joined with a bounded Dataset keeps no state: the
// bounded side is collected once per query (or every N batches) into the
// query's StaticCache. Watermarks (one per WithWatermark, combined by a min
// or max policy) are computed from each
// batch's data and recorded in commits/N; rows behind them are dropped and
// counted, or sent to a LateRows sink, and a watermark that moved without
// new data earns a no-data batch so windows close. An input declared
// WithIdleness whose sources had no new offsets for that long of batch time
// is left out of the combination when a batch is planned (Flink's
// withIdleness; all idle: the watermark stays), and offsets/N records the
// idle inputs and when each last had data, so a re-run keeps its
// watermark. An input's watermark is over all its partitions (as in
// Spark): a silent Kafka partition does not hold it back.
//
// Several stateful operators chain: every operator that feeds another emits
// append-style (each row once, when final; an aggregation must then be
// grouped by an event-time window), and only the last one follows the
// query's output mode (a join feeding an updating aggregation, say). The
// rows an inner operator emits in batch N have event times in (watermark of
// N-1, watermark of N], so an operator fed by another drops late rows
// behind the previous batch's watermark (recorded in offsets/N) and evicts
// by the current one.
//
// Replay (replay.go) is the determinism promise made checkable: it re-runs
// a committed batch from its recorded offsets, watermark, batch time and
// state version on the local executor, writing nothing (state commits go to
// an in-memory overlay of the checkpoint, output to an in-memory sink), and
// compares its rows with what the sink committed (sinks.BatchReader), as
// multisets. It takes no lock: it reads only committed files, so it may run
// beside the query (checkpoint/format.md, "Tools").
//
// Not built: streaming sort and limit (they need the whole input; a query
// using them is refused at Start), and anti joins of two streams.
package microbatch
