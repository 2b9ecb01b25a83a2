package exec

import (
	"sync"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch/state"
)

// Warm state: a stateful operator's store, committed at the end of batch N,
// is kept in memory for batch N+1 of the same query instead of being loaded
// again from its snapshot and deltas (which made a batch's fixed cost grow
// with the state: 5 ms of a 7 ms one-row batch at 10 000 groups). A store is
// reused only at exactly the version asked for; anything else (a restart, a
// re-run of an uncommitted batch, another executor's range) loads from the
// checkpoint, which stays the source of truth.

type warmKey struct {
	fs     vfs.FS
	dir    string
	op     string
	lo, hi int
}

var (
	warmMu sync.Mutex
	warm   = map[warmKey]*state.Store{}
)

// openStore returns cfg's store at version: the warm one when it is at that
// version, else one loaded from the checkpoint.
func openStore(cfg state.Config, version int64) (*state.Store, error) {
	k := warmKey{cfg.FS, cfg.Dir, cfg.Operator, cfg.Lo, cfg.Hi}
	warmMu.Lock()
	st := warm[k]
	delete(warm, k)
	warmMu.Unlock()
	if st != nil {
		if st.Version() == version {
			return st, nil
		}
		st.Close()
	}
	return state.Open(cfg, version)
}

// keepStore parks a store whose last Commit succeeded for the next batch.
func keepStore(cfg state.Config, st *state.Store) {
	k := warmKey{cfg.FS, cfg.Dir, cfg.Operator, cfg.Lo, cfg.Hi}
	warmMu.Lock()
	defer warmMu.Unlock()
	if old := warm[k]; old != nil && old != st {
		old.Close()
	}
	warm[k] = st
}

// ForgetState closes the warm stores of the checkpoint state directory dir
// on fs; the micro-batch driver calls it when a query ends.
func ForgetState(fs vfs.FS, dir string) {
	warmMu.Lock()
	defer warmMu.Unlock()
	for k, st := range warm {
		if k.fs == fs && k.dir == dir {
			st.Close()
			delete(warm, k)
		}
	}
}
