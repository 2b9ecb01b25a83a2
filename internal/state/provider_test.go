package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// The Provider contract, on FileProvider: every test runs on the checked
// allocator, so a parked record or store that is not released fails it.

// commitBatch runs one batch of a stateful task on p: open version, put
// keys (value sum = version), commit version+1 and keep the store with aux.
func commitBatch(t testing.TB, p Provider, spec StoreSpec, version int64, aux arrow.Record, names ...string) Store {
	t.Helper()
	st, err := p.Open(spec, version)
	if err != nil {
		t.Fatalf("open version %d: %v", version, err)
	}
	var keys []refKey
	var vals []refVal
	for _, n := range names {
		keys = append(keys, mkKey(n, false, 1))
		vals = append(vals, refVal{count: 1, sum: version, noteNull: true})
	}
	put(t, st, spec.Allocator, keys, vals)
	if err := st.Commit(version + 1); err != nil {
		t.Fatalf("commit version %d: %v", version+1, err)
	}
	var recs []arrow.Record
	if aux != nil {
		recs = []arrow.Record{aux}
	}
	p.Keep(st, recs)
	return st
}

func names(t *testing.T, s Store) []string {
	t.Helper()
	var out []string
	for k := range contents(t, s) {
		out = append(out, k.name)
	}
	slices.Sort(out)
	return out
}

func TestProviderReusesTheWarmStoreAtTheNextVersion(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec

	aux := keyRecord(mem, []refKey{mkKey("derived", false, 1)})
	kept := commitBatch(t, p, spec, 0, aux, "a")
	st, got, err := p.OpenAux(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st != kept {
		t.Fatal("Open at the version the kept store committed loaded a new store, want the warm one")
	}
	if len(got) != 1 || got[0] != aux {
		t.Fatalf("OpenAux returned records %v, want the one parked with Keep", got)
	}
	got[0].Release()
	// The warm store really is the state: a batch on it, then a cold load
	// from a second provider, agree.
	put(t, st, mem, []refKey{mkKey("b", false, 1)}, []refVal{{count: 1, sum: 1, noteNull: true}})
	if err := st.Commit(2); err != nil {
		t.Fatal(err)
	}
	p.Keep(st, nil)
	cold := testProvider(fs, "/ck/state")
	defer cold.Close()
	loaded, err := cold.Open(spec, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	if loaded == st {
		t.Fatal("a second provider on the same directory was handed the first one's store")
	}
	if d := diff(contents(t, st), contents(t, loaded)); d != "" {
		t.Fatalf("warm and loaded state differ:\n%s", d)
	}
}

func TestProviderLoadsFromFilesOnAVersionMismatch(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec

	commitBatch(t, p, spec, 0, nil, "a")
	kept := commitBatch(t, p, spec, 1, keyRecord(mem, nil), "b")
	// Re-running batch 1 (its commit was lost) reads version 1, not the
	// warm version 2: loaded from files, and the warm store is closed.
	st, aux, err := p.OpenAux(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st == kept || aux != nil {
		t.Fatalf("Open at version 1 returned the warm store at version %d (aux %v), want a load", kept.Version(), aux)
	}
	if st.Version() != 1 || !slices.Equal(names(t, st), []string{"a"}) {
		t.Fatalf("loaded version %d with keys %v, want version 1 with [a]", st.Version(), names(t, st))
	}
	if _, err := kept.Values(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("the replaced warm store: %v, want ErrClosed", err)
	}
	// Nothing is parked any more: a version nobody committed is missing.
	if _, err := p.Open(spec, 3); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "3.delta.arrow") {
		t.Fatalf("open of an uncommitted version: %v, want ErrMissing naming 3.delta.arrow", err)
	}
}

func TestProviderLoadsWhenTheShapeDiffers(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec
	kept := commitBatch(t, p, spec, 0, nil, "a")

	other := spec
	other.ValueSchema = arrow.NewSchema(testValueSchema.Fields()[:2], nil)
	_, err := p.Open(other, 1)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "1.delta.arrow") {
		t.Fatalf("open with another value schema: %v, want ErrSchema naming 1.delta.arrow", err)
	}
	if _, err := kept.Values(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("the warm store of the other shape: %v, want ErrClosed", err)
	}
}

// TestProviderReusesOnlyAStoreWithThePartKeyAsked: a warm store without
// the part index does not answer an Open that asks for one (ScanPart would
// fail), nor the other way round.
func TestProviderReusesOnlyAStoreWithThePartKeyAsked(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec
	commitBatch(t, p, spec, 0, nil, "a")
	parted := spec
	parted.PartKey = []string{"name"}
	commitBatch(t, p, parted, 1, nil, "b")
	st, err := p.Open(parted, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := scanPartRows(t, st, mem, parted.PartKey, []refKey{mkKey("a", false, 1)}); len(got) != 1 {
		t.Fatalf("ScanPart: %v, want the row of a", got)
	}
	if err := st.Commit(3); err != nil {
		t.Fatal(err)
	}
	p.Keep(st, nil)
	again, err := p.Open(spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, ok := again.(*memStore); ok && again.(*memStore).pix != nil {
		t.Fatal("a store opened without PartKey has a part index")
	}
	if d, ok := again.(*diskStore); ok && d.cache.pix != nil {
		t.Fatal("a store opened without PartKey has a part index")
	}
}

func TestProviderKeepsOnlyCommittedStores(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec
	commitBatch(t, p, spec, 0, nil, "a")

	st, err := p.Open(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, mem, []refKey{mkKey("uncommitted", false, 1)}, []refVal{{sum: 9}})
	p.Keep(st, []arrow.Record{keyRecord(mem, nil)}) // a task error path that forgot to commit
	if _, err := st.Values(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("a store kept with uncommitted changes: %v, want it closed", err)
	}
	again, err := p.Open(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again == st || !slices.Equal(names(t, again), []string{"a"}) {
		t.Fatalf("open after keeping an uncommitted store: keys %v, want [a] loaded from files", names(t, again))
	}
}

func TestProviderUsesTheAllocatorOfTheTaskThatOpens(t *testing.T) {
	first, second := checked(t), checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, first).StoreSpec
	commitBatch(t, p, spec, 0, nil, "a")

	spec.Allocator = second
	st, err := p.Open(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, err := st.Values([]int32{0})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if second.CurrentAlloc() == 0 || first.CurrentAlloc() != 0 {
		t.Fatalf("warm store's record allocated %d bytes from the new task's allocator and %d from the old one's, want >0 and 0",
			second.CurrentAlloc(), first.CurrentAlloc())
	}
}

func TestProviderPurge(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec // a snapshot every 3 versions
	for v := int64(0); v < 7; v++ {
		commitBatch(t, p, spec, v, nil, fmt.Sprintf("k%d", v))
	}
	dir := "/ck/state/agg-0/32-64"
	if err := p.Purge(5); err != nil {
		t.Fatal(err)
	}
	files, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	// A key a version: a snapshot at 3 (three delta rows, three keys), none
	// at 6 (three delta rows, six keys: snapshotDue).
	want := []string{"3.snapshot.arrow", "4.delta.arrow", "5.delta.arrow", "6.delta.arrow", "7.delta.arrow"}
	if !slices.Equal(files, want) {
		t.Fatalf("after Purge(5): %v, want %v", files, want)
	}
	// Every version >= 5 still loads, from files (another provider).
	cold := testProvider(fs, "/ck/state")
	defer cold.Close()
	for v := int64(5); v <= 7; v++ {
		st, err := cold.Open(spec, v)
		if err != nil {
			t.Fatalf("version %d after purge: %v", v, err)
		}
		if st.Len() != int(v) {
			t.Errorf("version %d after purge has %d keys, want %d", v, st.Len(), v)
		}
		st.Close()
	}
	if _, err := cold.Open(spec, 2); !errors.Is(err, ErrMissing) {
		t.Fatalf("purged version 2: %v, want ErrMissing", err)
	}
}

func TestProviderCloseReleasesEverything(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	spec := testConfig(fs, mem).StoreSpec
	other := spec
	other.Operator, other.Lo, other.Hi = "dedup-1", 0, 32
	kept := []Store{
		commitBatch(t, p, spec, 0, keyRecord(mem, []refKey{mkKey("x", false, 1)}), "a"),
		commitBatch(t, p, other, 0, keyRecord(mem, []refKey{mkKey("y", false, 1)}), "b"),
	}
	if mem.CurrentAlloc() == 0 {
		t.Fatal("the parked records hold no memory: the test checks nothing")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("after Close, %d bytes of parked records are still allocated", n)
	}
	for _, st := range kept {
		if _, err := st.Values(nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("a parked store after Close: %v, want ErrClosed", err)
		}
	}
	if _, err := p.Open(spec, 1); !errors.Is(err, ErrProviderClosed) || !strings.Contains(err.Error(), "agg-0 [32, 64)") {
		t.Fatalf("Open after Close: %v, want ErrProviderClosed naming the store", err)
	}
	// A task that finishes after the query ended hands its store back: it
	// is closed, its record released, nothing parked.
	late, err := testOpen(Config{FS: fs, Dir: "/ck/state", StoreSpec: spec}, 1)
	if err != nil {
		t.Fatal(err)
	}
	p.Keep(late, []arrow.Record{keyRecord(mem, []refKey{mkKey("z", false, 1)})})
	if _, err := late.Values(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("a store kept after Close: %v, want ErrClosed", err)
	}
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("a record kept after Close is still allocated (%d bytes)", n)
	}
}

// Warm stores belong to their provider: two queries with their own
// checkpoints (same operator ids and ranges, same FS) never see each
// other's stores, which a process-wide map keyed by the wrong thing would
// silently allow.
func TestProvidersOnDifferentDirectoriesShareNothing(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	p1, p2 := testProvider(fs, "/q1/state"), testProvider(fs, "/q2/state")
	defer p1.Close()
	defer p2.Close()
	spec := testConfig(fs, mem).StoreSpec

	commitBatch(t, p1, spec, 0, nil, "q1")
	commitBatch(t, p2, spec, 0, nil, "q2")
	for _, c := range []struct {
		p    Provider
		want string
	}{{p1, "q1"}, {p2, "q2"}} {
		st, err := c.p.Open(spec, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(t, st); !slices.Equal(got, []string{c.want}) {
			t.Errorf("provider of %s: keys %v, want [%s]", c.want, got, c.want)
		}
		st.Close()
	}
	// p1's store handed to p2 is a bug in the caller, not a silent share.
	st, err := p1.Open(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "/q1/state") {
				t.Fatalf("Keep of another provider's store: panic %v, want one naming /q1/state", r)
			}
		}()
		p2.Keep(st, nil)
	}()
	if _, err := st.Values(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("the refused store: %v, want ErrClosed", err)
	}
}

// The tasks of a batch open and keep their ranges concurrently (go test
// -race checks the provider's locking).
func TestProviderConcurrentRanges(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	base := testConfig(fs, mem).StoreSpec
	const ranges = 8
	for v := int64(0); v < 3; v++ {
		var wg sync.WaitGroup
		errs := make(chan error, ranges)
		for r := 0; r < ranges; r++ {
			spec := base
			spec.KeyGroups, spec.Lo, spec.Hi = ranges, r, r+1
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := p.Open(spec, v)
				if err != nil {
					errs <- err
					return
				}
				k := keyRecord(mem, []refKey{mkKey(fmt.Sprintf("r%d-v%d", r, v), false, 1)})
				val := valueRecord(mem, []refVal{{sum: v}})
				err = st.Put(k, val, nil)
				k.Release()
				val.Release()
				if err == nil {
					err = st.Commit(v + 1)
				}
				if err != nil {
					st.Close()
					errs <- err
					return
				}
				p.Keep(st, nil)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	cold := testProvider(fs, "/ck/state")
	defer cold.Close()
	for r := 0; r < ranges; r++ {
		spec := base
		spec.KeyGroups, spec.Lo, spec.Hi = ranges, r, r+1
		st, err := cold.Open(spec, 3)
		if err != nil {
			t.Fatal(err)
		}
		if st.Len() != 3 {
			t.Errorf("range %d: %d keys, want 3", r, st.Len())
		}
		st.Close()
	}
}

// BenchmarkProviderWarmCycle is what the provider adds to a batch of one
// key-group range on a warm store: Open at the kept version and Keep (the
// store's Commit is the store's cost, not the provider's).
func BenchmarkProviderWarmCycle(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	fs := vfs.NewMem()
	p := testProvider(fs, "/ck/state")
	defer p.Close()
	spec := testConfig(fs, mem).StoreSpec
	kept := commitBatch(b, p, spec, 0, nil, "a")
	b.ReportAllocs()
	for b.Loop() {
		st, err := p.Open(spec, 1)
		if err != nil {
			b.Fatal(err)
		}
		if st != kept {
			b.Fatal("cold load")
		}
		p.Keep(st, nil)
	}
}
