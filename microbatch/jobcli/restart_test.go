package jobcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sources/generate"
)

func TestRestartSettingsMakeTheQueriesStrategy(t *testing.T) {
	def := defaultSettings(roleStream).Restart
	for _, c := range []struct {
		name string
		edit func(*RestartSettings)
		want microbatch.RestartStrategy
		err  string
	}{
		{"the default is microbatch's", func(*RestartSettings) {}, microbatch.DefaultRestartStrategy(), ""},
		{"fixed delay with attempts", func(r *RestartSettings) {
			r.Strategy, r.Delay, r.Attempts, r.Jitter = "fixed-delay", 5*time.Second, 3, 0
		},
			microbatch.FixedDelayRestart(5*time.Second, 3), ""},
		{"failure rate", func(r *RestartSettings) {
			r.Strategy, r.Delay, r.Attempts, r.Window, r.Jitter = "failure-rate", time.Second, 3, 5*time.Minute, 0
		}, microbatch.FailureRateRestart(time.Second, 3, 5*time.Minute), ""},
		{"none", func(r *RestartSettings) { r.Strategy = "none" }, microbatch.NoRestart(), ""},
		{"failure rate without a window", func(r *RestartSettings) { r.Strategy, r.Attempts = "failure-rate", 3 }, microbatch.RestartStrategy{}, "restart-window: failure-rate needs"},
		{"failure rate without attempts", func(r *RestartSettings) { r.Strategy, r.Window = "failure-rate", time.Minute }, microbatch.RestartStrategy{}, "restart-attempts: failure-rate needs"},
		{"a window for another strategy", func(r *RestartSettings) { r.Window = time.Minute }, microbatch.RestartStrategy{}, "restart-window: exponential-delay: only failure-rate"},
		{"an unknown strategy", func(r *RestartSettings) { r.Strategy = "always" }, microbatch.RestartStrategy{}, `restart-strategy: "always"`},
		{"a jitter of 1", func(r *RestartSettings) { r.Jitter = 1 }, microbatch.RestartStrategy{}, "restart-strategy: restart strategy exponential-delay: jitter 1"},
	} {
		r := def
		c.edit(&r)
		got, err := r.strategy()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case c.err == "" && got != c.want:
			t.Errorf("%s: strategy %s, want %s", c.name, got, c.want)
		}
	}
}

func TestABadRestartFlagIsRefusedNamingItsSource(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Job{Name: "j"}, []string{"config", "print", "--restart-strategy", "failure-rate", "--restart-window", "1m"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "restart-attempts (from default): failure-rate needs") {
		t.Fatalf("error %v, want restart-attempts refused", err)
	}
	out.Reset()
	err = Run(context.Background(), Job{Name: "j"}, []string{"config", "print", "--restart-strategy", "fixed-delay", "--restart-delay", "250ms"}, &out, &out)
	if err != nil || !strings.Contains(out.String(), "restart-delay: 250ms") || !strings.Contains(out.String(), "# flag --restart-strategy") {
		t.Fatalf("config print: %v\n%s", err, out.String())
	}
}

// The restart flags reach the queries Env.Start starts: a query whose
// sink fails twice with a reset connection keeps running with attempts to
// spare, and ends with ErrRestartsExhausted when --restart-attempts is 1.
func TestTheRestartFlagsReachTheQueries(t *testing.T) {
	for _, c := range []struct {
		attempts string
		want     error
	}{{"5", nil}, {"1", microbatch.ErrRestartsExhausted}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var mu sync.Mutex
		calls := 0
		job := Job{Name: "flaky", Stream: func(ctx context.Context, env *Env) error {
			src, err := generate.NewRate(generate.RateConfig{RowsPerSecond: 1000})
			if err != nil {
				return err
			}
			sink := microbatch.ForeachBatch(func(context.Context, int64, *dataset.Dataset) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				switch {
				case calls <= 2:
					return fmt.Errorf("write: %w", syscall.ECONNRESET)
				case calls == 4:
					cancel() // two batches after the failures: done
				}
				return nil
			})
			_, err = env.Start(ctx, microbatch.WriteStream(dataset.ReadStream(src), sink), QueryOptions{Name: "q", Every: 20 * time.Millisecond})
			return err
		}}
		err := Run(ctx, job, []string{"stream", "--ui-addr", "", "--restart-strategy", "fixed-delay", "--restart-delay", "10ms",
			"--restart-attempts", c.attempts}, io.Discard, io.Discard)
		cancel()
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("--restart-attempts %s: %v, want %v", c.attempts, err, c.want)
		}
	}
}
