package microbatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// TestStreamingSessionsWithManyIdleKeys: 60 users, each batch brings rows
// of a few of them (some 15 s behind the batch, bridging or extending
// sessions stored batches ago), so most stored sessions belong to keys
// without rows in the batch: they must stay in state untouched and be
// emitted, each exactly once, when the watermark closes them, as a direct
// computation over all events says.
func TestStreamingSessionsWithManyIdleKeys(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: set seed in the test)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const nBatches = 30
	var batches []arrow.Record
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	maxTs := 0
	for b := 0; b < nBatches; b++ {
		base := b * 10
		var evs []any
		for i := rng.IntN(8) + 1; i > 0; i-- {
			// A row at most 15 s behind the batch: never behind the
			// watermark (the newest row so far - 30 s).
			at := base + rng.IntN(10)
			if rng.IntN(3) == 0 {
				at = base - rng.IntN(16)
			}
			at = max(at, 0)
			maxTs = max(maxTs, at)
			evs = append(evs, at, fmt.Sprintf("u%02d", rng.IntN(60)), rng.IntN(100))
		}
		batches = append(batches, eventsAt(mem, evs...))
	}
	// The last batch moves the watermark past every session above.
	batches = append(batches, eventsAt(mem, maxTs+200, "zz", 0))
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink := newRecordingSink()
	fs := vfs.NewMem()
	cfg := dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}
	for _, b := range batches {
		src.Append(b)
		q, err := microbatch.WriteStream(sessionJob(dataset.ReadStream(src).WithConfig(cfg)), sink).Checkpoint("/ckpt").FS(fs).
			OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(); err != nil {
			t.Fatal(err)
		}
	}
	want := directSessions(batches, t0.Add(time.Duration(maxTs+200-30)*time.Second))
	got := sink.rows()
	sort.Strings(got)
	if len(want) < 20 || !slices.Equal(got, want) {
		t.Fatalf("%d sessions, want %d\ngot  %q\nwant %q", len(got), len(want), got, want)
	}
}
