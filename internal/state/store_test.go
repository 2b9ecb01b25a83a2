package state

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// The test state: (name string nullable, window end timestamp) ->
// (count int64 nullable, sum int64, note string nullable).
var (
	testKeySchema = arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "wend", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
	}, nil)
	testValueSchema = arrow.NewSchema([]arrow.Field{
		{Name: "count", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "sum", Type: arrow.PrimitiveTypes.Int64},
		{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
)

type refKey struct {
	name  string
	null  bool
	wend  int64
	label string
}

type refVal struct {
	count     int64
	countNull bool
	sum       int64
	note      string
	noteNull  bool
}

// mkKey and norm give null fields their zero value, as the readers do.
func mkKey(name string, null bool, wend int64) refKey {
	if null {
		name = ""
	}
	return refKey{name: name, null: null, wend: wend}
}

func norm(v refVal) refVal {
	if v.countNull {
		v.count = 0
	}
	if v.noteNull {
		v.note = ""
	}
	return v
}

func checked(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func testConfig(fs vfs.FS, mem memory.Allocator) Config {
	return Config{
		FS: fs, Dir: "/ck/state", StoreSpec: StoreSpec{Operator: "agg-0", KeyGroups: 128, Lo: 32, Hi: 64,
			KeySchema: testKeySchema, ValueSchema: testValueSchema, SnapshotEvery: 3, Allocator: mem},
	}
}

func keyRecord(mem memory.Allocator, keys []refKey) arrow.Record {
	b := array.NewRecordBuilder(mem, testKeySchema)
	defer b.Release()
	for _, k := range keys {
		if k.null {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(k.name)
		}
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(k.wend))
	}
	return b.NewRecord()
}

func valueRecord(mem memory.Allocator, vals []refVal) arrow.Record {
	b := array.NewRecordBuilder(mem, testValueSchema)
	defer b.Release()
	for _, v := range vals {
		if v.countNull {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(v.count)
		}
		b.Field(1).(*array.Int64Builder).Append(v.sum)
		if v.noteNull {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(v.note)
		}
	}
	return b.NewRecord()
}

func readKeys(r arrow.Record) []refKey {
	names := r.Column(0).(*array.String)
	wends := r.Column(1).(*array.Timestamp)
	out := make([]refKey, r.NumRows())
	for i := range out {
		out[i] = refKey{name: names.Value(i), null: names.IsNull(i), wend: int64(wends.Value(i))}
		if out[i].null {
			out[i].name = ""
		}
	}
	return out
}

func readVals(r arrow.Record) []refVal {
	c := r.Column(0).(*array.Int64)
	s := r.Column(1).(*array.Int64)
	n := r.Column(2).(*array.String)
	out := make([]refVal, r.NumRows())
	for i := range out {
		out[i] = refVal{sum: s.Value(i), countNull: c.IsNull(i), noteNull: n.IsNull(i)}
		if !out[i].countNull {
			out[i].count = c.Value(i)
		}
		if !out[i].noteNull {
			out[i].note = n.Value(i)
		}
	}
	return out
}

// keyCodec is the canonical key codec of keys' columns (what the store
// orders and compares by).
func keyCodec(t testing.TB, keys arrow.Record) *codec {
	t.Helper()
	kt, err := typesOf(keys.Schema())
	if err != nil {
		t.Fatal(err)
	}
	return newCodec(kt)
}

// contents scans s into a map, checking the scan order is strictly
// ascending in key bytes.
func contents(t *testing.T, s Store) map[refKey]refVal {
	t.Helper()
	got := map[refKey]refVal{}
	var prev []byte
	err := s.Scan(func(keys, values arrow.Record) error {
		ks, vs := readKeys(keys), readVals(values)
		buf, offs := keyCodec(t, keys).encode(keys.Columns(), len(ks), nil, nil)
		for i := range ks {
			kb := buf[offs[i]:offs[i+1]]
			if prev != nil && string(prev) >= string(kb) {
				t.Errorf("scan order: %x after %x", kb, prev)
			}
			prev = append([]byte(nil), kb...)
			got[ks[i]] = vs[i]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func put(t testing.TB, s Store, mem memory.Allocator, keys []refKey, vals []refVal) {
	t.Helper()
	k, v := keyRecord(mem, keys), valueRecord(mem, vals)
	defer k.Release()
	defer v.Release()
	if err := s.Put(k, v, nil); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, s Store, mem memory.Allocator, keys []refKey) {
	t.Helper()
	k := keyRecord(mem, keys)
	defer k.Release()
	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
}

func diff(want, got map[refKey]refVal) string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			out = append(out, fmt.Sprintf("missing %+v", k))
		} else if g != w {
			out = append(out, fmt.Sprintf("%+v: got %+v want %+v", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("extra %+v", k))
		}
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// TestRandomOperationsMatchAGoMap runs seeded random puts, updates, deletes
// and evictions over many versions (snapshot every 3, some batches
// aborted) against a Go map, then reopens every version and compares.
func TestRandomOperationsMatchAGoMap(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: set seed in the test)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, mem)
	s, err := testOpen(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ref := map[refKey]refVal{}
	atVersion := []map[refKey]refVal{maps.Clone(ref)}
	randKey := func() refKey {
		return mkKey(fmt.Sprintf("k%d", rng.IntN(300)), rng.IntN(40) == 0, int64(rng.IntN(20))*1000)
	}
	randVal := func() refVal {
		return norm(refVal{count: rng.Int64N(100), countNull: rng.IntN(10) == 0, sum: rng.Int64() >> 1,
			note: strings.Repeat("n", rng.IntN(30)), noteNull: rng.IntN(5) == 0})
	}
	const versions = 40
	for v := int64(1); v <= versions; v++ {
		work := maps.Clone(ref)
		for op := rng.IntN(6); op >= 0; op-- {
			switch r := rng.IntN(10); {
			case r < 5: // put, duplicates included: the last row wins
				n := rng.IntN(50)
				keys, vals := make([]refKey, n), make([]refVal, n)
				for i := range keys {
					keys[i], vals[i] = randKey(), randVal()
					work[keys[i]] = vals[i]
				}
				put(t, s, mem, keys, vals)
			case r < 7: // update through Lookup slots
				n := rng.IntN(30)
				var keys []refKey
				for i := 0; i < n; i++ {
					keys = append(keys, randKey())
				}
				kr := keyRecord(mem, keys)
				slots := make([]int32, n)
				if err := s.Lookup(kr, slots); err != nil {
					t.Fatal(err)
				}
				kr.Release()
				var live []int32
				var vals []refVal
				for i, sl := range slots {
					if _, ok := work[keys[i]]; ok != (sl >= 0) {
						t.Fatalf("version %d: lookup %+v gave slot %d, reference has it: %v", v, keys[i], sl, ok)
					}
					if sl >= 0 {
						nv := randVal()
						live, vals = append(live, sl), append(vals, nv)
						work[keys[i]] = nv
					}
				}
				vr := valueRecord(mem, vals)
				if err := s.Update(live, vr); err != nil {
					t.Fatal(err)
				}
				vr.Release()
			case r < 9:
				n := rng.IntN(40)
				keys := make([]refKey, n)
				for i := range keys {
					keys[i] = randKey()
					delete(work, keys[i])
				}
				del(t, s, mem, keys)
			default:
				less := int64(rng.IntN(8)) * 1000
				want := 0
				for k := range work {
					if k.wend < less {
						delete(work, k)
						want++
					}
				}
				got, err := s.EvictWhere(1, less)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("version %d: EvictWhere(<%d) evicted %d, want %d", v, less, got, want)
				}
			}
		}
		if s.Len() != len(work) {
			t.Fatalf("version %d: Len %d, want %d", v, s.Len(), len(work))
		}
		if rng.IntN(8) == 0 {
			if err := s.Abort(); err != nil {
				t.Fatal(err)
			}
			if d := diff(ref, contents(t, s)); d != "" {
				t.Fatalf("version %d after Abort:\n%s", v, d)
			}
		} else {
			ref = work
		}
		if err := s.Commit(v); err != nil {
			t.Fatal(err)
		}
		atVersion = append(atVersion, maps.Clone(ref))
		if d := diff(ref, contents(t, s)); d != "" {
			t.Fatalf("version %d:\n%s", v, d)
		}
	}
	for v := int64(0); v <= versions; v++ {
		r, err := testOpen(cfg, v)
		if err != nil {
			t.Fatalf("reopen version %d: %v", v, err)
		}
		if d := diff(atVersion[v], contents(t, r)); d != "" {
			t.Errorf("reopened version %d:\n%s", v, d)
		}
		if r.Len() != len(atVersion[v]) {
			t.Errorf("reopened version %d: Len %d, want %d", v, r.Len(), len(atVersion[v]))
		}
		r.Close()
	}
}

func TestLookupValuesAndDelete(t *testing.T) {
	mem := checked(t)
	s, err := testOpen(testConfig(vfs.NewMem(), mem), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b, c := mkKey("a", false, 1), mkKey("", true, 1), mkKey("a", false, 2)
	put(t, s, mem, []refKey{a, b, a}, []refVal{{count: 1, sum: 1}, {count: 2, sum: 2, noteNull: true}, {count: 3, sum: 3, note: "x"}})
	kr := keyRecord(mem, []refKey{a, b, c})
	defer kr.Release()
	slots := make([]int32, 3)
	if err := s.Lookup(kr, slots); err != nil {
		t.Fatal(err)
	}
	if slots[0] < 0 || slots[1] < 0 || slots[2] != -1 {
		t.Fatalf("slots %v: want a and the null-name key present, c absent", slots)
	}
	vr, err := s.Values(slots)
	if err != nil {
		t.Fatal(err)
	}
	got := readVals(vr)
	vr.Release()
	want := []refVal{{count: 3, sum: 3, note: "x"}, {count: 2, sum: 2, noteNull: true}, {countNull: true, noteNull: true}}
	if !slices.Equal(got, want) {
		t.Fatalf("values %+v, want %+v", got, want)
	}
	del(t, s, mem, []refKey{a, c})
	if err := s.Lookup(kr, slots); err != nil {
		t.Fatal(err)
	}
	if slots[0] != -1 || slots[1] < 0 || s.Len() != 1 {
		t.Fatalf("after delete: slots %v, Len %d", slots, s.Len())
	}
	if _, err := s.Values([]int32{0, 1, 2}); err == nil {
		t.Fatal("Values of a freed slot: want an error")
	}
}

func TestAbortDropsUncommittedChanges(t *testing.T) {
	mem := checked(t)
	cfg := testConfig(vfs.NewMem(), mem)
	s, err := testOpen(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := mkKey("a", false, 1), mkKey("b", false, 1)
	put(t, s, mem, []refKey{a}, []refVal{{count: 1}})
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	put(t, s, mem, []refKey{a, b}, []refVal{{count: 9}, {count: 2}})
	del(t, s, mem, []refKey{a})
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	want := map[refKey]refVal{a: {count: 1}}
	if d := diff(want, contents(t, s)); d != "" {
		t.Fatalf("after Abort:\n%s", d)
	}
	if s.Version() != 1 {
		t.Fatalf("Version %d after Abort, want 1", s.Version())
	}
	if err := s.Commit(3); err == nil {
		t.Fatal("Commit(3) at version 1: want an error")
	}
	if err := s.Commit(2); err != nil {
		t.Fatal(err)
	}
}

// TestCommitFailureIsRetryable fails every durable write of a commit in
// turn; the store stays at its version, the retry succeeds, and after a
// crash the files load the last successful commit.
func TestCommitFailureIsRetryable(t *testing.T) {
	mem := checked(t)
	for fail := 0; fail < 2; fail++ { // version 3 writes a delta and a snapshot
		t.Run(fmt.Sprintf("write %d of the commit fails", fail), func(t *testing.T) {
			fs := vfs.NewMem()
			cfg := testConfig(fs, mem)
			s, err := testOpen(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for v := int64(1); v <= 2; v++ {
				put(t, s, mem, []refKey{mkKey("k", false, v)}, []refVal{{count: v}})
				if err := s.Commit(v); err != nil {
					t.Fatal(err)
				}
			}
			put(t, s, mem, []refKey{mkKey("k", false, 3)}, []refVal{{count: 3}})
			fs.FailAfter(fail, errors.New("disk full"))
			if err := s.Commit(3); err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Fatalf("Commit with failing FS: %v", err)
			}
			if s.Version() != 2 {
				t.Fatalf("Version %d after a failed commit, want 2", s.Version())
			}
			fs.FailAfter(-1, nil)
			fs.Crash()
			r, err := testOpen(cfg, 2)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len() != 2 {
				t.Fatalf("version 2 after crash has %d keys, want 2", r.Len())
			}
			r.Close()
			if err := s.Commit(3); err != nil {
				t.Fatal(err)
			}
			r, err = testOpen(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len() != 3 {
				t.Fatalf("version 3 has %d keys, want 3", r.Len())
			}
			r.Close()
		})
	}
}

// commitVersions writes versions 1..n of a small deterministic workload.
func commitVersions(t *testing.T, cfg Config, n int64) {
	t.Helper()
	s, err := testOpen(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for v := int64(1); v <= n; v++ {
		var keys []refKey
		var vals []refVal
		for i := int64(0); i < 5; i++ {
			keys = append(keys, mkKey(fmt.Sprintf("k%d", (v*3+i)%11), false, v%4*1000))
			vals = append(vals, refVal{count: v, sum: 0x1122334455667788, note: "n"})
		}
		put(t, s, cfg.Allocator, keys, vals)
		del(t, s, cfg.Allocator, []refKey{mkKey(fmt.Sprintf("k%d", v%11), false, (v-1)%4*1000)})
		if err := s.Commit(v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBrokenFilesAreErrorsNamingTheFile(t *testing.T) {
	mem := checked(t)
	delta2 := "/ck/state/agg-0/32-64/2.delta.arrow"
	reformat := func(t *testing.T, data []byte, key, val string) []byte {
		return rewriteMetadata(t, mem, data, key, val)
	}
	cases := []struct {
		name    string
		damage  func(t *testing.T, fs *vfs.Mem)
		cfg     func(c *Config)
		wantErr error
		wantIn  string
	}{
		{name: "a missing delta in the chain is ErrMissing naming it",
			damage:  func(t *testing.T, fs *vfs.Mem) { fs.Remove(delta2) },
			wantErr: ErrMissing, wantIn: delta2},
		{name: "a truncated delta is ErrCorrupt naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return b[:len(b)/2] })
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "a flipped value byte fails the checksum",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte {
					i := strings.Index(string(b), "\x88\x77\x66\x55\x44\x33\x22\x11")
					if i < 0 {
						t.Fatal("value bytes not found in the file")
					}
					b[i] ^= 1
					return b
				})
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "an empty file is ErrCorrupt naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return nil })
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "an unknown format version is ErrVersion naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return reformat(t, b, mdFormat, "3") })
			},
			wantErr: ErrVersion, wantIn: delta2},
		{name: "format 2 without evictions is ErrCorrupt naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return reformat(t, b, mdFormat, "2") })
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "evictions in a format 1 file are ErrCorrupt naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return reformat(t, b, mdEvict, "1:5") })
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "an eviction on a string column is ErrCorrupt naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte {
					return reformat(t, reformat(t, b, mdFormat, "2"), mdEvict, "0:5")
				})
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "another key-group range is ErrCorrupt naming it",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return reformat(t, b, mdRange, "0-32") })
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "a different value schema is ErrSchema naming both schemas",
			cfg: func(c *Config) {
				c.ValueSchema = arrow.NewSchema([]arrow.Field{
					{Name: "count", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
					{Name: "sum", Type: arrow.PrimitiveTypes.Int64},
					{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
				}, nil)
			},
			wantErr: ErrSchema, wantIn: "count: int32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			cfg := testConfig(fs, mem)
			cfg.SnapshotEvery = 10
			commitVersions(t, cfg, 4)
			if tc.damage != nil {
				tc.damage(t, fs)
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if s, err := testOpen(cfg, 1); err != nil && tc.cfg == nil {
				t.Fatalf("version 1 does not need the damaged file: %v", err)
			} else if err == nil {
				s.Close()
			}
			_, err := testOpen(cfg, 4)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Open: %v\nwant %v mentioning %q", err, tc.wantErr, tc.wantIn)
			}
			if tc.wantErr == ErrSchema && !strings.Contains(err.Error(), "count: int64") {
				t.Fatalf("schema error does not name the file's schema: %v", err)
			}
		})
	}
}

func TestPurgeKeepsLaterVersionsLoadable(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, mem)
	commitVersions(t, cfg, 20)
	other := cfg
	other.Lo, other.Hi = 0, 32
	commitVersions(t, other, 2) // no snapshot <= keepFrom: keeps everything
	want := map[int64]map[refKey]refVal{}
	for v := int64(14); v <= 20; v++ {
		s, err := testOpen(cfg, v)
		if err != nil {
			t.Fatal(err)
		}
		want[v] = contents(t, s)
		s.Close()
	}
	if err := Purge(fs, cfg.Dir, 14); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range fs.Files() {
		names = append(names, strings.TrimPrefix(p, "/ck/state/agg-0/"))
	}
	// Snapshots at 9 and 15 (snapshotDue: the deltas of three versions
	// hold fewer rows than the state, those of six more): 9 is the last at
	// or before 14.
	wantNames := []string{"0-32/1.delta.arrow", "0-32/2.delta.arrow",
		"32-64/10.delta.arrow", "32-64/11.delta.arrow", "32-64/12.delta.arrow", "32-64/13.delta.arrow",
		"32-64/14.delta.arrow", "32-64/15.delta.arrow", "32-64/15.snapshot.arrow", "32-64/16.delta.arrow",
		"32-64/17.delta.arrow", "32-64/18.delta.arrow", "32-64/19.delta.arrow", "32-64/20.delta.arrow",
		"32-64/9.snapshot.arrow"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("after Purge(14):\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(wantNames, "\n"))
	}
	for v := int64(14); v <= 20; v++ {
		s, err := testOpen(cfg, v)
		if err != nil {
			t.Fatalf("version %d after purge: %v", v, err)
		}
		if d := diff(want[v], contents(t, s)); d != "" {
			t.Errorf("version %d after purge:\n%s", v, d)
		}
		s.Close()
	}
	if _, err := testOpen(cfg, 8); !errors.Is(err, ErrMissing) {
		t.Fatalf("version 8 after purge: %v, want ErrMissing", err)
	}
}

// TestCommitBytesAreDeterministic: the same operations give the same files,
// and a store reopened from disk writes the same snapshot as one that ran
// continuously.
func TestCommitBytesAreDeterministic(t *testing.T) {
	mem := checked(t)
	fs1, fs2 := vfs.NewMem(), vfs.NewMem()
	commitVersions(t, testConfig(fs1, mem), 9)
	commitVersions(t, testConfig(fs2, mem), 8)
	s, err := testOpen(testConfig(fs2, mem), 7) // snapshot 6 + deltas 7
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Replay version 9 on a store reopened at 8.
	fs3 := vfs.NewMem()
	cfg3 := testConfig(fs3, mem)
	commitVersions(t, cfg3, 8)
	s, err = testOpen(cfg3, 8)
	if err != nil {
		t.Fatal(err)
	}
	{
		v := int64(9)
		var keys []refKey
		var vals []refVal
		for i := int64(4); i >= 0; i-- { // another order, same net change
			keys = append(keys, mkKey(fmt.Sprintf("k%d", (v*3+i)%11), false, v%4*1000))
			vals = append(vals, refVal{count: v, sum: 0x1122334455667788, note: "n"})
		}
		put(t, s, mem, keys, vals)
		del(t, s, mem, []refKey{mkKey(fmt.Sprintf("k%d", v%11), false, (v-1)%4*1000)})
		if err := s.Commit(v); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, p := range fs1.Files() {
		a, _ := fs1.ReadFile(p)
		c, err := fs3.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(c) {
			t.Errorf("%s differs between a continuous and a reopened run", p)
		}
		if b, err := fs2.ReadFile(p); err == nil && string(a) != string(b) {
			t.Errorf("%s differs between two identical runs", p)
		}
	}
	if !slices.Contains(fs1.Files(), filepath.Join(testConfig(fs1, mem).Dir, "agg-0/32-64/9.snapshot.arrow")) {
		t.Fatalf("no snapshot 9 in %v", fs1.Files())
	}
}

func TestEvictWhere(t *testing.T) {
	mem := checked(t)
	s, err := testOpen(testConfig(vfs.NewMem(), mem), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var keys []refKey
	var vals []refVal
	for i := 0; i < 1000; i++ {
		keys = append(keys, mkKey(strings.Repeat("x", i%50), i%7 == 0, int64(i%10)-3))
		vals = append(vals, refVal{count: int64(i)})
	}
	put(t, s, mem, keys, vals)
	before := s.Len()
	n, err := s.EvictWhere(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for k := range contents(t, s) {
		if k.wend < 0 {
			t.Fatalf("%+v survived eviction below 0", k)
		}
	}
	if n == 0 || s.Len() != before-n {
		t.Fatalf("evicted %d, Len %d -> %d", n, before, s.Len())
	}
	if _, err := s.EvictWhere(0, 0); err == nil {
		t.Fatal("EvictWhere on a string column: want an error")
	}
	// EvictLive refuses a key not below the bound and a column that is not
	// a signed integer key column, changing nothing (a key that is not live
	// the caller vouches against: the disk backend does not look); given
	// the keys below a bound it leaves what EvictWhere does.
	var below []refKey
	for k := range contents(t, s) {
		if k.wend < 3 {
			below = append(below, k)
		}
	}
	for _, c := range []struct {
		what string
		keys []refKey
		col  int
		less int64
	}{
		{"a key not below the bound", below, 1, 2},
		{"a string column", below, 0, 3},
		{"a value column", below, 2, 3},
	} {
		n := s.Len()
		k := keyRecord(mem, c.keys)
		err := s.EvictLive(k, c.col, c.less)
		k.Release()
		if err == nil || s.Len() != n {
			t.Fatalf("EvictLive of %s: %v, Len %d -> %d; want an error and no change", c.what, err, n, s.Len())
		}
	}
	k := keyRecord(mem, below)
	defer k.Release()
	if err := s.EvictLive(k, 1, 3); err != nil {
		t.Fatal(err)
	}
	for k := range contents(t, s) {
		if k.wend < 3 {
			t.Fatalf("%+v survived EvictLive below 3", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(vfs.NewMem(), memory.DefaultAllocator)
	cases := []struct {
		name string
		edit func(c *Config)
	}{
		{"a nil FS is refused", func(c *Config) { c.FS = nil }},
		{"an operator with a slash is refused", func(c *Config) { c.Operator = "a/b" }},
		{"an empty key-group range is refused", func(c *Config) { c.Lo, c.Hi = 5, 5 }},
		{"a range beyond the key groups is refused", func(c *Config) { c.Hi = 129 }},
		{"a key schema without fields is refused", func(c *Config) { c.KeySchema = arrow.NewSchema(nil, nil) }},
		{"a list key is refused", func(c *Config) {
			c.KeySchema = arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
		}},
		{"a value named like a key is refused", func(c *Config) {
			c.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.PrimitiveTypes.Int64}}, nil)
		}},
		{"a field named __deleted is refused", func(c *Config) {
			c.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: deletedField, Type: arrow.PrimitiveTypes.Int64}}, nil)
		}},
		{"a PartKey of every key column is refused", func(c *Config) { c.PartKey = []string{"name", "wend"} }},
		{"a PartKey naming a column twice is refused", func(c *Config) { c.PartKey = []string{"name", "name"} }},
		{"a PartKey naming no field is refused", func(c *Config) { c.PartKey = []string{"nope"} }},
		{"a PartKey naming a value column twice is refused", func(c *Config) { c.PartKey = []string{"count", "count"} }},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, part := range [][]string{{"name"}, {"wend"}, {"count"}, {"note", "name"}, {"name", "wend", "sum"}} {
		c := good
		c.PartKey = part
		if err := c.Validate(); err != nil {
			t.Fatalf("PartKey %v: %v", part, err)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("Validate passed")
			}
		})
	}
}

func TestClosedStoreRefusesCalls(t *testing.T) {
	mem := checked(t)
	s, err := testOpen(testConfig(vfs.NewMem(), mem), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
}

// TestEvictionCompactsAndStaysCorrect evicts most of a store with long
// keys and string values, so the key arena and the value heap compact, and
// checks the result against a reference, live and after reopening.
func TestEvictionCompactsAndStaysCorrect(t *testing.T) {
	mem := checked(t)
	cfg := testConfig(vfs.NewMem(), mem)
	s, err := testOpen(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[refKey]refVal{}
	var keys []refKey
	var vals []refVal
	for i := 0; i < 20000; i++ {
		k := mkKey(fmt.Sprintf("%0100d", i), false, int64(i%10))
		v := refVal{count: int64(i), sum: int64(-i), note: fmt.Sprintf("%0100d", i)}
		keys, vals = append(keys, k), append(vals, v)
		if k.wend >= 9 {
			want[k] = v
		}
	}
	put(t, s, mem, keys, vals)
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	arena := cap(s.(*memStore).arena)
	if n, err := s.EvictWhere(1, 9); err != nil || n != 18000 {
		t.Fatalf("EvictWhere: %d, %v", n, err)
	}
	// Overwrite the survivors' notes so the value heap compacts too; empty
	// notes (not null) have offsets at the end of the old heap.
	var ks []refKey
	var vs []refVal
	i := 0
	for k, v := range want {
		v.note = "short"
		if i++; i%2 == 0 {
			v.note = ""
		}
		want[k] = v
		ks, vs = append(ks, k), append(vs, v)
	}
	put(t, s, mem, ks, vs)
	if d := diff(want, contents(t, s)); d != "" {
		t.Fatalf("after eviction:\n%s", d)
	}
	if err := s.Commit(2); err != nil {
		t.Fatal(err)
	}
	// Evicted keys stay until the commit writes their tombstones.
	if cap(s.(*memStore).arena) >= arena/2 {
		t.Fatalf("key arena kept %d of %d bytes after evicting 90%% and committing", cap(s.(*memStore).arena), arena)
	}
	r, err := testOpen(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d := diff(want, contents(t, r)); d != "" {
		t.Fatalf("reopened:\n%s", d)
	}
}

func TestScanWhereSeesExactlyTheEntriesBelowTheBound(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ks := arrow.NewSchema([]arrow.Field{{Name: "end", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	vs := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	st, err := testOpen(Config{FS: vfs.NewMem(), Dir: "/s", StoreSpec: StoreSpec{Operator: "op", KeyGroups: 4, Lo: 0, Hi: 4, KeySchema: ks, ValueSchema: vs, Allocator: mem}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kb, vb := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
	for i := int64(0); i < 100; i++ {
		if i == 7 {
			kb.AppendNull()
		} else {
			kb.Append((i * 37) % 100)
		}
		vb.Append(i)
	}
	kc, vc := kb.NewArray(), vb.NewArray()
	kr, vr := array.NewRecord(ks, []arrow.Array{kc}, 100), array.NewRecord(vs, []arrow.Array{vc}, 100)
	kb.Release()
	vb.Release()
	kc.Release()
	vc.Release()
	if err := st.Put(kr, vr, nil); err != nil {
		t.Fatal(err)
	}
	kr.Release()
	vr.Release()
	var got []int64
	err = st.ScanWhere(0, 30, func(k, v arrow.Record) error {
		for i := 0; i < int(k.NumRows()); i++ {
			got = append(got, k.Column(0).(*array.Int64).Value(i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for i := int64(0); i < 100; i++ {
		if i != 7 && (i*37)%100 < 30 {
			want = append(want, (i*37)%100)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ScanWhere(< 30) saw %v, want %v", got, want)
	}
}

// Snapshots follow the changes, not the state: with 1 000 keys and k of
// them changed a version (K = 3), a snapshot is written once the deltas
// since the last one hold 1 000 rows, or after 10 K-intervals without one;
// and a store reopened from its files at every version decides exactly as
// one that ran on (the decision rests on the committed files only).
func TestSnapshotsFollowTheChangesNotTheState(t *testing.T) {
	for _, c := range []struct {
		changed int
		want    []int64
	}{
		{50, []int64{3, 24}}, // 1 000 rows first, then 20 versions of 50
		{1, []int64{3, 33}},  // too few changes: the gap bound (30 versions)
		{1000, []int64{3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39}},
	} {
		for _, reopen := range []bool{false, true} {
			mem := checked(t)
			fs := vfs.NewMem()
			cfg := testConfig(fs, mem)
			s, err := testOpen(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			for v := int64(1); v <= 40; v++ {
				n := c.changed
				if v == 1 {
					n = 1000
				}
				var keys []refKey
				var vals []refVal
				for i := 0; i < n; i++ {
					keys = append(keys, mkKey(fmt.Sprintf("k%d", (int(v)*c.changed+i)%1000), false, 0))
					vals = append(vals, refVal{count: v, note: "n"})
				}
				put(t, s, mem, keys, vals)
				if err := s.Commit(v); err != nil {
					t.Fatal(err)
				}
				if reopen {
					s.Close()
					if s, err = testOpen(cfg, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			if s.Len() != 1000 {
				t.Errorf("%d keys at version 40, want 1000", s.Len())
			}
			s.Close()
			var snaps []int64
			for _, p := range fs.Files() {
				if v, k, ok := parseName(filepath.Base(p)); ok && k == kindSnapshot {
					snaps = append(snaps, v)
				}
			}
			slices.Sort(snaps)
			if !slices.Equal(snaps, c.want) {
				t.Errorf("%d keys changed a version (reopened at each: %v): snapshots at %v, want %v", c.changed, reopen, snaps, c.want)
			}
		}
	}
}
