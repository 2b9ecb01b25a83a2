package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The errors unavailable marks as ErrUnavailable (transient: a restart of the
// query may cure them), by identity: what kgo retries itself, retriable
// Kafka codes, network errors, deadlines; never a record's or the
// config's fault.
func TestErrUnavailableMarksBrokerFailuresOnly(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection", fmt.Errorf("list topics: %w", refused), true},
		{"a connection the broker closed", fmt.Errorf("list offsets: %w", io.EOF), true},
		{"a moved coordinator", fmt.Errorf("commit: %w", kerr.NotCoordinator), true},
		{"a leader election", kerr.LeaderNotAvailable, true},
		{"a deadline", fmt.Errorf("metadata: %w", context.DeadlineExceeded), true},
		{"an authorization failure", kerr.TopicAuthorizationFailed, false},
		{"a stop", context.Canceled, false},
		{"a JSON error", &json.SyntaxError{}, false},
		{"ErrBadRecord", fmt.Errorf("%w: %w", ErrBadRecord, refused), false},
	} {
		err := unavailable(tc.err)
		if got := errors.Is(err, ErrUnavailable); got != tc.want {
			t.Errorf("%s: unavailable(%v) = %v, marked %v, want %v", tc.name, tc.err, err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: unavailable lost the error: %v", tc.name, err)
		}
		if m, ok := err.(interface{ Transient() bool }); ok && !tc.want {
			t.Errorf("%s: %v says Transient() = %v", tc.name, err, m.Transient())
		}
	}
	var m interface{ Transient() bool }
	if !errors.As(fmt.Errorf("batch 3: %w", unavailable(refused)), &m) || !m.Transient() {
		t.Fatalf("ErrUnavailable does not say it is transient")
	}
}
