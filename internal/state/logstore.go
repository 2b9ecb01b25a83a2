package state

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// logStore is the memory backend's store for StoreSpec.Log: an operator
// that puts each key once, in ascending key order past every key it put
// before, deletes only live keys and reads its rows back only by Scan (a
// stream join's side, whose keys are sequence numbers). It keeps the rows
// as the Arrow records it was given, retained, in key order: no hash
// table, no copy of the values (the join's own records of its rows are
// the same memory), and a delete finds its key by a search of those
// records in key order. It writes the same files as memStore (the same
// bytes: keys are decoded from canonical bytes and values from raw bytes,
// as the disk backend writes them), so a checkpoint does not depend on
// which store wrote it.
//
// EvictWhere (and EvictLive) marks the rows it deletes in their segments:
// the old ones unchanged by definition, so recorded as memStore records
// them (evictions, no tombstones). Any other use (a put of a key at or below one already
// put, Lookup, Update, Values, ScanWhere, ScanPart) turns it into a
// memStore for the rest of its life: loaded from the files at its version, with this batch's
// changes replayed (fall), then asked again. Correct for every caller; only
// the callers that keep to the log pay nothing for the hash table.
type logStore struct {
	w       *memStore // writes and loads the files; holds no row
	mem     *memStore // non-nil once fallen back
	valc    *codec    // raw value rows, to build file columns as the disk backend does
	version int64
	loaded  bool
	closed  bool

	segs []*logSeg // live rows, ascending keys: segs[pend:] are this batch's puts
	pend int
	live int
	last []byte // the greatest key ever put (canonical bytes)

	tombs  [][]byte           // keys live at version and deleted since (their segments' bytes)
	evicts evictions          // the EvictWhere calls the next delta records
	ops    []logOp            // this batch's changes, replayed by fall
	cur    struct{ s, r int } // where the last delete was found

	snapAt, since int64
}

// logSeg is a record of rows in key order, some of which may be deleted.
type logSeg struct {
	keys, vals arrow.Record
	kb         []byte
	koff       []int
	dead       []bool // nil: none
	ndead      int
}

func (g *logSeg) n() int            { return int(g.keys.NumRows()) }
func (g *logSeg) key(i int) []byte  { return g.kb[g.koff[i]:g.koff[i+1]] }
func (g *logSeg) isDead(i int) bool { return g.dead != nil && g.dead[i] }
func (g *logSeg) release()          { g.keys.Release(); g.vals.Release() }
func (g *logSeg) liveRows() int     { return g.n() - g.ndead }
func (g *logSeg) lastKey() []byte   { return g.key(g.n() - 1) }

// liveIdx is the rows of g not deleted.
func (g *logSeg) liveIdx() []int {
	idx := make([]int, 0, g.liveRows())
	for i := 0; i < g.n(); i++ {
		if !g.isDead(i) {
			idx = append(idx, i)
		}
	}
	return idx
}

// logOp is a change of this batch: a put, a delete of live keys, a
// delete that ignores keys not live, or an EvictWhere(col, less).
type logOp struct {
	kind       int // opPut, opDeleteLive, opDelete, opEvict
	keys, vals arrow.Record
	col        int
	less       int64
}

const (
	opPut = iota
	opDeleteLive
	opDelete
	opEvict
)

var _ Store = (*logStore)(nil)

func openLog(cfg Config, version int64) (*logStore, error) {
	m, err := openMem(cfg, version)
	if err != nil {
		return nil, err
	}
	vt, _ := typesOf(cfg.ValueSchema)
	w, _ := newStore(m.cfg)
	s := &logStore{w: w, valc: newCodec(rawTypes(vt)), version: version, loaded: m.loaded, snapAt: m.snapAt, since: m.since}
	// The loaded rows, in key order, become the first segments.
	err = m.Scan(func(k, v arrow.Record) error {
		s.append(k, v, nil, nil)
		return nil
	})
	m.Close()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.pend = len(s.segs)
	return s, nil
}

// append adds rows whose keys are past every key put before (kb, koff:
// their canonical bytes; nil: encoded here), retaining k and v.
func (s *logStore) append(k, v arrow.Record, kb []byte, koff []int) {
	if koff == nil {
		kb, koff = s.w.keyc.encode(k.Columns(), int(k.NumRows()), nil, nil)
	}
	k.Retain()
	v.Retain()
	g := &logSeg{keys: k, vals: v, kb: kb, koff: koff}
	s.segs = append(s.segs, g)
	s.live += g.n()
	s.last = g.lastKey()
}

func (s *logStore) checkOpen() error {
	if s.closed {
		return fmt.Errorf("state: store %s: %w", s.w.dir, ErrClosed)
	}
	return nil
}

// fall turns s into a memStore: version loaded from the files, this
// batch's changes replayed.
func (s *logStore) fall() error {
	if s.mem != nil {
		return nil
	}
	m, err := openMem(s.w.cfg, s.version)
	if err != nil {
		return fmt.Errorf("state: %s: a log store turning into a hash table: %w", s.w.dir, err)
	}
	for _, op := range s.ops {
		switch op.kind {
		case opPut:
			err = m.Put(op.keys, op.vals, nil)
		case opDeleteLive:
			err = m.DeleteLive(op.keys)
		case opEvict:
			_, err = m.EvictWhere(op.col, op.less)
		default:
			err = m.Delete(op.keys)
		}
		if err != nil {
			m.Close()
			return err
		}
	}
	m.loaded = s.loaded
	s.dropRows()
	s.mem = m
	return nil
}

func (s *logStore) dropRows() {
	for _, g := range s.segs {
		g.release()
	}
	s.releaseOps()
	s.segs, s.ops, s.tombs, s.evicts, s.live, s.pend = nil, nil, nil, nil, 0, 0
}

// releaseOps lets go of this batch's changes.
func (s *logStore) releaseOps() {
	for _, op := range s.ops {
		if op.keys != nil {
			op.keys.Release()
		}
		if op.vals != nil {
			op.vals.Release()
		}
	}
	s.ops = s.ops[:0]
}

func (s *logStore) Version() int64 {
	if s.mem != nil {
		return s.mem.Version()
	}
	return s.version
}

func (s *logStore) Loaded() bool {
	if s.mem != nil {
		return s.mem.Loaded()
	}
	return s.loaded
}

func (s *logStore) Len() int {
	if s.mem != nil {
		return s.mem.Len()
	}
	return s.live
}

func (s *logStore) SizeBytes() int64 {
	if s.mem != nil {
		return s.mem.SizeBytes()
	}
	var n int64
	for _, g := range s.segs {
		n += int64(len(g.kb)) + 8*int64(len(g.koff)) + recordBytes(g.keys) + recordBytes(g.vals)
	}
	return n
}

func recordBytes(r arrow.Record) int64 {
	var n int64
	for _, c := range r.Columns() {
		for _, b := range c.Data().Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
	}
	return n
}

// hashed is the memStore s has turned into (fall), for a call outside the
// log's shape.
func (s *logStore) hashed() (*memStore, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := s.fall(); err != nil {
		return nil, err
	}
	return s.mem, nil
}

func (s *logStore) Lookup(keys arrow.Record, out []int32) error {
	m, err := s.hashed()
	if err != nil {
		return err
	}
	return m.Lookup(keys, out)
}

func (s *logStore) Update(slots []int32, values arrow.Record) error {
	m, err := s.hashed()
	if err != nil {
		return err
	}
	return m.Update(slots, values)
}

func (s *logStore) Values(slots []int32) (arrow.Record, error) {
	m, err := s.hashed()
	if err != nil {
		return nil, err
	}
	return m.Values(slots)
}

func (s *logStore) ScanWhere(col int, less int64, fn func(keys, values arrow.Record) error) error {
	m, err := s.hashed()
	if err != nil {
		return err
	}
	return m.ScanWhere(col, less, fn)
}

// Indexed is true: a log store turns into a memStore, with its indexes,
// at a ScanPart or ScanWhere.
func (s *logStore) Indexed() bool { return true }

func (s *logStore) ScanPart(parts arrow.Record, fn func(keys, values arrow.Record) error) error {
	m, err := s.hashed()
	if err != nil {
		return err
	}
	return m.ScanPart(parts, fn)
}

// EvictWhere marks the live rows whose column col is less than less dead:
// this batch's puts at no cost, older rows recorded (memStore.evict).
func (s *logStore) EvictWhere(col int, less int64) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if s.mem != nil {
		return s.mem.EvictWhere(col, less)
	}
	if err := s.w.checkTimeCol("evict", col); err != nil {
		return 0, err
	}
	nk := len(s.w.keyTypes)
	n := 0
	for si, g := range s.segs {
		var c arrow.Array
		if col < nk {
			c = g.keys.Column(col)
		} else {
			c = g.vals.Column(col - nk)
		}
		valid, voff := validity(c)
		var v64 []int64
		var v32 []int32
		if d := c.Data(); s.w.colWidth(col) == 8 {
			v64 = arrow.Int64Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset():]
		} else {
			v32 = arrow.Int32Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset():]
		}
		for i := 0; i < g.n(); i++ {
			if g.isDead(i) || valid != nil && !bitutil.BitIsSet(valid, voff+i) {
				continue
			}
			var t int64
			if v64 != nil {
				t = v64[i]
			} else {
				t = int64(v32[i])
			}
			if t >= less {
				continue
			}
			if g.dead == nil {
				g.dead = make([]bool, g.n())
			}
			g.dead[i] = true
			g.ndead++
			s.live--
			n++
			if si < s.pend {
				s.evicts.add(col, less) // live at the version, unchanged
			}
		}
	}
	s.ops = append(s.ops, logOp{kind: opEvict, col: col, less: less})
	return n, nil
}

// evictsOf is memStore.evictsOf of the log.
func (s *logStore) evictsOf(kind string) evictions {
	if kind == kindDelta {
		return s.evicts
	}
	return nil
}

// Put appends the rows when their keys ascend past every key put before;
// anything else (an overwrite, slots asked for) turns the store into a
// memStore first.
func (s *logStore) Put(keys, values arrow.Record, slots []int32) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.mem == nil && slots == nil {
		if err := checkSchema("key", s.w.cfg.KeySchema, keys); err != nil {
			return err
		}
		if err := checkSchema("value", s.w.cfg.ValueSchema, values); err != nil {
			return err
		}
		if keys.NumRows() != values.NumRows() {
			return fmt.Errorf("state: put: %d key rows but %d value rows", keys.NumRows(), values.NumRows())
		}
		if keys.NumRows() == 0 {
			return nil
		}
		kb, koff := s.w.keyc.encode(keys.Columns(), int(keys.NumRows()), nil, nil)
		ascending := s.last == nil || bytes.Compare(kb[koff[0]:koff[1]], s.last) > 0
		for i := 1; ascending && i < len(koff)-1; i++ {
			ascending = bytes.Compare(kb[koff[i-1]:koff[i]], kb[koff[i]:koff[i+1]]) < 0
		}
		if ascending {
			keys.Retain()
			values.Retain()
			s.ops = append(s.ops, logOp{kind: opPut, keys: keys, vals: values})
			s.append(keys, values, kb, koff)
			return nil
		}
	}
	if err := s.fall(); err != nil {
		return err
	}
	return s.mem.Put(keys, values, slots)
}

func (s *logStore) DeleteLive(keys arrow.Record) error { return s.delete(keys, opDeleteLive) }

func (s *logStore) Delete(keys arrow.Record) error { return s.delete(keys, opDelete) }

// EvictLive is EvictWhere(col, less): a pass over the segments' column
// costs less than finding each named key (in one sitting, q7 at 500 000-row
// batches took 6.1-6.3 CPU-s finding them, 5.0-5.4 with EvictWhere), and
// its count is checked against the keys named.
func (s *logStore) EvictLive(keys arrow.Record, col int, less int64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.mem != nil {
		return s.mem.EvictLive(keys, col, less)
	}
	if err := s.w.checkEvictLive(col); err != nil {
		return err
	}
	n, err := s.EvictWhere(col, less)
	if err != nil {
		return err
	}
	if int64(n) != keys.NumRows() {
		return fmt.Errorf("state: %s: evict live keys below %d: %d live keys are below it, the caller named %d", s.w.dir, less, n, keys.NumRows())
	}
	return nil
}

// delete is Delete or DeleteLive (kind).
func (s *logStore) delete(keys arrow.Record, kind int) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.mem != nil {
		if kind == opDeleteLive {
			return s.mem.DeleteLive(keys)
		}
		return s.mem.Delete(keys)
	}
	if err := checkSchema("key", s.w.cfg.KeySchema, keys); err != nil {
		return err
	}
	n := int(keys.NumRows())
	if n == 0 {
		return nil
	}
	kb, koff := s.w.keyc.encode(keys.Columns(), n, nil, nil)
	// Found and checked first: a refused call changes nothing.
	type at struct{ si, ri int }
	found := make([]at, 0, n)
	for i := 0; i < n; i++ {
		k := kb[koff[i]:koff[i+1]]
		si, ri, ok := s.find(k)
		if !ok {
			if kind != opDelete {
				return fmt.Errorf("state: %s: delete of a key that is not live (row %d)", s.w.dir, i)
			}
			continue
		}
		found = append(found, at{si, ri})
	}
	for _, f := range found {
		si, ri := f.si, f.ri
		g := s.segs[si]
		if g.isDead(ri) {
			continue // the key twice in keys
		}
		if g.dead == nil {
			g.dead = make([]bool, g.n())
		}
		g.dead[ri] = true
		g.ndead++
		s.live--
		if si < s.pend {
			// Live at the version: a tombstone, its bytes the segment's
			// (kept until Commit settles). Deletes come in any order;
			// Commit sorts them unless they came in order.
			s.tombs = append(s.tombs, g.key(ri))
		}
	}
	keys.Retain()
	s.ops = append(s.ops, logOp{kind: kind, keys: keys})
	return nil
}

// find returns where live key k is: searched from the last key found
// onwards when keys come in ascending order (a join evicts its oldest rows
// first), else from the start.
func (s *logStore) find(k []byte) (int, int, bool) {
	if len(s.segs) == 0 {
		return 0, 0, false
	}
	si, ri := s.cur.s, s.cur.r
	if si >= len(s.segs) || bytes.Compare(k, s.segs[si].key(min(ri, s.segs[si].n()-1))) < 0 {
		si, ri = 0, 0
	}
	// The first segment from si whose last key is >= k.
	if bytes.Compare(s.segs[si].lastKey(), k) < 0 {
		j := sort.Search(len(s.segs)-si, func(j int) bool { return bytes.Compare(s.segs[si+j].lastKey(), k) >= 0 })
		si, ri = si+j, 0
	}
	if si >= len(s.segs) {
		return 0, 0, false
	}
	g := s.segs[si]
	// Gallop from ri, then search the last step.
	lo, step := ri, 1
	for lo+step < g.n() && bytes.Compare(g.key(lo+step), k) < 0 {
		lo += step
		step *= 2
	}
	hi := min(lo+step, g.n()-1)
	j := lo + sort.Search(hi-lo+1, func(j int) bool { return bytes.Compare(g.key(lo+j), k) >= 0 })
	if j >= g.n() || !bytes.Equal(g.key(j), k) || g.isDead(j) {
		return 0, 0, false
	}
	s.cur.s, s.cur.r = si, j
	return si, j, true
}

// Scan hands over the live rows in key order, at most ScanChunk a call.
func (s *logStore) Scan(fn func(keys, values arrow.Record) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.mem != nil {
		return s.mem.Scan(fn)
	}
	mem := s.w.cfg.Allocator
	for _, g := range s.segs {
		if g.ndead == g.n() {
			continue
		}
		k, v := g.keys, g.vals
		if g.ndead > 0 {
			var err error
			if k, v, err = takeRows(mem, k, v, g.liveIdx()); err != nil {
				return err
			}
		} else {
			k.Retain()
			v.Retain()
		}
		err := eachChunk(k, v, ScanChunk, fn)
		k.Release()
		v.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func eachChunk(k, v arrow.Record, chunk int, fn func(keys, values arrow.Record) error) error {
	n := int(k.NumRows())
	for a := 0; a < n; a += chunk {
		b := min(a+chunk, n)
		ks, vs := k.NewSlice(int64(a), int64(b)), v.NewSlice(int64(a), int64(b))
		err := fn(ks, vs)
		ks.Release()
		vs.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// takeRows copies rows idx (ascending) of k and v: the runs of
// consecutive rows, sliced and concatenated.
func takeRows(mem memory.Allocator, k, v arrow.Record, idx []int) (arrow.Record, arrow.Record, error) {
	var runs [][2]int64
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[j-1]+1 {
			j++
		}
		runs = append(runs, [2]int64{int64(idx[i]), int64(idx[j-1] + 1)})
		i = j
	}
	var out [2]arrow.Record
	for i, r := range []arrow.Record{k, v} {
		cols := make([]arrow.Array, r.NumCols())
		for c, col := range r.Columns() {
			parts := make([]arrow.Array, len(runs))
			for p, run := range runs {
				parts[p] = array.NewSlice(col, run[0], run[1])
			}
			var err error
			cols[c], err = array.Concatenate(parts, mem)
			releaseArrays(parts)
			if err != nil {
				releaseArrays(cols)
				if i == 1 {
					out[0].Release()
				}
				return nil, nil, fmt.Errorf("state: copy rows: %w", err)
			}
		}
		out[i] = array.NewRecord(r.Schema(), cols, int64(len(idx)))
		releaseArrays(cols)
	}
	return out[0], out[1], nil
}

func releaseArrays(a []arrow.Array) {
	for _, x := range a {
		if x != nil {
			x.Release()
		}
	}
}

// Commit writes version's delta (this batch's tombstones and puts, in key
// order) and, when due, a snapshot, with memStore's bytes.
func (s *logStore) Commit(version int64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.mem != nil {
		return s.mem.Commit(version)
	}
	if version != s.version+1 {
		return fmt.Errorf("state: commit version %d: store is at version %d, want %d", version, s.version, s.version+1)
	}
	sortKeys(s.tombs)
	// The delta: tombstones and this batch's live puts, merged in key order.
	puts, nputs := s.rowsOf(s.segs[s.pend:])
	ti := 0
	put, more := puts()
	rows := len(s.tombs) + nputs
	delta := func() (logRow, bool) {
		if ti < len(s.tombs) && (!more || bytes.Compare(s.tombs[ti], put.key) < 0) {
			ti++
			return logRow{key: s.tombs[ti-1]}, true
		}
		if !more {
			return logRow{}, false
		}
		r := put
		put, more = puts()
		return r, true
	}
	if err := s.writeFile(version, kindDelta, rows, delta); err != nil {
		return err
	}
	since := s.since + int64(rows)
	if snapshotDue(version, s.snapAt, since, int64(s.live), s.w.cfg.SnapshotEvery) {
		all, n := s.rowsOf(s.segs)
		if err := s.writeFile(version, kindSnapshot, n, all); err != nil {
			return err
		}
		s.snapAt, since = version, 0
	}
	s.since = since
	s.settle(version)
	return nil
}

// settle makes this batch's changes part of version: segments gone or
// mostly deleted are dropped or compacted.
func (s *logStore) settle(version int64) {
	s.releaseOps()
	s.tombs, s.evicts = s.tombs[:0], nil
	kept := s.segs[:0]
	for _, g := range s.segs {
		switch {
		case g.ndead == g.n():
			g.release()
			continue
		case g.ndead > g.n()/2:
			idx := g.liveIdx()
			if k, v, err := s.slices(g, idx); err == nil {
				ng := &logSeg{keys: k, vals: v, koff: make([]int, 1, len(idx)+1)}
				for _, i := range idx { // the live rows' bytes, not encoded again
					ng.kb = append(ng.kb, g.key(i)...)
					ng.koff = append(ng.koff, len(ng.kb))
				}
				g.release()
				g = ng
			}
		}
		kept = append(kept, g)
	}
	for i := len(kept); i < len(s.segs); i++ {
		s.segs[i] = nil
	}
	s.segs, s.pend = kept, len(kept)
	s.cur.s, s.cur.r = 0, 0
	s.version = version
}

// slices returns rows idx (ascending runs) of g as records: slices of g's
// own when idx is one run, else a copy.
func (s *logStore) slices(g *logSeg, idx []int) (arrow.Record, arrow.Record, error) {
	if idx[len(idx)-1]-idx[0] == len(idx)-1 {
		a, b := int64(idx[0]), int64(idx[len(idx)-1]+1)
		return g.keys.NewSlice(a, b), g.vals.NewSlice(a, b), nil
	}
	return takeRows(s.w.cfg.Allocator, g.keys, g.vals, idx)
}

// logRow is a row of a file: a live row of a segment, or a tombstone.
type logRow struct {
	key []byte
	seg *logSeg // nil: a tombstone
	row int
}

// rowsOf iterates over the live rows of segs, in order, and counts them.
func (s *logStore) rowsOf(segs []*logSeg) (func() (logRow, bool), int) {
	n := 0
	for _, g := range segs {
		n += g.liveRows()
	}
	si, ri := 0, 0
	return func() (logRow, bool) {
		for si < len(segs) {
			g := segs[si]
			for ri < g.n() {
				i := ri
				ri++
				if !g.isDead(i) {
					return logRow{g.key(i), g, i}, true
				}
			}
			si, ri = si+1, 0
		}
		return logRow{}, false
	}, n
}

// writeFile writes rows as state file v of kind: keys decoded from their
// canonical bytes, values from their raw bytes (a tombstone's are null),
// in records of fileChunk rows, as memStore and the disk backend write.
func (s *logStore) writeFile(v int64, kind string, n int, next func() (logRow, bool)) error {
	w, mem := s.w, s.w.cfg.Allocator
	boolType := colType{kind: kBool, width: 1, dt: arrow.FixedWidthTypes.Boolean}
	var (
		recs []arrow.Record
		buf  []byte
		offs []int
		keys [][]byte
		crc  = crc32.New(castagnoli)
	)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	rows := make([]logRow, 0, min(n, fileChunk))
	for a := 0; a < n; a += fileChunk {
		b := min(a+fileChunk, n)
		rows = rows[:0]
		for len(rows) < b-a {
			r, ok := next()
			if !ok {
				return fmt.Errorf("state: %s: write version %d: %d rows, want %d", s.w.dir, v, a+len(rows), n)
			}
			rows = append(rows, r)
		}
		keys = keys[:0]
		del := newColBuilder(mem, boolType, b-a)
		for i, r := range rows {
			keys = append(keys, r.key)
			if r.seg == nil {
				del.setFixedRaw(i, []byte{1})
			}
		}
		cols := w.keyc.decode(mem, keys)
		cols = append(cols, s.valueColumns(rows)...)
		cols = append(cols, del.finish())
		rec := newRecord(w.fileSch, cols, b-a)
		recs = append(recs, rec)
		buf, offs = w.fullc.encode(rec.Columns(), b-a, buf, offs)
		crc.Write(buf)
	}
	if _, ok := next(); ok {
		return fmt.Errorf("state: %s: write version %d: more than %d rows", s.w.dir, v, n)
	}
	return w.writeRecords(v, kind, int64(n), crc.Sum32(), s.evictsOf(kind), func(write func(arrow.Record) error) error {
		for _, rec := range recs {
			if err := write(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// valueColumns builds the value columns of rows (a tombstone's are null)
// with the builders codec.decode uses, from the segments' arrays: the
// arrays the memStore and the disk backend write for the same rows. Runs
// of consecutive rows of one segment (a batch's puts are whole segments)
// are copied at once.
func (s *logStore) valueColumns(rows []logRow) []arrow.Array {
	mem := s.w.cfg.Allocator
	type run struct{ at, from, n int }
	var runs []run
	for a := 0; a < len(rows); {
		g, r0 := rows[a].seg, rows[a].row
		b := a + 1
		for b < len(rows) && rows[b].seg == g && (g == nil || rows[b].row == r0+b-a) {
			b++
		}
		runs = append(runs, run{a, r0, b - a})
		a = b
	}
	out := make([]arrow.Array, len(s.valc.cols))
	for j, t := range s.valc.cols {
		cb := newColBuilder(mem, t, len(rows))
		for _, r := range runs {
			if g := rows[r.at].seg; g != nil {
				cb.copyRun(r.at, g.vals.Column(j), r.from, r.n)
			} else {
				cb.nullRun(r.at, r.n)
			}
		}
		out[j] = cb.finish()
	}
	return out
}

// sortKeys puts k in ascending order unless it is (a join evicts its
// oldest rows first).
func sortKeys(k [][]byte) {
	if !slices.IsSortedFunc(k, bytes.Compare) {
		slices.SortFunc(k, bytes.Compare)
	}
}

func (s *logStore) Abort() error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.mem != nil {
		return s.mem.Abort()
	}
	if len(s.ops) == 0 {
		return nil
	}
	ns, err := openLog(s.w.cfg, s.version)
	if err != nil {
		return fmt.Errorf("state: abort: %w", err)
	}
	s.dropRows()
	*s = *ns
	return nil
}

func (s *logStore) Close() error {
	if s.closed {
		return nil
	}
	if s.mem != nil {
		s.mem.Close()
	}
	s.dropRows()
	s.closed = true
	return nil
}

// The warmable side.

func (s *logStore) backend() string { return BackendMemory }
func (s *logStore) config() *Config { return &s.w.cfg }
func (s *logStore) pending() bool {
	if s.mem != nil {
		return s.mem.pending()
	}
	return len(s.ops) > 0
}
func (s *logStore) isClosed() bool { return s.closed }
func (s *logStore) rewarm(alloc memory.Allocator) {
	if alloc != nil {
		s.w.cfg.Allocator = alloc
	}
	s.loaded = false
	if s.mem != nil {
		s.mem.rewarm(alloc)
	}
}
