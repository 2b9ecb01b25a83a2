package microbatch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/scheduler"
	"github.com/sluicedata/sluice/sinks"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	"github.com/sluicedata/sluice/sources"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

var rt0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// waits calls Next at the given offsets from rt0 and returns the waits
// (-1 for a refused restart).
func waits(s microbatch.RestartStrategy, at ...time.Duration) []time.Duration {
	r := microbatch.NewRestarter(s)
	var out []time.Duration
	for _, d := range at {
		w, ok := r.Next(rt0.Add(d))
		if !ok {
			w = -1
		}
		out = append(out, w)
	}
	return out
}

func TestRestartStrategies(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	exp := microbatch.RestartStrategy{Kind: microbatch.RestartExponentialDelay, Delay: s, MaxDelay: 5 * s, Multiplier: 2, ResetAfter: time.Minute}
	expCapped := exp
	expCapped.MaxAttempts = 3
	for _, tc := range []struct {
		name string
		s    microbatch.RestartStrategy
		at   []time.Duration
		want []time.Duration
	}{
		{"none never restarts", microbatch.NoRestart(), []time.Duration{0}, []time.Duration{-1}},
		{"the zero strategy is none", microbatch.RestartStrategy{}, []time.Duration{0}, []time.Duration{-1}},
		{"fixed delay waits the same and stops after its attempts",
			microbatch.FixedDelayRestart(10*ms, 3), []time.Duration{0, s, 2 * s, 3 * s, time.Hour}, []time.Duration{10 * ms, 10 * ms, 10 * ms, -1, -1}},
		{"fixed delay without a bound never stops",
			microbatch.FixedDelayRestart(10*ms, 0), []time.Duration{0, s, 2 * s, 3 * s, 4 * s}, []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms, 10 * ms}},
		{"failure rate counts the failures of the last window only",
			microbatch.FailureRateRestart(ms, 2, time.Minute),
			[]time.Duration{0, 10 * s, 20 * s, 59 * s, 61 * s, 69 * s, 71 * s},
			// at 20 s and 59 s two are in the window; at 61 s the one at 0 left it
			// (10 s and 61 s in it); at 69 s still two; at 71 s 10 s left.
			[]time.Duration{ms, ms, -1, -1, ms, -1, ms}},
		{"exponential delay doubles up to its cap",
			exp, []time.Duration{0, 2 * s, 5 * s, 10 * s, 20 * s, 30 * s}, []time.Duration{s, 2 * s, 4 * s, 5 * s, 5 * s, 5 * s}},
		{"exponential delay starts over after running ResetAfter without failure",
			exp, []time.Duration{0, 2 * s, 5 * s, 5*s + 4*s + time.Minute, 2 * time.Minute}, []time.Duration{s, 2 * s, 4 * s, s, 2 * s}},
		{"exponential delay with attempts stops after them",
			expCapped, []time.Duration{0, 2 * s, 5 * s, 10 * s}, []time.Duration{s, 2 * s, 4 * s, -1}},
		{"the default backs off by 1.5 from 1 s to 1 min (jitter 10%)",
			microbatch.DefaultRestartStrategy(), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if tc.at == nil {
				return
			}
			if got := waits(tc.s, tc.at...); !slices.Equal(got, tc.want) {
				t.Fatalf("%s: waits %v, want %v", tc.s, got, tc.want)
			}
		})
	}
}

func TestTheDefaultRestartStrategy(t *testing.T) {
	d := microbatch.DefaultRestartStrategy()
	d.Seed = 7
	r := microbatch.NewRestarter(d)
	base := float64(time.Second)
	at := rt0
	for i := range 20 {
		w, ok := r.Next(at)
		if !ok {
			t.Fatalf("failure %d: the default refused a restart", i)
		}
		want := min(base, float64(time.Minute))
		if float64(w) < 0.9*want || float64(w) > 1.1*want {
			t.Fatalf("failure %d: wait %s, want %s ± 10%%", i, w, time.Duration(want))
		}
		base *= 1.5
		at = at.Add(w + time.Second)
	}
	// An hour without failure: back to 1 s.
	if w, _ := r.Next(at.Add(2 * time.Hour)); w < 900*time.Millisecond || w > 1100*time.Millisecond {
		t.Fatalf("after an hour without failure: wait %s, want 1 s ± 10%%", w)
	}
}

func TestRestartJitterIsSeeded(t *testing.T) {
	s := microbatch.RestartStrategy{Kind: microbatch.RestartFixedDelay, Delay: time.Second, Jitter: 0.5, Seed: 42}
	at := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}
	a, b := waits(s, at...), waits(s, at...)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 42 gave %v, then %v", a, b)
	}
	s.Seed = 43
	if c := waits(s, at...); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same waits %v", a)
	}
	distinct := map[time.Duration]bool{}
	for _, w := range a {
		if w < 500*time.Millisecond || w > 1500*time.Millisecond {
			t.Fatalf("wait %s outside 1 s ± 50%%", w)
		}
		distinct[w] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("jitter 0.5 gave the same wait every time: %v", a)
	}
}

func TestRestartStrategyValidate(t *testing.T) {
	for _, tc := range []struct {
		s    microbatch.RestartStrategy
		want string
	}{
		{microbatch.RestartStrategy{Kind: "sometimes"}, `"sometimes"`},
		{microbatch.FixedDelayRestart(-time.Second, 0), "negative"},
		{microbatch.RestartStrategy{Kind: microbatch.RestartFixedDelay, Window: time.Minute}, "needs a maximum number of attempts"},
		{microbatch.RestartStrategy{Kind: microbatch.RestartFixedDelay, Jitter: 1}, "jitter"},
		{microbatch.RestartStrategy{Kind: microbatch.RestartExponentialDelay, Delay: time.Second, MaxDelay: time.Minute, Multiplier: 0.5}, "multiplier"},
		{microbatch.RestartStrategy{Kind: microbatch.RestartExponentialDelay, Delay: time.Minute, MaxDelay: time.Second, Multiplier: 2}, "max delay"},
	} {
		if err := tc.s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate = %v, want an error with %q", tc.s, err, tc.want)
		}
	}
}

func TestTransientErrorsAreKnownByIdentity(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection", fmt.Errorf("source s: latest offset: %w", refused), true},
		{"a reset connection", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"a timeout", fmt.Errorf("list offsets: %w", context.DeadlineExceeded), true},
		{"the coordinator moved", fmt.Errorf("commit: %w", kerr.NotCoordinator), true},
		{"no coordinator yet", kerr.CoordinatorNotAvailable, true},
		{"a leader election", kerr.LeaderNotAvailable, true},
		{"the Kafka source's unavailable brokers", fmt.Errorf("batch 3: %w: EOF", srckafka.ErrUnavailable), true},
		{"the Kafka sink's unreachable brokers", fmt.Errorf("batch 3: sink k commit: %w", sinkkafka.ErrUnreachable), true},
		{"an executor lost", fmt.Errorf("batch 3: stage 1: %w", scheduler.ErrNodeLost), true},
		{"a closed network connection", net.ErrClosed, true},

		{"the message says refused but is not", errors.New("dial tcp: connect: connection refused"), false},
		{"a stop", context.Canceled, false},
		{"a corrupt checkpoint, even read over a network", fmt.Errorf("%w: %w", checkpoint.ErrCorrupt, refused), false},
		{"another query's checkpoint", microbatch.ErrIncompatibleCheckpoint, false},
		{"a newer driver", plan.ErrFenced, false},
		{"corrupt state", state.ErrCorrupt, false},
		{"a state schema mismatch", fmt.Errorf("load: %w", state.ErrSchema), false},
		{"a poison record under the fail policy", fmt.Errorf("%w: topic t partition 0 offset 9", srckafka.ErrBadRecord), false},
		{"a record too large for the sink", fmt.Errorf("commit: %w: %w", sinkkafka.ErrRecordTooLarge, kerr.MessageTooLarge), false},
		{"the sink's schema mismatch", sinkkafka.ErrSchema, false},
		{"a non-retriable Kafka error", kerr.TopicAuthorizationFailed, false},
		{"a full disk", &os.PathError{Op: "write", Path: "/ckpt/offsets/3.json", Err: syscall.ENOSPC}, false},
		{"input retention deleted", fmt.Errorf("batch 4: %w: orders/0 offsets 10-20", sources.ErrOffsetGone), false},
		{"a truncated file", fmt.Errorf("read part-0.parquet: %w", io.ErrUnexpectedEOF), false},
		{"a user function's error", errors.New("udf: boom"), false},
	} {
		if got := microbatch.Transient(tc.err); got != tc.want {
			t.Errorf("%s (%v): Transient = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// flakySource is a memory source that fails its driver-side calls with
// the errors of a script, one per call, nil entries passing: a source whose
// broker goes away and comes back.
type flakySource struct {
	*srcmem.Source
	mu     sync.Mutex
	script map[string][]error // "latest", "splits" -> errors of the next calls
	failed int
}

func (s *flakySource) next(call string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script[call]) == 0 {
		return nil
	}
	err := s.script[call][0]
	s.script[call] = s.script[call][1:]
	if err != nil {
		s.failed++
	}
	return err
}

func (s *flakySource) Latest(ctx context.Context, start sources.Offset) (sources.Offset, error) {
	if err := s.next("latest"); err != nil {
		return nil, err
	}
	return s.Source.Latest(ctx, start)
}

func (s *flakySource) Splits(ctx context.Context, start, end sources.Offset) ([]sources.Split, error) {
	if err := s.next("splits"); err != nil {
		return nil, err
	}
	return s.Source.Splits(ctx, start, end)
}

func (s *flakySource) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

var errRefused = fmt.Errorf("kafka: list offsets: %w",
	&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})

// restartQuery runs f's job over a flaky source with the strategy until it
// ends (at most limit) and returns the query, its error and the restart
// counter's value.
func restartQuery(t *testing.T, f *fixture, src *flakySource, sink *recordingSink, s microbatch.RestartStrategy, limit time.Duration) (*microbatch.Query, error, float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := microbatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ds := job(datasetOf(src, f))
	q, err := microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(vfs.NewMem()).Trigger(microbatch.AvailableNow()).
		QueryName("flaky").Metrics(m).RestartStrategy(s).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.AwaitTermination() }()
	select {
	case err = <-done:
	case <-time.After(limit):
		st := q.Status()
		q.Stop()
		t.Fatalf("the query still runs after %s (status %q)", limit, st.Message)
	}
	return q, err, counter(t, reg, "sluice_query_restarts_total")
}

// counter is the value of a counter (of one series) in reg, 0 when absent.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func datasetOf(src sources.Stream, f *fixture) *dataset.Dataset {
	return dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: f.mem, Parallelism: 2})
}

func TestAQueryRestartsAfterTransientFailuresExactlyOnce(t *testing.T) {
	f := newFixture(t, 11, 30)
	src := &flakySource{Source: f.source(t, 37), script: map[string][]error{
		// The first batch's offsets are found, then its read fails twice
		// (offsets/0 written, no commit: each restart re-runs batch 0 with
		// them); later a latest-offset call fails once more.
		"splits": {errRefused, fmt.Errorf("fetch: %w", syscall.ECONNRESET)},
		"latest": {nil, nil, nil, nil, nil, fmt.Errorf("%w: %w", srckafka.ErrUnavailable, kerr.NotCoordinator)},
	}}
	sink := newRecordingSink()
	q, err, restarts := restartQuery(t, f, src, sink, microbatch.FixedDelayRestart(time.Millisecond, 0), time.Minute)
	if err != nil {
		t.Fatalf("the query failed: %v", err)
	}
	if got := sink.rows(); !slices.Equal(got, f.want) {
		t.Fatalf("after restarts the sink has %d rows, the batch job %d; first difference at %d", len(got), len(f.want), firstDiff(got, f.want))
	}
	if sink.commits != len(sink.batches) {
		t.Fatalf("%d commits of %d batches", sink.commits, len(sink.batches))
	}
	if src.failures() != 3 || restarts != 3 {
		t.Fatalf("%d failures, %v restarts counted, want 3 and 3", src.failures(), restarts)
	}
	if p := q.LastProgress(); p == nil || p.Restarts != 3 {
		t.Fatalf("last progress %+v, want Restarts 3", p)
	}
	if p := q.RecentProgress()[0]; p.Batch != 0 || p.Restarts != 2 {
		t.Fatalf("first progress: batch %d after %d restarts, want batch 0 (re-run) after 2", p.Batch, p.Restarts)
	}
}

func TestANonTransientFailureStopsAtOnce(t *testing.T) {
	f := newFixture(t, 12, 10)
	poison := fmt.Errorf("%w: topic orders partition 0 offset 7", srckafka.ErrBadRecord)
	for _, tc := range []struct {
		name string
		s    microbatch.RestartStrategy
		err  error
	}{
		{"a poison record", microbatch.DefaultRestartStrategy(), poison},
		{"a corrupt checkpoint", microbatch.DefaultRestartStrategy(), fmt.Errorf("read offsets/0.json: %w", checkpoint.ErrCorrupt)},
		{"a full disk", microbatch.DefaultRestartStrategy(), &os.PathError{Op: "write", Path: "/ckpt/x", Err: syscall.ENOSPC}},
		{"a transient failure without a strategy", microbatch.NoRestart(), errRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &flakySource{Source: f.source(t, 0), script: map[string][]error{"splits": {tc.err}}}
			sink := newRecordingSink()
			began := time.Now()
			q, err, restarts := restartQuery(t, f, src, sink, tc.s, 10*time.Second)
			if !errors.Is(err, tc.err) || restarts != 0 || q.LastProgress() != nil {
				t.Fatalf("err %v (want %v), %v restarts, progress %v: want a failure without restarts", err, tc.err, restarts, q.LastProgress())
			}
			if d := time.Since(began); d > 5*time.Second {
				t.Fatalf("stopping took %s", d)
			}
		})
	}
}

func TestRestartsEndWhenTheStrategyAllowsNoMore(t *testing.T) {
	f := newFixture(t, 13, 10)
	src := &flakySource{Source: f.source(t, 0), script: map[string][]error{"splits": {errRefused, errRefused, errRefused, errRefused}}}
	_, err, restarts := restartQuery(t, f, src, newRecordingSink(), microbatch.FixedDelayRestart(time.Millisecond, 2), time.Minute)
	if !errors.Is(err, microbatch.ErrRestartsExhausted) || !errors.Is(err, syscall.ECONNREFUSED) || restarts != 2 || src.failures() != 3 {
		t.Fatalf("err %v, %v restarts, %d failures: want the third failure to end it as ErrRestartsExhausted", err, restarts, src.failures())
	}
}

func TestStopEndsARestartWait(t *testing.T) {
	f := newFixture(t, 14, 10)
	src := &flakySource{Source: f.source(t, 0), script: map[string][]error{"splits": {errRefused}}}
	ds := job(datasetOf(src, f))
	q, err := microbatch.WriteStream(ds, newRecordingSink()).Checkpoint("/ckpt").FS(vfs.NewMem()).Trigger(microbatch.AvailableNow()).
		RestartStrategy(microbatch.FixedDelayRestart(time.Hour, 0)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasPrefix(q.Status().Message, "Restarting (attempt 1) in 1h0m0s after: ") {
		if time.Now().After(deadline) {
			t.Fatalf("status %q, want it restarting", q.Status().Message)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(q.Status().Message, "connection refused") {
		t.Fatalf("status %q does not name the error", q.Status().Message)
	}
	if err := q.Stop(); err != nil {
		t.Fatalf("Stop during the restart wait: %v", err)
	}
}

// A stateful query whose sink commit of batch 3 fails with a reset
// connection (after its tasks wrote state version 4) restarts and re-runs
// batch 3 from state version 3: the result equals the batch aggregation,
// on either state backend (make test's disk pass).
func TestAStatefulQueryRestartsFromItsCommittedState(t *testing.T) {
	f := newFixture(t, 15, 25)
	want := f.aggBatch(t)
	src := f.source(t, 33)
	sink := newRecordingSink()
	ds := aggJob(dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: f.mem, Parallelism: 2, ShufflePartitions: 3}))
	q, err := microbatch.WriteStream(ds, sink).Checkpoint("/ckpt").FS(vfs.NewMem()).OutputMode(sinks.Update).
		Trigger(microbatch.AvailableNow()).RestartStrategy(microbatch.FixedDelayRestart(time.Millisecond, 0)).
		OnProgress(func(p microbatch.Progress) {
			if p.Batch == 2 {
				sink.mu.Lock()
				sink.failNext = fmt.Errorf("sink commit: %w", syscall.ECONNRESET)
				sink.mu.Unlock()
			}
		}).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	if got := latestPerKey(sink.rows()); !slices.Equal(got, want) {
		t.Fatalf("after a restart the result is\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := q.LastProgress(); p.Restarts != 1 || p.Batch < 4 {
		t.Fatalf("last progress: batch %d after %d restarts, want a batch after 3 and 1 restart", p.Batch, p.Restarts)
	}
}

// waitClock is a query clock that moves only when the query waits, and
// records each wait.
type waitClock struct {
	sleepClock
	waits []time.Duration
}

func (c *waitClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	return c.sleepClock.After(d)
}

// The waits before restarts are the strategy's, taken on the query's
// Clock (no real time passes), and its time decides ResetAfter: with
// exponential delay (1 s, x2, no jitter) three failures wait 1, 2 and 4 s.
func TestRestartWaitsAreTheStrategysOnTheQueryClock(t *testing.T) {
	f := newFixture(t, 16, 10)
	src := &flakySource{Source: f.source(t, 0), script: map[string][]error{"splits": {errRefused, errRefused, errRefused}}}
	clock := &waitClock{}
	clock.Set(rt0)
	s := microbatch.RestartStrategy{Kind: microbatch.RestartExponentialDelay, Delay: time.Second, MaxDelay: time.Minute, Multiplier: 2}
	q, err := microbatch.WriteStream(job(datasetOf(src, f)), newRecordingSink()).Checkpoint("/ckpt").FS(vfs.NewMem()).
		Trigger(microbatch.AvailableNow()).Clock(clock).RestartStrategy(s).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("the query took %s of real time to wait 7 s of its clock", d)
	}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(clock.waits, want) {
		t.Fatalf("the query waited %v on its clock, want %v", clock.waits, want)
	}
}
