// Package files is a streaming source over a directory of Parquet files:
// every file that lands in the directory is read once, in arrival order.
//
// In: a directory that writers drop complete Parquet files into. Out: per
// batch, the Parquet splits (row groups) of the files newly assigned to it,
// read as Arrow records projected to the source's schema.
//
// Offsets count files in the seen-file log, {"files":N}: batch (start, end]
// reads log entries start .. end-1. Under MaxRowsPerBatch a batch may end
// inside a file, {"files":N,"row_groups":G}: after N whole files and the
// first G row groups of file N; the next batch goes on from there. The log, the ordered list of files
// assigned to offsets, lives in the checkpoint (Config.LogDir, written
// through vfs.FS) as one file per batch, <LogDir>/<end>.json; see format.md.
// Latest writes it before returning, so when the driver records the offsets
// the files behind them are already fixed, and a restarted source reads the
// log back: Splits(start, end) names the same files however many new files
// arrived since.
//
// A split is one logged file's name and some of its row groups; Encode
// writes {"v":1,"kind":"files","name":<source>,"split":{"file":"a.parquet",
// "row_groups":[0,1],"rows":2048}}, and DecodeSplit in another process
// reads that file in its own Config.Dir with its own schema.
//
// Which files are taken:
//   - only regular files directly in Dir (no recursion); names starting with
//     "." or "_" are ignored (writers' temp files, _SUCCESS markers);
//   - a file is complete once its size (non-zero) and modification time are
//     the same in two listings. Latest lists the directory, and if some new
//     file was not already seen unchanged by the previous call's listing, it
//     waits Config.SettleDelay and lists again. Writers that write a hidden
//     temp name and rename it into place are always safe; a writer pausing
//     longer than SettleDelay mid-file is not (use the rename);
//   - new complete files are ordered by (modification time, name), at most
//     MaxFilesPerBatch per batch; a name already in the log is never taken
//     again, even if rewritten;
//   - with MaxRowsPerBatch a batch takes whole row groups, in log order,
//     while their rows fit the cap (always at least one), reading the
//     footers of the files it reaches once; a file whose footer does not
//     read is one unit of no rows (Splits judges it).
//
// Invariants:
//  1. The log only grows: entries are appended by Latest and never rewritten,
//     and every entry is durable (temp, fsync, rename) before Latest returns
//     the offset that covers it.
//  2. Splits(start, end) depends only on the log, the recorded drop
//     decisions and the files they name: a file deleted or resized since it
//     was logged is sources.ErrOffsetGone naming the file, or, under
//     OffsetsGone "skip", a recorded, counted, logged loss; never a silent
//     skip.
//  3. A file whose column types conflict with the schema is an error naming
//     the file and the column (wrapping parquet.ErrSchemaConflict); columns
//     the file lacks read as nulls, extra columns are dropped. So is a file
//     without a readable footer (truncated, corrupt, not Parquet). Under
//     BadFiles "skip" or "quarantine" such a file is left out instead.
//  4. A decision to leave a logged file out (skip, quarantine, lost) is
//     written to LogDir (dropped-<index>.json) before Splits returns, so
//     before the batch's output commits; every later Splits over that file
//     honours it whatever the policies are then, so re-runs read the same
//     files. The driver reports the decisions (sources.Dropper) in the
//     batch's progress and its log. Quarantine moves the file after the
//     record, and a re-run finishes a move a crash interrupted.
//  5. Badness is judged in the driver, from the footer and the schema
//     (parquet.Open): cheap, before any task runs. A file whose footer is
//     sound but whose pages are corrupt is found only by the task reading
//     it, and fails the batch naming the file whatever BadFiles says,
//     unless VerifyFiles has the driver read every page at planning (one
//     more read of each file), where the policy applies.
//
// Latest, in pseudo-code:
//
//	Splits(start, end): for each logged file i in [start, end):
//	    recorded decision for i?  -> leave it out (finish a quarantine move)
//	    deleted or resized?       -> OffsetsGone: fail | record "lost", leave out
//	    footer unreadable or conflicting column types?
//	                              -> BadFiles: fail | record "skipped"/"quarantined" (then move), leave out
//	    else                      -> one split per row group (of the batch's
//	                                 row groups of the file)
//
//	(n, g) := parse(start)
//	if n < len(log) { return capped((n, g), len(log)) }   // already assigned
//	if bounded { return start }
//	new := complete(list(Dir)) - log, sorted by (mtime, name), first MaxFilesPerBatch
//	write <LogDir>/<n+len(new)>.json; log += new
//	return capped((n, g), len(log))
//
//	capped(at, end): end = min(end, at.files+MaxFilesPerBatch)
//	    without MaxRowsPerBatch: (end, 0)
//	    else walk row groups from at: stop before the first that would pass
//	    the cap (not the first taken) at (file, group), or at (end, 0)
package files
