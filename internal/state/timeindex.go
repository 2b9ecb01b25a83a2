package state

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/arrow/bitutil"
)

// timeIndex orders a memStore's live slots by StoreSpec.TimeColumn, so that
// ScanWhere and EvictWhere on it pop the entries below the bound instead of
// visiting every slot.
//
// It is a binary min-heap of (time, slot, generation) with lazy deletion: a
// slot's generation is bumped whenever its indexed time stops being true
// (the key is deleted or evicted, or a Put/Update writes another time or a
// null into a value column), and an entry counts only while the slot is
// live and the generations agree. So each live slot with a non-null time
// has exactly one valid entry, and a change costs one push: O(1) expected
// when times grow, as window ends and timeouts do, O(log n) at worst. Stale
// entries are dropped when they reach the top, and the heap is rebuilt
// from the live slots (O(n)) once it holds more stale entries than live
// ones plus a slack, so memory stays within 2x and the rebuild is paid by
// the pushes that made it stale.
//
// Why a heap and not a sorted tree: the operators only ever ask "every
// entry below t" (a watermark, a batch time), which a heap answers by
// popping; a tree's ordered iteration is not needed, and a heap entry is 16
// bytes in one slice with no per-node pointers for the garbage collector.
type timeIndex struct {
	col   int // the store column number (key columns, then value columns)
	key   bool
	vcol  int // value column when !key
	width int // 4 or 8
	gen   []uint32
	h     []tentry
	off   bool // loading: no pushes, rebuilt when the load ends
	// visited counts the heap entries popped by index scans and evictions
	// (valid or stale): what tests compare with the number of keys.
	visited int
}

type tentry struct {
	t   int64
	sl  int32
	gen uint32
}

// stale is the slack of stale entries the heap keeps before a rebuild.
const staleSlack = 1024

// newTimeIndex returns the index of spec's TimeColumn, or nil when it has
// none. spec has been validated.
func newTimeIndex(spec StoreSpec, kt, vt []colType) *timeIndex {
	if spec.TimeColumn == "" {
		return nil
	}
	for i, f := range spec.KeySchema.Fields() {
		if f.Name == spec.TimeColumn {
			return &timeIndex{col: i, key: true, width: kt[i].width}
		}
	}
	for j, f := range spec.ValueSchema.Fields() {
		if f.Name == spec.TimeColumn {
			return &timeIndex{col: len(kt) + j, vcol: j, width: vt[j].width}
		}
	}
	panic(fmt.Sprintf("state: TimeColumn %q passed Validate but is no field", spec.TimeColumn))
}

func (x *timeIndex) less(a, b int) bool { return x.h[a].t < x.h[b].t }

func (x *timeIndex) push(e tentry) {
	x.h = append(x.h, e)
	i := len(x.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !x.less(i, p) {
			break
		}
		x.h[i], x.h[p] = x.h[p], x.h[i]
		i = p
	}
}

func (x *timeIndex) pop() tentry {
	top := x.h[0]
	n := len(x.h) - 1
	x.h[0] = x.h[n]
	x.h = x.h[:n]
	x.down(0)
	return top
}

func (x *timeIndex) down(i int) {
	n := len(x.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && x.less(r, l) {
			m = r
		}
		if !x.less(m, i) {
			return
		}
		x.h[i], x.h[m] = x.h[m], x.h[i]
		i = m
	}
}

// growGen makes room for n slots.
func (x *timeIndex) growGen(n int) { x.gen = growTo(x.gen, n) }

// invalidate drops slot sl's entry (the key is gone or its time changed).
func (x *timeIndex) invalidate(sl int32) { x.gen[sl]++ }

// timeOf reads the indexed column of slot sl; false when it is null.
func (s *memStore) timeOf(sl int32) (int64, bool) {
	x := s.tix
	if x.key {
		return s.keyInt(sl, x.col)
	}
	return s.valueInt(sl, x.vcol)
}

// valueInt reads signed fixed-width value column j of slot sl; false when
// it is null.
func (s *memStore) valueInt(sl int32, j int) (int64, bool) {
	c := &s.vals[j]
	if !bitutil.BitIsSet(c.valid, int(sl)) {
		return 0, false
	}
	w := c.t.width
	d := c.data[int(sl)*w : int(sl)*w+w]
	if w == 4 {
		return int64(int32(binary.LittleEndian.Uint32(d))), true
	}
	return int64(binary.LittleEndian.Uint64(d)), true
}

// colInt reads store column col (key columns, then value columns) of slot
// sl; false when it is null.
func (s *memStore) colInt(sl int32, col int) (int64, bool) {
	if col < len(s.keyTypes) {
		return s.keyInt(sl, col)
	}
	return s.valueInt(sl, col-len(s.keyTypes))
}

// index (re)adds live slot sl with its current time; a null time leaves it
// out. Any earlier entry of the slot becomes stale.
func (s *memStore) index(sl int32) {
	x := s.tix
	x.invalidate(sl)
	if t, ok := s.timeOf(sl); ok {
		x.push(tentry{t: t, sl: sl, gen: x.gen[sl]})
		if len(x.h) > 2*s.live+staleSlack {
			s.rebuildIndex()
		}
	}
}

// rebuildIndex makes the heap hold exactly the live slots' entries.
func (s *memStore) rebuildIndex() {
	x := s.tix
	x.off = false
	x.growGen(len(s.flags))
	x.h = x.h[:0]
	if cap(x.h) > 4*s.live+staleSlack {
		x.h = nil
	}
	for sl, f := range s.flags {
		if f&fLive == 0 {
			continue
		}
		if t, ok := s.timeOf(int32(sl)); ok {
			x.h = append(x.h, tentry{t: t, sl: int32(sl), gen: x.gen[sl]})
		}
	}
	for i := len(x.h)/2 - 1; i >= 0; i-- {
		x.down(i)
	}
}

// beforeValues records, for a Put or Update of slots that writes a value
// column holding the index's time, each slot's time before the write (in
// s.oldT; s.oldOK false = null or not live).
func (s *memStore) beforeValues(slots []int32) {
	s.oldT = growTo(s.oldT[:0], len(slots))
	s.oldOK = growTo(s.oldOK[:0], len(slots))
	for i, sl := range slots {
		s.oldT[i], s.oldOK[i] = s.valueInt(sl, s.tix.vcol)
	}
}

// afterValues re-indexes the slots whose time the write changed.
func (s *memStore) afterValues(slots []int32) {
	for i, sl := range slots {
		t, ok := s.valueInt(sl, s.tix.vcol)
		if ok == s.oldOK[i] && t == s.oldT[i] && ok {
			continue // same time: its entry stays valid
		}
		if !ok && !s.oldOK[i] {
			continue // null before and after: not indexed
		}
		s.index(sl)
	}
}

// dueSlots pops the index's entries below less and returns the live slots
// among them, each once, in ascending slot order. keep puts their entries
// back (ScanWhere); without it they are gone (EvictWhere deletes the slots).
func (s *memStore) dueSlots(less int64, keep bool) []int32 {
	x := s.tix
	var due []int32
	var back []tentry
	for len(x.h) > 0 && x.h[0].t < less {
		e := x.pop()
		x.visited++
		if s.flags[e.sl]&fLive == 0 || x.gen[e.sl] != e.gen {
			continue
		}
		due = append(due, e.sl)
		if keep {
			back = append(back, e)
		}
	}
	for _, e := range back {
		x.push(e)
	}
	slices.Sort(due)
	return due
}
