package state

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/internal/vfs"
)

// scanWhereKeys is ScanWhere's keys in the order it gives them.
func scanWhereKeys(t *testing.T, s Store, col int, less int64) []refKey {
	t.Helper()
	var out []refKey
	err := s.ScanWhere(col, less, func(keys, values arrow.Record) error {
		out = append(out, readKeys(keys)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFile(t *testing.T, a, b vfs.FS, path string) {
	t.Helper()
	x, errA := a.ReadFile(path)
	y, errB := b.ReadFile(path)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%s: memory backend read %v, disk backend read %v", path, errA, errB)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s: the backends wrote different bytes (%d and %d)", path, len(x), len(y))
	}
}

// TestDiskMatchesMemoryInLockstep runs the same random operations on a
// memStore and a diskStore with a time index and a part index (on either
// key column) (and on a Go map): after every step both hold the map's
// contents, ScanWhere gives the same keys in the same order, ScanPart the
// same rows as a filter of Scan, every commit writes byte-identical files, and reopening
// (reusing the local database, rebuilding it after it was deleted, or
// loading the other backend's files) changes nothing.
func TestDiskMatchesMemoryInLockstep(t *testing.T) {
	// Closing a store stops its pebble database's goroutines.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		budget int64
		part   []string
		log    bool // a Log store: its indexes come and go (LogIndexes)
	}{{0, []string{"name"}, false}, {1, []string{"name"}, false}, {0, []string{"wend"}, false}, {1, []string{"wend"}, false},
		{0, []string{"count"}, false}, {1, []string{"count"}, false}, {1, []string{"note", "name"}, false},
		{0, []string{"count"}, true}, {1, []string{"name"}, true}} {
		budget := tc.budget
		t.Run(fmt.Sprintf("cache-%d/part-%v/log-%v", budget, tc.part, tc.log), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d (replay: set seed in the test)", seed)
			rng := rand.New(rand.NewPCG(seed, 11))
			mem := checked(t)
			fsM, fsD := vfs.NewMem(), vfs.NewMem()
			cfgM, cfgD := testConfig(fsM, mem), testConfig(fsD, mem)
			cfgM.TimeColumn, cfgD.TimeColumn = "wend", "wend"
			cfgM.PartKey, cfgD.PartKey = tc.part, tc.part
			cfgD.Log = tc.log
			local := t.TempDir()
			opts := DiskOptions{LocalDir: local, CacheBytes: budget}
			ms, err := Open(cfgM, 0)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := OpenDisk(cfgD, opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { ms.Close(); ds.Close() }()

			ref := map[refKey]refVal{}
			committed := maps.Clone(ref)
			var version int64
			randKey := func() refKey {
				return mkKey(fmt.Sprintf("k%d", rng.IntN(200)), rng.IntN(30) == 0, int64(rng.IntN(10)-3)*1000)
			}
			for step := 0; step < 600; step++ {
				op := rng.IntN(100)
				switch {
				case op < 40:
					var keys []refKey
					var vals []refVal
					for i := rng.IntN(20) + 1; i > 0; i-- {
						k := randKey()
						v := refVal{count: rng.Int64N(100), countNull: rng.IntN(5) == 0, sum: rng.Int64(),
							note: strings.Repeat("n", rng.IntN(12)), noteNull: rng.IntN(4) == 0}
						keys, vals = append(keys, k), append(vals, v)
						ref[k] = norm(v)
					}
					put(t, ms, mem, keys, vals)
					put(t, ds, mem, keys, vals)
				case op < 55:
					var keys []refKey
					for i := rng.IntN(10) + 1; i > 0; i-- {
						k := randKey()
						keys = append(keys, k)
						delete(ref, k)
					}
					del(t, ms, mem, keys)
					del(t, ds, mem, keys)
				case op < 62:
					less := int64(rng.IntN(10)-3) * 1000
					if rng.IntN(2) == 0 {
						// The same eviction by a caller that names the keys.
						var keys []refKey
						for k := range ref {
							if k.wend < less {
								keys = append(keys, k)
							}
						}
						k := keyRecord(mem, keys)
						err1, err2 := ms.EvictLive(k, 1, less), ds.EvictLive(k, 1, less)
						k.Release()
						if err1 != nil || err2 != nil {
							t.Fatalf("step %d: evict %d live keys below %d: memory %v, disk %v", step, len(keys), less, err1, err2)
						}
					} else {
						n1, err1 := ms.EvictWhere(1, less)
						n2, err2 := ds.EvictWhere(1, less)
						if err1 != nil || err2 != nil || n1 != n2 {
							t.Fatalf("step %d: evict below %d: memory %d %v, disk %d %v", step, less, n1, err1, n2, err2)
						}
					}
					for k := range ref {
						if k.wend < less {
							delete(ref, k)
						}
					}
				case op < 65:
					if err := errors.Join(ms.Abort(), ds.Abort()); err != nil {
						t.Fatal(err)
					}
					ref = maps.Clone(committed)
				case op < 88:
					version++
					if err := errors.Join(ms.Commit(version), ds.Commit(version)); err != nil {
						t.Fatalf("step %d: commit %d: %v", step, version, err)
					}
					committed = maps.Clone(ref)
					if d := ds.(*diskStore); tc.log && rng.IntN(3) == 0 {
						// The indexes of a Log store are built and
						// dropped after commits (LogIndexes); here at
						// random.
						d.switchIndex(d.ix == nil)
					}
					dir := "/ck/state/agg-0/32-64/"
					sameFile(t, fsM, fsD, dir+fileName(version, kindDelta))
					sameFile(t, fsM, fsD, dir+fileName(version, kindSnapshot))
				case op < 94:
					// Restart the disk store at its version, keeping,
					// deleting or damaging its local database.
					if err := errors.Join(ms.Abort(), ds.Abort(), ds.Close()); err != nil {
						t.Fatal(err)
					}
					ref = maps.Clone(committed)
					what := rng.IntN(3)
					switch what {
					case 1:
						os.RemoveAll(local)
					case 2:
						filepath.Walk(local, func(p string, fi os.FileInfo, err error) error {
							if err == nil && !fi.IsDir() && !strings.HasSuffix(p, ".lock") {
								os.WriteFile(p, []byte("garbage"), 0o644)
							}
							return nil
						})
					}
					if ds, err = OpenDisk(cfgD, opts, version); err != nil {
						t.Fatalf("step %d: reopen at %d (local dir case %d): %v", step, version, what, err)
					}
					if version > 0 && ds.Loaded() != (what != 0) {
						t.Fatalf("step %d: reopen case %d: Loaded() = %v", step, what, ds.Loaded())
					}
				default:
					// Each backend loads the other's files.
					if version == 0 {
						continue
					}
					m2, err := Open(cfgD, version)
					if err != nil {
						t.Fatal(err)
					}
					if d := diff(committed, contents(t, m2)); d != "" {
						t.Fatalf("step %d: memory backend on the disk backend's files at %d:\n%s", step, version, d)
					}
					m2.Close()
					d2, err := OpenDisk(cfgM, DiskOptions{LocalDir: t.TempDir(), CacheBytes: budget}, version)
					if err != nil {
						t.Fatal(err)
					}
					if d := diff(committed, contents(t, d2)); d != "" {
						t.Fatalf("step %d: disk backend on the memory backend's files at %d:\n%s", step, version, d)
					}
					d2.Close()
				}
				if d := diff(ref, contents(t, ds)); d != "" {
					t.Fatalf("step %d: disk store differs from the map:\n%s", step, d)
				}
				if d := diff(ref, contents(t, ms)); d != "" {
					t.Fatalf("step %d: memory store differs from the map:\n%s", step, d)
				}
				if ms.Len() != len(ref) || ds.Len() != len(ref) {
					t.Fatalf("step %d: Len memory %d, disk %d, map %d", step, ms.Len(), ds.Len(), len(ref))
				}
				less := int64(rng.IntN(10)-3) * 1000
				a, b := scanWhereKeys(t, ms, 1, less), scanWhereKeys(t, ds, 1, less)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("step %d: ScanWhere below %d: memory %v, disk %v", step, less, a, b)
				}
				checkScanPart(t, step, rng, mem, tc.part, randKey, ms, ds)
			}
		})
	}
}

// TestDiskTimeIndexVisitsOnlyWhatItReturns: on the TimeColumn, ScanWhere
// and EvictWhere read from pebble only the index entries (and rows) they
// return, with the state committed and the cache empty.
func TestDiskTimeIndexVisitsOnlyWhatItReturns(t *testing.T) {
	mem := checked(t)
	cfg := testConfig(vfs.NewMem(), mem)
	cfg.TimeColumn = "wend"
	opts := DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}
	s, err := openDisk(cfg, opts, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []refKey
	var vals []refVal
	want := 0
	for i := 0; i < 20000; i++ {
		k := mkKey(fmt.Sprintf("k%05d", i), false, int64(i%100)*1000)
		if k.wend < 5000 {
			want++
		}
		keys = append(keys, k)
		vals = append(vals, refVal{count: int64(i)})
	}
	put(t, s, mem, keys, vals)
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = openDisk(cfg, opts, 1); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := len(scanWhereKeys(t, s, 1, 5000)); got != want || s.visited != int64(want) {
		t.Fatalf("ScanWhere below 5000: %d rows, %d pebble keys visited; want %d and %d", got, s.visited, want, want)
	}
	s.visited = 0
	n, err := s.EvictWhere(1, 5000)
	if err != nil || n != want || s.visited != int64(want) {
		t.Fatalf("EvictWhere below 5000: %d rows (%v), %d pebble keys visited; want %d and %d", n, err, s.visited, want, want)
	}
	if err := s.Commit(2); err != nil {
		t.Fatal(err)
	}
	s.visited = 0
	if got := len(scanWhereKeys(t, s, 1, 5000)); got != 0 || s.visited != 0 {
		t.Fatalf("after eviction: %d rows, %d visited; want none (the index lost the evicted rows)", got, s.visited)
	}
	if s.Len() != 20000-want {
		t.Fatalf("Len %d, want %d", s.Len(), 20000-want)
	}
}

// TestDiskStateLargerThanTheCache: 200 000 keys with a 1 MiB cache budget
// give the same answers as the memory backend, and the Go heap stays far
// below what the memory backend holds for the same state.
func TestDiskStateLargerThanTheCache(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~100 MB")
	}
	mem := checked(t)
	cfg := testConfig(vfs.OS{}, mem)
	cfg.Dir = filepath.Join(t.TempDir(), "state")
	cfg.SnapshotEvery = 10
	const keys, batch = 200000, 10000
	note := strings.Repeat("x", 200)
	s, err := openDisk(cfg, DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1 << 20}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peakHeap uint64
	for v := int64(1); v <= keys/batch; v++ {
		var ks []refKey
		var vs []refVal
		for i := 0; i < batch; i++ {
			n := int(v-1)*batch + i
			ks = append(ks, mkKey(fmt.Sprintf("key-%07d", n), false, int64(n%50)))
			vs = append(vs, refVal{count: int64(n), sum: 1, note: note})
		}
		put(t, s, mem, ks, vs)
		if err := s.Commit(v); err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapAlloc)
	}
	if s.Len() != keys {
		t.Fatalf("Len %d, want %d", s.Len(), keys)
	}
	// Rows are ~230 bytes: the memory backend holds > 46 MB for them.
	ref, err := Open(cfg, keys/batch)
	if err != nil {
		t.Fatal(err)
	}
	memBytes := ref.SizeBytes()
	n := 0
	var prev refKey
	err = s.Scan(func(k, v arrow.Record) error {
		for i, key := range readKeys(k) {
			val := readVals(v)[i]
			if key.name != fmt.Sprintf("key-%07d", n) || val.count != int64(n) || (n > 0 && key.name <= prev.name) {
				return fmt.Errorf("row %d: %+v %+v", n, key, val)
			}
			prev = key
			n++
		}
		return nil
	})
	ref.Close()
	if err != nil || n != keys {
		t.Fatalf("scan: %d rows, %v", n, err)
	}
	grow := int64(peakHeap) - int64(before.HeapAlloc)
	t.Logf("memory backend holds %d MB; disk backend: peak Go heap growth %d MB after GC, cache %d KB, local dir %d MB",
		memBytes>>20, grow>>20, s.SizeBytes()>>10, s.localSize()>>20)
	if memBytes < 40<<20 || grow > memBytes/2 {
		t.Fatalf("disk backend's Go heap grew %d MB for a state the memory backend holds in %d MB", grow>>20, memBytes>>20)
	}
}

// TestDiskRebuildsFromTheCheckpointFiles: deleting or damaging the local
// database, or reopening at another version than it holds, loads from the
// files; a local directory that cannot be created is an error naming it.
func TestDiskRebuildsFromTheCheckpointFiles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, mem)
	cfg.TimeColumn = "wend"
	local := t.TempDir()
	opts := DiskOptions{LocalDir: local}
	commitWith := func() {
		old := testOpen
		testOpen = func(cfg Config, v int64) (Store, error) { return OpenDisk(cfg, opts, v) }
		defer func() { testOpen = old }()
		commitVersions(t, cfg, 7)
	}
	commitWith()
	want := func(v int64) map[refKey]refVal {
		m, err := Open(cfg, v)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		return contents(t, m)
	}
	check := func(name string, v int64, loaded bool) {
		t.Helper()
		s, err := OpenDisk(cfg, opts, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer s.Close()
		if s.Loaded() != loaded {
			t.Fatalf("%s: Loaded() = %v, want %v", name, s.Loaded(), loaded)
		}
		if d := diff(want(v), contents(t, s)); d != "" {
			t.Fatalf("%s: version %d differs from the files:\n%s", name, v, d)
		}
	}
	check("reuse", 7, false)
	check("another version", 5, true)
	check("back at 5: reuse", 5, false)
	// The index entries live in a database of their own: one that is not
	// at the rows' version (a copy from version 5 next to rows at 7), or
	// is gone, is not reused: both are rebuilt.
	index := filepath.Join(local, "agg-0", "32-64.index")
	old := filepath.Join(t.TempDir(), "index-at-5")
	if err := os.CopyFS(old, os.DirFS(index)); err != nil {
		t.Fatal(err)
	}
	check("another version again", 7, true)
	os.RemoveAll(index)
	if err := os.CopyFS(index, os.DirFS(old)); err != nil {
		t.Fatal(err)
	}
	check("index database of version 5, rows of 7", 7, true)
	check("both at 7: reuse", 7, false)
	os.RemoveAll(index)
	check("index database deleted", 7, true)
	check("back at 5", 5, true)
	os.RemoveAll(local)
	check("local dir deleted", 5, true)
	filepath.Walk(local, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.HasSuffix(p, ".lock") {
			os.WriteFile(p, []byte("not pebble"), 0o644)
		}
		return nil
	})
	check("local dir damaged", 5, true)

	// The same version written again differently (another executor re-ran
	// the batch): the local database no longer proves it is current.
	fs.WriteFileAtomic("/ck/state/agg-0/32-64/5.delta.arrow", mustRead(t, fs, "/ck/state/agg-0/32-64/5.delta.arrow"))
	check("same bytes: reuse", 5, false)

	// A missing delta is ErrMissing naming it, not an empty state.
	fs.Remove("/ck/state/agg-0/32-64/5.delta.arrow")
	if _, err := OpenDisk(cfg, opts, 5); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "5.delta.arrow") {
		t.Fatalf("open without delta 5: %v, want ErrMissing naming it", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	_, err := OpenDisk(cfg, DiskOptions{LocalDir: filepath.Join(file, "local")}, 0)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(file, "local")) {
		t.Fatalf("local dir under a file: %v, want an error naming it", err)
	}
}

func mustRead(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	b, err := fs.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDiskTimeIndexOnAValueColumn: with TimeColumn on a value column whose
// values change (and go null), ScanWhere and EvictWhere on it agree with a
// Go map through commits and reopenings, and on a committed state read
// only the index entries of the rows they return.
func TestDiskTimeIndexOnAValueColumn(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: set seed in the test)", seed)
	rng := rand.New(rand.NewPCG(seed, 13))
	mem := checked(t)
	cfg := testConfig(vfs.NewMem(), mem)
	cfg.TimeColumn = "count"
	const col = 2 // key columns name, wend; then count
	opts := DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}
	s, err := openDisk(cfg, opts, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	ref := map[refKey]refVal{}
	below := func(less int64) map[refKey]bool {
		out := map[refKey]bool{}
		for k, v := range ref {
			if !v.countNull && v.count < less {
				out[k] = true
			}
		}
		return out
	}
	var version int64
	for step := 0; step < 300; step++ {
		switch op := rng.IntN(10); {
		case op < 5:
			var keys []refKey
			var vals []refVal
			for i := rng.IntN(30) + 1; i > 0; i-- {
				k := mkKey(fmt.Sprintf("k%d", rng.IntN(150)), false, 0)
				v := refVal{count: rng.Int64N(2000) - 1000, countNull: rng.IntN(6) == 0, sum: 1}
				keys, vals = append(keys, k), append(vals, v)
				ref[k] = norm(v)
			}
			put(t, s, mem, keys, vals)
		case op < 6:
			less := rng.Int64N(2000) - 1000
			want := len(below(less))
			n, err := s.EvictWhere(col, less)
			if err != nil || n != want {
				t.Fatalf("step %d: evict below %d: %d (%v), want %d", step, less, n, err, want)
			}
			for k := range below(less) {
				delete(ref, k)
			}
		default:
			version++
			if err := s.Commit(version); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				s.Close()
				if s, err = openDisk(cfg, opts, version); err != nil {
					t.Fatal(err)
				}
			}
			// The cache is empty (reopened, or over its 1-byte budget and
			// dropped by this first read): every row comes from pebble.
			s.startOp()
			less := rng.Int64N(2000) - 1000
			s.visited = 0
			got := scanWhereKeys(t, s, col, less)
			if len(got) != len(below(less)) || s.visited != int64(len(got)) {
				t.Fatalf("step %d: ScanWhere below %d after commit: %d rows, %d index entries visited; want %d rows, as many visits",
					step, less, len(got), s.visited, len(below(less)))
			}
		}
		if d := diff(ref, contents(t, s)); d != "" {
			t.Fatalf("step %d: store differs from the map:\n%s", step, d)
		}
		less := rng.Int64N(2000) - 1000
		// Scan's order (canonical key bytes) filtered by the map.
		want := below(less)
		var wantKeys []refKey
		if err := s.Scan(func(k, v arrow.Record) error {
			for _, key := range readKeys(k) {
				if want[key] {
					wantKeys = append(wantKeys, key)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := scanWhereKeys(t, s, col, less); fmt.Sprint(got) != fmt.Sprint(wantKeys) || len(got) != len(want) {
			t.Fatalf("step %d: ScanWhere below %d: %v, want %v", step, less, got, wantKeys)
		}
	}
}

// TestDiskReadsMissesInKeyOrder: a call's keys that the working set does
// not hold are read from pebble together, in key order, through one
// iterator; each key must still get exactly its own row. One Lookup mixes
// committed keys, keys never written or deleted in an earlier version,
// keys that are byte prefixes of committed keys (and have them as
// prefixes), keys that differ only in the last column, duplicates, a null
// key, keys before the first and after the last committed key, a key put
// and a committed key deleted in this batch (the working set decides).
func TestDiskReadsMissesInKeyOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem := checked(t)
	cfg := testConfig(vfs.NewMem(), mem)
	// Budget 1: the working set is dropped after every commit, so the
	// batch below reads every committed key from pebble.
	s, err := openDisk(cfg, DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref := map[refKey]refVal{}
	var ks []refKey
	var vs []refVal
	add := func(k refKey) {
		v := refVal{count: int64(len(ks)) + 1, sum: int64(len(ks)) * 7, note: fmt.Sprintf("v%d", len(ks))}
		ks, vs = append(ks, k), append(vs, v)
		ref[k] = v
	}
	for i := 0; i < 300; i += 2 { // the odd ones are never written
		add(mkKey(fmt.Sprintf("k%03d", i), false, 5))
	}
	for _, n := range []string{"a", "ab", "abc", "b", "m", "m\x00"} {
		add(mkKey(n, false, 5))
	}
	add(mkKey("w", false, 4)) // "w" at 5 and 6 are never written
	add(mkKey("", true, 1))
	put(t, s, mem, ks, vs)
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	gone := []refKey{mkKey("ab", false, 5), mkKey("k010", false, 5)}
	del(t, s, mem, gone)
	for _, k := range gone {
		delete(ref, k)
	}
	if err := s.Commit(2); err != nil {
		t.Fatal(err)
	}
	// Batch 3: the working set holds a new key and a tombstone.
	newKey, deleted := mkKey("c", false, 5), mkKey("b", false, 5)
	put(t, s, mem, []refKey{newKey}, []refVal{{count: 99, sum: 98, note: "new"}})
	ref[newKey] = refVal{count: 99, sum: 98, note: "new"}
	del(t, s, mem, []refKey{deleted})
	delete(ref, deleted)

	var ask []refKey
	for i := 0; i < 300; i++ {
		ask = append(ask, mkKey(fmt.Sprintf("k%03d", i), false, 5))
	}
	for _, n := range []string{"", "0", "a", "a", "ab", "abc", "abcd", "b", "c", "m", "m\x00", "m\x00\x00", "zzz"} {
		ask = append(ask, mkKey(n, false, 5))
	}
	ask = append(ask, mkKey("w", false, 4), mkKey("w", false, 5), mkKey("w", false, 6), mkKey("", true, 1),
		mkKey("", true, 2), mkKey("k001", false, 5), mkKey("k002", false, 5))
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(ask), func(i, j int) { ask[i], ask[j] = ask[j], ask[i] })
	kr := keyRecord(mem, ask)
	defer kr.Release()
	slots := make([]int32, len(ask))
	if err := s.Lookup(kr, slots); err != nil {
		t.Fatal(err)
	}
	var live []int32
	var liveKeys []refKey
	for i, k := range ask {
		_, want := ref[k]
		if got := slots[i] >= 0; got != want {
			t.Errorf("key %+v: found %v, want %v", k, got, want)
		}
		if slots[i] >= 0 {
			live, liveKeys = append(live, slots[i]), append(liveKeys, k)
		}
	}
	vr, err := s.Values(live)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range readVals(vr) {
		if want := ref[liveKeys[i]]; v != want {
			t.Errorf("key %+v: value %+v, want %+v", liveKeys[i], v, want)
		}
	}
	vr.Release()
	if err := s.Commit(3); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, s); !maps.Equal(got, ref) {
		t.Fatalf("after the batch: %s", diff(ref, got))
	}
}

// TestDiskValueTimeIndexKeepsUnchangedTimes: rows updated with their time
// column unchanged (a delete and a set of the same index entry in one
// commit, which the commit orders by key) keep their entry; rows whose
// time changed lose the old one.
func TestDiskValueTimeIndexKeepsUnchangedTimes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem := checked(t)
	cfg := testConfig(vfs.NewMem(), mem)
	cfg.TimeColumn = "count"
	const col, n = 2, 300
	s, err := openDisk(cfg, DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := make([]refKey, n)
	vals := make([]refVal, n)
	for i := range keys {
		keys[i] = mkKey(fmt.Sprintf("k%03d", i), false, 0)
		vals[i] = refVal{count: int64(i % 7), sum: 1}
	}
	put(t, s, mem, keys, vals)
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range vals {
		vals[i].sum = 2 // every row changes; a third of them move to time 100
		if i%3 == 0 {
			vals[i].count = 100
			moved++
		}
	}
	put(t, s, mem, keys, vals)
	if err := s.Commit(2); err != nil {
		t.Fatal(err)
	}
	s.startOp() // the cache is over its budget: dropped, so pebble answers
	for _, c := range []struct {
		less int64
		want int
	}{{7, n - moved}, {101, n}} {
		s.visited = 0
		if got := scanWhereKeys(t, s, col, c.less); len(got) != c.want || s.visited != int64(c.want) {
			t.Errorf("ScanWhere below %d: %d rows, %d index entries visited; want %d of each", c.less, len(got), s.visited, c.want)
		}
	}
}

// TestDiskStoresShareABlockCache: open disk stores with the same
// BlockCacheBytes share one pebble cache, held while any of them is open
// and dropped when the last one closes (Close idempotent), and a store
// still reads its rows after another closed.
func TestDiskStoresShareABlockCache(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem := checked(t)
	// Sizes no other test uses: other tests' stores may still be open.
	const one, two = 1<<20 + 4099, 2<<20 + 4099
	held := func() int {
		blockCaches.Lock()
		defer blockCaches.Unlock()
		n := 0
		for _, size := range []int64{one, two} {
			if blockCaches.m[size] != nil {
				n++
			}
		}
		return n
	}
	if n := held(); n != 0 {
		t.Fatalf("%d of the test's block caches held before any store opened", n)
	}
	open := func(lo int, size int64) *diskStore {
		cfg := testConfig(vfs.NewMem(), mem)
		cfg.Lo, cfg.Hi = lo, lo+1
		s, err := openDisk(cfg, DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1, BlockCacheBytes: size}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, c := open(0, one), open(1, one), open(2, two)
	if a.blocks != b.blocks || a.blocks == c.blocks || held() != 2 {
		t.Fatalf("same size shared: %v, other size shared: %v, %d caches held; want true, false, 2",
			a.blocks == b.blocks, a.blocks == c.blocks, held())
	}
	k := mkKey("k", false, 1)
	put(t, b, mem, []refKey{k}, []refVal{{count: 1, sum: 2, note: "x"}})
	if err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*diskStore{a, a, c} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := held(); n != 1 {
		t.Fatalf("%d block caches held with one store open, want 1", n)
	}
	if got := contents(t, b); len(got) != 1 || got[k] != (refVal{count: 1, sum: 2, note: "x"}) {
		t.Fatalf("the open store reads %v", got)
	}
	b.Close()
	if n := held(); n != 0 {
		t.Fatalf("%d block caches held after every store closed, want 0", n)
	}
}

// DeleteLive of committed keys the cache does not hold (a 1-byte budget
// drops it after every commit) writes the same files and leaves the same
// state as Delete on the memory backend, with deleted keys put back in the
// same batch; on a store with a value time index it is Delete.
func TestDiskDeleteLiveMatchesDelete(t *testing.T) {
	mem := checked(t)
	for _, timeCol := range []string{"", "sum"} {
		fsd, fsm := vfs.NewMem(), vfs.NewMem()
		cd, cm := testConfig(fsd, mem), testConfig(fsm, mem)
		cd.TimeColumn, cm.TimeColumn = timeCol, timeCol
		d, err := OpenDisk(cd, DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1}, 0)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Open(cm, 0)
		if err != nil {
			t.Fatal(err)
		}
		var keys []refKey
		var vals []refVal
		for i := 0; i < 1000; i++ {
			keys = append(keys, mkKey(fmt.Sprintf("k%04d", i), false, int64(i%7)))
			vals = append(vals, refVal{count: int64(i), sum: int64(i % 50), note: "n"})
		}
		for _, s := range []Store{d, m} {
			put(t, s, mem, keys, vals)
			if err := s.Commit(1); err != nil {
				t.Fatal(err)
			}
		}
		gone := keys[100:400]
		k := keyRecord(mem, gone)
		if err := d.DeleteLive(k); err != nil {
			t.Fatal(err)
		}
		k.Release()
		del(t, m, mem, gone)
		for _, s := range []Store{d, m} {
			put(t, s, mem, keys[390:410], vals[390:410]) // ten of them back, ten changed
			if err := s.Commit(2); err != nil {
				t.Fatal(err)
			}
		}
		if d.Len() != m.Len() || d.Len() != 1000-290 {
			t.Fatalf("time column %q: %d keys on disk, %d in memory, want 710", timeCol, d.Len(), m.Len())
		}
		if diff := diff(contents(t, m), contents(t, d)); diff != "" {
			t.Fatalf("time column %q: disk differs from memory:\n%s", timeCol, diff)
		}
		for _, f := range fsm.Files() {
			a, _ := fsm.ReadFile(f)
			b, err := fsd.ReadFile(f)
			if err != nil || string(a) != string(b) {
				t.Fatalf("time column %q: %s differs between the backends (%v)", timeCol, f, err)
			}
		}
		d.Close()
		m.Close()
	}
}

// TestDiskLogIndexesFollowHowLongRowsStay: a Log store with a TimeColumn
// and a PartKey starts without its index database; when its live rows
// reach IndexOnLife times what a commit adds it builds one (ScanWhere then
// reads only what it returns), and drops it when they fall below
// IndexOffLife. IndexNever never builds it, and a reopened store finds
// the index database in the state it was left.
func TestDiskLogIndexesFollowHowLongRowsStay(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, mode := range []IndexMode{IndexAuto, IndexNever} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			mem := checked(t)
			cfg := testConfig(vfs.NewMem(), mem)
			cfg.TimeColumn, cfg.PartKey, cfg.Log = "wend", []string{"count"}, true
			cfg.SnapshotEvery = 1000
			opts := DiskOptions{LocalDir: t.TempDir(), LogIndexes: mode}
			st, err := OpenDisk(cfg, opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { st.Close() }()
			d := st.(*diskStore)
			index := d.indexDir()
			exists := func() bool { _, err := os.Stat(index); return err == nil }
			// 10 rows a commit at time v*1000, none deleted: the ratio
			// of live rows to added ones is the commit count.
			var v int64
			commit := func(rows int) {
				t.Helper()
				v++
				var keys []refKey
				var vals []refVal
				for i := 0; i < rows; i++ {
					keys, vals = append(keys, mkKey(fmt.Sprintf("k%d-%d", v, i), false, v*1000)), append(vals, refVal{count: int64(i)})
				}
				if rows > 0 {
					put(t, st, mem, keys, vals)
				}
				if err := st.Commit(v); err != nil {
					t.Fatal(err)
				}
			}
			for v < 20 {
				commit(10)
				if st.Indexed() || exists() {
					t.Fatalf("commit %d (%d live rows): indexed already", v, st.Len())
				}
			}
			for v < 60 {
				commit(10)
			}
			if st.Indexed() != (mode == IndexAuto) || exists() != (mode == IndexAuto) {
				t.Fatalf("mode %d, %d commits of 10 rows: Indexed() = %v, index database %v", mode, v, st.Indexed(), exists())
			}
			// Reopened: the same, without rebuilding.
			st.Close()
			if st, err = OpenDisk(cfg, opts, v); err != nil {
				t.Fatal(err)
			}
			d = st.(*diskStore)
			if st.Loaded() || st.Indexed() != (mode == IndexAuto) {
				t.Fatalf("reopened: Loaded() = %v, Indexed() = %v", st.Loaded(), st.Indexed())
			}
			if mode != IndexAuto {
				return
			}
			d.visited = 0
			if got := scanWhereKeys(t, st, 1, 3000); len(got) != 20 || d.visited != 20 {
				t.Fatalf("ScanWhere below 3000 on the index: %d rows, %d index entries read; want 20 and 20", len(got), d.visited)
			}
			// Evict all but the last two commits' rows, then commits
			// that add as many as stay: the ratio falls, the index goes.
			if n, err := st.EvictWhere(1, (v-1)*1000); err != nil || n != int(v-2)*10 {
				t.Fatalf("evict: %d, %v", n, err)
			}
			commit(20)
			commit(20)
			if st.Indexed() || exists() {
				t.Fatalf("%d live rows, 20 added a commit: still indexed", st.Len())
			}
			if got := scanWhereKeys(t, st, 1, (v+1)*1000); len(got) != st.Len() {
				t.Fatalf("ScanWhere by a scan: %d rows of %d", len(got), st.Len())
			}
		})
	}
}
