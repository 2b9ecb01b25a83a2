// Package parquet is the Parquet file sink: tasks write Arrow records as
// Parquet files into a job's staging directory, and the driver publishes
// that directory as the target in one commit.
//
// In: arrow.Records of one schema (FileWriter.Write), and from the driver a
// target path, a job id and a Mode (Commit, Abort). Out: Parquet files (data
// page v1, chosen codec, row-group statistics, column order of the Arrow
// schema) readable by Spark and pyarrow, optionally in Hive-style partition
// directories, under target with a _SUCCESS file; see format.md.
//
// Invariants:
//  1. Files appear under target only through a successful Commit. Tasks only
//     write in StagingDir(target, jobID), a hidden sibling of target on the
//     same filesystem, so publishing is a rename (or hard links for Append).
//  2. Every file is fsynced by FileWriter.Close and every directory by
//     Commit before it becomes visible.
//  3. A failed Commit leaves target as it was and keeps the staging dir; the
//     driver either retries Commit or calls Abort. After Abort nothing of the
//     job remains: no staging dir, no aside copy, no half-appended file.
//  4. Commit and Abort are idempotent per (target, jobID): target/_SUCCESS
//     lists the committed job ids, and a repeated Commit of a listed job is a
//     no-op. Abort of a committed job changes nothing.
//  5. FileWriter.Write does not retain the record; after any error the
//     writer only accepts Close or Abort, and FileWriter.Abort removes every
//     file and partition directory it created.
//  6. Arrow types map to optional Parquet columns with logical types (see
//     format.md); an unmappable type is ErrUnsupportedType naming the column,
//     never a silent cast. Lists (list, large_list) and structs nest freely;
//     maps, unions, dictionaries and other types are not stored yet.
//  7. The hot path is columnar: one type switch per flat column per chunk of
//     at most 4096 rows, building parquet.Value slices without reflection.
//     Nested columns walk row by row to emit Dremel levels.
//
// The commit protocol (driver side):
//
//	tasks:  w := NewFileWriter(mem, StagingDir(target, job), "part-<task>", schema, opts)
//	        w.Write(rec)...; w.Close()       // or w.Abort() on failure
//	driver: Commit(target, job, mode)        // or Abort(target, job) on failure
//
//	Commit(target, job, mode):
//	    undo a crashed Overwrite of this job (target missing, aside copy present)
//	    if no staging dir: return nil if target/_SUCCESS lists job, else make an empty one
//	    if mode == Append and target exists:
//	        create staging/_APPENDING (tells Abort to unlink this job's links from target)
//	        hard-link each staged file to target/<partition>/<name>-<job>.parquet
//	            (on any error unlink what was linked, remove dirs made, fail)
//	        fsync touched dirs; rewrite target/_SUCCESS (temp, fsync, rename) adding job
//	        remove staging; fsync parent
//	        return
//	    write staging/_SUCCESS listing job; fsync every staging dir
//	    switch:
//	    target missing:                      rename staging -> target
//	    ErrorIfExists, target non-empty:     fail with ErrTargetExists
//	    ErrorIfExists, target empty:         remove target; rename staging -> target
//	    Overwrite:                           rename target -> aside; rename staging -> target
//	                                         (restore aside on failure); fsync parent; remove aside
//	    fsync parent
//
// Append is atomic for failures (rolled back) but not for concurrent
// readers, who may list the target between two links; ErrorIfExists and
// Overwrite publish with one rename.
//
// StreamSink (stream.go) is the streaming twin: files straight into the
// table directory under hidden in-progress names that the driver's Commit
// renames, committed per batch in _sluice_log; it reads a committed
// batch back (ReadBatch, sinks.BatchReader) from the files the log lists
// under that batch's file prefix.
package parquet
