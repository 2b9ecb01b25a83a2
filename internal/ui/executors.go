package ui

import (
	"context"
	"os"
	"runtime"
	"sort"

	"github.com/sluicedata/sluice/cluster"
)

// ExecutorsFunc lists the processes that run a job's tasks. It may return
// a partial list with an error naming those that did not answer.
type ExecutorsFunc func(ctx context.Context) ([]Executor, error)

// Executor is one process that runs tasks, as the executors table shows it.
type Executor struct {
	ID string `json:"id"`
	// Role is "local" (the query runs its tasks in this process),
	// "driver" (this process, in cluster mode) or "executor".
	Role    string `json:"role"`
	Address string `json:"address,omitempty"` // an executor's Flight host:port
	// State is "active"; an executor the driver gives no work is
	// "excluded" (quarantined after a lost task, or of another build).
	State string `json:"state"`
	Slots int    `json:"slots"` // tasks it runs at once
	// Runtime is the process's Go runtime: this one for the local
	// process and the driver, an executor's as it reported it.
	Runtime *RuntimeStats `json:"runtime,omitempty"`
	// Stats are an executor's counters, as the driver asked them.
	Stats *cluster.ExecutorStats `json:"stats,omitempty"`
}

// RuntimeStats are a Go process's runtime figures (runtime/metrics).
type RuntimeStats = cluster.Runtime

// LocalExecutors is the executor of local mode: this process, whose slots
// are GOMAXPROCS (the in-process scheduler's default parallelism).
func LocalExecutors(context.Context) ([]Executor, error) {
	host, _ := os.Hostname()
	return []Executor{{ID: host, Role: "local", State: "active", Slots: runtime.GOMAXPROCS(0), Runtime: cluster.ReadRuntime()}}, nil
}

// clusterDriver is what ClusterExecutors reads of a *cluster.Driver.
type clusterDriver interface {
	Name() string
	Executors() []cluster.Member
	ExecutorStats(ctx context.Context) (map[string]cluster.ExecutorStats, error)
}

// ClusterExecutors lists a driver's cluster: the driver (this process)
// first, then every executor it knows, by name, with its counters. An
// executor the driver gives no work is listed as excluded; one that does
// not answer its stats call is listed without them, and named in the
// error.
func ClusterExecutors(d *cluster.Driver) ExecutorsFunc { return clusterExecutors(d) }

func clusterExecutors(d clusterDriver) ExecutorsFunc {
	return func(ctx context.Context) ([]Executor, error) {
		out := []Executor{{ID: d.Name(), Role: "driver", State: "active", Runtime: cluster.ReadRuntime()}}
		// Stats first: it asks every live executor, excluded ones too, so
		// the executors it answers for and the active list below agree
		// on all but those that came or went in between.
		stats, err := d.ExecutorStats(ctx)
		seen := map[string]bool{}
		var execs []Executor
		for _, m := range d.Executors() {
			seen[m.Name] = true
			e := Executor{ID: m.Name, Role: "executor", Address: m.Meta.Flight, State: "active", Slots: m.Meta.Slots}
			if s, ok := stats[m.Name]; ok {
				e.Stats, e.Runtime = &s, s.Runtime
			}
			execs = append(execs, e)
		}
		for name, s := range stats {
			if !seen[name] {
				execs = append(execs, Executor{ID: name, Role: "executor", State: "excluded", Stats: &s, Runtime: s.Runtime})
			}
		}
		sort.Slice(execs, func(i, j int) bool { return execs[i].ID < execs[j].ID })
		return append(out, execs...), err
	}
}
