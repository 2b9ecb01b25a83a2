package state

import (
	"github.com/apache/arrow/go/v17/arrow"
)

// Provider hands stateful operators their stores: the one seam between an
// operator and where its state lives. Operators never build a Config or open
// files; whoever runs the tasks (today the local executor of one query, one
// FileProvider per checkpoint) owns the provider and the warm stores in it.
//
// Versions follow the micro-batch: a batch opens the version the batch
// before it committed (0 is the empty state), commits the next one and
// hands the store back with Keep, so the next batch's Open finds it warm
// instead of loading snapshot and deltas again. A provider may always load instead of reusing:
// files are the source of truth, a warm store only a cache of them.
//
// A Provider is safe for concurrent use by the tasks of a batch; each store
// it returns is owned by one task at a time.
type Provider interface {
	// Open returns the store of spec's operator and key-group range at
	// version. The caller owns it until it hands it back with Keep or closes
	// it. Errors: a spec that does not Validate; ErrProviderClosed; and
	// Open's errors naming the file (ErrMissing, ErrCorrupt, ErrVersion,
	// ErrSchema) when the store is loaded.
	Open(spec StoreSpec, version int64) (Store, error)
	// OpenAux is Open also returning the records parked with the store by
	// Keep, or nil when the store was loaded (or none were parked). The
	// caller owns the records and releases them.
	OpenAux(spec StoreSpec, version int64) (Store, []arrow.Record, error)
	// Keep takes back a store from this provider's Open whose last Commit
	// succeeded, and aux (nil, or records the operator derived from the
	// store at its version, e.g. the rows a join kept), for the next Open of
	// the same operator and range at st.Version(). Ownership of both passes
	// to the provider, which may close and release them instead of parking
	// them: a store with uncommitted changes, or one kept after Close, is
	// closed. Keep never fails; the next Open then loads from files. A store
	// of another provider is a broken invariant (panic).
	Keep(st Store, aux []arrow.Record)
	// Purge deletes the state files of every operator and range that no
	// version >= keepFrom needs (package Purge). Parked stores are in
	// memory and unaffected; Abort and Open still load any version >=
	// keepFrom.
	Purge(keepFrom int64) error
	// Close closes every parked store and releases its record. It is
	// idempotent; afterwards Open returns ErrProviderClosed and Keep closes
	// what it is given. Stores handed out before Close stay the caller's.
	Close() error
	// Backend names the kind of store Open returns, BackendMemory or
	// BackendDisk. With BackendDisk a Scan reads every row from disk, so
	// an operator that can find the rows it needs through the store's
	// indexes (ScanPart, ScanWhere on StoreSpec.TimeColumn) should, rather
	// than read them all each batch.
	Backend() string
}

// Store is the state of one operator's key-group range at one version, plus
// the uncommitted changes of the batch being run: what a stateful operator
// reads and writes. It is not safe for concurrent use: one task owns it.
// Open (package function) returns the in-memory backend; a Provider may
// hand out another backend with the same contract (package doc, invariants
// 1-7): the files a version writes and the rows, order and errors every
// method gives depend only on the committed state and the changes, never on
// the backend's cache.
//
// Slots are the store's handles for rows of the batch being run: a slot
// from Lookup or Put stays valid until its key is deleted or evicted,
// Abort, or Close (Commit keeps them). No Arrow memory is held between
// calls: every record passed in is only read during the call, every record
// returned is allocated from StoreSpec.Allocator and is the caller's.
type Store interface {
	// Version is the last committed version (0: the empty state).
	Version() int64
	// Loaded reports whether the Open that returned the store read it from
	// files (a version > 0 that no warm store held), rather than reusing a
	// warm one: what a key-group range that moved to another process costs.
	Loaded() bool
	// Len is the number of live keys, uncommitted changes included.
	Len() int
	// SizeBytes approximates the memory the store holds (capacities, not
	// lengths); for a disk backend, its in-memory part.
	SizeBytes() int64

	// Lookup writes to out[i] the slot of keys row i, or -1 when the key is
	// not live. out must have at least keys.NumRows() elements.
	Lookup(keys arrow.Record, out []int32) error
	// Put upserts keys row i -> values row i, in order (for a key repeated
	// in keys the last row wins). If slots is non-nil (len >=
	// keys.NumRows()) it receives the slot of each row.
	Put(keys, values arrow.Record, slots []int32) error
	// Update overwrites the values of live slots with the rows of values:
	// slots[i] gets row i (a read-modify-write without hashing keys again).
	Update(slots []int32, values arrow.Record) error
	// Delete removes the keys' rows; a key that is not live is ignored.
	Delete(keys arrow.Record) error
	// DeleteLive is Delete of keys the caller knows are live (committed at
	// the store's version and not deleted since, e.g. rows it just read
	// with Scan): the disk backend then need not look each one up in its
	// database. A key that is not live breaks the store's count and files.
	DeleteLive(keys arrow.Record) error
	// Values gathers the values of slots into a record of ValueSchema;
	// slot -1 gives a row of nulls.
	Values(slots []int32) (arrow.Record, error)

	// Scan calls fn with every live entry, uncommitted changes included, in
	// ascending order of canonical key bytes, in chunks of at most
	// ScanChunk rows. keys and values are released when fn returns: fn
	// must Retain what it keeps. An error from fn stops the scan and is
	// returned. fn must not change the store.
	Scan(fn func(keys, values arrow.Record) error) error
	// ScanWhere is Scan restricted to the entries whose column col (as in
	// EvictWhere) is not null and less than less: the groups a watermark
	// has closed, the timers that are due.
	ScanWhere(col int, less int64, fn func(keys, values arrow.Record) error) error
	// ScanPart is Scan restricted to the entries whose StoreSpec.PartKey
	// columns equal a row of parts (a record of those columns, in
	// PartKey's order; nulls equal nulls, as keys do): the stored sessions
	// of a batch's group keys. Each entry comes once, however many rows of
	// parts match it. It visits only the entries it returns (and the
	// distinct rows of parts), never every key; a store without PartKey
	// returns an error.
	ScanPart(parts arrow.Record, fn func(keys, values arrow.Record) error) error
	// Indexed reports whether ScanPart and ScanWhere on
	// StoreSpec.TimeColumn visit only the entries they return, as said
	// above: true but for a disk-backed Log store that keeps no indexes at
	// the moment (DiskOptions.LogIndexes: its rows do not stay long enough
	// to pay for them), whose ScanPart and ScanWhere then read every row.
	// An operator that can do its batch's work in one Scan should then do
	// that instead.
	Indexed() bool
	// EvictWhere deletes every live entry whose column col is not null and
	// less than less, and returns how many it deleted (watermark eviction:
	// col is e.g. a window end). col numbers the key columns, then the
	// value columns after them (len(KeySchema) + j is value column j); it
	// must be a 64- or 32-bit signed integer-like column (int64, timestamp,
	// date64, time64, duration, int32, date32, time32); less is in the
	// column's own unit. On StoreSpec.TimeColumn the call visits only the
	// entries it deletes; on another column it may scan every key.
	EvictWhere(col int, less int64) (int, error)
	// EvictLive is EvictWhere(col, less) on key column col by a caller that
	// knows which keys it deletes: keys, which it vouches are live, are
	// every live key whose column col is less than less (a stream join
	// that has just read all its rows). The store need not search for them,
	// and records the eviction in the delta as EvictWhere does (format.md),
	// which is why keys must be all of them. A key whose column is null or
	// not below less is an error; one that is not live breaks the store.
	EvictLive(keys arrow.Record, col int, less int64) error

	// Commit makes the changes since Version() version `version`, which
	// must be Version()+1, writing its files (format.md) atomically. On
	// error the store keeps its changes at Version(): Commit can be
	// retried, or Abort called.
	Commit(version int64) error
	// Abort drops the changes since Version(). Slots from before Abort are
	// invalid after it.
	Abort() error
	// Close drops the store's memory (and closes what the backend holds
	// open). It is idempotent; every other method returns ErrClosed
	// afterwards.
	Close() error
}

// InMemory reports whether st holds every row in memory in a form of its
// own (the memory backend's hash table): an operator may then keep what it
// derives from the rows between batches at no extra cost in kind. A log
// store, which holds the very records its operator put, and a disk-backed
// store answer false: the operator reads the rows again with Scan
// instead, so that its memory holds no second copy of them (a log store's)
// or follows a batch, not the state (a disk store's).
func InMemory(st Store) bool {
	switch st := st.(type) {
	case *memStore:
		return true
	case *logStore:
		return st.mem != nil // turned into a hash table
	}
	return false
}
