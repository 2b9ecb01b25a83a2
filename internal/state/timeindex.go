package state

import (
	"encoding/binary"
	"fmt"
	mbits "math/bits"
	"slices"

	"github.com/apache/arrow/go/v17/arrow/bitutil"
)

// timeIndex orders a memStore's live slots by StoreSpec.TimeColumn, so that
// ScanWhere and EvictWhere on it visit the entries below the bound (a
// subtree at the heap's root) instead of every slot.
//
// It is a binary min-heap of (time, slot) with lazy deletion: an entry
// counts only while its slot is live and holds that time, so a delete, an
// eviction or a Put/Update that writes another time (or a null) leaves the
// old entry to be dropped when it reaches the top, and a change costs one
// push: O(1) expected when times grow, as window ends and timeouts do,
// O(log n) at worst. Every live slot with a non-null time has at least one
// valid entry; a slot can have two (its key deleted and put again with the
// same time, or a time changed back), which the pops deduplicate. The heap
// is rebuilt from the live slots (O(n)) once it holds more entries than
// twice the live keys plus a slack, so its memory stays within 2x and the
// rebuild is paid by the pushes that made the entries stale.
//
// Why a heap and not a sorted tree: the operators only ever ask "every
// entry below t" (a watermark, a batch time), which a heap answers by
// popping; a tree's ordered iteration is not needed, and the heap is two
// flat slices, 12 bytes an entry, with no per-node pointers for the
// garbage collector to trace (measured: BenchmarkMillionKeysTimeIndex).
type timeIndex struct {
	col  int // the store column number (key columns, then value columns)
	key  bool
	vcol int // value column when !key
	t    []int64
	sl   []int32
	off  bool // loading: no pushes, rebuilt when the load ends
	// visited counts the heap entries popped by index scans and evictions
	// (valid or stale): what tests compare with the number of keys.
	visited int
}

// staleSlack is the slack of entries beyond 2x the live keys the heap
// keeps before a rebuild, and of stale entries a scan leaves in place. A
// variable so that tests of small stores take every path.
var staleSlack = 1024

// newTimeIndex returns the index of spec's TimeColumn, or nil when it has
// none. spec has been validated.
func newTimeIndex(spec StoreSpec, nk int) *timeIndex {
	if spec.TimeColumn == "" {
		return nil
	}
	for i, f := range spec.KeySchema.Fields() {
		if f.Name == spec.TimeColumn {
			return &timeIndex{col: i, key: true}
		}
	}
	for j, f := range spec.ValueSchema.Fields() {
		if f.Name == spec.TimeColumn {
			return &timeIndex{col: nk + j, vcol: j}
		}
	}
	panic(fmt.Sprintf("state: TimeColumn %q passed Validate but is no field", spec.TimeColumn))
}

func (x *timeIndex) len() int { return len(x.t) }

func (x *timeIndex) swap(i, j int) {
	x.t[i], x.t[j] = x.t[j], x.t[i]
	x.sl[i], x.sl[j] = x.sl[j], x.sl[i]
}

func (x *timeIndex) push(t int64, sl int32) {
	x.t = append(x.t, t)
	x.sl = append(x.sl, sl)
	i := len(x.t) - 1
	for i > 0 {
		p := (i - 1) / 2
		if x.t[i] >= x.t[p] {
			break
		}
		x.swap(i, p)
		i = p
	}
}

func (x *timeIndex) pop() (int64, int32) {
	t, sl := x.t[0], x.sl[0]
	n := len(x.t) - 1
	x.t[0], x.sl[0] = x.t[n], x.sl[n]
	x.t, x.sl = x.t[:n], x.sl[:n]
	x.down(0)
	return t, sl
}

func (x *timeIndex) down(i int) {
	n := len(x.t)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && x.t[r] < x.t[l] {
			m = r
		}
		if x.t[m] >= x.t[i] {
			return
		}
		x.swap(i, m)
		i = m
	}
}

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

// index adds live slot sl with its current time; a null time leaves it
// out. Any earlier entry of the slot with another time is stale from now.
func (s *memStore) index(sl int32) {
	x := s.tix
	if t, ok := s.timeOf(sl); ok {
		x.push(t, sl)
		if x.len() > 2*s.live+staleSlack {
			s.rebuildIndex()
		}
	}
}

// rebuildIndex makes the heap hold exactly one entry per live slot with a
// time.
func (s *memStore) rebuildIndex() {
	x := s.tix
	x.off = false
	x.t, x.sl = x.t[:0], x.sl[:0]
	if cap(x.t) > 4*s.live+staleSlack {
		x.t, x.sl = nil, nil
	}
	for sl, f := range s.flags {
		if f&fLive == 0 {
			continue
		}
		if t, ok := s.timeOf(int32(sl)); ok {
			x.t = append(x.t, t)
			x.sl = append(x.sl, int32(sl))
		}
	}
	for i := len(x.t)/2 - 1; i >= 0; i-- {
		x.down(i)
	}
}

// beforeValues records, for a Put or Update of slots that writes a value
// column holding the index's time, each slot's time before the write (in
// s.oldT; s.oldOK false = null, which a new or revived slot has).
func (s *memStore) beforeValues(slots []int32) {
	s.oldT = growTo(s.oldT[:0], len(slots))
	s.oldOK = growTo(s.oldOK[:0], len(slots))
	for i, sl := range slots {
		s.oldT[i], s.oldOK[i] = s.valueInt(sl, s.tix.vcol)
	}
}

// afterValues indexes the slots whose time the write changed.
func (s *memStore) afterValues(slots []int32) {
	for i, sl := range slots {
		t, ok := s.valueInt(sl, s.tix.vcol)
		if ok && (!s.oldOK[i] || t != s.oldT[i]) {
			s.index(sl)
		}
	}
}

// valid reports whether heap entry i stands for its slot: the slot is live
// and holds that time.
func (s *memStore) valid(i int) bool {
	x := s.tix
	sl := x.sl[i]
	if s.flags[sl]&fLive == 0 {
		return false
	}
	cur, ok := s.timeOf(sl)
	return ok && cur == x.t[i]
}

// below returns the heap positions of the entries with a time below less:
// in a min-heap they form a subtree at the root, so a walk from the root
// visits them and their children only.
func (x *timeIndex) below(less int64) []int {
	var out []int
	if x.len() == 0 || x.t[0] >= less {
		return nil
	}
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, i)
		for c := 2*i + 1; c <= 2*i+2 && c < len(x.t); c++ {
			if x.t[c] < less {
				stack = append(stack, c)
			}
		}
	}
	return out
}

// filter keeps the entries keep says and heapifies them: O(n).
func (x *timeIndex) filter(keep func(i int) bool) {
	n := 0
	for i := range x.t {
		if keep(i) {
			x.t[n], x.sl[n] = x.t[i], x.sl[i]
			n++
		}
	}
	x.t, x.sl = x.t[:n], x.sl[:n]
	for i := n/2 - 1; i >= 0; i-- {
		x.down(i)
	}
}

// dueSlots returns the live slots whose time is below less, each once, in
// ascending slot order, visiting only the index entries below less. With
// evict their entries leave the index (EvictWhere deletes the slots);
// without, they stay (ScanWhere). Stale entries below less leave it when
// there are more of them than due ones (and staleSlack), so a scan costs
// O(due + staleSlack) plus the stale entries it drops once each.
//
// Removing m of n entries pops them, O(m log n), unless m > n/16: then
// one pass that filters the entries and heapifies the rest, O(n), is
// cheaper (a window closing most of the state, as a batch whose watermark
// passes most windows does).
func (s *memStore) dueSlots(less int64, evict bool) []int32 {
	x := s.tix
	at := x.below(less)
	x.visited += len(at)
	var due []int32
	var times []int64
	for _, i := range at {
		if s.valid(i) {
			due = append(due, x.sl[i])
			times = append(times, x.t[i])
		}
	}
	stale := len(at) - len(due)
	switch {
	case !evict && stale <= max(len(due), staleSlack):
		// The heap stays as it is.
	case len(at)*16 > x.len():
		x.filter(func(i int) bool { return x.t[i] >= less || (!evict && s.valid(i)) })
	default:
		for range at {
			x.pop()
		}
		if !evict {
			for k, sl := range due {
				x.push(times[k], sl)
			}
		}
	}
	return s.slotOrder(due)
}

// slotOrder sorts slots ascending without duplicates: by sorting when they
// are few, else through a bitmap over every slot (sorting a million slots
// of a closing window cost more than the index saved).
func (s *memStore) slotOrder(slots []int32) []int32 {
	if len(slots)*16 < len(s.flags) {
		slices.Sort(slots)
		return slices.Compact(slots)
	}
	bits := make([]uint64, (len(s.flags)+63)/64)
	for _, sl := range slots {
		bits[sl/64] |= 1 << (sl % 64)
	}
	out := slots[:0]
	for w, b := range bits {
		for b != 0 {
			out = append(out, int32(w*64+mbits.TrailingZeros64(b)))
			b &= b - 1
		}
	}
	return out
}
