package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/scheduler"
)

// Executor is an executor process's member: it runs the tasks drivers send
// with the job's Runner, keeps their map output blocks and serves them to
// the reduce tasks of other executors and to drivers.
type Executor struct {
	*node
	runner shuffle.Runner
	tasks  atomic.Int64
	stats  serveStats
	budget *shuffle.Budget
	spill  string // root of the runs' spill directories
	ownDir bool   // spill is a temporary directory this executor made

	mu   sync.Mutex
	runs map[string]*runBlocks
	// released are the runs their driver released whole, and when: a late
	// attempt of one (sent before the release, delivered after it, as when
	// the executor hung and came back) is refused instead of making the
	// run anew, which nothing would release again while the driver lives.
	released map[string]time.Time
	stop     chan struct{}
}

// releasedFor is how long a released run's id is remembered: longer than
// any task call can be held up in transit.
const releasedFor = 10 * time.Minute

// A run's blocks are dropped once its driver is gone from the cluster and
// the run was idle this long (gossip may tell of a new driver a moment
// after its first task arrives).
const orphanAfter = 30 * time.Second

// Task actions.
const (
	actionTask    = "task"
	actionRelease = "release"
)

// taskCall is a task as the driver sends it.
type taskCall struct {
	Run    string `json:"run"`
	Driver string `json:"driver"` // the driver's member name
	Body   []byte `json:"body"`
	// Peers are the Flight addresses of the driver and the executors, as
	// the driver sees them: gossip reaches executors a moment later, and a
	// task must not fail to find a node the driver already placed work on.
	Peers map[string]string `json:"peers"`
}

type releaseCall struct {
	Run   string `json:"run"`
	Stage int    `json:"stage"`
	All   bool   `json:"all,omitempty"`
}

// StartExecutor starts an executor: it listens for Flight on cfg.Flight,
// joins the cluster through cfg.Seeds and runs the tasks drivers send with
// runner (the job's code: dataset/plan's TaskServer). Close stops it.
func StartExecutor(ctx context.Context, cfg Config, runner shuffle.Runner) (*Executor, error) {
	cfg = cfg.withDefaults()
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.GOMAXPROCS(0)
	}
	e := &Executor{runner: runner, runs: map[string]*runBlocks{}, released: map[string]time.Time{}, budget: &shuffle.Budget{Limit: cfg.MemoryLimit}, spill: cfg.SpillDir}
	if e.spill == "" {
		dir, err := os.MkdirTemp("", "sluice-spill-")
		if err != nil {
			return nil, fmt.Errorf("cluster: executor spill directory: %w", err)
		}
		e.spill, e.ownDir = dir, true
	}
	_, err := startNode(ctx, cfg, RoleExecutor, &executorService{e: e}, func(n *node) { e.node = n })
	if err != nil {
		if e.ownDir {
			os.RemoveAll(e.spill)
		}
		return nil, err
	}
	e.stop = make(chan struct{})
	go e.sweep()
	return e, nil
}

// sweep drops the blocks of runs whose driver left the cluster (it died or
// was restarted: a new process is a new member) without releasing them.
func (e *Executor) sweep() {
	after := e.cfg.orphanAfter
	if after <= 0 {
		after = orphanAfter
	}
	t := time.NewTicker(after / 6)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		live := map[string]bool{}
		for _, m := range e.members.Members() {
			live[m.Name] = true
		}
		e.mu.Lock()
		for id, at := range e.released {
			if time.Since(at) > releasedFor {
				delete(e.released, id)
			}
		}
		var gone []*runBlocks
		for id, r := range e.runs {
			if !live[r.driver] && time.Since(r.used) > after {
				gone = append(gone, r)
				delete(e.runs, id)
			}
		}
		e.mu.Unlock()
		for _, r := range gone {
			e.log.Info("dropped the blocks of a run whose driver left", "node", e.Name(), "run", r.run, "driver", r.driver)
			r.mem.Close()
		}
	}
}

// Close leaves the cluster, stops serving and frees every block.
func (e *Executor) Close() error {
	close(e.stop)
	err := e.close()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, r := range e.runs {
		r.mem.Close()
		delete(e.runs, id)
	}
	if e.ownDir {
		os.RemoveAll(e.spill)
	}
	return err
}

// Tasks counts the task attempts this executor was sent.
func (e *Executor) Tasks() int64 { return e.tasks.Load() }

// BlockMemory is the memory the executor's map output blocks hold.
func (e *Executor) BlockMemory() int64 { return e.budget.Used() }

// Spilled counts the blocks the executor keeps on disk.
func (e *Executor) Spilled() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.runs {
		n += r.mem.Spilled()
	}
	return n
}

// run returns the blocks of run id, made on its first task; nil if the
// driver released the run already.
func (e *Executor) run(id, driver string, peers map[string]string) *runBlocks {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, gone := e.released[id]; gone {
		return nil
	}
	r, ok := e.runs[id]
	if ok {
		r.addPeers(peers)
	} else {
		r = &runBlocks{e: e, run: id, driver: driver, mem: &shuffle.Local{Node: e.Name(), Dir: filepath.Join(e.spill, filepath.Base(id)), Budget: e.budget, Mem: e.cfg.Mem}}
		r.addPeers(peers)
		e.runs[id] = r
	}
	r.used = time.Now()
	return r
}

// runBlocks is one run's shuffle.Store on this executor: its own blocks in
// memory, other executors' fetched over Flight.
type runBlocks struct {
	e      *Executor
	run    string
	driver string
	mem    *shuffle.Local
	used   time.Time

	mu    sync.Mutex
	known map[string]string // peers' Flight addresses, from the driver
}

func (r *runBlocks) addPeers(peers map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]string{}
	}
	for k, v := range peers {
		r.known[k] = v
	}
}

func (r *runBlocks) peers(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.known[name]
	return a, ok
}

func (r *runBlocks) Put(stage, mapTask, part int, recs []arrow.Record) (scheduler.Location, error) {
	return r.mem.Put(stage, mapTask, part, recs)
}

func (r *runBlocks) Release(stage int) { r.mem.Release(stage) }

// Fetch reads the local blocks from memory and the others from their
// executors, one DoGet per executor and stage, and returns them in the
// order of locs.
func (r *runBlocks) Fetch(ctx context.Context, locs []scheduler.Location) ([]arrow.Record, error) {
	return fetchBlocks(ctx, r.e.node, r.run, locs, r.mem, r.peers)
}

// fetchBlocks reads locs of run: from local when their node is this one,
// else from their node over Flight.
func fetchBlocks(ctx context.Context, n *node, run string, locs []scheduler.Location, local shuffle.Store, peers func(string) (string, bool)) ([]arrow.Record, error) {
	byBlock := make([][]arrow.Record, len(locs))
	release := func() {
		for _, recs := range byBlock {
			for _, r := range recs {
				r.Release()
			}
		}
	}
	type group struct {
		node  string
		stage int
	}
	groups := map[group][]int{}
	var order []group
	for i, l := range locs {
		g := group{l.Node, l.Stage}
		if l.Stage < 0 {
			g.stage = -1 - i // late rows of different stages differ in schema: one call each
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		idx := groups[g]
		want := make([]scheduler.Location, len(idx))
		for k, i := range idx {
			want[k] = locs[i]
		}
		if local != nil && g.node == n.Name() {
			for k, i := range idx {
				recs, err := local.Fetch(ctx, want[k:k+1])
				if err != nil {
					release()
					return nil, err
				}
				byBlock[i] = recs
			}
			continue
		}
		addr, ok := n.flightOf(g.node, peers)
		if !ok {
			release()
			return nil, &scheduler.FetchError{Loc: want[0], Err: fmt.Errorf("node %s is not a live member of the cluster", g.node)}
		}
		recs, blocks, err := n.fetch(ctx, addr, ticket{Run: run, Blocks: want})
		if err != nil {
			release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &scheduler.FetchError{Loc: want[0], Err: fmt.Errorf("from %s (%s): %w", g.node, addr, err)}
		}
		for k, rec := range recs {
			i := idx[blocks[k]]
			byBlock[i] = append(byBlock[i], rec)
		}
	}
	var out []arrow.Record
	for _, recs := range byBlock {
		out = append(out, recs...)
	}
	return out, nil
}

// executorService is the executor's Flight service.
type executorService struct {
	flight.BaseFlightServer
	e *Executor
}

func (s *executorService) DoAction(a *flight.Action, stream flight.FlightService_DoActionServer) error {
	e := s.e
	switch a.Type {
	case actionPing:
		return stream.Send(&flight.Result{})
	case actionStats:
		return e.sendStats(stream)
	case actionTask:
		var call taskCall
		if err := json.Unmarshal(a.Body, &call); err != nil {
			return status.Errorf(codes.InvalidArgument, "decode task: %v", err)
		}
		blocks := e.run(call.Run, call.Driver, call.Peers)
		if blocks == nil {
			return status.Errorf(codes.FailedPrecondition, "executor %s: run %s was released: a late attempt", e.Name(), call.Run)
		}
		env := shuffle.Env{Node: e.Name(), Blocks: blocks,
			Broadcast: func(ctx context.Context, name, key string) ([]arrow.Record, error) {
				return e.broadcast(ctx, call.Driver, call.Peers, name, key)
			}}
		e.tasks.Add(1)
		res, err := e.runner.RunTask(stream.Context(), call.Body, env)
		if err != nil {
			e.stats.failed.Add(1)
			e.log.Debug("task failed", "node", e.Name(), "run", call.Run, "err", err)
			return taskStatus(err)
		}
		return stream.Send(&flight.Result{Body: res})
	case actionRelease:
		var call releaseCall
		if err := json.Unmarshal(a.Body, &call); err != nil {
			return status.Errorf(codes.InvalidArgument, "decode release: %v", err)
		}
		e.mu.Lock()
		r, ok := e.runs[call.Run]
		if call.All {
			delete(e.runs, call.Run)
			e.released[call.Run] = time.Now()
		}
		e.mu.Unlock()
		if ok {
			if call.All {
				r.mem.Close()
			} else {
				r.mem.Release(call.Stage)
			}
		}
		return stream.Send(&flight.Result{})
	}
	return status.Errorf(codes.Unimplemented, "no action %q", a.Type)
}

func (s *executorService) DoGet(t *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	var tk ticket
	if err := json.Unmarshal(t.Ticket, &tk); err != nil {
		return status.Errorf(codes.InvalidArgument, "decode ticket: %v", err)
	}
	e := s.e
	e.mu.Lock()
	r, ok := e.runs[tk.Run]
	e.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "node %s holds no block of run %s", e.Name(), tk.Run)
	}
	blocks := make([][]arrow.Record, len(tk.Blocks))
	defer func() {
		for _, recs := range blocks {
			for _, rec := range recs {
				rec.Release()
			}
		}
	}()
	for i, l := range tk.Blocks {
		recs, err := r.mem.Fetch(stream.Context(), []scheduler.Location{l})
		if err != nil {
			return status.Errorf(codes.NotFound, "node %s: %v", e.Name(), err)
		}
		blocks[i] = recs
	}
	return send(e.stats.serving(stream, len(tk.Blocks)), e.cfg.Mem, blocks)
}

// broadcast fetches key of name from the driver that sent a task.
func (e *Executor) broadcast(ctx context.Context, driver string, peers map[string]string, name, key string) ([]arrow.Record, error) {
	addr, ok := e.flightOf(driver, func(n string) (string, bool) { a, ok := peers[n]; return a, ok })
	if !ok {
		return nil, fmt.Errorf("driver %s is not a live member of the cluster", driver)
	}
	recs, _, err := e.fetch(ctx, addr, ticket{Name: name, Key: key})
	if err != nil {
		return nil, fmt.Errorf("driver %s (%s): %w", driver, addr, err)
	}
	return recs, nil
}
