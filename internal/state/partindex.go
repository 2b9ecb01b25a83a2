package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
)

// partIndex finds a memStore's live slots by StoreSpec.PartKey, the
// columns a ScanPart asks by (a session window's group keys, without the
// session start; a stream join's join key, a value column), so that
// ScanPart visits the entries it returns instead of every key.
//
// The part of a slot is the canonical bytes (codec.go) of its PartKey
// columns alone, in PartKey's order: what encoding those columns of a
// record gives, so ScanPart's rows need no translation. It is never stored:
// key columns are cut out of the key's canonical bytes (the columns are
// self-delimiting), value columns made from the slot's values. The index
// holds an open-addressing table from the part's hash to the first slot
// of a chain, and per slot the next and previous slot of its chain (the
// live slots with equal parts), 8 bytes a slot and 8 to 16 bytes a
// distinct part. On key columns only, a slot is in a chain exactly while
// it is live: linked when upsert makes it live, unlinked when removeAt ends
// that, so every path that changes liveness (Put, Delete, EvictWhere,
// loading; Abort and Close replace the store) keeps it true. With a value
// column the part follows the values: every write of values (setCols)
// unlinks the slots it writes and links them again after, and a slot's
// membership (in) and chain hash (h) are kept, 5 bytes more a slot; a live
// slot whose values were never written (entered by a disk store to be
// deleted) is in no chain. A part's chain is one probe and a walk of its
// own slots.
type partIndex struct {
	cols []int // store columns (keys, then values, as EvictWhere numbers them), in PartKey order
	nk   int   // key columns of the store
	keys bool  // some of cols are key columns
	vals bool  // some of cols are value columns
	// off: no chains are kept (a disk store's cache while the store keeps
	// no index database); ScanPart must not walk them.
	off    bool
	codec  *codec // the PartKey columns' codec (ScanPart's records)
	types  []colType
	schema *arrow.Schema

	table      []uint64 // entry(hash of the part, first slot of its chain); 0 = empty
	mask       uint32
	used       int
	next, prev []int32  // per slot, -1 = none
	in         []bool   // vals: per slot, in a chain
	h          []uint32 // vals: per slot in a chain, its part's hash

	a, b []byte // scratch: parts being compared
	ends []int  // scratch: key column ends in a key's bytes
	pbuf []byte // scratch: ScanPart's encoded rows
	poff []int

	// visited counts the slots ScanPart walked (tests compare it with the
	// number of keys).
	visited int
}

// newPartIndex returns the index of spec's PartKey, or nil when it has
// none. spec has been validated.
func newPartIndex(spec StoreSpec, kt, vt []colType) *partIndex {
	if len(spec.PartKey) == 0 {
		return nil
	}
	x := &partIndex{table: make([]uint64, 16), mask: 15, nk: len(kt)}
	var fields []arrow.Field
	for _, name := range spec.PartKey {
		if idx := spec.KeySchema.FieldIndices(name); len(idx) == 1 {
			x.keys = true
			x.cols = append(x.cols, idx[0])
			fields = append(fields, spec.KeySchema.Field(idx[0]))
			x.types = append(x.types, kt[idx[0]])
			continue
		}
		j := spec.ValueSchema.FieldIndices(name)[0]
		x.cols = append(x.cols, len(kt)+j)
		fields = append(fields, spec.ValueSchema.Field(j))
		x.types = append(x.types, vt[j])
		x.vals = true
	}
	x.codec = newCodec(x.types)
	x.schema = arrow.NewSchema(fields, nil)
	return x
}

// partOf appends the part of slot sl to dst.
func (s *memStore) partOf(dst []byte, sl int32) []byte {
	return s.partBytes(dst, s.key(sl), sl, nil, nil)
}

// partBytes appends the part of the row with canonical key bytes k to dst:
// its value columns from slot sl when raw is nil, else from raw, a row of
// the raw value codec rawc (a disk store's committed row).
func (s *memStore) partBytes(dst, k []byte, sl int32, raw []byte, rawc *codec) []byte {
	x := s.pix
	null := func(j int) bool { return k[j/8]&(1<<(j%8)) != 0 }
	if x.keys {
		x.ends = growTo(x.ends[:0], len(s.keyTypes))
		p := s.keyc.nb
		for j, t := range s.keyTypes {
			if !null(j) {
				if t.fixed() {
					p += t.width
				} else {
					l, m := binary.Uvarint(k[p:])
					p += m + int(l)
				}
			}
			x.ends[j] = p
		}
	}
	bm := len(dst)
	for range x.codec.nb {
		dst = append(dst, 0)
	}
	for i, c := range x.cols {
		if c >= x.nk {
			var v []byte
			var ok bool
			if raw != nil {
				v, ok = rawc.field(raw, c-x.nk)
			} else {
				v, ok = s.vals[c-x.nk].value(sl)
			}
			if !ok {
				dst[bm+i/8] |= 1 << (i % 8)
				continue
			}
			dst = appendCanonical(dst, x.types[i], v)
			continue
		}
		if null(c) {
			dst[bm+i/8] |= 1 << (i % 8)
			continue
		}
		start := s.keyc.nb
		if c > 0 {
			start = x.ends[c-1]
		}
		dst = append(dst, k[start:x.ends[c]]...)
	}
	return dst
}

// appendCanonical appends the canonical bytes (codec.encode's) of one
// non-null value of type t held as v: little-endian bytes for numbers, one
// byte for a bool, the bytes themselves otherwise.
func appendCanonical(dst []byte, t colType, v []byte) []byte {
	switch t.kind {
	case kSigned, kUnsigned:
		n := len(dst)
		for b := len(v) - 1; b >= 0; b-- {
			dst = append(dst, v[b])
		}
		if t.kind == kSigned {
			dst[n] ^= 0x80
		}
		return dst
	case kFloat32:
		return binary.BigEndian.AppendUint32(dst, float32Key(binary.LittleEndian.Uint32(v)))
	case kFloat64:
		return binary.BigEndian.AppendUint64(dst, float64Key(binary.LittleEndian.Uint64(v)))
	case kVar32, kVar64:
		dst = binary.AppendUvarint(dst, uint64(len(v)))
	}
	return append(dst, v...)
}

// setCols writes rows of cols (all value columns; rows as column.set
// takes them) into slots, keeping a part index on a value column true:
// the slots leave their chains before the write and join their new ones
// after it.
func (s *memStore) setCols(cols []arrow.Array, rows, slots []int32) {
	moves := s.pix != nil && s.pix.vals && !s.pix.off
	if moves {
		for _, sl := range slots {
			if int(sl) < len(s.pix.in) && s.pix.in[sl] {
				s.unlinkPart(sl)
			}
		}
	}
	for j := range s.vals {
		s.vals[j].set(cols[j], rows, slots)
	}
	if moves {
		for _, sl := range slots {
			if s.flags[sl]&fLive != 0 && (int(sl) >= len(s.pix.in) || !s.pix.in[sl]) {
				s.linkPart(sl)
			}
		}
	}
}

// findPart returns the table position of part p with hash h (or the empty
// position where it would go) and the first slot of its chain, or -1.
func (s *memStore) findPart(h uint32, p []byte) (uint32, int32) {
	x := s.pix
	pos := h & x.mask
	for {
		e := x.table[pos]
		if e == 0 {
			return pos, -1
		}
		if uint32(e>>32) == h {
			sl := int32(uint32(e)) - 1
			x.b = s.partOf(x.b[:0], sl)
			if bytes.Equal(x.b, p) {
				return pos, sl
			}
		}
		pos = (pos + 1) & x.mask
	}
}

// linkPart adds slot sl, live (and with a value column in PartKey, its
// values written), to the chain of its part.
func (s *memStore) linkPart(sl int32) {
	x := s.pix
	if x.off {
		return
	}
	if n := len(s.flags); len(x.next) < n {
		for len(x.next) < n {
			x.next = append(x.next, -1)
			x.prev = append(x.prev, -1)
		}
		if x.vals {
			x.in = growTo(x.in, n)
			x.h = growTo(x.h, n)
		}
	}
	if (x.used+1)*4 > len(x.table)*3 {
		x.rehash(len(x.table) * 2)
	}
	x.a = s.partOf(x.a[:0], sl)
	h := s.hash(x.a)
	if x.vals {
		x.in[sl], x.h[sl] = true, h
	}
	pos, head := s.findPart(h, x.a)
	if head < 0 {
		x.table[pos] = entry(h, sl)
		x.used++
		x.next[sl], x.prev[sl] = -1, -1
		return
	}
	// After the head: its table entry stays as it is.
	n := x.next[head]
	x.next[sl], x.prev[sl] = n, head
	if n >= 0 {
		x.prev[n] = sl
	}
	x.next[head] = sl
}

// unlinkPart removes slot sl from its chain, if it is in one: a live slot
// about to stop being live, or whose values are about to change.
func (s *memStore) unlinkPart(sl int32) {
	x := s.pix
	if x.off {
		return
	}
	var h uint32
	if x.vals {
		if int(sl) >= len(x.in) || !x.in[sl] {
			return // values never written: in no chain
		}
		x.in[sl], h = false, x.h[sl]
	}
	p, n := x.prev[sl], x.next[sl]
	x.next[sl], x.prev[sl] = -1, -1
	if p >= 0 {
		x.next[p] = n
		if n >= 0 {
			x.prev[n] = p
		}
		return
	}
	// The head: find its entry by slot.
	if !x.vals {
		x.a = s.partOf(x.a[:0], sl)
		h = s.hash(x.a)
	}
	pos := h & x.mask
	for uint32(x.table[pos]) != uint32(sl+1) {
		if x.table[pos] == 0 {
			panic(fmt.Sprintf("state: part index: slot %d is live but in no chain", sl))
		}
		pos = (pos + 1) & x.mask
	}
	if n >= 0 {
		x.prev[n] = -1
		x.table[pos] = entry(h, n)
		return
	}
	x.used--
	removeEntry(x.table, x.mask, pos)
}

func (x *partIndex) rehash(size int) { x.table, x.mask = rehashTable(x.table, size) }

func (x *partIndex) sizeBytes() int64 {
	return int64(cap(x.table)*8 + cap(x.next)*4 + cap(x.prev)*4 + cap(x.in) + cap(x.h)*4)
}

// encodeParts checks parts against the PartKey schema and encodes its
// rows into the index's scratch; it returns the distinct rows' indices in
// ascending order of their bytes (a part asked twice is walked once).
func (s *memStore) encodeParts(parts arrow.Record) ([]int, error) {
	x := s.pix
	if x == nil {
		return nil, fmt.Errorf("state: scan part: store %s [%d, %d) has no PartKey", s.cfg.Operator, s.cfg.Lo, s.cfg.Hi)
	}
	if err := checkSchema("part key", x.schema, parts); err != nil {
		return nil, err
	}
	n := int(parts.NumRows())
	x.pbuf, x.poff = x.codec.encode(parts.Columns(), n, x.pbuf, x.poff)
	rows := seq(n)
	sortByKey(rows, s.partRow)
	return slices.CompactFunc(rows, func(i, j int) bool { return bytes.Equal(s.partRow(i), s.partRow(j)) }), nil
}

// partRow is row i of the parts encodeParts encoded.
func (s *memStore) partRow(i int) []byte { return s.pix.pbuf[s.pix.poff[i]:s.pix.poff[i+1]] }

// partSlots appends to dst the live slots whose part is p.
func (s *memStore) partSlots(dst []int32, p []byte) []int32 {
	x := s.pix
	_, sl := s.findPart(s.hash(p), p)
	for ; sl >= 0; sl = x.next[sl] {
		x.visited++
		dst = append(dst, sl)
	}
	return dst
}

// ScanPart calls fn, as Scan does, with the live entries whose PartKey
// columns equal a row of parts, visiting only them.
func (s *memStore) ScanPart(parts arrow.Record, fn func(keys, values arrow.Record) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	rows, err := s.encodeParts(parts)
	if err != nil {
		return err
	}
	var live []int32
	for _, i := range rows {
		live = s.partSlots(live, s.partRow(i))
	}
	sortByKey(live, s.key)
	return s.scan(live, fn)
}

// partChains turns the part index's chains on (linking every live slot,
// whose values must all be written) or off (dropping them): a disk store's
// cache, after a Commit that built or dropped its index database.
func (s *memStore) partChains(on bool) {
	x := s.pix
	if x == nil {
		return
	}
	x.table, x.mask, x.used = make([]uint64, 16), 15, 0
	x.next, x.prev, x.in, x.h = nil, nil, nil, nil
	x.off = !on
	if !on {
		return
	}
	for sl, f := range s.flags {
		if f&fLive != 0 {
			s.linkPart(int32(sl))
		}
	}
}

// Indexed is true: the memory backend's indexes are always kept.
func (s *memStore) Indexed() bool { return true }
