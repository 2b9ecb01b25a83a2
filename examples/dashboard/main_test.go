package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/microbatch/jobcli"
)

// A command line that names no command is the stream command's, as the
// dashboard's flags were before it had commands; help stays the binary's.
func TestWithCommandDefaultsToStream(t *testing.T) {
	for _, c := range []struct {
		args, want []string
	}{
		{nil, []string{"stream"}},
		{[]string{"--port", "0"}, []string{"stream", "--port", "0"}},
		{[]string{"-rate", "200"}, []string{"stream", "-rate", "200"}},
		{[]string{"stream", "--port", "0"}, []string{"stream", "--port", "0"}},
		{[]string{"backfill"}, []string{"backfill"}},
		{[]string{"-h"}, []string{"-h"}},
		{[]string{"--help"}, []string{"--help"}},
		{[]string{"version"}, []string{"version"}},
	} {
		if got := withCommand(c.args); !slices.Equal(got, c.want) {
			t.Errorf("withCommand(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// What the dashboard cannot do is refused before anything starts, with
// the reason and the exit status of the mistake: a backfill (the events
// are paced by the wall clock), a replay (its Kafka is gone with the run)
// and settings out of range.
func TestTheDashboardRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"backfill", []string{"backfill", "--ui-addr", ""}, 2, "no range to read at once: run stream"},
		{"replay", []string{"checkpoint", "replay", "--batch", "0", "--checkpoint-dir", "/nonexistent"}, 1, "nothing to replay"},
		{"rate", []string{"stream", "--ui-addr", "", "--rate", "1001"}, 1, "invalid setting rate (from flag --rate): 1001 orders/s: want 1 to 1000"},
		{"port", []string{"stream", "--ui-addr", "", "--port", "-1"}, 1, "invalid setting port (from flag --port): -1"},
		{"duration", []string{"stream", "--ui-addr", "", "--duration", "-1s"}, 1, "invalid setting duration (from flag --duration): -1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := jobcli.Run(context.Background(), dashboardJob(&Config{}), c.args, &out, &errOut)
			if err == nil || jobcli.ExitCode(err) != c.code || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("%q: %v (exit %d), want exit %d and %q\nstderr:\n%s", c.args, err, jobcli.ExitCode(err), c.code, c.msg, errOut.String())
			}
			if strings.Contains(out.String(), "dashboard: http") {
				t.Fatalf("%q started the page:\n%s", c.args, out.String())
			}
		})
	}
}
