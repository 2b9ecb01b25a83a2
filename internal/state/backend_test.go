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

// TestContractOnDisk runs the Store and Provider contract tests on the
// disk backend, with the default cache budget and with a budget so small
// that every batch reads its rows back from pebble.
func TestContractOnDisk(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"RandomOperationsMatchAGoMap", TestRandomOperationsMatchAGoMap},
		{"LookupValuesAndDelete", TestLookupValuesAndDelete},
		{"AbortDropsUncommittedChanges", TestAbortDropsUncommittedChanges},
		{"CommitFailureIsRetryable", TestCommitFailureIsRetryable},
		{"BrokenFilesAreErrorsNamingTheFile", TestBrokenFilesAreErrorsNamingTheFile},
		{"PurgeKeepsLaterVersionsLoadable", TestPurgeKeepsLaterVersionsLoadable},
		{"CommitBytesAreDeterministic", TestCommitBytesAreDeterministic},
		{"EvictWhere", TestEvictWhere},
		{"ConfigValidate", TestConfigValidate},
		{"ClosedStoreRefusesCalls", TestClosedStoreRefusesCalls},
		{"ScanWhereSeesExactlyTheEntriesBelowTheBound", TestScanWhereSeesExactlyTheEntriesBelowTheBound},
		{"ProviderReusesTheWarmStoreAtTheNextVersion", TestProviderReusesTheWarmStoreAtTheNextVersion},
		{"ProviderLoadsFromFilesOnAVersionMismatch", TestProviderLoadsFromFilesOnAVersionMismatch},
		{"ProviderLoadsWhenTheShapeDiffers", TestProviderLoadsWhenTheShapeDiffers},
		{"ProviderKeepsOnlyCommittedStores", TestProviderKeepsOnlyCommittedStores},
		{"ProviderUsesTheAllocatorOfTheTaskThatOpens", TestProviderUsesTheAllocatorOfTheTaskThatOpens},
		{"ProviderPurge", TestProviderPurge},
		{"ProviderCloseReleasesEverything", TestProviderCloseReleasesEverything},
		{"ProvidersOnDifferentDirectoriesShareNothing", TestProvidersOnDifferentDirectoriesShareNothing},
		{"ProviderConcurrentRanges", TestProviderConcurrentRanges},
		{"EveryKeyTypeRoundTrips", TestEveryKeyTypeRoundTrips},
		{"IntegerKeysSortNumerically", TestIntegerKeysSortNumerically},
	}
	for _, budget := range []struct {
		name  string
		bytes int64
	}{{"default-cache", 0}, {"tiny-cache", 1}} {
		for _, tc := range tests {
			t.Run(budget.name+"/"+tc.name, func(t *testing.T) {
				useDisk(t, budget.bytes)
				tc.fn(t)
			})
		}
	}
}
