// Package sinks is the seam where data leaves sluice. Each subpackage is
// one sink:
//
//	parquet   files under a directory: batch jobs publish by an atomic commit,
//	          streams append per batch to a manifest log (_sluice_log/)
//	console   each committed batch printed as a table
//	memory    committed rows kept in memory (tests, small results)
//	kafka     a topic written in one transaction per batch, exactly once
//
// The streaming contract is Sink (sink.go); sinktest is the suite every
// sink passes. Sinks whose driver needs the rows themselves (memory,
// console, kafka, microbatch's ForeachBatch) keep a task's output in the
// task's process under a token when the task runs beside the driver, and
// put it inline in the commit message when the task's ctx says WithRemote
// (a cluster executor). A sink that cannot do either has the optional
// InProcess ability: its tasks must run in the driver's process.
// A sink that can read back the rows of a committed batch has the optional
// BatchReader ability (the streaming Parquet sink, from its log; memory):
// checkpoint replay compares a re-run batch with what it committed.
//
// A sink that rejects records one by one (Kafka: a record over the topic's
// size limit) takes a bad-record policy (deadletter.go): fail, or
// dead-letter the rows to another Sink that commits under the batch's id
// before the sink's own commit (DeadLetterWriter, CommitDeadLetters), so a
// re-run writes them once; writers count them (BadRecordCounter).
//
// In: Arrow records from tasks, and from the driver a job (batch) id and a
// decision to commit or abort. Out: durable output that appears only when
// the driver commits.
//
// Invariants:
//  1. Two phases: tasks prepare (write to a private staging place) and the
//     driver commits once per job; output is visible only after the commit.
//  2. Commit and abort are idempotent and keyed by the job id, so a driver
//     that re-runs a batch after a crash never publishes it twice.
//  3. A failed task or job leaves nothing a reader of the target can see.
//  4. Records written are not retained: the caller releases them.
//  5. Sinks never import dataset, microbatch or scheduler; those import
//     sinks.
//  6. A commit message is plain data meaningful to the Sink in the driver
//     wherever the task ran, unless the sink says InProcess (why it is not).
//     A message made under WithRemote means the same to any instance of the
//     Sink with the same name and configuration (the executor's instance
//     makes it, the driver's commits it).
package sinks
