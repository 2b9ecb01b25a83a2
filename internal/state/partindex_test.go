package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// partRecord is the PartKey columns (part: testKeySchema field names) of
// keys.
func partRecord(mem memory.Allocator, part []string, keys []refKey) arrow.Record {
	return partRows(mem, part, rowsOfKeys(keys))
}

// partRows is the PartKey columns (part: field names of testKeySchema and
// testValueSchema) of rows q.
func partRows(mem memory.Allocator, part []string, q []refRow) arrow.Record {
	var keys []refKey
	var vals []refVal
	for _, r := range q {
		keys, vals = append(keys, r.k), append(vals, r.v)
	}
	kr, vr := keyRecord(mem, keys), valueRecord(mem, vals)
	defer kr.Release()
	defer vr.Release()
	var fields []arrow.Field
	var cols []arrow.Array
	for _, name := range part {
		if i := testKeySchema.FieldIndices(name); len(i) == 1 {
			fields = append(fields, testKeySchema.Field(i[0]))
			cols = append(cols, kr.Column(i[0]))
			continue
		}
		i := testValueSchema.FieldIndices(name)[0]
		fields = append(fields, testValueSchema.Field(i))
		cols = append(cols, vr.Column(i))
	}
	return array.NewRecord(arrow.NewSchema(fields, nil), cols, kr.NumRows())
}

func rowsOfKeys(keys []refKey) []refRow {
	out := make([]refRow, len(keys))
	for i, k := range keys {
		out[i].k = k
	}
	return out
}

type refRow struct {
	k refKey
	v refVal
}

// scanPartRows is ScanPart's rows in the order it gives them.
func scanPartRows(t *testing.T, s Store, mem memory.Allocator, part []string, keys []refKey) []refRow {
	t.Helper()
	return scanPartOf(t, s, mem, part, rowsOfKeys(keys))
}

// scanPartOf is ScanPart of the parts of rows q, in the order it gives
// them.
func scanPartOf(t *testing.T, s Store, mem memory.Allocator, part []string, q []refRow) []refRow {
	t.Helper()
	p := partRows(mem, part, q)
	defer p.Release()
	var out []refRow
	err := s.ScanPart(p, func(keys, values arrow.Record) error {
		if keys.NumRows() > ScanChunk {
			t.Errorf("a chunk of %d rows", keys.NumRows())
		}
		ks, vs := readKeys(keys), readVals(values)
		for i := range ks {
			out = append(out, refRow{ks[i], vs[i]})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// samePart reports whether row r's part equals q's (nulls equal nulls).
func samePart(part []string, r, q refRow) bool {
	for _, name := range part {
		switch name {
		case "name":
			if r.k.null != q.k.null || r.k.name != q.k.name {
				return false
			}
		case "wend":
			if r.k.wend != q.k.wend {
				return false
			}
		case "count":
			if r.v.countNull != q.v.countNull || r.v.count != q.v.count {
				return false
			}
		case "sum":
			if r.v.sum != q.v.sum {
				return false
			}
		case "note":
			if r.v.noteNull != q.v.noteNull || r.v.note != q.v.note {
				return false
			}
		}
	}
	return true
}

// bruteScanPart is ScanPart by a filter of Scan: the contract's answer.
func bruteScanPart(t *testing.T, s Store, part []string, keys []refKey) []refRow {
	t.Helper()
	return bruteScanPartOf(t, s, part, rowsOfKeys(keys))
}

func bruteScanPartOf(t *testing.T, s Store, part []string, q []refRow) []refRow {
	t.Helper()
	var out []refRow
	err := s.Scan(func(k, v arrow.Record) error {
		ks, vs := readKeys(k), readVals(v)
		for i := range ks {
			r := refRow{ks[i], vs[i]}
			if slices.ContainsFunc(q, func(q refRow) bool { return samePart(part, r, q) }) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkScanPart compares ScanPart of random parts (present, absent, null,
// repeated) on both stores with a filter of the first store's Scan. Half
// the parts asked are those of stored rows (value columns in PartKey would
// rarely meet a random value).
func checkScanPart(t *testing.T, step int, rng *rand.Rand, mem memory.Allocator, part []string, randKey func() refKey, stores ...Store) {
	t.Helper()
	all := bruteScanPartOf(t, stores[0], nil, []refRow{{}})
	var q []refRow
	for i := rng.IntN(6); i >= 0; i-- {
		r := refRow{k: randKey(), v: norm(refVal{count: rng.Int64N(5), countNull: rng.IntN(5) == 0,
			note: strings.Repeat("n", rng.IntN(3)), noteNull: rng.IntN(4) == 0})}
		if len(all) > 0 && rng.IntN(2) == 0 {
			r = all[rng.IntN(len(all))]
		}
		q = append(q, r)
		if rng.IntN(4) == 0 {
			q = append(q, r)
		}
	}
	want := bruteScanPartOf(t, stores[0], part, q)
	for i, s := range stores {
		if got := scanPartOf(t, s, mem, part, q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d: store %d: ScanPart %v of %v:\n got %v\nwant %v", step, i, part, q, got, want)
		}
	}
}

// TestScanPartVisitsOnlyWhatItReturns: with 20 000 keys of 2 000 names,
// ScanPart of a few names hands out and visits only those names' entries,
// on the memory backend and on the disk backend (committed rows read
// through the part index with an empty cache, and rows the batch changed
// from the cache, a deleted one hidden). On either index column.
func TestScanPartVisitsOnlyWhatItReturns(t *testing.T) {
	for _, part := range [][]string{{"name"}, {"wend"}} {
		for _, backend := range []string{"memory", "disk"} {
			t.Run(fmt.Sprintf("%s/%v", backend, part), func(t *testing.T) {
				mem := checked(t)
				cfg := testConfig(vfs.NewMem(), mem)
				cfg.PartKey = part
				opts := DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}
				open := func(v int64) Store {
					var s Store
					var err error
					if backend == "memory" {
						s, err = Open(cfg, v)
					} else {
						s, err = OpenDisk(cfg, opts, v)
					}
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				visited := func(s Store) int {
					if m, ok := s.(*memStore); ok {
						return m.pix.visited
					}
					d := s.(*diskStore)
					return int(d.partVisited) + d.cache.pix.visited
				}
				s := open(0)
				var keys []refKey
				var vals []refVal
				for i := 0; i < 20000; i++ {
					keys = append(keys, mkKey(fmt.Sprintf("k%04d", i%2000), false, int64(i/2000)*1000))
					vals = append(vals, refVal{count: int64(i)})
				}
				put(t, s, mem, keys, vals)
				if err := s.Commit(1); err != nil {
					t.Fatal(err)
				}
				s.Close()
				s = open(1)
				defer s.Close()
				// Two names (one asked twice) and an absent one, or two windows.
				q := []refKey{mkKey("k0007", false, 0), mkKey("k1999", false, 0), mkKey("k0007", false, 0), mkKey("nope", false, 0)}
				want := 20
				if part[0] == "wend" {
					q = []refKey{mkKey("a", false, 3000), mkKey("a", false, 7000), mkKey("b", false, 99000)}
					want = 4000
				}
				got := scanPartRows(t, s, mem, part, q)
				if len(got) != want || visited(s) != want {
					t.Fatalf("ScanPart %v: %d rows, %d entries visited; want %d and %d", q, len(got), visited(s), want, want)
				}
				if b := bruteScanPart(t, s, part, q); fmt.Sprint(b) != fmt.Sprint(got) {
					t.Fatalf("ScanPart differs from a filter of Scan")
				}
				// The batch changes one entry of the first part, deletes
				// another and adds a third: ScanPart sees the changes.
				first := got[0].k
				var same []refKey
				for _, r := range got {
					if samePart(part, r, refRow{k: first}) {
						same = append(same, r.k)
					}
				}
				added := first // a new key of the same part
				if part[0] == "name" {
					added.wend = 123456
				} else {
					added.name += "-new"
				}
				put(t, s, mem, []refKey{same[0], added}, []refVal{{count: -1}, {count: -2}})
				del(t, s, mem, same[1:2])
				got = scanPartRows(t, s, mem, part, []refKey{first})
				if b := bruteScanPart(t, s, part, []refKey{first}); fmt.Sprint(b) != fmt.Sprint(got) || len(got) != len(same) {
					t.Fatalf("after changes: ScanPart %v, a filter of Scan %v (want %d rows)", got, b, len(same))
				}
				if err := s.Commit(2); err != nil {
					t.Fatal(err)
				}
				s.Close()
				s = open(2)
				defer s.Close()
				if got2 := scanPartRows(t, s, mem, part, []refKey{first}); fmt.Sprint(got2) != fmt.Sprint(got) {
					t.Fatalf("reopened: ScanPart %v, before %v", got2, got)
				}
			})
		}
	}
}

// TestScanPartRandomOperations runs random puts, deletes, evictions,
// commits and aborts on a memory store with a part index on either key
// column and checks ScanPart against a filter of Scan after every step,
// and the index's invariant (every live slot in exactly the chain of its
// part, nothing else in a chain).
func TestScanPartRandomOperations(t *testing.T) {
	for _, part := range [][]string{{"name"}, {"wend"}, {"count"}, {"note", "name"}} {
		t.Run(fmt.Sprint(part), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d (replay: set seed in the test)", seed)
			rng := rand.New(rand.NewPCG(seed, 7))
			mem := checked(t)
			cfg := testConfig(vfs.NewMem(), mem)
			cfg.PartKey = part
			cfg.TimeColumn = "wend"
			s, err := openMem(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			randKey := func() refKey {
				return mkKey(fmt.Sprintf("k%d", rng.IntN(40)), rng.IntN(20) == 0, int64(rng.IntN(8)-2)*1000)
			}
			var version int64
			for step := 0; step < 1500; step++ {
				switch op := rng.IntN(100); {
				case op < 45:
					var keys []refKey
					var vals []refVal
					for i := rng.IntN(30) + 1; i > 0; i-- {
						keys, vals = append(keys, randKey()), append(vals, refVal{count: rng.Int64N(5), countNull: rng.IntN(5) == 0,
							note: strings.Repeat("n", rng.IntN(3)), noteNull: rng.IntN(4) == 0})
					}
					put(t, s, mem, keys, vals)
				case op < 55:
					var keys []refKey
					for i := rng.IntN(20) + 1; i > 0; i-- {
						keys = append(keys, randKey())
					}
					del(t, s, mem, keys)
				case op < 65:
					// Update the live ones among random keys: new values by slot.
					var keys []refKey
					for i := rng.IntN(20) + 1; i > 0; i-- {
						keys = append(keys, randKey())
					}
					kr := keyRecord(mem, keys)
					slots := make([]int32, len(keys))
					if err := s.Lookup(kr, slots); err != nil {
						t.Fatal(err)
					}
					kr.Release()
					var live []int32
					var vals []refVal
					for _, sl := range slots {
						if sl >= 0 {
							live = append(live, sl)
							vals = append(vals, refVal{count: rng.Int64N(5), countNull: rng.IntN(5) == 0, note: strings.Repeat("n", rng.IntN(3))})
						}
					}
					vr := valueRecord(mem, vals)
					if err := s.Update(live, vr); err != nil {
						t.Fatal(err)
					}
					vr.Release()
				case op < 72:
					if _, err := s.EvictWhere(1, int64(rng.IntN(8)-2)*1000); err != nil {
						t.Fatal(err)
					}
				case op < 77:
					if err := s.Abort(); err != nil {
						t.Fatal(err)
					}
				case op < 97:
					version++
					if err := s.Commit(version); err != nil {
						t.Fatal(err)
					}
				default:
					s.Close()
					if s, err = openMem(cfg, version); err != nil {
						t.Fatal(err)
					}
				}
				checkChains(t, step, s)
				checkScanPart(t, step, rng, mem, part, randKey, s)
			}
		})
	}
}

// checkChains checks the part index of s: each chain's slots are live,
// have the chain's part and link both ways; every live slot is in one.
func checkChains(t *testing.T, step int, s *memStore) {
	t.Helper()
	x := s.pix
	seen := map[int32]bool{}
	entries := 0
	for _, e := range x.table {
		if e == 0 {
			continue
		}
		entries++
		head := int32(uint32(e)) - 1
		p := s.partOf(nil, head)
		if uint32(e>>32) != s.hash(p) || x.prev[head] != -1 {
			t.Fatalf("step %d: chain head %d: bad hash or a previous slot", step, head)
		}
		for sl, prev := head, int32(-1); sl >= 0; prev, sl = sl, x.next[sl] {
			if seen[sl] || s.flags[sl]&fLive == 0 || x.prev[sl] != prev || string(s.partOf(nil, sl)) != string(p) {
				t.Fatalf("step %d: slot %d in the chain of %x: seen %v, flags %b, prev %d want %d", step, sl, p, seen[sl], s.flags[sl], x.prev[sl], prev)
			}
			seen[sl] = true
		}
	}
	if entries != x.used || len(seen) != s.live {
		t.Fatalf("step %d: %d chains (used %d), %d slots in them, %d live", step, entries, x.used, len(seen), s.live)
	}
}

// TestScanPartErrors: a store without PartKey, a record of other columns,
// a closed store.
func TestScanPartErrors(t *testing.T) {
	for _, backend := range []string{"memory", "disk"} {
		t.Run(backend, func(t *testing.T) {
			mem := checked(t)
			open := func(cfg Config) Store {
				var s Store
				var err error
				if backend == "memory" {
					s, err = Open(cfg, 0)
				} else {
					s, err = OpenDisk(cfg, DiskOptions{LocalDir: t.TempDir()}, 0)
				}
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			keys := []refKey{mkKey("a", false, 1)}
			s := open(testConfig(vfs.NewMem(), mem))
			p := partRecord(mem, []string{"name"}, keys)
			defer p.Release()
			if err := s.ScanPart(p, func(_, _ arrow.Record) error { return nil }); err == nil {
				t.Fatal("ScanPart on a store without PartKey passed")
			}
			s.Close()
			cfg := testConfig(vfs.NewMem(), mem)
			cfg.PartKey = []string{"name"}
			s = open(cfg)
			put(t, s, mem, keys, []refVal{{count: 1}})
			w := partRecord(mem, []string{"wend"}, keys)
			defer w.Release()
			if err := s.ScanPart(w, func(_, _ arrow.Record) error { return nil }); !errors.Is(err, ErrSchema) {
				t.Fatalf("ScanPart of the wrong column: %v, want ErrSchema", err)
			}
			stop := errors.New("stop")
			if err := s.ScanPart(p, func(_, _ arrow.Record) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("fn's error: %v", err)
			}
			s.Close()
			if err := s.ScanPart(p, func(_, _ arrow.Record) error { return nil }); !errors.Is(err, ErrClosed) {
				t.Fatalf("closed store: %v, want ErrClosed", err)
			}
		})
	}
}

// TestScanPartOnSeveralColumnsOutOfOrder: a PartKey of two key columns in
// another order than the key's, around a nullable string, on both
// backends after random puts, deletes, commits and aborts, equals a filter
// of Scan (the part is cut out of the key bytes as a record of those
// columns encodes).
func TestScanPartOnSeveralColumnsOutOfOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: set seed in the test)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	mem := checked(t)
	ks := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "c", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	vs := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	part := []string{"c", "a"}
	type key struct {
		a, c   int64
		b      string
		an, bn bool
		cn     bool
	}
	randKey := func() key {
		return key{a: rng.Int64N(4) - 2, b: fmt.Sprint(rng.IntN(5)), c: rng.Int64N(3), an: rng.IntN(6) == 0, bn: rng.IntN(6) == 0, cn: rng.IntN(6) == 0}
	}
	build := func(sch *arrow.Schema, keys []key) arrow.Record {
		bl := array.NewRecordBuilder(mem, sch)
		defer bl.Release()
		for _, k := range keys {
			for i, f := range sch.Fields() {
				fb := bl.Field(i)
				switch {
				case f.Name == "a" && k.an, f.Name == "b" && k.bn, f.Name == "c" && k.cn:
					fb.AppendNull()
				case f.Name == "a":
					fb.(*array.Int32Builder).Append(int32(k.a))
				case f.Name == "b":
					fb.(*array.StringBuilder).Append(k.b)
				default:
					fb.(*array.Int64Builder).Append(k.c)
				}
			}
		}
		return bl.NewRecord()
	}
	partSch := arrow.NewSchema([]arrow.Field{ks.Field(2), ks.Field(0)}, nil)
	rows := func(s Store, scan func(fn func(k, v arrow.Record) error) error) []string {
		var out []string
		err := scan(func(k, v arrow.Record) error {
			for i := 0; i < int(k.NumRows()); i++ {
				var row []string
				for _, c := range append(k.Columns(), v.Columns()...) {
					row = append(row, c.ValueStr(i))
				}
				out = append(out, fmt.Sprint(row))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cfg := Config{FS: vfs.NewMem(), Dir: "/ck/state", StoreSpec: StoreSpec{Operator: "s", KeyGroups: 4, Lo: 0, Hi: 4,
		KeySchema: ks, ValueSchema: vs, PartKey: part, Allocator: mem}}
	ms, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	cfgD := cfg
	cfgD.FS = vfs.NewMem()
	ds, err := OpenDisk(cfgD, DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	var version int64
	for step := 0; step < 300; step++ {
		var keys []key
		for i := rng.IntN(8) + 1; i > 0; i-- {
			keys = append(keys, randKey())
		}
		k := build(ks, keys)
		switch op := rng.IntN(10); {
		case op < 5:
			vb := array.NewInt64Builder(mem)
			for range keys {
				vb.Append(rng.Int64N(100))
			}
			col := vb.NewArray()
			vb.Release()
			v := array.NewRecord(vs, []arrow.Array{col}, int64(len(keys)))
			col.Release()
			for _, s := range []Store{ms, ds} {
				if err := s.Put(k, v, nil); err != nil {
					t.Fatal(err)
				}
			}
			v.Release()
		case op < 7:
			for _, s := range []Store{ms, ds} {
				if err := s.Delete(k); err != nil {
					t.Fatal(err)
				}
			}
		case op < 8:
			if err := errors.Join(ms.Abort(), ds.Abort()); err != nil {
				t.Fatal(err)
			}
		default:
			version++
			if err := errors.Join(ms.Commit(version), ds.Commit(version)); err != nil {
				t.Fatal(err)
			}
		}
		k.Release()
		q := build(partSch, keys[:rng.IntN(len(keys))+1])
		want := map[string]bool{}
		for i := 0; i < int(q.NumRows()); i++ {
			want[q.Column(0).ValueStr(i)+"|"+q.Column(1).ValueStr(i)] = true
		}
		var brute []string
		ms.Scan(func(k, v arrow.Record) error {
			for i := 0; i < int(k.NumRows()); i++ {
				if want[k.Column(2).ValueStr(i)+"|"+k.Column(0).ValueStr(i)] {
					brute = append(brute, fmt.Sprint([]string{k.Column(0).ValueStr(i), k.Column(1).ValueStr(i), k.Column(2).ValueStr(i), v.Column(0).ValueStr(i)}))
				}
			}
			return nil
		})
		for name, s := range map[string]Store{"memory": ms, "disk": ds} {
			got := rows(s, func(fn func(k, v arrow.Record) error) error { return s.ScanPart(q, fn) })
			if fmt.Sprint(got) != fmt.Sprint(brute) {
				t.Fatalf("step %d: %s: ScanPart %v:\n got %v\nwant %v", step, name, part, got, brute)
			}
		}
		q.Release()
	}
}
