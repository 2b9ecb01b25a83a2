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

// local is a sink that works in one process only, as a sink whose
// messages name live handles would.
type local struct{ sinks.Sink }

func (local) InProcess() string { return "its messages name handles of this process" }

func TestSinksSayWhetherTheyWorkInOneProcess(t *testing.T) {
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
	one := local{mem}
	kafDead, err := sinkkafka.New(sinkkafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "out", QueryID: "q",
		BadRecords: sinks.BadRecordsDeadLetter, DeadLetter: one})
	if err != nil {
		t.Fatal(err)
	}
	defer kafDead.Close()
	for _, c := range []struct {
		name string
		sink sinks.Sink
		want string // a part of the reason; "" = works across processes
	}{
		{"the memory sink ships rows in remote tasks' messages", mem, ""},
		{"the console sink ships rows in remote tasks' messages", con, ""},
		{"the Kafka sink ships encoded records in remote tasks' messages", kaf, ""},
		{"the Parquet sink's messages are files, readable anywhere", pq, ""},
		{"a tee is in one process when one of its sinks is, and names it", sinks.Tee(pq, one), "out: its messages name handles"},
		{"a tee of sinks that work anywhere works anywhere", sinks.Tee(pq, mem, con, kaf), ""},
		{"the Kafka sink is in one process when its dead-letter sink is, and names it", kafDead, "dead-letter sink out: its messages name handles"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := inProcess(c.sink)
			if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
				t.Fatalf("InProcess() = %q, want %q", got, c.want)
			}
		})
	}
}

func TestOnlyAContextMarkedWithRemoteIsRemote(t *testing.T) {
	ctx := t.Context()
	if sinks.IsRemote(ctx) {
		t.Error("a plain context is remote")
	}
	if !sinks.IsRemote(sinks.WithRemote(ctx)) {
		t.Error("a context marked with WithRemote is not remote")
	}
}
