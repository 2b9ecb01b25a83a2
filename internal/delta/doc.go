// Package delta is the Delta Lake transaction log: the subset of the Delta
// protocol (reader version 1, writer version 2; see format.md) that sluice
// writes and reads.
//
// In: a table location on a vfs.FS (its log is <table>/_delta_log) and, to
// write, a list of actions for the next version. Out: Snapshots (the
// table's live files with their partition values, its schema and partition
// columns, and the last transaction version of every application id) at the
// latest version or at any version still in the log (time travel), new
// commits, and checkpoints.
//
// Invariants:
//  1. A version exists exactly when <log>/<version, 20 digits>.json exists;
//     Commit creates it with vfs.FS.CreateExclusive (put-if-absent: link(2)
//     locally, a conditional write on object storage), so of two writers of
//     one version exactly one wins and the other gets an error wrapping
//     ErrConflict that names the table, the file and the version. Nothing
//     else in the table changes on a lost race.
//  2. A Snapshot of version v is the replay of the newest complete
//     checkpoint at or below v, then of every JSON commit after it up to v,
//     in order. A commit missing in that range, or a file that does not
//     parse, is an error wrapping ErrCorrupt naming the file and the
//     version; never a silently shorter table.
//  3. A txn action (appId, version) is how a streaming writer commits each
//     batch once: Snapshot.TxnVersion(appId) is the highest version
//     committed for appId, and a batch at or below it is already in the
//     table.
//  4. A checkpoint holds the whole snapshot of its version (protocol,
//     metaData, txns, adds) as one Parquet file, written atomically
//     (temp, fsync, rename), then _last_checkpoint points at it. A crash
//     between the two leaves a complete checkpoint that _last_checkpoint
//     does not name yet: readers list the log and find it anyway.
//  5. Tables this package cannot read correctly (reader version > 1 with
//     column mapping, deletion vectors or any reader feature) are refused
//     with ErrUnsupported naming the protocol, never read wrong; writing
//     refuses writer versions above 2 the same way.
//
// Reading version v:
//
//	list <log>; cp = newest complete checkpoint <= v (_last_checkpoint first)
//	snap = replay(cp's Parquet rows)              // or the empty table
//	for n in cp+1 .. v: snap = replay(n.json)     // a gap is ErrCorrupt
//	check snap.Protocol is readable
package delta
