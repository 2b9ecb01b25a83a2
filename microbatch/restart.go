package microbatch

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sources"
)

// RestartKind names a restart strategy (Flink's restart-strategy.type).
type RestartKind string

const (
	// RestartNone: a failure ends the query (Spark's behaviour).
	RestartNone RestartKind = "none"
	// RestartFixedDelay waits Delay before every restart.
	RestartFixedDelay RestartKind = "fixed-delay"
	// RestartExponentialDelay waits Delay, then Delay*Multiplier, ... up to
	// MaxDelay; a run of ResetAfter without failure starts over at Delay.
	RestartExponentialDelay RestartKind = "exponential-delay"
)

// RestartStrategy says whether, and after how long, a query that failed
// with a transient error (Transient) restarts itself from its checkpoint.
// A restart is what a new process would do on the same checkpoint: the
// query is compiled again, its state provider reopened, the checkpoint's
// identity checked, a new driver epoch taken, and the batch whose offsets
// were written but not committed re-run with exactly those offsets; the
// checkpoint's lock is held throughout. A non-transient error ends the
// query at once, whatever the strategy.
//
// The zero value is RestartNone. DefaultRestartStrategy is what a query
// gets when StreamWriter.RestartStrategy is not called. A restart keeps
// the Query (its ID and RunID, RecentProgress); Stop during the wait
// before a restart stops it at once.
type RestartStrategy struct {
	Kind RestartKind
	// Delay is the wait before a restart (fixed-delay) or before the
	// first one (exponential-delay).
	Delay time.Duration
	// MaxDelay caps exponential-delay's wait.
	MaxDelay time.Duration
	// Multiplier grows exponential-delay's wait after each failure (>= 1).
	Multiplier float64
	// Jitter, in [0, 1), spreads each wait uniformly over
	// [wait*(1-Jitter), wait*(1+Jitter)], so queries that failed together
	// (one broker for many) do not all restart at the same instant.
	Jitter float64
	// ResetAfter: exponential-delay starts over at Delay when the query
	// ran this long since its last restart without failing (0: never).
	ResetAfter time.Duration
	// MaxAttempts bounds the restarts: at most MaxAttempts within any
	// Window (Flink's failure-rate strategy), or in all when Window is 0
	// (Flink's fixed-delay attempts). 0: unbounded. The failure that
	// would exceed it ends the query, its error saying so.
	MaxAttempts int
	Window      time.Duration
	// Seed seeds the jitter; 0 picks a random seed. Tests set it.
	Seed uint64
}

// DefaultRestartStrategy is the restart strategy of a query that sets
// none: exponential-delay from 1 s, ×1.5 per failure, capped at 1 min,
// jitter 10%, reset after 1 h without failure, unbounded attempts. These
// are Flink's defaults for a checkpointed job since Flink 1.19 (FLIP-364;
// before, fixed-delay with Integer.MAX_VALUE attempts). Every streaming
// query has a checkpoint, and a restart from it is exactly-once, so
// restarting after a transient failure (the broker came back, the
// coordinator moved) is what keeps a job running without a human;
// unbounded, because such a cause ends when the outage does; backoff,
// because a long outage then costs a restart a minute rather than one a
// second; the cap bounds how long a query idles after its cause is gone.
// Errors that a restart cannot cure stop the query at once (Transient).
func DefaultRestartStrategy() RestartStrategy {
	return RestartStrategy{Kind: RestartExponentialDelay, Delay: time.Second, MaxDelay: time.Minute,
		Multiplier: 1.5, Jitter: 0.1, ResetAfter: time.Hour}
}

// FixedDelayRestart restarts after delay, at most attempts times in all
// (attempts 0: unbounded).
func FixedDelayRestart(delay time.Duration, attempts int) RestartStrategy {
	return RestartStrategy{Kind: RestartFixedDelay, Delay: delay, MaxAttempts: attempts}
}

// FailureRateRestart restarts after delay while no more than attempts
// restarts fell within the last window (Flink's failure-rate strategy).
func FailureRateRestart(delay time.Duration, attempts int, window time.Duration) RestartStrategy {
	return RestartStrategy{Kind: RestartFixedDelay, Delay: delay, MaxAttempts: attempts, Window: window}
}

// NoRestart ends the query at its first failure.
func NoRestart() RestartStrategy { return RestartStrategy{Kind: RestartNone} }

// Validate refuses a strategy that cannot run.
func (s RestartStrategy) Validate() error {
	switch s.Kind {
	case RestartNone, "":
		return nil
	case RestartFixedDelay, RestartExponentialDelay:
	default:
		return fmt.Errorf("restart strategy %q: want %s, %s or %s", s.Kind, RestartNone, RestartFixedDelay, RestartExponentialDelay)
	}
	switch {
	case s.Delay < 0:
		return fmt.Errorf("restart strategy %s: delay %s is negative", s.Kind, s.Delay)
	case s.MaxAttempts < 0:
		return fmt.Errorf("restart strategy %s: attempts %d is negative", s.Kind, s.MaxAttempts)
	case s.Window < 0:
		return fmt.Errorf("restart strategy %s: window %s is negative", s.Kind, s.Window)
	case s.Window > 0 && s.MaxAttempts == 0:
		return fmt.Errorf("restart strategy %s: a window (%s) needs a maximum number of attempts in it", s.Kind, s.Window)
	case s.Jitter < 0 || s.Jitter >= 1 || math.IsNaN(s.Jitter):
		return fmt.Errorf("restart strategy %s: jitter %g: want a fraction in [0, 1)", s.Kind, s.Jitter)
	}
	if s.Kind == RestartExponentialDelay {
		switch {
		case s.Delay == 0:
			return fmt.Errorf("restart strategy %s: the initial delay must be positive", s.Kind)
		case s.Multiplier < 1 || math.IsNaN(s.Multiplier) || math.IsInf(s.Multiplier, 0):
			return fmt.Errorf("restart strategy %s: multiplier %g: want 1 or more", s.Kind, s.Multiplier)
		case s.MaxDelay < s.Delay:
			return fmt.Errorf("restart strategy %s: max delay %s is below the initial delay %s", s.Kind, s.MaxDelay, s.Delay)
		case s.ResetAfter < 0:
			return fmt.Errorf("restart strategy %s: reset-after %s is negative", s.Kind, s.ResetAfter)
		}
	}
	return nil
}

// String prints the strategy as the query's start log and config print
// show it.
func (s RestartStrategy) String() string {
	attempts := "unbounded"
	if s.MaxAttempts > 0 {
		attempts = fmt.Sprint(s.MaxAttempts)
		if s.Window > 0 {
			attempts += " per " + s.Window.String()
		}
	}
	switch s.Kind {
	case RestartFixedDelay:
		return fmt.Sprintf("fixed-delay(delay=%s, jitter=%g, attempts=%s)", s.Delay, s.Jitter, attempts)
	case RestartExponentialDelay:
		return fmt.Sprintf("exponential-delay(delay=%s, max=%s, multiplier=%g, jitter=%g, reset-after=%s, attempts=%s)",
			s.Delay, s.MaxDelay, s.Multiplier, s.Jitter, s.ResetAfter, attempts)
	}
	return string(RestartNone)
}

// Restarter applies a RestartStrategy to one query's failures. It reads
// no clock: the caller passes the time of each failure, so it is a pure
// function of the strategy, the seed and those times.
type Restarter struct {
	s        RestartStrategy
	rnd      *rand.Rand
	failures []time.Time // failures counted against MaxAttempts (within Window, when set)
	streak   int         // failures since exponential-delay's last reset
	last     time.Time   // when the last restart was due
	count    int64
}

// NewRestarter starts applying s (validated by the caller).
func NewRestarter(s RestartStrategy) *Restarter {
	seed := s.Seed
	if seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	return &Restarter{s: s, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Next records a transient failure at now and returns how long to wait
// before restarting, or ok false when the strategy allows no restart.
func (r *Restarter) Next(now time.Time) (wait time.Duration, ok bool) {
	s := r.s
	if s.Kind == RestartNone || s.Kind == "" {
		return 0, false
	}
	if s.Window > 0 {
		keep := r.failures[:0]
		for _, t := range r.failures {
			if now.Sub(t) < s.Window {
				keep = append(keep, t)
			}
		}
		r.failures = keep
	}
	// Without a window every restart counts: count is the number, and
	// failures (kept only for a window) would grow for the query's life.
	n := r.count
	if s.Window > 0 {
		n = int64(len(r.failures))
	}
	if s.MaxAttempts > 0 && n >= int64(s.MaxAttempts) {
		return 0, false
	}
	if s.Window > 0 {
		r.failures = append(r.failures, now)
	}
	wait = s.Delay
	if s.Kind == RestartExponentialDelay {
		if s.ResetAfter > 0 && !r.last.IsZero() && now.Sub(r.last) >= s.ResetAfter {
			r.streak = 0
		}
		w := float64(s.Delay) * math.Pow(s.Multiplier, float64(r.streak))
		wait = time.Duration(min(w, float64(s.MaxDelay)))
		r.streak++
	}
	if s.Jitter > 0 && wait > 0 {
		wait = time.Duration(float64(wait) * (1 - s.Jitter + 2*s.Jitter*r.rnd.Float64()))
	}
	r.last = now.Add(wait)
	r.count++
	return wait, true
}

// Count is the number of restarts Next allowed.
func (r *Restarter) Count() int64 { return r.count }

// ErrRestartsExhausted wraps the error of a failure the restart strategy
// allowed no more restarts for.
var ErrRestartsExhausted = errors.New("microbatch: restart strategy allows no more restarts")

// permanent errors end a query whatever they wrap: what the checkpoint,
// the plan or another owner say cannot change by trying again.
var permanent = []error{
	checkpoint.ErrCorrupt, checkpoint.ErrVersion, checkpoint.ErrForeign, checkpoint.ErrConflict, checkpoint.ErrLocked,
	ErrIncompatibleCheckpoint, ErrInvalidQuery, plan.ErrFenced, plan.ErrPlan, plan.ErrSpecVersion, vfs.ErrLocked,
	state.ErrCorrupt, state.ErrSchema, state.ErrVersion, state.ErrMissing,
	sources.ErrOffsetGone, sources.ErrBadOffset, sources.ErrBadSplit,
	syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM,
}

// transientErrno are the system errors of a network path that failed and
// may work again.
var transientErrno = []error{
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
}

// Transient reports whether err is a failure a restart may cure, by its
// identity (never its text). In order:
//
//  1. permanent: a corrupt, foreign, locked or newer checkpoint, another
//     query's checkpoint (ErrIncompatibleCheckpoint), an invalid query or
//     plan, a newer driver (plan.ErrFenced), corrupt or mismatched state,
//     input the source no longer has (sources.ErrOffsetGone: retention
//     deleted it; only a policy gets past it) or cannot parse,
//     a full disk or quota (ENOSPC, EDQUOT), a read-only or forbidden file
//     (EROFS, EACCES, EPERM), and any error whose chain has a
//     Transient() bool method returning false;
//  2. transient: an error whose chain has a Transient() bool method
//     returning true (sources/kafka.ErrUnavailable,
//     sinks/kafka.ErrUnreachable, scheduler.ErrNodeLost), a retriable
//     Kafka error code (kerr: NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
//     LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, NETWORK_EXCEPTION, ...), a
//     network error (net.Error: a refused or reset connection, a dial or
//     read timeout, a failed lookup; net.ErrClosed), a refused, reset,
//     aborted or timed-out connection or unreachable host or network
//     (syscall errnos), and context.DeadlineExceeded (a timeout; the query
//     checks first that its own context did not end);
//  3. everything else is permanent: a poison record under the fail
//     policy, a schema mismatch, a missing file, a user function's error.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	for _, p := range permanent {
		if errors.Is(err, p) {
			return false
		}
	}
	var m interface{ Transient() bool }
	if errors.As(err, &m) {
		return m.Transient()
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		return true
	}
	for _, e := range transientErrno {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded)
}
