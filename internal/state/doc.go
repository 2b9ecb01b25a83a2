// Package state is the versioned state store of stateful streaming
// operators (streaming aggregation, deduplication, joins): DESIGN.md's "State
// store" and the state/ part of its checkpoint layout.
//
// In: for batch N, a task of a stateful operator opens the state of its
// key-group range [Lo, Hi) at version N-1, looks keys up, upserts, deletes
// and evicts them with Arrow records, and commits version N. Out: one
// Arrow IPC file per version under
// <checkpoint>/state/<operator>/<lo>-<hi>/ (format.md): a delta of the
// changed rows and tombstones, and, at a multiple of SnapshotEvery once the
// deltas since the last one hold as many rows as the state, a snapshot of
// every live row (so what a batch writes follows the keys it changed, not
// the size of the state). The package is a seam: it imports arrow and internal/vfs,
// never dataset, scheduler or microbatch (it lives under internal/ so that
// dataset's operators may use it without knowing checkpoints); the caller
// routes rows to the store that owns their key group (the store does not
// hash into groups).
//
// Operators reach stores only through a Provider (provider.go): Open a
// StoreSpec (operator, key-group range, schemas) at a version, hand the
// committed store back with Keep, and the owner of the provider Purges old
// versions and Closes it when the query ends. FileProvider serves one
// checkpoint state directory and keeps committed stores warm in memory for
// the next batch; the warm stores are the provider's, never a package
// global, so two queries (or two executors) never share one.
//
// Two backends sit behind Store, chosen per query (NewProvider, a
// StreamWriter's StateBackend, --state-backend) and writing the same files:
//   - memory (memStore: store.go, file.go; FileProvider), the default:
//     every row in Go memory. A store opened with StoreSpec.Log (a stream
//     join's side: each key put once, in ascending order, read back only
//     by Scan) is a logStore (logstore.go): its rows are the Arrow records
//     it was given, retained in key order, with no hash table; it writes
//     the memStore's bytes, and turns into a memStore (loaded at its
//     version, the batch's changes replayed) at the first call outside
//     that shape.
//   - disk (diskStore: disk.go; DiskProvider), for state larger than
//     memory: the committed rows in one local pebble database per store
//     under <local>/<operator>/<lo>-<hi> (a cache of the files, never read
//     by another backend), the rows a batch reads or changes in a memStore
//     used as a cache, dropped after a Commit that leaves it above
//     DiskOptions.CacheBytes. A call's keys the cache misses are read in
//     key order through one pebble iterator; the process's disk stores
//     share one pebble block cache (DiskOptions.BlockCacheBytes, outside
//     the Go heap). Commit writes memStore's delta bytes from the
//     cache, when one is due a snapshot streamed from pebble
//     merged with the cache, then the changes and a meta key (version,
//     checksum of the file that recorded it, store identity) in one pebble
//     batch, in key order, without fsync. Opening version V reuses the database only when
//     its meta names this store at V and that file still has those bytes;
//     otherwise it is wiped and rebuilt from the files (invariant 1). On
//     StoreSpec.TimeColumn it keeps an index (time, key), so ScanWhere and
//     EvictWhere read only the entries they return; on StoreSpec.PartKey
//     an index (part, key), so ScanPart reads only the entries it returns
//     (in a second pebble database, <local>.index, whose key order is not
//     the rows': committed with the rows, reused only at the rows'
//     version; a Log store keeps it only while its rows stay for many
//     commits, DiskOptions.LogIndexes, and says so with Indexed; the
//     cache's own
//     part index covers the batch's rows; on a value column, Commit reads
//     the committed rows it changes or deletes, in key order, to remove
//     their old entries, as it does for a time index on a value column).
//
// Invariants:
//  1. Loading version V gives exactly the state committed as V: the last
//     snapshot S <= V, then the deltas S+1..V in order. A missing, damaged,
//     unknown-format or other-schema file is an error naming the file
//     (ErrMissing, ErrCorrupt, ErrVersion, ErrSchema), never an empty or
//     partial state.
//  2. Commit(V) needs V = Version()+1 and writes each file with
//     FS.WriteFileAtomic, delta before snapshot; a failed Commit leaves the
//     store at Version() with its changes, so it can be retried.
//  3. The files of a version depend only on the state and changes, not on
//     the order of operations or on a restart in between: rows are sorted by
//     canonical key bytes and a delta holds each changed key once (its final
//     value, or a tombstone if it was live at Version() and is gone), but
//     for the keys an EvictWhere deleted with their values of Version():
//     the delta records the call instead (format 2), and loading it deletes
//     them again by the same rule.
//  4. Keys are equal when their canonical bytes are (codec.go): nulls equal
//     nulls, -0 equals +0, all NaNs are one key.
//  5. The store holds no Arrow memory between calls, but for a logStore,
//     which retains the records Put gives it until they are deleted and
//     committed, or the store is closed. Every other record passed in is
//     only read during the call; every record returned is the caller's to
//     release.
//  6. Purge(keepFrom) removes only files no version >= keepFrom needs.
//  7. A Provider reuses a warm store only at exactly the version asked for,
//     with the same operator, range and schemas, and only one whose last
//     Commit succeeded; otherwise it loads from the files (invariant 1).
//
// Main loop of a stateful task (batch N):
//
//	s := provider.Open(spec, N-1)           // warm store at N-1, or loaded
//	for each input record (keys, inputs):
//	    s.Lookup(keys, slots)               // slot or -1
//	    cur := s.Values(slots)              // nulls for new keys
//	    next := merge(cur, inputs)          // vectorised, the operator's job
//	    s.Put(keys, next, slots)            // or s.Update(slots, next) when all exist
//	s.EvictWhere(windowEndCol, watermark)   // after emitting closed windows; pops
//	                                        // the index when windowEndCol is the TimeColumn
//	s.Commit(N); provider.Keep(s, nil)      // or s.Close() when the task fails
//	driver, after commits/N: provider.Purge(oldest version to keep)
//	driver, when the query ends: provider.Close()
//
// Memory: keys as canonical bytes in one arena, values as typed slices per
// column, an open-addressing table of int32 slots. Measured on the target
// state (10-byte string, timestamp) -> (int64, int64), 1 M keys: 71 B/key by
// SizeBytes, 74 B/key of Go heap (BenchmarkMillionKeys).
//
// Time index (timeindex.go): a store whose StoreSpec names a TimeColumn
// (a window end, a session end, a timeout) also keeps a min-heap of (time,
// slot), 12 B an entry, with lazy deletion, so ScanWhere and EvictWhere on
// that column visit only the entries below the bound (in a min-heap a
// subtree at the root) and the stale entries they drop, never every key; ScanWhere
// sorts only what it returns, EvictWhere removes them by popping (or, when
// they are more than 1/16 of the heap, by one filtering pass). Rows,
// order, counts and files are the same as without it (a test runs random
// operations against an unindexed store). A change of the time (an insert
// with a key time, a Put or Update writing another value time) costs one
// push; the heap is rebuilt in O(n) when it holds more than twice the live
// keys, and once when a version is loaded. The target state with the
// window end indexed: 83 B/key by SizeBytes, 86 B/key of Go heap
// (BenchmarkMillionKeysTimeIndex). On other columns ScanWhere and
// EvictWhere visit every key.
//
// Part index (partindex.go): a store whose StoreSpec names PartKey (key
// columns, e.g. a session window's group keys without the session start,
// or value columns, e.g. a stream join's join key) also keeps, per
// distinct part, a chain of the live slots with it: a hash table of chain
// heads and two int32 links a slot, so ScanPart visits the asked parts'
// entries only. On key columns only liveness changes it (a link when
// upsert makes a slot live, an unlink in removeAt); on a value column every
// write of values moves the slots it writes (setCols). Rows, order and
// files are the same as without it. The target state with the user as PartKey (4 windows
// a user): 91 B/key by SizeBytes instead of 79, Put 273 ns/key instead of
// 229 (BenchmarkMillionKeysPartIndex); a part per key costs 8-16 B more.
//
// Tools read state files without the operators' schemas (inspect.go):
// ListFiles lists them with their row counts from the files' metadata,
// CheckFile checks one as loading would (IPC, metadata, row count, CRC-32C),
// and Loadable says whether a version's snapshot and deltas are all there.
//
// Not built yet: rescaling, i.e. splitting or merging key-group range
// directories; incremental snapshots of the disk backend (each snapshot is a whole
// file, written and read as a stream).
package state
