package microbatch

import (
	"fmt"
	"time"
)

// Trigger says when the next micro-batch starts.
type Trigger struct {
	kind     triggerKind
	interval time.Duration
}

type triggerKind int

const (
	kindProcessingTime triggerKind = iota
	kindOnce
	kindAvailableNow
)

// ProcessingTime starts a batch every interval (measured from the previous
// batch's start); 0 starts the next batch as soon as the previous one ends.
// Batches run only when some source has new data, when the watermark moved
// (so windows close), or, with an interval and a processing-time timeout
// in the query, every interval (so timeouts fire on an idle stream).
func ProcessingTime(interval time.Duration) Trigger {
	return Trigger{kind: kindProcessingTime, interval: interval}
}

// Once runs a single batch over what is available, subject to the sources'
// rate limits, then stops (Spark's Once ignores rate limits; to drain
// everything in rate-limited batches use AvailableNow).
func Once() Trigger { return Trigger{kind: kindOnce} }

// AvailableNow processes everything available when the query starts, in as
// many rate-limited batches as needed, then stops: how a backfill runs.
func AvailableNow() Trigger { return Trigger{kind: kindAvailableNow} }

func (t Trigger) String() string {
	switch t.kind {
	case kindOnce:
		return "Once"
	case kindAvailableNow:
		return "AvailableNow"
	}
	return fmt.Sprintf("ProcessingTime(%v)", t.interval)
}

// Clock is the query's time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
