package state

// Bulk probes in table order.
//
// A lookup in a table larger than the CPU's caches costs a cache miss or
// two (the table entry, then the key's bytes), whatever the hash: at q7's
// join state (a few million keys) Delete spent 1.3 s of 12 CPU-s probing.
// When a call brings many keys for a large table, probe visits them in the
// order of their home positions instead, so consecutive probes touch
// neighbouring table entries and the walk through the table is sequential.
// Only calls that add no slot use it (Lookup, Delete): the order of
// lookups is unobservable and deleting is idempotent per key, whereas
// Put's slot numbers follow its rows (and its values are written in row
// order).

// probeMinRows and probeMinTable are when probe sorts: enough keys that
// sorting them costs less than the misses it saves, and a table past the
// caches. Variables so tests can make every probe sort.
var (
	probeMinRows  = 4096
	probeMinTable = 1 << 18
)

// probe calls fn(i, pos, slot) for each encoded key row i < n, with find's
// table position and slot (-1: absent), in row order for small calls and
// in home-position order for bulk ones. fn may remove the entry at pos
// (backward shifting moves no entry before its home, so later probes,
// which start at their own home, still find their keys).
func (s *memStore) probe(n int, fn func(i int, pos uint32, sl int32)) {
	if n < probeMinRows || len(s.table) < probeMinTable {
		for i := 0; i < n; i++ {
			r := s.row(i)
			pos, sl := s.find(s.hash(r), r)
			fn(i, pos, sl)
		}
		return
	}
	hs := make([]uint32, n)
	for i := range hs {
		hs[i] = s.hash(s.row(i))
	}
	for _, i := range byHome(hs, s.mask) {
		pos, sl := s.find(hs[i], s.row(int(i)))
		fn(int(i), pos, sl)
	}
}

// byHome returns the indexes of hs ordered by home position (h & mask):
// an LSD radix sort on 16-bit digits, stable, two passes over n.
func byHome(hs []uint32, mask uint32) []int32 {
	n := len(hs)
	idx, tmp := make([]int32, n), make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	for shift := uint(0); shift < 32 && mask>>shift != 0; shift += 16 {
		var count [1 << 16]int
		for _, h := range hs {
			count[(h&mask)>>shift&0xffff]++
		}
		sum := 0
		for d := range count {
			count[d], sum = sum, sum+count[d]
		}
		for _, i := range idx {
			d := (hs[i] & mask) >> shift & 0xffff
			tmp[count[d]] = i
			count[d]++
		}
		idx, tmp = tmp, idx
	}
	return idx
}
