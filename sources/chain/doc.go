// Package chain is a source that reads a bounded history to its end and
// then continues from a live stream, as one stream with one checkpoint:
// "historical then live", typically a Parquet archive of a Kafka topic
// followed by the topic itself.
//
// In: a history stream (bounded: its Latest stops moving; a History over a
// Parquet directory, or a sources/files stream, which the chain bounds) and
// a function building the live stream from the history's final offset (the
// handoff). Out: per batch, the splits of one phase, their records
// projected to the chain's schema.
//
// Offsets name the phase: {"phase":"history","h":<history offset>}, then
// {"phase":"live","h":<history's final offset>,"l":<live offset>}. The
// batch that reads the end of the history ends at the live phase's first
// offset, whose "l" is the live stream's Initial; the next batch reads the
// live stream from there. See format.md.
//
// ParquetThenKafka and NewParquetKafka build the usual pair: a History over
// a directory, then a kafka.Source whose StartingOffsets come from the
// Handoff: OffsetsFile (the _kafka_offsets.json the history's producer
// wrote), Timestamp(t), or MaxEventTime(column) of the history.
//
// Invariants:
//  1. A batch never mixes phases: its splits are all history or all live.
//  2. The handoff is recorded, not recomputed: the live phase's first
//     offset carries the live stream's Initial, so a restart re-reads
//     exactly the same live records, whatever StartingOffsets would resolve
//     to now. Live is called again after a restart only to build the
//     stream; its Initial is not.
//  3. Both phases yield Schema(): columns are matched by name, nothing is
//     cast; a column missing from a phase or of another type is
//     ErrSchemaMismatch naming the column and both types, at New (history,
//     and LiveSchema when given) or at the handoff.
//  4. One chain serves one handoff: a live offset whose "h" differs from
//     the handoff this chain built its live stream for is
//     sources.ErrBadOffset, as is any offset it did not write.
//  5. Records pass through or are projected without copying: a projected
//     record retains the inner record's columns; emit owns it.
//  6. A split encodes to its phase and its inner split's bytes (and, live,
//     the handoff that names the live stream), and decodes through the
//     stream of its phase (format.md). A chain that has not built its live
//     stream yet (an executor) decodes a live split at Read, building the
//     stream with Read's context, as after a restart.
//
// Latest, in pseudo-code:
//
//	if start.phase == live { return live{h, Live(h).Latest(start.l)} }
//	e := History.Latest(start.h)
//	if e != start.h && History.Latest(e) != e { return history{e} }
//	return live{e, Live(e).Initial()}            // e is the history's end
package chain
