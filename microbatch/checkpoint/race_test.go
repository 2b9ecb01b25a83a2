package checkpoint

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
)

// hookFS runs before(path) once, at the first CreateExclusive of a path
// ending in suffix, before the create: the window between a writer's check
// of the log and its write, where another writer gets in.
type hookFS struct {
	vfs.FS
	suffix string
	before func()
	once   sync.Once
}

func (h *hookFS) CreateExclusive(path string, data []byte) error {
	if strings.HasSuffix(path, h.suffix) {
		h.once.Do(h.before)
	}
	return h.FS.CreateExclusive(path, data)
}

// TestSecondWriterLoses: two drivers on one checkpoint (its lock lost or
// never taken), each between its check of the log and its write when the
// other writes: the second writer of offsets/N, and of commits/N, gets
// ErrConflict naming the file and the batch, and what the first wrote stays.
func TestSecondWriterLoses(t *testing.T) {
	filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
		must(runBatches(open(t, fsys, dir), 1, 100))
		winner := open(t, fsys, dir)
		theirs := offsetsFor(2)
		mine := offsetsFor(2)
		mine.Timestamp++ // another driver's clock: different offsets content
		h := &hookFS{FS: fsys, suffix: "offsets/2.json", before: func() { must(winner.WriteOffsets(theirs)) }}
		loser := open(t, h, dir)
		err := loser.WriteOffsets(mine)
		if !errors.Is(err, ErrConflict) || !errors.Is(err, fs.ErrExist) ||
			!strings.Contains(err.Error(), "offsets/2.json") || !strings.Contains(err.Error(), "batch 2") ||
			!strings.Contains(err.Error(), "another writer") {
			t.Fatalf("second writer of offsets/2: %v; want ErrConflict naming the file and batch", err)
		}
		if got, err := winner.Offsets(2); err != nil || got.Timestamp != theirs.Timestamp {
			t.Fatalf("offsets/2 after the race: %+v, %v; want the first writer's", got, err)
		}

		// The same at the commit: both ran batch 2 with the recorded offsets.
		theirC, myC := commitFor(2), commitFor(2)
		myC.NextWatermark++
		h = &hookFS{FS: fsys, suffix: "commits/2.json", before: func() { must(winner.WriteCommit(theirC)) }}
		err = open(t, h, dir).WriteCommit(myC)
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "commits/2.json") || !strings.Contains(err.Error(), "commit for batch 2") {
			t.Fatalf("second writer of commits/2: %v; want ErrConflict naming the file and batch", err)
		}
		rec, err := open(t, fsys, dir).Recover()
		if err != nil || rec.Next != 3 || rec.Last.NextWatermark != theirC.NextWatermark || rec.Rerun != nil {
			t.Fatalf("Recover after the races: %+v, %v; want batch 2 committed by the first writer, next 3", rec, err)
		}
	})
}

// TestRacingWriters: writers race, truly concurrently, on each batch's
// offsets and then its commit; exactly one wins each file, the losers all
// get ErrConflict, and the logs stay what Recover accepts.
func TestRacingWriters(t *testing.T) {
	filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
		must(runBatches(open(t, fsys, dir), 0, 100))
		const writers = 6
		cps := make([]*Checkpoint, writers)
		for i := range cps {
			cps[i] = open(t, fsys, dir)
		}
		race := func(write func(i int) error) int {
			errs := make([]error, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = write(i)
				}()
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won >= 0:
					t.Fatalf("writers %d and %d both won", won, i)
				case err == nil:
					won = i
				case !errors.Is(err, ErrConflict):
					t.Fatalf("writer %d: %v; want ErrConflict", i, err)
				}
			}
			if won < 0 {
				t.Fatal("no writer won")
			}
			return won
		}
		for n := int64(1); n <= 4; n++ {
			w := race(func(i int) error {
				e := offsetsFor(n)
				e.Timestamp += int64(i) * 1000
				return cps[i].WriteOffsets(e)
			})
			if got, err := cps[0].Offsets(n); err != nil || got.Timestamp != offsetsFor(n).Timestamp+int64(w)*1000 {
				t.Fatalf("batch %d offsets: %+v, %v; want writer %d's", n, got, err, w)
			}
			w = race(func(i int) error {
				e := commitFor(n)
				e.NextWatermark += int64(i)
				return cps[i].WriteCommit(e)
			})
			if got, err := cps[0].Commit(n); err != nil || got.NextWatermark != commitFor(n).NextWatermark+int64(w) {
				t.Fatalf("batch %d commit: %+v, %v; want writer %d's", n, got, err, w)
			}
		}
		if rec, err := open(t, fsys, dir).Recover(); err != nil || rec.Next != 5 {
			t.Fatalf("Recover: %+v, %v; want next 5", rec, err)
		}
	})
}

// TestRacingMetadata: two drivers creating one new checkpoint, each with
// its own query id: one metadata.json, the other driver conflicts.
func TestRacingMetadata(t *testing.T) {
	filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
		winner := open(t, fsys, dir)
		other := testMetadata()
		other.QueryID = "another-query"
		h := &hookFS{FS: fsys, suffix: "metadata.json", before: func() { must(winner.WriteMetadata(other)) }}
		err := open(t, h, dir).WriteMetadata(testMetadata())
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "query_id") {
			t.Fatalf("second creator of metadata.json: %v; want ErrConflict naming query_id", err)
		}
		if m, _, err := open(t, fsys, dir).Metadata(); err != nil || m.QueryID != "another-query" {
			t.Fatalf("metadata after the race: %+v, %v", m, err)
		}
	})
}
