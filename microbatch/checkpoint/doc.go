// Package checkpoint is the streaming query's durable logs: metadata.json,
// the write-ahead offsets log and the commits log of DESIGN.md's checkpoint
// layout (state files live beside them, owned by the state store).
//
// In: from the driver, the query's Metadata (with its Identity: key groups,
// source identities, stateful operators' kinds, ids and schemas) once, then
// per batch N an OffsetEntry naming the query and its sources (before N
// runs) and a CommitEntry (after the sink and state committed N). Out: on start, a Recovery saying which batch runs next and
// whether it is a re-run of recorded offsets; files under the checkpoint
// directory in the format of format.md, written through vfs.FS: new log
// entries and metadata.json with CreateExclusive (put-if-absent), the
// epoch with WriteFileAtomic. The directory may be on a disk (vfs.OS) or
// on object storage (blobfs.Blob, the same keys); format.md says how
// atomicity and "a second writer loses" hold on each.
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
//     the Identity (typed facts, never EXPLAIN text); comparing the
//     Identity with the running query's (Identity.Diff) is the driver's job.
//  7. Every offsets file names its query id and each source's identity;
//     WriteOffsets and Recover refuse one that is not metadata.json's
//     (ErrForeign, naming the file and what differs).
//  8. One owner at a time: the driver holds Lock (an flock on <dir>/lock
//     that dies with its process; on object storage a lease object the
//     holder renews) while it writes.
//  10. A second writer loses: offsets/<N>.json, commits/<N>.json and
//     metadata.json are created put-if-absent, so of two drivers on one
//     checkpoint (the lock lost, or never taken) at most one writes each;
//     the other gets ErrConflict naming the file and batch, and stops
//     before writing anything more for that batch.
//  9. Files of another format version are ErrVersion, naming both
//     versions; nothing is upgraded in place.
//
// The driver's use of it:
//
//	cp := checkpoint.Open(fs, dir)
//	check: meta, ok := cp.Metadata(); refuse if ok and meta.Identity.Diff(query's) != nil
//	       rec := cp.Recover()                 // refuses foreign offsets files
//	lock := cp.Lock()                          // refused while another owner runs
//	check again (another owner may have written meta meanwhile)
//	if !ok: cp.WriteMetadata(new metadata)     // before the first offsets
//	... run; lock.Close() when the query ends, however it ends
//	if rec.Rerun != nil:
//	    run batch rec.Next with rec.Rerun's offsets, watermark and timestamp
//	    sink commit; state commit; cp.WriteCommit(next watermark)
//	    start, watermark = rec.Rerun ends, that commit's NextWatermark
//	else if rec.Last != nil:
//	    start, watermark = rec.LastOffsets ends, rec.Last.NextWatermark
//	for each trigger tick, N = next batch:
//	    cp.WriteOffsets({N, query id, identity + start..end per source, watermark, now})
//	    run batch N
//	    sink commit N (idempotent per N); state commit version N
//	    cp.WriteCommit({N, watermark computed from N's data})
//	    cp.Purge(keep)                         // e.g. keep = 100
//
// Any error from a write stops the query; restarting runs Recover again,
// which is correct whether or not the failed write reached the disk.
//
// Tools (inspect.go, verify.go; format.md "Tools"): Inspect summarises a
// checkpoint (Summary) and Verify checks every file of it, state files
// included, listing each problem with its path (Report). Both read only and
// take no lock, so they run beside the owner.
package checkpoint
