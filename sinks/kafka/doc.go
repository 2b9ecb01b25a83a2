// Package kafka is the Kafka topic sink: each micro-batch's rows become
// Kafka records, written exactly once per batch id in one Kafka transaction.
//
// In: arrow.Records from tasks (Writer.Write), and from the driver Commit or
// Abort of a batch id. Out: one record per row on Config.Topic — key from
// KeyColumn, value from ValueColumn or the whole row as a JSON object
// (encode.go says how each Arrow type renders), headers from HeadersColumn —
// and, in exactly-once mode, the batch id as the committed offset of the
// consumer group "sluice-sink-<QueryID>" on (Topic, partition 0): offset =
// batch id + 1. Readers must use isolation.level=read_committed, and skip
// records carrying the "sluice-marker" header (IsMarker): an empty batch
// writes one such marker so that its transaction is not empty.
//
// Why the driver owns the transaction. A Kafka transaction belongs to one
// producer (one transactional id, one connection), and Commit must be
// atomic for readers. If each task opened its own transaction, the driver
// could not commit them together: some would be visible and others not
// after a crash. So tasks only encode: Writer.Write turns rows into Kafka
// records, and Sink.Commit produces every task's records in task order in
// one transaction that also commits the batch id. How the records reach
// the driver depends on where the task ran:
//
//   - beside the driver: Prepare parks them in this Sink under a token and
//     returns a small commit message (sink instance, batch, task, token,
//     counts); nothing is copied. Such a message only means something to
//     the Sink that made it.
//   - on a cluster executor (the task's ctx is marked by sinks.WithRemote):
//     Prepare puts the records themselves in the message, in a compact
//     length-prefixed binary of key, value and headers (inline.go; base64
//     in the JSON), and the driver's Sink (another instance of the same
//     config) decodes and produces them exactly as parked ones. A message
//     that does not decode is ErrCorruptMessage, naming the sink and task.
//
// Records the topic cannot take. A record larger than MaxRecordBytes (as
// franz-go measures it: a batch of that record alone, sizeOf) is refused
// by the producer, and inside a transaction one refused record aborts the
// whole batch, on every run. So the task measures each record as it
// encodes it, and Config.BadRecords decides: "fail" (the default) leaves
// the record to the producer, whose error fails the Commit naming topic,
// partition, batch, task, the record's position and its key;
// "dead-letter" hands the row to Config.DeadLetter (a sinks.Sink) through
// a sinks.DeadLetterWriter, with its batch, this sink's name, task,
// position and the reason (sinks.DeadLetterSchema), and keeps it out of
// the topic. Commit commits the dead letters first, under the batch's id
// (sinks.CommitDeadLetters): both commits are idempotent per batch id, so a
// re-run of the batch, after a crash between them or a failure of either,
// writes each once. A topic whose max.message.bytes is below MaxRecordBytes
// is refused under "dead-letter" when the sink connects: a record between
// the two would pass the task and fail the batch at the broker. Writers
// count their dead letters (sinks.BadRecordCounter): the batch's progress
// (Sink.DeadLettered) and sluice_sink_bad_records_total.
//
// The cost: records cross the driver. Records are kept in memory rather
// than spilled: MaxPendingBytes bounds those a Sink holds (parked, or
// encoded by its remote writers before Prepare) and Write fails past it.
//
// Invariants:
//  1. Nothing of a batch reaches Kafka before Commit, and a read_committed
//     reader sees all of a batch's records or none: they and the batch-id
//     offset commit are in one transaction.
//  2. Commit is idempotent per batch id: it first initialises the producer
//     (fencing any older one and aborting its open transaction), then reads
//     the group's committed offset, and returns nil without writing when
//     offset-1 >= the batch id (batch ids only grow). A real broker makes
//     the offset readable a few ms after EndTxn returns, so the sink also
//     remembers the last id it committed itself (InitProducerID covers the
//     same gap across processes: it waits for the previous transaction's
//     markers). In at-least-once mode only this process's memory of
//     committed ids protects a repeat.
//  3. One transactional id per query ("sluice-sink-<QueryID>"): a new sink
//     with the same QueryID fences a zombie, whose Commit then fails with
//     ErrFenced; a transaction a killed driver left open is aborted when the
//     next sink connects (first Commit or Abort), else by the broker after
//     TxnTimeout.
//  4. Every transaction produces at least one record (a marker when the
//     batch has none): franz-go's EndTransaction sends nothing for a
//     transaction without records, which would leave the offset commit in
//     an open transaction.
//  5. Write never retains the Arrow record: keys, values and headers are
//     copied into the sink's own byte slices. The sink holds no Arrow memory.
//  6. Errors name the brokers (unreachable, with the timeout), the topic
//     (missing) or the topic and partition, batch, task, record position
//     and key (a record too large). A commit that failed on the brokers
//     (unreachable, a retriable Kafka code such as NOT_COORDINATOR or
//     CONCURRENT_TRANSACTIONS, a network error, a deadline) wraps
//     ErrUnreachable, which is transient to microbatch's restart strategies;
//     a record too large, a fenced producer, a schema mismatch and a missing
//     topic are not.
//  7. Under "dead-letter", a batch's dead letters are committed before its
//     records, under its id; a record over MaxRecordBytes never reaches the
//     producer.
//
// Commit, in pseudo-code:
//
//	connect once: ping brokers; check topic (and, under dead-letter, its
//	    max.message.bytes >= MaxRecordBytes); InitProducerID (fence, abort)
//	under dead-letter: commit the tasks' dead letters to DeadLetter (batch id)
//	if exactly-once and committedOffset(group, topic[0]) - 1 >= batch:
//	    drop pending of batch; return nil
//	recs = records of each message (parked, or decoded inline), in task order
//	BeginTransaction
//	produce recs, or one marker record if none; Flush
//	AddOffsetsToTxn(group); TxnOffsetCommit(group, topic[0] = batch + 1)
//	EndTransaction(commit)           // on any error: abort, redial next time
//	wait until the topic's last stable offsets pass our records (bounded)
//	remember batch as committed; drop pending of batch
package kafka
