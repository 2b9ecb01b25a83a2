package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow/flight"
)

// ExecutorStats are an executor's counters since it started: what it ran
// and what it served over Flight. Benchmarks read them (through
// Driver.ExecutorStats) to report the bytes a query shuffled.
type ExecutorStats struct {
	// Tasks counts the task attempts the executor was sent; TasksFailed
	// those that returned an error (a fetch failure, the task's own error,
	// a cancelled attempt).
	Tasks       int64 `json:"tasks"`
	TasksFailed int64 `json:"tasks_failed"`
	// Gets counts the DoGet calls served for map output blocks,
	// BlocksServed the blocks they asked for, and BytesServed the bytes of
	// the Flight messages they sent: Arrow IPC headers and bodies and the
	// app metadata, before gRPC framing and TLS. Reduce tasks on other
	// executors and drivers fetching final blocks both count; blocks a
	// task reads from its own executor's memory do not cross Flight and do
	// not count.
	Gets         int64 `json:"gets"`
	BlocksServed int64 `json:"blocks_served"`
	BytesServed  int64 `json:"bytes_served"`
	// Runs are the runs whose blocks the executor holds now, BlockMemory
	// the memory those blocks take.
	Runs        int   `json:"runs"`
	BlockMemory int64 `json:"block_memory"`
	// SpilledBlocks are the blocks of those runs written to the spill
	// directory.
	SpilledBlocks int `json:"spilled_blocks"`
	// Runtime is the executor process's Go runtime.
	Runtime *Runtime `json:"runtime,omitempty"`
}

// Runtime are a Go process's runtime figures (runtime/metrics); -1 where
// this Go version has no such metric.
type Runtime struct {
	PID        int     `json:"pid"`
	Goroutines int64   `json:"goroutines"`
	HeapBytes  int64   `json:"heapBytes"`  // live and not yet swept heap objects
	TotalBytes int64   `json:"totalBytes"` // all memory the runtime mapped
	GCCycles   int64   `json:"gcCycles"`
	Uptime     float64 `json:"uptimeSeconds"`
}

var processStart = time.Now()

// ReadRuntime reads this process's runtime figures.
func ReadRuntime() *Runtime {
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(samples)
	v := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return -1
		}
		return int64(samples[i].Value.Uint64())
	}
	return &Runtime{PID: os.Getpid(), Goroutines: v(0), HeapBytes: v(1), TotalBytes: v(2), GCCycles: v(3),
		Uptime: time.Since(processStart).Seconds()}
}

const actionStats = "stats"

// serveStats are an executor's counters (tasks are Executor.tasks).
type serveStats struct {
	failed, gets, blocks, bytes atomic.Int64
}

// Stats returns this executor's counters.
func (e *Executor) Stats() ExecutorStats {
	e.mu.Lock()
	runs := len(e.runs)
	e.mu.Unlock()
	return ExecutorStats{Tasks: e.tasks.Load(), TasksFailed: e.stats.failed.Load(),
		Gets: e.stats.gets.Load(), BlocksServed: e.stats.blocks.Load(), BytesServed: e.stats.bytes.Load(),
		Runs: runs, BlockMemory: e.BlockMemory(), SpilledBlocks: e.Spilled(), Runtime: ReadRuntime()}
}

// serving counts one DoGet of blocks and returns stream counting the
// bytes sent through it.
func (s *serveStats) serving(stream flight.FlightService_DoGetServer, blocks int) flight.FlightService_DoGetServer {
	s.gets.Add(1)
	s.blocks.Add(int64(blocks))
	return countingStream{stream, &s.bytes}
}

// countingStream adds the size of every message it sends to n.
type countingStream struct {
	flight.FlightService_DoGetServer
	n *atomic.Int64
}

func (c countingStream) Send(d *flight.FlightData) error {
	c.n.Add(int64(len(d.DataHeader) + len(d.DataBody) + len(d.AppMetadata)))
	return c.FlightService_DoGetServer.Send(d)
}

// sendStats answers a "stats" action with the executor's counters as JSON.
func (e *Executor) sendStats(stream flight.FlightService_DoActionServer) error {
	b, err := json.Marshal(e.Stats())
	if err != nil {
		return err
	}
	return stream.Send(&flight.Result{Body: b})
}

// ExecutorStats asks every live executor (quarantined and refused ones too) for
// its counters, by member name. An executor that does not answer is left
// out of the map and named in the error (the others are still returned).
func (d *Driver) ExecutorStats(ctx context.Context) (map[string]ExecutorStats, error) {
	out := map[string]ExecutorStats{}
	var errs []error
	for _, m := range d.members.Executors() { // quarantined ones too
		b, err := d.action(ctx, m.Meta.Flight, actionStats, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster: stats of executor %s (%s): %w", m.Name, m.Meta.Flight, err))
			continue
		}
		var s ExecutorStats
		if err := json.Unmarshal(b, &s); err != nil {
			errs = append(errs, fmt.Errorf("cluster: stats of executor %s (%s): decode %q: %w", m.Name, m.Meta.Flight, b, err))
			continue
		}
		out[m.Name] = s
	}
	return out, errors.Join(errs...)
}
