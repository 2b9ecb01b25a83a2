package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/sluicedata/sluice/sources"
)

// partitions maps topic -> partition -> offset.
type partitions map[string]map[int32]int64

func (ps partitions) get(t string, p int32) (int64, bool) {
	o, ok := ps[t][p]
	return o, ok
}

func (ps partitions) set(t string, p int32, o int64) {
	m := ps[t]
	if m == nil {
		m = make(map[int32]int64)
		ps[t] = m
	}
	m[p] = o
}

func (ps partitions) clone() partitions {
	out := make(partitions, len(ps))
	for t, m := range ps {
		c := make(map[int32]int64, len(m))
		for p, o := range m {
			c[p] = o
		}
		out[t] = c
	}
	return out
}

// each calls fn for every partition in (topic, partition) order.
func (ps partitions) each(fn func(t string, p int32, o int64)) {
	for _, t := range sortedTopics(ps) {
		m := ps[t]
		keys := make([]int32, 0, len(m))
		for p := range m {
			keys = append(keys, p)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, p := range keys {
			fn(t, p, m[p])
		}
	}
}

// offset is a decoded source offset: the next offset to read per partition
// (T), and, in an offset Latest returned, where partitions first seen by
// that Latest start (New), so the batch reading them is deterministic.
type offset struct {
	T   partitions
	New partitions
}

// encode writes {"t":{"topic":{"0":123}},"new":{...}} with topics and
// partitions in order, so equal positions have equal bytes.
func encode(o offset) sources.Offset {
	var b bytes.Buffer
	b.WriteString(`{"t":`)
	writeMap(&b, o.T)
	if len(o.New) > 0 {
		b.WriteString(`,"new":`)
		writeMap(&b, o.New)
	}
	b.WriteByte('}')
	return sources.Offset(b.Bytes())
}

func writeMap(b *bytes.Buffer, ps partitions) {
	b.WriteByte('{')
	first, last := true, ""
	ps.each(func(t string, p int32, o int64) {
		if t != last || first {
			if !first {
				b.WriteString("},")
			}
			tb, _ := json.Marshal(t)
			b.Write(tb)
			b.WriteString(":{")
			last, first = t, false
		} else {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strconv.Itoa(int(p)))
		b.WriteString(`":`)
		b.WriteString(strconv.FormatInt(o, 10))
	})
	if !first {
		b.WriteByte('}')
	}
	// topics with no partitions are dropped: they carry no position
	b.WriteByte('}')
}

func (s *Source) parse(off sources.Offset) (offset, error) {
	var raw struct {
		T   map[string]map[string]int64 `json:"t"`
		New map[string]map[string]int64 `json:"new"`
	}
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	bad := func(why string) error {
		return fmt.Errorf("kafka %q: offset %q: %s: %w", s.cfg.Name, string(off), why, sources.ErrBadOffset)
	}
	if err := d.Decode(&raw); err != nil {
		return offset{}, bad(err.Error())
	}
	if d.More() {
		return offset{}, bad("trailing data")
	}
	if raw.T == nil {
		return offset{}, bad(`want {"t":{"topic":{"partition":offset}}}`)
	}
	conv := func(in map[string]map[string]int64) (partitions, error) {
		out := make(partitions, len(in))
		for t, m := range in {
			for k, o := range m {
				p, err := strconv.ParseInt(k, 10, 32)
				if err != nil || p < 0 || strconv.FormatInt(p, 10) != k {
					return nil, bad(fmt.Sprintf("topic %q: %q is not a partition number", t, k))
				}
				if o < 0 {
					return nil, bad(fmt.Sprintf("topic %q partition %d: negative offset %d", t, p, o))
				}
				out.set(t, int32(p), o)
			}
		}
		return out, nil
	}
	t, err := conv(raw.T)
	if err != nil {
		return offset{}, err
	}
	n, err := conv(raw.New)
	if err != nil {
		return offset{}, err
	}
	return offset{T: t, New: n}, nil
}
