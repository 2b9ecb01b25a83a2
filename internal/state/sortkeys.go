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
// positions that vary (among the positions every key has): the bytes all
// keys share say nothing about their order. Canonical keys share a lot — a
// null bitmap, the high bytes of timestamps and small integers — so taking
// the first 16 bytes left a sliding-window count's keys (window start, end,
// auction) tied on the window and sorting by bytes.Compare (q5: a quarter
// of its CPU). Why the order is bytes.Compare's: two keys first differ at
// some position d; if d < the shortest key's length, d is a varying
// position and every varying position before it holds equal bytes in both,
// so the packed prefixes order them as their bytes do, or tie when d is not
// among the packed positions; ties (and keys that differ only past the
// shortest length) compare their bytes.
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
			p[j/8] |= uint64(k[at]) << (56 - 8*(j%8))
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

// varyingPositions returns the first max byte positions, below the
// shortest key's length, where not every key has the same byte.
func varyingPositions[T any](items []T, key func(T) []byte, max int) []int {
	if len(items) < 2 {
		return nil
	}
	first := key(items[0])
	minLen := len(first)
	// varies[p]: some key differs from the first at p (p < minLen).
	varies := make([]bool, minLen)
	for _, it := range items[1:] {
		k := key(it)
		if len(k) < minLen {
			minLen = len(k)
		}
		for p := 0; p < minLen; p++ {
			if k[p] != first[p] {
				varies[p] = true
			}
		}
	}
	var pos []int
	for p := 0; p < minLen && len(pos) < max; p++ {
		if varies[p] {
			pos = append(pos, p)
		}
	}
	return pos
}
