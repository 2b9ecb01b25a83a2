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

// The errors unreachable marks as ErrUnreachable (transient: a restart of the
// query may cure them), by identity: what kgo retries itself, retriable
// Kafka codes, network errors, deadlines; never a record's or the
// config's fault.
func TestErrUnreachableMarksBrokerFailuresOnly(t *testing.T) {
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
		{"ErrRecordTooLarge", fmt.Errorf("%w: %w", ErrRecordTooLarge, refused), false},
	} {
		err := unreachable(tc.err)
		if got := errors.Is(err, ErrUnreachable); got != tc.want {
			t.Errorf("%s: unreachable(%v) = %v, marked %v, want %v", tc.name, tc.err, err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: unreachable lost the error: %v", tc.name, err)
		}
		if m, ok := err.(interface{ Transient() bool }); ok && !tc.want {
			t.Errorf("%s: %v says Transient() = %v", tc.name, err, m.Transient())
		}
	}
	var m interface{ Transient() bool }
	if !errors.As(fmt.Errorf("batch 3: %w", unreachable(refused)), &m) || !m.Transient() {
		t.Fatalf("ErrUnreachable does not say it is transient")
	}
}
