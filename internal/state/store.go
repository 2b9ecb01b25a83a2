package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

var (
	// ErrSchema: a record or a state file does not have the store's key or
	// value schema. The message names both schemas (and the file).
	ErrSchema = errors.New("state: schema mismatch")
	// ErrCorrupt: a state file is not a state file of this store (bad IPC,
	// bad checksum, wrong key-group range, version or kind). Names the file.
	ErrCorrupt = errors.New("state: corrupt state file")
	// ErrVersion: a state file has a format version this code does not read.
	ErrVersion = errors.New("state: unknown state format version")
	// ErrMissing: a file the requested version needs is not there.
	ErrMissing = errors.New("state: missing state file")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("state: store is closed")
	// ErrProviderClosed: Open on a Provider after its Close.
	ErrProviderClosed = errors.New("state: provider is closed")
)

// DefaultSnapshotEvery is the snapshot interval K when Config leaves it 0.
const DefaultSnapshotEvery = 10

// maxSnapshotGap bounds, in K-intervals, how long a state whose deltas are
// small next to it goes without a snapshot (the deltas a load replays).
const maxSnapshotGap = 10

// snapshotDue says whether the Commit of version writes a snapshot: at a
// multiple of K (every), once the deltas since the last snapshot (at
// snapAt; since = their rows, this version's included) hold at least as
// many rows as the state (live), or when maxSnapshotGap K-intervals passed
// without one. A snapshot then costs no more rows than the deltas it makes
// unnecessary, so what a batch writes, amortised, follows the keys it
// changed, not the size of the state; and a load reads at most about twice
// the state's rows (a snapshot plus fewer delta rows than it holds). Every
// input is fixed by the committed files, so a re-run, a warm or a loaded
// store and both backends decide alike.
func snapshotDue(version, snapAt, since, live int64, every int) bool {
	if version%int64(every) != 0 {
		return false
	}
	return since >= live || version-snapAt >= int64(every)*maxSnapshotGap
}

// deletedField is the tombstone column every state file ends with.
const deletedField = "__deleted"

// StoreSpec is what a stateful operator asks a Provider for: which store
// (operator and key-group range) and the shape of its state. Everything but
// Allocator and SnapshotEvery is pinned by the files the store writes.
type StoreSpec struct {
	Operator      string // operator id, e.g. "agg-0"; one path element
	KeyGroups     int    // total key groups of the query
	Lo, Hi        int    // this store's key-group range [Lo, Hi)
	KeySchema     *arrow.Schema
	ValueSchema   *arrow.Schema // may have no fields (a set of keys)
	SnapshotEvery int           // snapshots only at multiples of K (snapshotDue); 0 = DefaultSnapshotEvery
	// TimeColumn names the key or value column (a 32- or 64-bit signed
	// integer type, as EvictWhere's col) the store keeps ordered by time,
	// so that ScanWhere and EvictWhere on it visit only the entries they
	// return instead of every key (closing windows, timers, join
	// eviction); "" = none (they scan every key). Not pinned by the files:
	// a backend rebuilds its index when it loads.
	TimeColumn string
	// Log says the operator puts each key once, in ascending key order
	// past every key it put before, deletes only live keys and reads its
	// rows back only by Scan (a stream join's side). The memory backend
	// then keeps the rows as the records it was given, with no hash table
	// (logStore); any other use still works, at a memStore's cost. Not
	// pinned by the files: both write the same bytes.
	Log bool
	// PartKey names columns the store indexes, so that ScanPart finds the
	// entries whose PartKey columns equal given values visiting only them:
	// key columns (at least one, not all: the stored sessions of a batch's
	// group keys) or value columns, alone or with key columns (a stream
	// join's rows by their join key). A value column's part follows the
	// value: a write that changes it moves the entry. nil = none (ScanPart
	// is an error). Not pinned by the files: a backend rebuilds its index
	// when it loads.
	PartKey []string
	// Allocator allocates every record the store returns; nil =
	// memory.DefaultAllocator. The table itself lives in Go memory.
	Allocator memory.Allocator
}

// Validate reports the first thing wrong with c.
func (c StoreSpec) Validate() error {
	switch {
	case c.Operator == "" || c.Operator == "." || c.Operator == ".." || strings.ContainsAny(c.Operator, `/\`):
		return fmt.Errorf("state: config: Operator %q is not one path element", c.Operator)
	case c.KeyGroups <= 0:
		return fmt.Errorf("state: config: KeyGroups %d must be positive", c.KeyGroups)
	case c.Lo < 0 || c.Lo >= c.Hi || c.Hi > c.KeyGroups:
		return fmt.Errorf("state: config: key-group range [%d, %d) is not inside [0, %d)", c.Lo, c.Hi, c.KeyGroups)
	case c.KeySchema == nil || c.KeySchema.NumFields() == 0:
		return errors.New("state: config: KeySchema needs at least one field")
	case c.ValueSchema == nil:
		return errors.New("state: config: ValueSchema is nil")
	case c.SnapshotEvery < 0:
		return fmt.Errorf("state: config: SnapshotEvery %d is negative", c.SnapshotEvery)
	}
	if _, err := typesOf(c.KeySchema); err != nil {
		return fmt.Errorf("state: config: key %w", err)
	}
	if _, err := typesOf(c.ValueSchema); err != nil {
		return fmt.Errorf("state: config: value %w", err)
	}
	seen := map[string]bool{deletedField: true}
	for _, f := range append(c.KeySchema.Fields(), c.ValueSchema.Fields()...) {
		if seen[f.Name] {
			return fmt.Errorf("state: config: field name %q is used twice or reserved", f.Name)
		}
		seen[f.Name] = true
	}
	if c.TimeColumn != "" {
		if err := c.checkTimeColumn(); err != nil {
			return err
		}
	}
	return c.checkPartKey()
}

// checkPartKey reports whether PartKey names distinct key or value fields,
// fewer than all the key fields when it names key fields only.
func (c StoreSpec) checkPartKey() error {
	seen := map[string]bool{}
	keys := 0
	for _, name := range c.PartKey {
		if seen[name] {
			return fmt.Errorf("state: config: PartKey %q names %q twice", c.PartKey, name)
		}
		seen[name] = true
		switch {
		case len(c.KeySchema.FieldIndices(name)) == 1:
			keys++
		case len(c.ValueSchema.FieldIndices(name)) != 1:
			return fmt.Errorf("state: config: PartKey %q: %q is not a key or value field", c.PartKey, name)
		}
	}
	if keys == len(c.PartKey) && keys >= c.KeySchema.NumFields() {
		return fmt.Errorf("state: config: PartKey %q names %d key columns, want fewer than the %d key columns", c.PartKey, len(c.PartKey), c.KeySchema.NumFields())
	}
	return nil
}

// checkTimeColumn reports whether TimeColumn names a key or value field of
// a 32- or 64-bit signed integer type.
func (c StoreSpec) checkTimeColumn() error {
	for _, f := range append(c.KeySchema.Fields(), c.ValueSchema.Fields()...) {
		if f.Name != c.TimeColumn {
			continue
		}
		if t, err := typeOf(f.Type); err != nil || !intType(t) {
			return fmt.Errorf("state: config: TimeColumn %q has type %s, want a 32- or 64-bit signed integer type", f.Name, f.Type)
		}
		return nil
	}
	return fmt.Errorf("state: config: TimeColumn %q is not a key or value field", c.TimeColumn)
}

// Config places a store's files (FS, Dir) and fixes its shape (StoreSpec).
// Stateful operators do not build one: they ask a Provider, which places
// the store (FileProvider: under its checkpoint state directory).
type Config struct {
	FS  vfs.FS
	Dir string // <checkpoint>/state
	StoreSpec
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case c.FS == nil:
		return errors.New("state: config: FS is nil")
	case c.Dir == "":
		return errors.New("state: config: Dir is empty")
	}
	return c.StoreSpec.Validate()
}

// slot flags.
const (
	fLive  uint8 = 1 << iota
	fDirty       // in s.dirty: changed since the last commit
	fNew         // not live at the last commit (deleting it needs no tombstone)
	// fTomb: live at the last commit and deleted since. The slot keeps its
	// key and its place in the hash table until Commit writes the
	// tombstone (a Put of the key revives it); it is not live.
	fTomb
	// fEvicted: deleted by an EvictWhere with its value of the last commit,
	// which the delta records (evictions) instead of its tombstone. Kept
	// if the key is put again, so a later delete writes no tombstone
	// either: the recorded eviction deletes the key of the last commit.
	fEvicted
)

// Store is the state of one operator's key-group range at one version, plus
// the uncommitted changes of the batch being run. It is not safe for
// concurrent use: one task owns it.
//
// Keys and values live in Go memory: canonical key bytes in one arena, value
// columns as typed slices indexed by slot. No Arrow memory is held between
// calls; every record a method returns is allocated from Config.Allocator
// and owned by the caller, every record passed in is only read during the
// call and never retained.
type memStore struct {
	cfg     Config
	dir     string // <Dir>/<Operator>/<Lo>-<Hi>
	version int64
	closed  bool
	loaded  bool // this Open read version > 0 from files (not a warm store)

	keyTypes []colType
	keyc     *codec
	fullc    *codec // keys ++ values ++ __deleted: the file checksum codec
	vals     []column
	fileSch  *arrow.Schema // without metadata

	seed  maphash.Seed
	table []uint64 // open addressing, linear probing: entry(hash, slot), 0 = empty
	mask  uint32

	// Per slot.
	keyOff []int64
	keyLen []uint32
	flags  []uint8

	arena   []byte
	garbage int64 // arena bytes of freed keys
	free    []int32
	// freeLater holds the slots freed in this batch while still in
	// s.dirty (a key put and deleted again): reused after settle, never by
	// another key of the same batch, which would inherit the stale fDirty
	// (and, from an untracked upsert, be written or evicted as changed).
	freeLater []int32
	live      int

	dirty  []int32
	tombs  []int32   // slots marked fTomb since the last commit (revived ones too)
	ntomb  int       // slots with fTomb set
	evicts evictions // the EvictWhere calls the next delta records

	tix *timeIndex // StoreSpec.TimeColumn's index, nil without one
	pix *partIndex // StoreSpec.PartKey's index, nil without one

	// snapAt is the version of the last snapshot (0: none) and since the
	// rows of the deltas after it, up to version (snapshotDue).
	snapAt, since int64

	// sumFiles makes readStateFile and writeRecords checksum whole files
	// (lastSum: the last file written); only the disk backend asks.
	sumFiles bool
	lastSum  uint32

	// Scratch reused across calls.
	kbuf  []byte
	koffs []int
	slots []int32
	oldT  []int64
	oldOK []bool
}

func newStore(cfg Config) (*memStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	if cfg.Allocator == nil {
		cfg.Allocator = memory.DefaultAllocator
	}
	kt, _ := typesOf(cfg.KeySchema)
	vt, _ := typesOf(cfg.ValueSchema)
	fields := append(append([]arrow.Field{}, cfg.KeySchema.Fields()...), cfg.ValueSchema.Fields()...)
	fields = append(fields, arrow.Field{Name: deletedField, Type: arrow.FixedWidthTypes.Boolean})
	all := append(append(append([]colType{}, kt...), vt...), colType{kind: kBool, width: 1, dt: arrow.FixedWidthTypes.Boolean})
	s := &memStore{
		cfg:      cfg,
		dir:      rangeDir(cfg.Dir, cfg.Operator, cfg.Lo, cfg.Hi),
		keyTypes: kt,
		keyc:     newCodec(kt),
		fullc:    newCodec(all),
		fileSch:  arrow.NewSchema(fields, nil),
		seed:     maphash.MakeSeed(),
		table:    make([]uint64, 64),
		mask:     63,
	}
	s.vals = make([]column, len(vt))
	for i, t := range vt {
		s.vals[i].t = t
	}
	s.tix = newTimeIndex(cfg.StoreSpec, len(kt))
	s.pix = newPartIndex(cfg.StoreSpec, kt, vt)
	return s, nil
}

// Open loads version of cfg's operator and key-group range: the last
// snapshot at or before version plus the deltas after it. Version 0 is the
// empty state and reads nothing. Errors name the file: ErrMissing for a
// missing delta of the chain, ErrCorrupt for a file that does not decode or
// check, ErrVersion for an unknown format, ErrSchema for a file whose columns
// are not KeySchema ++ ValueSchema ++ __deleted.
func Open(cfg Config, version int64) (Store, error) {
	s, err := openMem(cfg, version)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openMem(cfg Config, version int64) (*memStore, error) {
	s, err := newStore(cfg)
	if err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, fmt.Errorf("state: open version %d: negative version", version)
	}
	if err := s.load(version); err != nil {
		return nil, err
	}
	s.loaded = version > 0
	return s, nil
}

func (s *memStore) Version() int64 { return s.version }

// Loaded reports whether the Open that returned the store read it from
// files (a version > 0 that no warm store held), rather than reusing a
// warm one: what a key-group range that moved to another process costs.
func (s *memStore) Loaded() bool { return s.loaded }

// Len is the number of live keys, uncommitted changes included.
func (s *memStore) Len() int { return s.live }

// SizeBytes approximates the Go memory the store holds for keys, values,
// the hash table and pending changes (capacities, not lengths).
func (s *memStore) SizeBytes() int64 {
	n := int64(cap(s.arena) + cap(s.keyOff)*8 + cap(s.keyLen)*4 + cap(s.flags) +
		cap(s.table)*8 + cap(s.free)*4 + cap(s.dirty)*4 + cap(s.tombs)*4)
	for i := range s.vals {
		n += s.vals[i].sizeBytes()
	}
	if s.tix != nil {
		n += int64(cap(s.tix.t)*8 + cap(s.tix.sl)*4)
	}
	if s.pix != nil {
		n += s.pix.sizeBytes()
	}
	return n
}

func (s *memStore) checkOpen() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}

func checkSchema(what string, want *arrow.Schema, got arrow.Record) error {
	gs := got.Schema()
	if gs.NumFields() != want.NumFields() {
		return fmt.Errorf("%w: %s record has schema %s, store wants %s", ErrSchema, what, gs, want)
	}
	for i, f := range want.Fields() {
		if !arrow.TypeEqual(f.Type, gs.Field(i).Type) {
			return fmt.Errorf("%w: %s record has schema %s, store wants %s", ErrSchema, what, gs, want)
		}
	}
	return nil
}

// encodeKeys fills s.kbuf/s.koffs with the canonical bytes of keys' rows.
func (s *memStore) encodeKeys(keys arrow.Record) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if err := checkSchema("key", s.cfg.KeySchema, keys); err != nil {
		return 0, err
	}
	n := int(keys.NumRows())
	s.kbuf, s.koffs = s.keyc.encode(keys.Columns(), n, s.kbuf, s.koffs)
	return n, nil
}

func (s *memStore) row(i int) []byte { return s.kbuf[s.koffs[i]:s.koffs[i+1]] }

// Lookup writes to out[i] the slot of keys row i, or -1 when the key is not
// live. out must have at least keys.NumRows() elements. A slot stays valid
// until the key is deleted or evicted, Abort, or Close; Commit keeps slots.
func (s *memStore) Lookup(keys arrow.Record, out []int32) error {
	n, err := s.encodeKeys(keys)
	if err != nil {
		return err
	}
	return s.lookupEncoded(n, out)
}

// lookupEncoded is Lookup of the n keys encodeKeys left in the scratch
// (the disk store encodes a call's keys once for itself and the cache).
func (s *memStore) lookupEncoded(n int, out []int32) error {
	if len(out) < n {
		return fmt.Errorf("state: lookup: out has %d elements for %d keys", len(out), n)
	}
	for i := 0; i < n; i++ {
		r := s.row(i)
		_, sl := s.find(s.hash(r), r)
		if sl >= 0 && s.flags[sl]&fTomb != 0 {
			sl = -1
		}
		out[i] = sl
	}
	return nil
}

// Put upserts keys row i -> values row i. Rows are applied in order, so for
// a key repeated in keys the last row wins. The store copies the rows and
// retains neither record. If slots is non-nil (len >= keys.NumRows()) it
// receives the slot of each row.
func (s *memStore) Put(keys, values arrow.Record, slots []int32) error {
	n, err := s.encodeKeys(keys)
	if err != nil {
		return err
	}
	return s.putEncoded(n, values, slots)
}

// putEncoded is Put of the n keys encodeKeys left in the scratch.
func (s *memStore) putEncoded(n int, values arrow.Record, slots []int32) error {
	if err := checkSchema("value", s.cfg.ValueSchema, values); err != nil {
		return err
	}
	if int(values.NumRows()) != n {
		return fmt.Errorf("state: put: %d key rows but %d value rows", n, values.NumRows())
	}
	if slots != nil && len(slots) < n {
		return fmt.Errorf("state: put: slots has %d elements for %d keys", len(slots), n)
	}
	if slots == nil {
		s.slots = growTo(s.slots[:0], n)
		slots = s.slots
	}
	slots = slots[:n]
	s.reserve(n)
	for i := 0; i < n; i++ {
		slots[i] = s.upsert(s.row(i), true)
	}
	s.setValues(values, slots)
	return nil
}

// reserve makes room for n more keys (the table, the slot arrays, the key
// arena and the value columns) in one step each, where upsert would grow
// them row by row by a quarter at a time: a stream join puts a million new
// rows a batch, and the copies of that growth were a third of Put.
func (s *memStore) reserve(n int) {
	if need := s.live + s.ntomb + n; need*4 > len(s.table)*3 {
		size := len(s.table)
		for need*4 > size*3 {
			size *= 2
		}
		s.rehash(size)
	}
	if fresh := n - len(s.free); fresh > 0 {
		slots := len(s.flags) + fresh
		s.flags = growCap(s.flags, slots)
		s.keyOff = growCap(s.keyOff, slots)
		s.keyLen = growCap(s.keyLen, slots)
		for j := range s.vals {
			s.vals[j].reserve(slots)
		}
	}
	s.arena = growCap(s.arena, len(s.arena)+len(s.kbuf))
}

// Update overwrites the values of live slots (from Lookup or Put) with the
// rows of values: slots[i] gets row i. It skips hashing the keys again,
// the shape of a vectorised aggregation's read-modify-write.
func (s *memStore) Update(slots []int32, values arrow.Record) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := checkSchema("value", s.cfg.ValueSchema, values); err != nil {
		return err
	}
	if int(values.NumRows()) != len(slots) {
		return fmt.Errorf("state: update: %d slots but %d value rows", len(slots), values.NumRows())
	}
	for _, sl := range slots {
		if sl < 0 || int(sl) >= len(s.flags) || s.flags[sl]&fLive == 0 {
			return fmt.Errorf("state: update: slot %d is not live", sl)
		}
	}
	for _, sl := range slots {
		s.markDirty(sl)
	}
	s.setValues(values, slots)
	return nil
}

// setValues writes values row i into slots[i], keeping a value-column time
// index true.
func (s *memStore) setValues(values arrow.Record, slots []int32) {
	vix := s.tix != nil && !s.tix.key
	if vix {
		s.beforeValues(slots)
	}
	s.setCols(values.Columns(), nil, slots)
	if vix {
		s.afterValues(slots)
	}
}

// Delete removes the keys' rows; a key that is not live is ignored. Deleting
// a key that was live at Version() writes a tombstone in the next delta.
func (s *memStore) Delete(keys arrow.Record) error {
	n, err := s.encodeKeys(keys)
	if err != nil {
		return err
	}
	s.deleteEncoded(n)
	return nil
}

// DeleteLive is Delete: a hash table finds a key as cheaply as it could
// trust it.
func (s *memStore) DeleteLive(keys arrow.Record) error { return s.Delete(keys) }

// EvictLive deletes keys as EvictWhere(col, less) would (see Store).
func (s *memStore) EvictLive(keys arrow.Record, col int, less int64) error {
	n, err := s.encodeEvictLive(keys, col, less)
	if err != nil {
		return err
	}
	return s.evictEncoded(n, col, less)
}

// encodeEvictLive checks an EvictLive call (its column, then every key
// below less) and encodes its keys into the scratch, returning how many.
func (s *memStore) encodeEvictLive(keys arrow.Record, col int, less int64) (int, error) {
	if err := s.checkEvictLive(col); err != nil {
		return 0, err
	}
	n, err := s.encodeKeys(keys)
	if err != nil {
		return 0, err
	}
	return n, s.checkBelow(n, col, less)
}

// checkEvictLive refuses what EvictLive cannot evict by: a column that is
// not a key column of EvictWhere's types.
func (s *memStore) checkEvictLive(col int) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if col >= len(s.keyTypes) {
		return fmt.Errorf("state: evict live keys: column %d is not a key column (%d key columns)", col, len(s.keyTypes))
	}
	return s.checkTimeCol("evict live keys", col)
}

// evictEncoded is EvictLive of the n keys encodeKeys left in the scratch,
// checkBelow already passed: all are found live before any is evicted, so
// a refused call changes nothing.
func (s *memStore) evictEncoded(n, col int, less int64) error {
	slots := s.slots[:0]
	for i := 0; i < n; i++ {
		r := s.row(i)
		_, sl := s.find(s.hash(r), r)
		if sl < 0 || s.flags[sl]&fLive == 0 {
			return fmt.Errorf("state: %s: evict live keys: key %d is not live", s.dir, i)
		}
		slots = append(slots, sl)
	}
	s.slots = slots
	for _, sl := range slots {
		if s.flags[sl]&fLive != 0 { // not a key given twice
			s.evict(sl, col, less)
		}
	}
	s.maybeCompactArena()
	return nil
}

// checkBelow reports a key of the n in the scratch whose key column col is
// null or not below less.
func (s *memStore) checkBelow(n, col int, less int64) error {
	for i := 0; i < n; i++ {
		if t, ok := s.keyIntOf(s.row(i), col); !ok || t >= less {
			return fmt.Errorf("state: %s: evict live keys below %d: key %d has column %d %d (null: %t)", s.dir, less, i, col, t, !ok)
		}
	}
	return nil
}

// deleteEncoded is Delete of the n keys encodeKeys left in the scratch.
func (s *memStore) deleteEncoded(n int) {
	for i := 0; i < n; i++ {
		r := s.row(i)
		if pos, sl := s.find(s.hash(r), r); sl >= 0 && s.flags[sl]&fTomb == 0 {
			s.removeAt(pos, sl, true)
		}
	}
	s.maybeCompactArena()
}

// Values gathers the values of slots into a record of ValueSchema; slot -1
// gives a row of nulls. The caller releases the record.
func (s *memStore) Values(slots []int32) (arrow.Record, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	for _, sl := range slots {
		if sl >= 0 && (int(sl) >= len(s.flags) || s.flags[sl]&fLive == 0) {
			return nil, fmt.Errorf("state: values: slot %d is not live", sl)
		}
	}
	return s.valuesRecord(slots), nil
}

func (s *memStore) valuesRecord(slots []int32) arrow.Record {
	cols := make([]arrow.Array, len(s.vals))
	for j := range s.vals {
		cols[j] = s.vals[j].gather(s.cfg.Allocator, slots)
	}
	return newRecord(s.cfg.ValueSchema, cols, len(slots))
}

// newRecord builds a record taking over the caller's references to cols.
func newRecord(sch *arrow.Schema, cols []arrow.Array, n int) arrow.Record {
	rec := array.NewRecord(sch, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// ScanChunk is the most rows Scan hands fn at once.
const ScanChunk = 4096

// Scan calls fn with every live entry, uncommitted changes included, in
// ascending order of canonical key bytes, in chunks of at most ScanChunk
// rows. keys and values are released when fn returns: fn must Retain what
// it keeps. An error from fn stops the scan and is returned. fn must not
// change the store.
func (s *memStore) Scan(fn func(keys, values arrow.Record) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.scan(s.sortedLive(nil), fn)
}

// ScanWhere is Scan restricted to the entries whose column col (as in
// EvictWhere) is not null and less than less: the groups a watermark has
// closed, the timers that are due. On TimeColumn it visits only those
// entries (and sorts only them); on another column it filters every key.
func (s *memStore) ScanWhere(col int, less int64, fn func(keys, values arrow.Record) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := s.checkTimeCol("scan", col); err != nil {
		return err
	}
	var live []int32
	if s.tix != nil && s.tix.col == col {
		live = s.dueSlots(less, false)
		sortByKey(live, s.key)
	} else {
		live = s.sortedLive(func(sl int32) bool {
			v, ok := s.colInt(sl, col)
			return ok && v < less
		})
	}
	return s.scan(live, fn)
}

// checkTimeCol reports whether col numbers a 64- or 32-bit signed integer
// key or value column.
func (s *memStore) checkTimeCol(op string, col int) error {
	nk := len(s.keyTypes)
	if col < 0 || col >= nk+len(s.vals) {
		return fmt.Errorf("state: %s: column %d out of range [0, %d) (%d key, %d value columns)", op, col, nk+len(s.vals), nk, len(s.vals))
	}
	what, t := "key", colType{}
	if col < nk {
		t = s.keyTypes[col]
	} else {
		what, t = "value", s.vals[col-nk].t
		col -= nk
	}
	if !intType(t) {
		return fmt.Errorf("state: %s: %s column %d has type %s, want a 32- or 64-bit signed integer type", op, what, col, t.dt)
	}
	return nil
}

// colWidth is the byte width of column col (EvictWhere's numbering).
func (s *memStore) colWidth(col int) int {
	if col < len(s.keyTypes) {
		return s.keyTypes[col].width
	}
	return s.vals[col-len(s.keyTypes)].t.width
}

func (s *memStore) scan(live []int32, fn func(keys, values arrow.Record) error) error {
	rows := make([][]byte, 0, min(len(live), ScanChunk))
	for a := 0; a < len(live); a += ScanChunk {
		b := min(a+ScanChunk, len(live))
		rows = rows[:0]
		for _, sl := range live[a:b] {
			rows = append(rows, s.key(sl))
		}
		k := newRecord(s.cfg.KeySchema, s.keyc.decode(s.cfg.Allocator, rows), len(rows))
		v := s.valuesRecord(live[a:b])
		err := fn(k, v)
		k.Release()
		v.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) key(sl int32) []byte {
	return s.arena[s.keyOff[sl] : s.keyOff[sl]+int64(s.keyLen[sl])]
}

func (s *memStore) sortedLive(keep func(sl int32) bool) []int32 {
	var live []int32
	if keep == nil {
		live = make([]int32, 0, s.live)
	}
	for sl, f := range s.flags {
		if f&fLive != 0 && (keep == nil || keep(int32(sl))) {
			live = append(live, int32(sl))
		}
	}
	sortByKey(live, s.key)
	return live
}

// EvictWhere deletes every live entry whose column col (key columns, then
// value columns) is not null and less than less, and returns how many it
// deleted (watermark eviction: col is e.g. a window end). col must be a 64-
// or 32-bit signed integer-like column (int64, timestamp, date64, time64,
// duration, int32, date32, time32); less is in the column's own unit.
// Evicted keys that were live at Version() get tombstones; their memory is
// reused by later keys. On TimeColumn it visits only the entries it
// deletes; on another column, every slot.
func (s *memStore) EvictWhere(col int, less int64) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if err := s.checkTimeCol("evict", col); err != nil {
		return 0, err
	}
	if s.tix != nil && s.tix.col == col {
		// Ascending slot order, as the scan below deletes: the free list
		// and so the slots later keys get stay what they were.
		due := s.dueSlots(less, true)
		for _, sl := range due {
			s.evict(sl, col, less)
		}
		s.maybeCompactArena()
		return len(due), nil
	}
	n := 0
	for sl, f := range s.flags {
		if f&fLive == 0 {
			continue
		}
		v, ok := s.colInt(int32(sl), col)
		if !ok || v >= less {
			continue
		}
		s.evict(int32(sl), col, less)
		n++
	}
	s.maybeCompactArena()
	return n, nil
}

// evict deletes live slot sl for EvictWhere(col, less): a key unchanged
// since the last commit gets no tombstone (fEvicted), the call is recorded
// for the delta instead.
func (s *memStore) evict(sl int32, col int, less int64) {
	silent := s.flags[sl]&fDirty == 0
	s.removeAt(s.posOf(sl), sl, true)
	if silent {
		s.flags[sl] |= fEvicted
		s.evicts.add(col, less)
	}
}

// evictsOf is what a file of kind records: the delta the batch's
// evictions, a snapshot none.
func (s *memStore) evictsOf(kind string) evictions {
	if kind == kindDelta {
		return s.evicts
	}
	return nil
}

// keyInt decodes signed key column col of slot sl; false when it is null.
func (s *memStore) keyInt(sl int32, col int) (int64, bool) {
	return s.keyIntOf(s.key(sl), col)
}

// keyIntOf decodes signed key column col of canonical key bytes k.
func (s *memStore) keyIntOf(k []byte, col int) (int64, bool) {
	if k[col/8]&(1<<(col%8)) != 0 {
		return 0, false
	}
	p := s.keyc.nb
	for j := 0; j < col; j++ {
		if k[j/8]&(1<<(j%8)) != 0 {
			continue
		}
		if t := s.keyTypes[j]; t.fixed() {
			p += t.width
		} else {
			l, m := binary.Uvarint(k[p:])
			p += m + int(l)
		}
	}
	var u uint64
	w := s.keyTypes[col].width
	for _, b := range k[p : p+w] {
		u = u<<8 | uint64(b)
	}
	u ^= 1 << (8*w - 1)
	if w == 4 {
		return int64(int32(uint32(u))), true
	}
	return int64(u), true
}

// Commit makes the changes since Version() version `version`, which must be
// Version()+1: it writes <version>.delta.arrow and, when a snapshot is due
// (snapshotDue: at a multiple of SnapshotEvery once the deltas since the
// last one are as large as the state), <version>.snapshot.arrow, each atomically
// through FS. The bytes depend only on the committed state and changes,
// never on the order of operations that led to them. On error the store
// keeps its changes at Version(): Commit can be retried, or Abort called.
func (s *memStore) Commit(version int64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if version != s.version+1 {
		return fmt.Errorf("state: commit version %d: store is at version %d, want %d", version, s.version, s.version+1)
	}
	rows, err := s.writeDelta(version)
	if err != nil {
		return err
	}
	since := s.since + rows
	if snapshotDue(version, s.snapAt, since, int64(s.live), s.cfg.SnapshotEvery) {
		if err := s.writeSnapshot(version); err != nil {
			return err
		}
		s.snapAt, since = version, 0
	}
	s.since = since
	s.settle(version)
	return nil
}

// settle makes the changes since the last commit part of version once
// their files are written: every row clean, tombstones gone.
func (s *memStore) settle(version int64) {
	for _, sl := range s.dirty {
		s.flags[sl] &^= fDirty | fNew | fEvicted
	}
	s.dirty = s.dirty[:0]
	for _, sl := range s.tombs {
		if s.flags[sl]&fTomb != 0 {
			s.flags[sl] &^= fTomb | fEvicted
			s.ntomb--
			s.dropSlot(s.posOf(sl), sl)
		}
	}
	s.tombs = s.tombs[:0]
	s.evicts = nil
	s.free = append(s.free, s.freeLater...)
	s.freeLater = s.freeLater[:0]
	s.maybeCompactArena()
	s.version = version
}

// Abort drops the changes since Version() by loading Version() again from
// FS (a task retry costs one load; a store with no pending change returns
// at once). Slots from before Abort are invalid after it.
func (s *memStore) Abort() error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if len(s.dirty) == 0 && s.ntomb == 0 {
		return nil
	}
	ns, err := openMem(s.cfg, s.version)
	if err != nil {
		return fmt.Errorf("state: abort: %w", err)
	}
	*s = *ns
	return nil
}

// Close drops the store's memory. It is idempotent; every other method
// returns ErrClosed afterwards.
func (s *memStore) Close() error {
	if s.closed {
		return nil
	}
	*s = memStore{cfg: s.cfg, dir: s.dir, version: s.version, closed: true}
	return nil
}

// --- hash table -----------------------------------------------------------

func (s *memStore) hash(r []byte) uint32 {
	h := maphash.Bytes(s.seed, r)
	return uint32(h ^ h>>32)
}

// find returns the table position of key r (or the empty position where it
// would go) and its slot, or -1.
func (s *memStore) find(h uint32, r []byte) (uint32, int32) {
	pos := h & s.mask
	for {
		e := s.table[pos]
		if e == 0 {
			return pos, -1
		}
		if uint32(e>>32) == h {
			if sl := int32(uint32(e)) - 1; bytes.Equal(s.key(sl), r) {
				return pos, sl
			}
		}
		pos = (pos + 1) & s.mask
	}
}

// entry is slot sl's hash-table entry: its key's hash above slot+1, so a
// probe compares hashes without touching the per-slot arrays (a random
// access each: most of an insert's cost at 10 M keys), and 0 is empty.
func entry(h uint32, sl int32) uint64 { return uint64(h)<<32 | uint64(uint32(sl+1)) }

func (s *memStore) posOf(sl int32) uint32 {
	pos := s.hash(s.key(sl)) & s.mask
	for uint32(s.table[pos]) != uint32(sl+1) {
		pos = (pos + 1) & s.mask
	}
	return pos
}

func (s *memStore) markDirty(sl int32) {
	if s.flags[sl]&fDirty == 0 {
		s.flags[sl] |= fDirty
		s.dirty = append(s.dirty, sl)
	}
}

// upsert returns the slot of key r, inserting it (with null values) when it
// is not live. track records the change for the next delta.
func (s *memStore) upsert(r []byte, track bool) int32 {
	if (s.live+s.ntomb+1)*4 > len(s.table)*3 {
		s.rehash(len(s.table) * 2)
	}
	h := s.hash(r)
	pos, sl := s.find(h, r)
	if sl >= 0 && s.flags[sl]&fTomb != 0 {
		// Deleted since the last commit and put again: live, with null
		// values, and changed (no tombstone, not new).
		s.flags[sl] = s.flags[sl]&^fTomb | fLive
		s.ntomb--
		s.live++
		s.markDirty(sl)
		if s.tix != nil && s.tix.key && !s.tix.off {
			s.index(sl)
		}
		if s.pix != nil && !s.pix.vals {
			s.linkPart(sl)
		}
		return sl
	}
	if sl >= 0 {
		if track {
			s.markDirty(sl)
		}
		return sl
	}
	if n := len(s.free); n > 0 {
		sl = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		sl = int32(len(s.flags))
		s.keyOff = append(s.keyOff, 0)
		s.keyLen = append(s.keyLen, 0)
		s.flags = append(s.flags, 0)
		for j := range s.vals {
			s.vals[j].resize(len(s.flags))
		}
	}
	s.keyOff[sl] = int64(len(s.arena))
	s.keyLen[sl] = uint32(len(r))
	s.arena = append(s.arena, r...)
	s.table[pos] = entry(h, sl)
	s.live++
	f := s.flags[sl] | fLive
	if track {
		f |= fNew
		if f&fDirty == 0 {
			f |= fDirty
			s.dirty = append(s.dirty, sl)
		}
	}
	s.flags[sl] = f
	if s.tix != nil && s.tix.key && !s.tix.off {
		s.index(sl)
	}
	if s.pix != nil && !s.pix.vals {
		s.linkPart(sl)
	}
	return sl
}

// removeAt deletes slot sl found at table position pos. A tracked delete of
// a key that was live at the last commit leaves a tombstone slot (fTomb)
// in the table until Commit; anything else frees the slot at once.
func (s *memStore) removeAt(pos uint32, sl int32, track bool) {
	if s.pix != nil {
		s.unlinkPart(sl)
	}
	for j := range s.vals {
		s.vals[j].free(sl)
	}
	s.live--
	if track && s.flags[sl]&fNew == 0 {
		s.flags[sl] = s.flags[sl]&^fLive | fTomb // still in s.dirty if it was
		s.ntomb++
		s.tombs = append(s.tombs, sl)
		return
	}
	s.flags[sl] &^= fLive | fNew
	s.dropSlot(pos, sl)
}

// dropSlot frees slot sl and its key, found at table position pos, closing
// the gap by backward shifting so no probe chain breaks.
func (s *memStore) dropSlot(pos uint32, sl int32) {
	s.garbage += int64(s.keyLen[sl])
	s.keyLen[sl] = 0
	if s.flags[sl]&fDirty != 0 {
		s.freeLater = append(s.freeLater, sl)
	} else {
		s.free = append(s.free, sl)
	}
	removeEntry(s.table, s.mask, pos)
}

// removeEntry empties position pos of an open-addressing table of
// entry(hash, ...) values with linear probing, closing the gap by backward
// shifting so no probe chain breaks.
func removeEntry(table []uint64, mask, pos uint32) {
	i, j := pos, pos
	for {
		j = (j + 1) & mask
		e := table[j]
		if e == 0 {
			break
		}
		k := uint32(e>>32) & mask
		// e stays if its home k lies cyclically in (i, j].
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		table[i] = e
		i = j
	}
	table[i] = 0
}

// rehashTable returns old's entries in a table of size positions (a power
// of two) and its mask.
func rehashTable(old []uint64, size int) ([]uint64, uint32) {
	table, mask := make([]uint64, size), uint32(size-1)
	for _, e := range old {
		if e == 0 {
			continue
		}
		pos := uint32(e>>32) & mask
		for table[pos] != 0 {
			pos = (pos + 1) & mask
		}
		table[pos] = e
	}
	return table, mask
}

func (s *memStore) rehash(size int) { s.table, s.mask = rehashTable(s.table, size) }

// maybeCompactArena rewrites the key arena once freed keys are half of it,
// so eviction gives memory back.
func (s *memStore) maybeCompactArena() {
	if s.garbage < 64<<10 || s.garbage < int64(len(s.arena))/2 {
		return
	}
	arena := make([]byte, 0, int64(len(s.arena))-s.garbage)
	for sl, f := range s.flags {
		if f&(fLive|fTomb) == 0 {
			continue
		}
		k := s.key(int32(sl))
		s.keyOff[sl] = int64(len(arena))
		arena = append(arena, k...)
	}
	s.arena, s.garbage = arena, 0
	for j := range s.vals {
		if !s.vals[j].t.fixed() {
			s.vals[j].maybeCompact()
		}
	}
}
