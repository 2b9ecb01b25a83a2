package state

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// evictions are the EvictWhere calls a delta records in its metadata
// (mdEvict) instead of a tombstone per key they deleted: column (EvictWhere's
// numbering) -> the largest less of the calls on it. Only calls that deleted
// a key live at the previous version with its value of then are recorded:
// those keys get no tombstone, and a load of the delta deletes them again
// by the rule (format.md). Nil: none.
type evictions map[int]int64

func (e *evictions) add(col int, less int64) {
	if *e == nil {
		*e = evictions{}
	}
	if l, ok := (*e)[col]; !ok || less > l {
		(*e)[col] = less
	}
}

// cols returns the recorded columns, ascending.
func (e evictions) cols() []int {
	out := make([]int, 0, len(e))
	for c := range e {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// String is the metadata value: "<col>:<less>" pairs, comma-separated, by
// ascending column.
func (e evictions) String() string {
	var b strings.Builder
	for i, c := range e.cols() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", c, e[c])
	}
	return b.String()
}

// parseEvictions reads String's form for a store of ncols key and value
// columns; ok reports whether each column has a 32- or 64-bit signed
// integer type (intCol).
func parseEvictions(s string, ncols int, intCol func(int) bool) (evictions, error) {
	e := evictions{}
	prev := -1
	for _, p := range strings.Split(s, ",") {
		cs, ls, ok := strings.Cut(p, ":")
		c, err1 := strconv.Atoi(cs)
		l, err2 := strconv.ParseInt(ls, 10, 64)
		switch {
		case !ok || err1 != nil || err2 != nil:
			return nil, fmt.Errorf("%s %q: want <column>:<less> pairs", mdEvict, s)
		case c <= prev || c >= ncols:
			return nil, fmt.Errorf("%s %q: columns must ascend and be below %d", mdEvict, s, ncols)
		case !intCol(c):
			return nil, fmt.Errorf("%s %q: column %d is not a 32- or 64-bit signed integer column", mdEvict, s, c)
		}
		e[c], prev = l, c
	}
	return e, nil
}

// checkFormat checks a state file's format metadata (get reads its schema
// metadata) and returns the evictions a delta of format 2 records.
func checkFormat(path, kind string, get func(string) string, ncols int, intCol func(int) bool) (evictions, error) {
	f, ev := get(mdFormat), get(mdEvict)
	switch {
	case f == "":
		return nil, fmt.Errorf("%w: %s: no %s metadata: not a state file", ErrCorrupt, path, mdFormat)
	case f == "1" && ev == "":
		return nil, nil
	case f == "1":
		return nil, fmt.Errorf("%w: %s: format 1 with %s metadata", ErrCorrupt, path, mdEvict)
	case f != strconv.Itoa(FormatVersion):
		return nil, fmt.Errorf("%w: %s has format %q, this build reads 1 and %d", ErrVersion, path, f, FormatVersion)
	case kind != kindDelta || ev == "":
		return nil, fmt.Errorf("%w: %s: format %s is a delta with %s metadata", ErrCorrupt, path, f, mdEvict)
	}
	e, err := parseEvictions(ev, ncols, intCol)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return e, nil
}

// intType reports whether t can be an eviction column.
func intType(t colType) bool { return t.kind == kSigned && (t.width == 8 || t.width == 4) }

// evictLoaded applies a loaded delta's evictions to the rows loaded before
// it (format.md: before the delta's rows): every live key whose column is
// not null and below the recorded less is deleted, untracked.
func (s *memStore) evictLoaded(e evictions) error {
	for _, col := range e.cols() {
		less := e[col]
		for sl, f := range s.flags {
			if f&fLive == 0 {
				continue
			}
			if v, ok := s.colInt(int32(sl), col); ok && v < less {
				s.removeAt(s.posOf(int32(sl)), int32(sl), false)
			}
		}
	}
	s.maybeCompactArena()
	return nil
}
