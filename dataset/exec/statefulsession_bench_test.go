package exec

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

// BenchmarkStatefulSessionManyKeys: 1 M users' open sessions in state
// (user i's one row at 1000 s + i ms, gap 10 s), then batches of 100 rows
// of 100 users still open, each joining its user's session, with a
// watermark that closes the next 100 sessions: what a batch costs when the
// batch is small and the state large. Reports CPU seconds (user+system of
// the process) per batch besides the wall time; -short uses 100 000 users.
//
//	go test ./dataset/exec/ -run XXX -bench StatefulSessionManyKeys -benchtime 30x
func BenchmarkStatefulSessionManyKeys(b *testing.B) {
	users := 1_000_000
	if testing.Short() {
		users = 100_000
	}
	for _, backend := range []string{"memory", "disk"} {
		b.Run(backend, func(b *testing.B) {
			mem := memory.NewGoAllocator()
			fs := vfs.NewMem()
			var stores state.Provider = state.NewFileProvider(fs, "/ckpt/state")
			if backend == "disk" {
				stores = state.NewDiskProvider(fs, "/ckpt/state", state.DiskOptions{LocalDir: b.TempDir()})
			}
			defer stores.Close()
			us := make([]string, users)
			ts := make([]int64, users)
			for i := range us {
				us[i], ts[i] = fmt.Sprintf("u%07d", i), 1000*sec+int64(i)*1000
			}
			r0 := sessRecord(mem, us, ts)
			sessRun(b, mem, stores, 0, 0, r0)
			r0.Release()
			rng := rand.New(rand.NewPCG(1, 2))
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				closed := 100 * (n + 1) // users below are closed by this batch's watermark
				bu, bt := make([]string, 100), make([]int64, 100)
				for j := range bu {
					i := closed + 100 + rng.IntN(users-closed-100)
					bu[j], bt[j] = us[i], ts[i]+sec
				}
				r := sessRecord(mem, bu, bt)
				out, _ := sessRun(b, mem, stores, int64(n+1), 1010*sec+int64(closed-1)*1000, r)
				r.Release()
				if len(out) < 90 {
					b.Fatalf("batch %d: emitted %d sessions", n+1, len(out))
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := func(r syscall.Rusage) time.Duration {
				return time.Duration(r.Utime.Nano() + r.Stime.Nano())
			}
			b.ReportMetric((cpu(ru1)-cpu(ru0)).Seconds()/float64(b.N), "cpu-s/batch")
		})
	}
}
