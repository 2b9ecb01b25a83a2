// Package manifest is the commit log of a directory of Parquet files written
// by a streaming sink: which files belong to committed batches. The sink
// (sinks/parquet.StreamSink) appends to it; readers (sources/parquet.Open)
// use it to list files instead of walking the directory, so files of a batch
// that is still being written, was aborted or crashed are never read.
//
// In: from the sink's driver side, a batch id and the files its tasks wrote
// (Log.Commit). Out: the live files of a directory (Log.Snapshot, Read).
//
// Layout (see sinks/parquet/format.md for the full description):
//
//	<dir>/_sluice_log/<batch>.json              one committed batch: its files
//	<dir>/_sluice_log/<batch>.checkpoint.json   every live file up to <batch>, and the batch ids covered
//
// Invariants:
//  1. A batch is committed exactly when its entry file exists or a
//     checkpoint covers its id. Entry and checkpoint files are written
//     whole (vfs.FS.WriteFileAtomic: temp, fsync, rename, fsync dir), so a
//     crash leaves either no entry or a complete one.
//  2. Commit of a committed batch changes nothing (idempotent per batch id).
//  3. The live files are those of the latest checkpoint plus those of every
//     entry whose batch that checkpoint does not cover. A checkpoint is only
//     written after the entries it folds in, and entries are only deleted
//     when an older checkpoint, kept as well, covers them, so a reader that
//     listed the log just before a compaction still finds what it needs.
//  4. Every file carries a version and a CRC-32C of its body; a bad or
//     unknown file is an error naming it (ErrCorrupt, ErrVersion), never
//     skipped.
//
// Commit, in pseudo-code:
//
//	if entry <batch> exists or the latest checkpoint covers batch: return
//	write <batch>.json
//	if at least CheckpointEvery entries are not covered by the latest checkpoint:
//	    write <batch>.checkpoint.json = latest checkpoint + those entries
//	    delete entries and checkpoints the previous checkpoint already covers
package manifest
