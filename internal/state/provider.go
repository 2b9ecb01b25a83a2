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
	Open(spec StoreSpec, version int64) (*Store, error)
	// OpenAux is Open also returning the record parked with the store by
	// Keep, or nil when the store was loaded (or none was parked). The
	// caller owns the record and releases it.
	OpenAux(spec StoreSpec, version int64) (*Store, arrow.Record, error)
	// Keep takes back a store from this provider's Open whose last Commit
	// succeeded, and aux (nil, or a record the operator derived from the
	// store at its version, e.g. the rows a join kept), for the next Open of
	// the same operator and range at st.Version(). Ownership of both passes
	// to the provider, which may close and release them instead of parking
	// them: a store with uncommitted changes, or one kept after Close, is
	// closed. Keep never fails; the next Open then loads from files. A store
	// of another provider is a broken invariant (panic).
	Keep(st *Store, aux arrow.Record)
	// Purge deletes the state files of every operator and range that no
	// version >= keepFrom needs (package Purge). Parked stores are in
	// memory and unaffected; Abort and Open still load any version >=
	// keepFrom.
	Purge(keepFrom int64) error
	// Close closes every parked store and releases its record. It is
	// idempotent; afterwards Open returns ErrProviderClosed and Keep closes
	// what it is given. Stores handed out before Close stay the caller's.
	Close() error
}
