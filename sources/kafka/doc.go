// Package kafka is the Kafka stream source: topic partitions read between
// offsets the driver recorded, as Arrow records.
//
// In: a Config (brokers, topics or a topic regex, starting/ending offsets,
// rate limit, value format, error policies). Out: per batch, one split per
// partition range (cut every MaxOffsetsPerSplit offsets); reading a split
// yields records with the columns
//
//	key (binary, nullable) | value (binary, nullable) or the ValueSchema columns |
//	topic (string) | partition (int32) | offset (int64) |
//	timestamp (timestamp[ms, UTC]) | headers (list<struct<key: string, value: binary>>)
//
// Offsets are the next offset to read per partition,
// {"t":{"orders":{"0":123,"1":45}}}, topics and partitions in order. An end
// offset from Latest may also carry "new":{"orders":{"2":0}}: where
// partitions first seen by that Latest start (their earliest offset then),
// so the batch reading them is the same on a re-run.
//
// Invariants:
//  1. The checkpoint is the only truth about positions: splits fetch their
//     partition directly (Fetch requests to the leader, no consumer group),
//     so a re-run of batch N re-reads exactly the records of [start, end).
//  2. A batch ends at the last stable offset (read_committed, the default)
//     or the high watermark (ReadUncommitted), so every offset before the
//     end is decided; aborted records and transaction markers are skipped,
//     and a split stops when its next fetch position reaches End, even when
//     the last offsets before End are markers or aborted records.
//  3. Latest is a pure function of start, what the brokers report and the
//     config: MaxOffsetsPerBatch is spread over partitions by lag
//     (floor of limit*lag/total, the rest to the largest remainders, ties in
//     topic-partition order).
//  4. Partitions (and topics matching TopicRegex) are discovered at every
//     Latest; new ones start at their earliest offset and join the first
//     batch in which they hold data. Partitions that vanish keep their
//     offset.
//  5. Nothing is lost silently. A value that does not decode fails the read
//     naming topic, partition and offset (ErrBadRecord), or is counted
//     (skip) or handed to DeadLetter. Offsets deleted by retention fail
//     with sources.ErrOffsetGone naming them, or are skipped and counted
//     (Stats.OffsetsLost) under OffsetsGone "skip" (Spark's
//     failOnDataLoss=false). Splits already leaves out what retention
//     deleted before the batch was planned and reports it to the driver
//     (sources.Dropper: the batch's progress and log name topic, partition
//     and offsets); a read skips, counts and logs what retention deletes
//     after that.
//  6. Commit writes end offsets to CommitGroup for lag tools only; nothing
//     reads them back.
//  7. A failure to reach the brokers, or an answer a retry may change
//     (kgo's retryable errors, retriable Kafka codes, network errors,
//     deadlines), comes out of Initial, Latest, Splits, Bound and a
//     split's read (after its own retries) wrapped in ErrUnavailable,
//     whose Transient method tells microbatch's restart strategies to
//     restart the query; a bad record, an authorization failure or a
//     closed source never is.
//
// The driver's loop, as seen from here:
//
//	start := Initial()                      // StartingOffsets for every partition now
//	for {
//	    end := Latest(start)                // min(LSO, bound) per partition, rate-limited
//	    for _, s := range Splits(start, end) {
//	        s.Read()                        // fetch from s.Start until position >= s.End
//	    }
//	    Commit(end)                         // to CommitGroup, if set
//	    start = end
//	}
//
// A split is topic, partition and offset range, and that is all its
// Encode writes: {"v":1,"kind":"kafka","name":<source>,"split":{"topic":
// "orders","partition":0,"start":120,"end":180}}. In each process a split
// reads through the Source that made or decoded it: an executor builds a
// Source from the same Config and calls DecodeSplit and Read only. New
// builds the client without contacting a broker; it connects on the first
// fetch, and a read looks up its partition's leader and topic ID itself,
// so nothing depends on Initial, Latest or Splits having run there. Stats
// and DeadLetter are those of the reading process's Source.
package kafka
