package state

import (
	"bytes"
	"slices"
)

// sortByKey orders items by their canonical key bytes. Comparing whole
// byte slices through a closure was 10% of a stream join's CPU (every
// delta and every scan sorts), so it sorts small pointer-free (prefix,
// index) pairs instead, where one or two integer compares settle almost
// every comparison and ties fall back to the bytes: exactly bytes.Compare's
// order.
//
// The prefix is not the keys' first 16 bytes but their first 16 byte
// positions that vary (a key's bytes past its end counting as 0): the bytes
// all keys share say nothing about their order. Canonical keys share a lot — a
// null bitmap, the high bytes of timestamps and small integers — so taking
// the first 16 bytes left a sliding-window count's keys (window start, end,
// auction) tied on the window and sorting by bytes.Compare (q5: a quarter
// of its CPU). Why the order is bytes.Compare's: padded with zeros, two
// keys first differ at some position d, a varying position, and every
// varying position before it holds equal bytes in both, so the packed
// prefixes order them as their padded bytes do, or tie when d is not among
// the packed positions. Padded order is bytes order or a tie: at d both
// keys have real bytes (they order as at d), or the shorter one ended and
// is a prefix of the other (smaller, and its 0 pad is not greater). Ties
// compare their bytes.
func sortByKey[T any](items []T, key func(T) []byte) {
	type entry struct {
		p0, p1 uint64
		i      int32
	}
	pos := varyingPositions(items, key, 16)
	es := make([]entry, len(items))
	for i, it := range items {
		k := key(it)
		var p [2]uint64
		for j, at := range pos {
			if at < len(k) {
				p[j/8] |= uint64(k[at]) << (56 - 8*(j%8))
			}
		}
		es[i] = entry{p[0], p[1], int32(i)}
	}
	slices.SortFunc(es, func(a, b entry) int {
		switch {
		case a.p0 != b.p0:
			if a.p0 < b.p0 {
				return -1
			}
			return 1
		case a.p1 != b.p1:
			if a.p1 < b.p1 {
				return -1
			}
			return 1
		}
		return bytes.Compare(key(items[a.i]), key(items[b.i]))
	})
	sorted := make([]T, len(items))
	for i, e := range es {
		sorted[i] = items[e.i]
	}
	copy(items, sorted)
}

// varyingPositions returns the first max byte positions where not every
// key has the same byte, a key's bytes past its end counting as 0. Keys
// padded so order as their bytes do or tie (a key that is a prefix of
// another pads to at most it), so positions past the shortest key are
// usable: keys like "key-7" and "key-1234567" (the streaming benchmark's)
// differ mostly there, and taking only positions below the shortest length
// left them tied and sorted by bytes.Compare (a tenth of the disk
// backend's CPU on that benchmark).
func varyingPositions[T any](items []T, key func(T) []byte, max int) []int {
	if len(items) < 2 {
		return nil
	}
	first := key(items[0])
	// varies[p]: some key differs from the first at p (padded).
	var varies []bool
	grow := func(n int) {
		for len(varies) < n {
			varies = append(varies, false)
		}
	}
	grow(len(first))
	for _, it := range items[1:] {
		k := key(it)
		grow(len(k))
		n := min(len(k), len(first))
		for p := 0; p < n; p++ {
			if k[p] != first[p] {
				varies[p] = true
			}
		}
		// Past the shorter of the two, the longer one's nonzero bytes
		// differ from the other's padding.
		long := k
		if len(first) > len(k) {
			long = first
		}
		for p := n; p < len(long); p++ {
			if long[p] != 0 {
				varies[p] = true
			}
		}
	}
	var pos []int
	for p := 0; p < len(varies) && len(pos) < max; p++ {
		if varies[p] {
			pos = append(pos, p)
		}
	}
	return pos
}
