package state

import (
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
)

// The contract tests (store_test.go, provider_test.go, types_test.go) open
// stores and providers through testOpen and testProvider: the memory
// backend by default, the disk backend under TestContractOnDisk.
var (
	testOpen     = Open
	testProvider = func(fs vfs.FS, dir string) Provider { return NewFileProvider(fs, dir) }
)

// useDisk makes the contract helpers open disk-backed stores for the rest
// of t, with a cache budget of cacheBytes (tiny budgets make every Commit
// drop the cache, so reads go to pebble).
func useDisk(t *testing.T, cacheBytes int64) {
	local := t.TempDir()
	oldOpen, oldProvider := testOpen, testProvider
	testOpen = func(cfg Config, v int64) (Store, error) {
		return OpenDisk(cfg, DiskOptions{LocalDir: local, CacheBytes: cacheBytes}, v)
	}
	testProvider = func(fs vfs.FS, dir string) Provider {
		return NewDiskProvider(fs, dir, DiskOptions{LocalDir: t.TempDir(), CacheBytes: cacheBytes})
	}
	t.Cleanup(func() { testOpen, testProvider = oldOpen, oldProvider })
}

// contractTests are the Store and Provider contract tests other backends
// run too (provider: whether it opens stores through a Provider).
var contractTests = []struct {
	name     string
	fn       func(*testing.T)
	provider bool
}{
	{"RandomOperationsMatchAGoMap", TestRandomOperationsMatchAGoMap, false},
	{"LookupValuesAndDelete", TestLookupValuesAndDelete, false},
	{"AbortDropsUncommittedChanges", TestAbortDropsUncommittedChanges, false},
	{"CommitFailureIsRetryable", TestCommitFailureIsRetryable, false},
	{"BrokenFilesAreErrorsNamingTheFile", TestBrokenFilesAreErrorsNamingTheFile, false},
	{"PurgeKeepsLaterVersionsLoadable", TestPurgeKeepsLaterVersionsLoadable, false},
	{"CommitBytesAreDeterministic", TestCommitBytesAreDeterministic, false},
	{"SnapshotsFollowTheChangesNotTheState", TestSnapshotsFollowTheChangesNotTheState, false},
	{"EvictWhere", TestEvictWhere, false},
	{"ConfigValidate", TestConfigValidate, false},
	{"ClosedStoreRefusesCalls", TestClosedStoreRefusesCalls, false},
	{"ScanWhereSeesExactlyTheEntriesBelowTheBound", TestScanWhereSeesExactlyTheEntriesBelowTheBound, false},
	{"ProviderReusesTheWarmStoreAtTheNextVersion", TestProviderReusesTheWarmStoreAtTheNextVersion, true},
	{"ProviderLoadsFromFilesOnAVersionMismatch", TestProviderLoadsFromFilesOnAVersionMismatch, true},
	{"ProviderLoadsWhenTheShapeDiffers", TestProviderLoadsWhenTheShapeDiffers, true},
	{"ProviderReusesOnlyAStoreWithThePartKeyAsked", TestProviderReusesOnlyAStoreWithThePartKeyAsked, true},
	{"ProviderKeepsOnlyCommittedStores", TestProviderKeepsOnlyCommittedStores, true},
	{"ProviderUsesTheAllocatorOfTheTaskThatOpens", TestProviderUsesTheAllocatorOfTheTaskThatOpens, true},
	{"ProviderPurge", TestProviderPurge, true},
	{"ProviderCloseReleasesEverything", TestProviderCloseReleasesEverything, true},
	{"ProvidersOnDifferentDirectoriesShareNothing", TestProvidersOnDifferentDirectoriesShareNothing, true},
	{"ProviderConcurrentRanges", TestProviderConcurrentRanges, true},
	{"EveryKeyTypeRoundTrips", TestEveryKeyTypeRoundTrips, false},
	{"IntegerKeysSortNumerically", TestIntegerKeysSortNumerically, false},
	{"AKeyDeletedTwiceHasOneTombstone", TestAKeyDeletedTwiceHasOneTombstone, false},
}

// TestContractOnDisk runs the Store and Provider contract tests on the
// disk backend, with the default cache budget and with a budget so small
// that every batch reads its rows back from pebble.
func TestContractOnDisk(t *testing.T) {
	for _, budget := range []struct {
		name  string
		bytes int64
	}{{"default-cache", 0}, {"tiny-cache", 1}} {
		for _, tc := range contractTests {
			t.Run(budget.name+"/"+tc.name, func(t *testing.T) {
				useDisk(t, budget.bytes)
				tc.fn(t)
			})
		}
	}
}

// TestAKeyDeletedTwiceHasOneTombstone: delete, put back and delete again in
// one batch writes one tombstone (invariant 3; it used to write two).
func TestAKeyDeletedTwiceHasOneTombstone(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	s, err := testOpen(testConfig(fs, mem), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := []refKey{mkKey("a", false, 1), mkKey("b", false, 1)}
	put(t, s, mem, k, []refVal{{count: 1}, {count: 2}})
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		del(t, s, mem, k[:1])
		put(t, s, mem, k[:1], []refVal{{count: 1}})
	}
	del(t, s, mem, k[:1])
	if err := s.Commit(2); err != nil {
		t.Fatal(err)
	}
	files, err := ListFiles(fs, "/ck/state")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Version == 2 && f.Rows != 1 {
			t.Fatalf("%s has %d rows, want 1 tombstone", f.Path, f.Rows)
		}
	}
	if s.Len() != 1 {
		t.Fatalf("Len %d, want 1", s.Len())
	}
	r, err := testOpen(testConfig(fs, mem), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != 1 {
		t.Fatalf("reopened Len %d, want 1", r.Len())
	}
}
