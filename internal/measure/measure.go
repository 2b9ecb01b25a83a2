// Package measure holds what the benchmarks and internal/nexmark's runner
// measure alike: process CPU time and peak RSS, percentiles, and the
// progress of every batch of a query.
package measure

import (
	"context"
	"errors"
	"sort"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/microbatch"
)

// PeakRSS is the process's peak resident set size so far in bytes (Linux
// reports ru_maxrss in KiB); -1 when unknown.
func PeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss) * 1024
}

// CPUSeconds is the process's user plus system CPU time so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// Percentile is the nearest-rank percentile q (0 < q <= 1) of xs.
func Percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BatchMS is a batch's whole duration: triggerExecution covers the trigger
// from offsets to the commits log.
func BatchMS(p microbatch.Progress) float64 { return MS(p.Durations[microbatch.PhaseTotal]) }

// Run starts the query w configures, waits for it to end (use an
// AvailableNow or Once trigger) and returns the progress of every batch,
// oldest first.
func Run(ctx context.Context, w *microbatch.StreamWriter) ([]microbatch.Progress, error) {
	var ps []microbatch.Progress
	q, err := w.OnProgress(func(p microbatch.Progress) { ps = append(ps, p) }).Start(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.AwaitTermination(); err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errors.New("the query ran no batch")
	}
	return ps, nil
}
