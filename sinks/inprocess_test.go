package sinks_test

import (
	"io"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sinks/console"
	sinkkafka "github.com/sluicedata/sluice/sinks/kafka"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	sinkpq "github.com/sluicedata/sluice/sinks/parquet"
)

// inProcess is what the driver will ask before sending a sink's tasks to
// another process: the reason, or "" when the sink works anywhere.
func inProcess(s sinks.Sink) string {
	if ip, ok := s.(sinks.InProcess); ok {
		return ip.InProcess()
	}
	return ""
}

func TestSinksWhoseMessagesNameRowsInMemorySayTheyWorkInOneProcess(t *testing.T) {
	mem, err := sinkmem.New(sinkmem.Config{Name: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	con, err := console.New(console.Config{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	kaf, err := sinkkafka.New(sinkkafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "out", QueryID: "q"})
	if err != nil {
		t.Fatal(err)
	}
	defer kaf.Close()
	pq, err := sinkpq.NewStream(sinkpq.StreamConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sink sinks.Sink
		want string // a part of the reason; "" = works across processes
	}{
		{"the memory sink hands records to the driver in memory", mem, "handed to the driver in memory"},
		{"the console sink prints rows kept in the driver", con, "printed there"},
		{"the Kafka sink parks encoded records for the driver's transaction", kaf, "parked in memory"},
		{"the Parquet sink's messages are files, readable anywhere", pq, ""},
		{"a tee is in one process when one of its sinks is, and names it", sinks.Tee(pq, mem), "out: records are handed"},
		{"a tee of sinks that work anywhere works anywhere", sinks.Tee(pq, pq), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := inProcess(c.sink)
			if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
				t.Fatalf("InProcess() = %q, want %q", got, c.want)
			}
		})
	}
}
