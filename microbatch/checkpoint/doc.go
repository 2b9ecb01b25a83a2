// Package checkpoint is the streaming query's durable logs: metadata.json,
// the write-ahead offsets log and the commits log of DESIGN.md's checkpoint
// layout (state files live beside them, owned by the state store).
//
// In: from the driver, the query's Metadata once, then per batch N an
// OffsetEntry (before N runs) and a CommitEntry (after the sink and state
// committed N). Out: on start, a Recovery saying which batch runs next and
// whether it is a re-run of recorded offsets; files under the checkpoint
// directory in the format of format.md, all written through
// vfs.FS.WriteFileAtomic.
//
// Invariants:
//  1. offsets/<N>.json is durable before batch N reads anything, and is
//     never changed afterwards: a rewrite with other content is ErrConflict.
//  2. commits/<N>.json is written only when offsets/<N>.json is the newest
//     offsets; offsets/<N+1>.json only when commits/<N>.json exists. So at
//     most one batch, the newest, has offsets without a commit.
//  3. Recover re-runs that batch with exactly its recorded offsets,
//     watermark and timestamp; otherwise the next batch is one past the last
//     commit. It never guesses: a gap in a log, a commit without offsets,
//     logs without metadata.json, a checksum mismatch or an unknown version
//     is an error (ErrCorrupt, ErrVersion) naming the file or directory,
//     never a silent reset.
//  4. Every file carries a format version and a CRC-32C of its body.
//  5. Purge deletes oldest first, a commit before its offsets, and never
//     the newest offsets or commit, so a crash at any point of it leaves
//     logs that Recover accepts.
//  6. metadata.json is written once and pins the query id, key groups and
//     the plan fingerprint; comparing them with the running query is the
//     driver's job.
//
// The driver's use of it:
//
//	cp := checkpoint.Open(fs, dir)
//	meta, ok := cp.Metadata()
//	if !ok: cp.WriteMetadata(new metadata)     // before the first offsets
//	else:   refuse unless meta matches the query (id, key groups, fingerprint)
//	rec := cp.Recover()
//	if rec.Rerun != nil:
//	    run batch rec.Next with rec.Rerun's offsets, watermark and timestamp
//	    sink commit; state commit; cp.WriteCommit(next watermark)
//	    start, watermark = rec.Rerun ends, that commit's NextWatermark
//	else if rec.Last != nil:
//	    start, watermark = rec.LastOffsets ends, rec.Last.NextWatermark
//	for each trigger tick, N = next batch:
//	    cp.WriteOffsets({N, start..end per source, watermark, now})
//	    run batch N
//	    sink commit N (idempotent per N); state commit version N
//	    cp.WriteCommit({N, watermark computed from N's data})
//	    cp.Purge(keep)                         // e.g. keep = 100
//
// Any error from a write stops the query; restarting runs Recover again,
// which is correct whether or not the failed write reached the disk.
package checkpoint
