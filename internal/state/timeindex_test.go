package state

import (
	"fmt"
	"maps"
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

// Store columns of the test state as ScanWhere/EvictWhere number them.
const (
	colWend  = 1 // key column "wend"
	colCount = 2 // value column 0, "count" (nullable)
)

// whereRows returns "key=value" lines of ScanWhere(col, less) in the order
// the store gives them, checking the order is strictly ascending in
// canonical key bytes.
func whereRows(t *testing.T, s Store, col int, less int64) []string {
	t.Helper()
	var out []string
	var prev []byte
	err := s.ScanWhere(col, less, func(keys, values arrow.Record) error {
		ks, vs := readKeys(keys), readVals(values)
		buf, offs := keyCodec(t, keys).encode(keys.Columns(), len(ks), nil, nil)
		for i := range ks {
			kb := buf[offs[i]:offs[i+1]]
			if prev != nil && string(prev) >= string(kb) {
				t.Errorf("ScanWhere order: %x after %x", kb, prev)
			}
			prev = append([]byte(nil), kb...)
			out = append(out, fmt.Sprintf("%+v=%+v", ks[i], vs[i]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refWhere is the reference's answer to ScanWhere(col, less), unordered.
func refWhere(ref map[refKey]refVal, col int, less int64) []string {
	var out []string
	for k, v := range ref {
		if (col == colWend && k.wend < less) || (col == colCount && !v.countNull && v.count < less) {
			out = append(out, fmt.Sprintf("%+v=%+v", k, v))
		}
	}
	slices.Sort(out)
	return out
}

// TestTimeIndexMatchesAScanOfEveryKey runs seeded random puts, updates,
// deletes, evictions, scans, commits, aborts and reloads against three
// stores: indexed on a key column (the window end), indexed on a value
// column that puts and updates change (a timeout, nullable), and without an
// index (the scan of every key). Every ScanWhere must give the same rows in
// the same order on all three, and the set a Go map says; every EvictWhere
// the same count.
func TestTimeIndexMatchesAScanOfEveryKey(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: set seed in the test)", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	// A small slack, so that scans drop stale entries and the heap is
	// rebuilt in a store of a few hundred keys.
	defer func(s int) { staleSlack = s }(staleSlack)
	staleSlack = 4
	mem := checked(t)
	cfgs := make([]Config, 3)
	for i, tc := range []string{"wend", "count", ""} {
		cfgs[i] = testConfig(vfs.NewMem(), mem)
		cfgs[i].TimeColumn = tc
	}
	stores := make([]Store, 3)
	for i := range stores {
		s, err := Open(cfgs[i], 0)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	ref := map[refKey]refVal{}
	randKey := func() refKey {
		return mkKey(fmt.Sprintf("k%d", rng.IntN(200)), rng.IntN(40) == 0, int64(rng.IntN(20))*1000-3000)
	}
	randVal := func() refVal {
		return norm(refVal{count: rng.Int64N(100) - 10, countNull: rng.IntN(6) == 0, sum: rng.Int64() >> 1,
			note: strings.Repeat("n", rng.IntN(5)), noteNull: rng.IntN(5) == 0})
	}
	randBound := func(col int) int64 {
		if col == colWend {
			return int64(rng.IntN(22))*1000 - 4000
		}
		return rng.Int64N(120) - 20
	}
	check := func(what string) {
		t.Helper()
		for _, col := range []int{colWend, colCount} {
			less := randBound(col)
			want := refWhere(ref, col, less)
			var first []string
			for i, s := range stores {
				got := whereRows(t, s, col, less)
				if i == 0 {
					first = got
				} else if !slices.Equal(got, first) {
					t.Fatalf("%s: ScanWhere(%d, <%d) of store %d:\n%v\nstore 0:\n%v", what, col, less, i, got, first)
				}
				sorted := slices.Sorted(slices.Values(got))
				if !slices.Equal(sorted, want) {
					t.Fatalf("%s: ScanWhere(%d, <%d) of store %d:\n%v\nreference:\n%v", what, col, less, i, sorted, want)
				}
			}
		}
		for i, s := range stores {
			if d := diff(ref, contents(t, s)); d != "" {
				t.Fatalf("%s: store %d:\n%s", what, i, d)
			}
		}
	}
	committed := maps.Clone(ref)
	for v := int64(1); v <= 60; v++ {
		for op := rng.IntN(8); op >= 0; op-- {
			switch r := rng.IntN(12); {
			case r < 4: // put, duplicates included: the last row wins
				n := rng.IntN(40)
				keys, vals := make([]refKey, n), make([]refVal, n)
				for i := range keys {
					keys[i], vals[i] = randKey(), randVal()
					ref[keys[i]] = vals[i]
				}
				for _, s := range stores {
					put(t, s, mem, keys, vals)
				}
			case r < 6: // update through Lookup slots, a slot twice at times
				n := rng.IntN(30)
				var keys []refKey
				var vals []refVal
				for i := 0; i < n; i++ {
					k := randKey()
					if _, ok := ref[k]; ok {
						nv := randVal()
						keys, vals = append(keys, k), append(vals, nv)
						ref[k] = nv
					}
				}
				kr, vr := keyRecord(mem, keys), valueRecord(mem, vals)
				for _, s := range stores {
					slots := make([]int32, len(keys))
					if err := s.Lookup(kr, slots); err != nil {
						t.Fatal(err)
					}
					if err := s.Update(slots, vr); err != nil {
						t.Fatal(err)
					}
				}
				kr.Release()
				vr.Release()
			case r < 8:
				n := rng.IntN(30)
				keys := make([]refKey, n)
				for i := range keys {
					keys[i] = randKey()
					delete(ref, keys[i])
				}
				for _, s := range stores {
					del(t, s, mem, keys)
				}
			case r < 11:
				col := colWend
				if rng.IntN(2) == 0 {
					col = colCount
				}
				less := randBound(col)
				want := len(refWhere(ref, col, less))
				for k, v := range ref {
					if (col == colWend && k.wend < less) || (col == colCount && !v.countNull && v.count < less) {
						delete(ref, k)
					}
				}
				for i, s := range stores {
					got, err := s.EvictWhere(col, less)
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Fatalf("version %d: store %d: EvictWhere(%d, <%d) evicted %d, want %d", v, i, col, less, got, want)
					}
				}
			default:
				check(fmt.Sprintf("version %d, mid-batch", v))
			}
		}
		check(fmt.Sprintf("version %d, before commit", v))
		switch r := rng.IntN(8); {
		case r == 0:
			for _, s := range stores {
				if err := s.Abort(); err != nil {
					t.Fatal(err)
				}
			}
			ref = maps.Clone(committed)
			check(fmt.Sprintf("version %d, after Abort", v))
		case r == 1: // a failed-over task: load the version from files
			for i, s := range stores {
				if err := s.Commit(v); err != nil {
					t.Fatal(err)
				}
				s.Close()
				ns, err := Open(cfgs[i], v)
				if err != nil {
					t.Fatal(err)
				}
				stores[i] = ns
			}
			committed = maps.Clone(ref)
			check(fmt.Sprintf("version %d, reloaded", v))
			continue
		}
		for _, s := range stores {
			if err := s.Commit(v); err != nil {
				t.Fatal(err)
			}
		}
		committed = maps.Clone(ref)
	}
	// The files do not depend on the index.
	for _, f := range cfgs[2].FS.(*vfs.Mem).Files() {
		want, _ := cfgs[2].FS.ReadFile(f)
		for i := 0; i < 2; i++ {
			got, err := cfgs[i].FS.ReadFile(f)
			if err != nil || string(got) != string(want) {
				t.Fatalf("%s differs between store %d (TimeColumn %q) and the unindexed store (%v)", f, i, cfgs[i].TimeColumn, err)
			}
		}
	}
}

// int64Store opens a store (id int64) -> (t int64) with TimeColumn tc.
func int64Store(t *testing.T, mem memory.Allocator, tc string) Store {
	t.Helper()
	ks := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	vs := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	s, err := Open(Config{FS: vfs.NewMem(), Dir: "/s", StoreSpec: StoreSpec{Operator: "op", KeyGroups: 4, Lo: 0, Hi: 4,
		KeySchema: ks, ValueSchema: vs, TimeColumn: tc, Allocator: mem}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putTimes puts ids [from, from+n) with t = tf(id).
func putTimes(t *testing.T, s Store, mem memory.Allocator, from, n int, tf func(id int64) int64) {
	t.Helper()
	kb, vb := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
	defer kb.Release()
	defer vb.Release()
	for id := int64(from); id < int64(from+n); id++ {
		kb.Append(id)
		vb.Append(tf(id))
	}
	kc, vc := kb.NewArray(), vb.NewArray()
	defer kc.Release()
	defer vc.Release()
	ks := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	vs := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	kr, vr := array.NewRecord(ks, []arrow.Array{kc}, int64(n)), array.NewRecord(vs, []arrow.Array{vc}, int64(n))
	defer kr.Release()
	defer vr.Release()
	if err := s.Put(kr, vr, nil); err != nil {
		t.Fatal(err)
	}
}

// TestTimeIndexVisitsOnlyWhatIsDue: with 100 000 keys whose timers lie far
// ahead and 50 due ones, ScanWhere and EvictWhere on the TimeColumn pop a
// few entries, not the state; timers rewritten batch after batch (stale
// entries) neither grow the index without bound nor make a scan visit them
// twice.
func TestTimeIndexVisitsOnlyWhatIsDue(t *testing.T) {
	mem := checked(t)
	s := int64Store(t, mem, "t")
	defer s.Close()
	const keys = 100_000
	putTimes(t, s, mem, 0, keys, func(id int64) int64 { return 1_000_000 + id })
	putTimes(t, s, mem, keys, 50, func(id int64) int64 { return id - keys })
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	x := s.(*memStore).tix
	n := 0
	if err := s.ScanWhere(1, 50, func(k, v arrow.Record) error { n += int(k.NumRows()); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 50 || x.visited > 50 {
		t.Fatalf("ScanWhere(<50): %d rows, %d index entries visited (of %d keys)", n, x.visited, keys+50)
	}
	if got, err := s.EvictWhere(1, 50); err != nil || got != 50 {
		t.Fatalf("EvictWhere(<50) = %d, %v; want 50", got, err)
	}
	if x.visited > 100 {
		t.Fatalf("ScanWhere then EvictWhere of 50 due keys visited %d index entries (of %d keys)", x.visited, keys+50)
	}
	// 2000 timers moved ahead leave 2000 stale entries below 10 000, with
	// 10 due keys: the scan drops the stale ones by popping (2% of the
	// heap), keeps the due ones, and the next scan visits only those.
	putTimes(t, s, mem, 0, 2000, func(id int64) int64 { return 5_000_000 + id })
	putTimes(t, s, mem, keys+100, 10, func(id int64) int64 { return 9_000 })
	for round := 0; round < 2; round++ {
		before := x.visited
		n = 0
		if err := s.ScanWhere(1, 1_002_000, func(k, v arrow.Record) error { n += int(k.NumRows()); return nil }); err != nil {
			t.Fatal(err)
		}
		if v := x.visited - before; n != 10 || (round == 0 && v != 2010) || (round == 1 && v != 10) {
			t.Fatalf("scan %d below 1 002 000: %d rows, %d entries visited; want 10 rows, %d", round, n, v, []int{2010, 10}[round])
		}
	}
	if got, err := s.EvictWhere(1, 1_002_000); err != nil || got != 10 {
		t.Fatalf("EvictWhere(<1 002 000) = %d, %v; want 10", got, err)
	}
	// Batches that each move 1000 timers forward: old entries go stale
	// below the later bounds, and the next scans must not keep visiting
	// them.
	for b := 0; b < 300; b++ {
		from := (b * 1000) % keys
		putTimes(t, s, mem, from, 1000, func(id int64) int64 { return 2_000_000 + int64(b)*10 + id%10 })
		if err := s.Commit(int64(b + 2)); err != nil {
			t.Fatal(err)
		}
		if x.len() > 2*s.Len()+staleSlack {
			t.Fatalf("batch %d: index holds %d entries for %d keys", b, x.len(), s.Len())
		}
	}
	before := x.visited
	if err := s.ScanWhere(1, 1_500_000, func(k, v arrow.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	first := x.visited - before
	before = x.visited
	if err := s.ScanWhere(1, 1_500_000, func(k, v arrow.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Every key was rewritten at least twice, so nothing is below 1.5 M:
	// the second scan pops nothing; the first popped only stale entries.
	if again := x.visited - before; again != 0 || first > 2*keys+staleSlack {
		t.Fatalf("scans below 1.5 M after the rewrites visited %d, then %d entries", first, again)
	}
}

// TestTimeIndexOnKeysWithNullTimes: a null time is never due, on the index
// or off it, and a Put that makes a value time null takes the key out.
func TestTimeIndexOnKeysWithNullTimes(t *testing.T) {
	mem := checked(t)
	for _, tc := range []string{"t", ""} {
		s := int64Store(t, mem, tc)
		putTimes(t, s, mem, 0, 10, func(id int64) int64 { return id })
		ks := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		vs := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
		kb, vb := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
		kb.AppendValues([]int64{2, 3}, nil)
		vb.AppendNull()
		vb.AppendNull()
		kc, vc := kb.NewArray(), vb.NewArray()
		kr, vr := array.NewRecord(ks, []arrow.Array{kc}, 2), array.NewRecord(vs, []arrow.Array{vc}, 2)
		if err := s.Put(kr, vr, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range []interface{ Release() }{kb, vb, kc, vc, kr, vr} {
			r.Release()
		}
		got, err := s.EvictWhere(1, 5)
		if err != nil || got != 3 {
			t.Fatalf("TimeColumn %q: EvictWhere(<5) = %d, %v; want 3 (ids 0, 1, 4)", tc, got, err)
		}
		if s.Len() != 7 {
			t.Fatalf("TimeColumn %q: Len %d after eviction, want 7", tc, s.Len())
		}
		s.Close()
	}
}

func TestWhereRefusesColumnsThatAreNotTimes(t *testing.T) {
	mem := checked(t)
	s, err := Open(testConfig(vfs.NewMem(), mem), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		col  int
		want string
	}{
		{0, "key column 0 has type utf8"},
		{4, "value column 2 has type utf8"},
		{5, "column 5 out of range [0, 5)"},
		{-1, "column -1 out of range"},
	} {
		_, err := s.EvictWhere(tc.col, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EvictWhere(%d): %v, want an error with %q", tc.col, err, tc.want)
		}
		err = s.ScanWhere(tc.col, 0, func(k, v arrow.Record) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ScanWhere(%d): %v, want an error with %q", tc.col, err, tc.want)
		}
	}
}

// TestTimeIndexOnA32BitValueColumn: negative and positive int32 times
// order as numbers, on the index and off it.
func TestTimeIndexOnA32BitValueColumn(t *testing.T) {
	mem := checked(t)
	ks := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	vs := arrow.NewSchema([]arrow.Field{{Name: "d", Type: arrow.PrimitiveTypes.Int32}}, nil)
	for _, tc := range []string{"d", ""} {
		s, err := Open(Config{FS: vfs.NewMem(), Dir: "/s", StoreSpec: StoreSpec{Operator: "op", KeyGroups: 4, Lo: 0, Hi: 4,
			KeySchema: ks, ValueSchema: vs, TimeColumn: tc, Allocator: mem}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		kb, vb := array.NewInt64Builder(mem), array.NewInt32Builder(mem)
		for i := int64(0); i < 100; i++ {
			kb.Append(i)
			vb.Append(int32((i - 50) * 40_000_000)) // -2e9 .. 1.96e9
		}
		kc, vc := kb.NewArray(), vb.NewArray()
		kr, vr := array.NewRecord(ks, []arrow.Array{kc}, 100), array.NewRecord(vs, []arrow.Array{vc}, 100)
		if err := s.Put(kr, vr, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range []interface{ Release() }{kb, vb, kc, vc, kr, vr} {
			r.Release()
		}
		var got []int32
		err = s.ScanWhere(1, -1_000_000_000, func(k, v arrow.Record) error {
			got = append(got, v.Column(0).(*array.Int32).Int32Values()...)
			return nil
		})
		if err != nil || len(got) != 25 || got[0] != -2_000_000_000 || got[24] != -1_040_000_000 {
			t.Fatalf("TimeColumn %q: ScanWhere(<-1e9) = %v, %v; want the 25 times -2e9 .. -1.04e9", tc, got, err)
		}
		if n, err := s.EvictWhere(1, 0); err != nil || n != 50 {
			t.Fatalf("TimeColumn %q: EvictWhere(<0) = %d, %v; want 50", tc, n, err)
		}
		s.Close()
	}
}
