// Package sources is the seam where data enters sluice. Each subpackage is
// one source:
//
//	parquet   bounded: a set of Parquet files read as Arrow records, split by row group
//	generate  deterministic demo, test and benchmark data; Rate and OrdersStream streams
//	files     stream: a directory of Parquet files watched for new files
//	memory    stream: records appended by a test
//	kafka     stream: topic partitions read between recorded offsets (read_committed)
//	chain     stream: a bounded history (e.g. Parquet) then a live stream (e.g. Kafka), one checkpoint
//
// The streaming contract is Stream (source.go), with optional Committer,
// Bounder, InProcess and Backlog (the latest offset and the lag behind it,
// per partition: Kafka, files) abilities; a Split may add ColumnReader,
// BadRecordCounter (the records its read skipped or dead-lettered: Kafka,
// and a chain over it) and PositionReader (where each record comes from, for
// errors: a Kafka record's offsets, a file's row group and rows).
//
// In: locations and options (paths, topics, seeds). Out: plain-data units of
// work (splits, offset ranges) that the driver records and ships, and Arrow
// records read from one such unit on any machine.
//
// A split crosses a process boundary as bytes (split.go):
//
//	driver:   b := split.Encode()     // {"v":1,"kind":"kafka","name":"orders","split":{...}}
//	executor: s := stream.DecodeSplit(b)   // the executor's own stream, same config
//	          s.Read(ctx, mem, emit)
//
// Invariants:
//  1. A unit of work is plain data: Split.Encode writes all of it (no
//     client, no pointer), and the reading process rebuilds it with
//     nothing but those bytes and its own instance of the stream, built
//     from the same configuration. Bytes a stream did not make fail with
//     ErrBadSplit naming the source. An InProcess stream holds its data in
//     one process and decodes only its own splits (none of ours does: a
//     memory split carries its rows).
//  2. Reading the same unit twice yields the same rows in the same order, so
//     a batch re-run after a crash is deterministic.
//  3. Records are allocated from the caller's memory.Allocator and handed to
//     the caller, who releases them.
//  4. Sources never import dataset, microbatch or scheduler; those import
//     sources.
//  5. Bad input is an error naming the file, topic or offset; never a panic,
//     never a silent skip: a source whose policy skips or dead-letters bad
//     records counts them per split read (BadRecordCounter, which the task
//     reports to the driver) and logs each (Debug).
//  6. A stream's Identity names what data it reads (topics, a directory, a
//     generator's row-defining parameters), not how it reaches or paces it;
//     a checkpoint pins it, so a restart reading other data is refused.
package sources
