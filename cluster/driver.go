package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedata/sluice/scheduler"
)

// Driver is a driver's member of the cluster: it learns executors by
// gossip, sends them tasks, fetches their blocks and serves them the
// driver's broadcast data. It is the Dispatcher of dataset/plan's
// RemoteExecutor (set it as dataset.Config.Cluster).
type Driver struct {
	*node

	lost    atomic.Int64              // task attempts that lost their executor
	waiting atomic.Pointer[time.Time] // since when Nodes waits for an executor
	sent    atomic.Int64              // task attempts sent

	mu      sync.Mutex
	served  map[string]func(key string) ([]arrow.Record, bool)
	refused map[string]bool // executors logged as refused (fingerprint)
	// quarantine holds executors an attempt lost, until when: gossip
	// takes seconds to declare a dead member dead, and a node that lost
	// an attempt gets no work meanwhile.
	quarantine map[string]time.Time
}

// quarantineFor is how long an executor that lost an attempt gets no work:
// longer than memberlist takes to declare a crashed member dead, short
// enough that a node that only hiccuped is used again soon.
const quarantineFor = 10 * time.Second

// StartDriver starts a driver's member: Flight on cfg.Flight (executors
// fetch broadcast data from it) and gossip through cfg.Seeds.
func StartDriver(ctx context.Context, cfg Config) (*Driver, error) {
	cfg = cfg.withDefaults()
	d := &Driver{served: map[string]func(string) ([]arrow.Record, bool){}, refused: map[string]bool{}, quarantine: map[string]time.Time{}}
	_, err := startNode(ctx, cfg, RoleDriver, &driverService{d: d}, func(n *node) { d.node = n })
	if err != nil {
		return nil, err
	}
	return d, nil
}

// SentAttempts counts the task attempts sent to executors.
func (d *Driver) SentAttempts() int64 { return d.sent.Load() }

// LostAttempts counts the task attempts that lost their executor.
func (d *Driver) LostAttempts() int64 { return d.lost.Load() }

// Close leaves the cluster and stops serving.
func (d *Driver) Close() error { return d.close() }

// Executors lists the live executors this driver gives work to: those of
// its fingerprint with a Flight address, less those in quarantine for a
// lost attempt. Others are logged once.
func (d *Driver) Executors() []Member {
	var out []Member
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.members.Executors() {
		if until, held := d.quarantine[m.Name]; held {
			if now.Before(until) {
				continue
			}
			delete(d.quarantine, m.Name)
		}
		if m.Meta.Fingerprint != d.cfg.Fingerprint || m.Meta.Flight == "" {
			if !d.refused[m.Name] {
				d.refused[m.Name] = true
				d.log.Warn("executor refused: its build differs from the driver's; it gets no work",
					"node", m.Name, "flight", m.Meta.Flight, "fingerprint", m.Meta.Fingerprint, "driver_fingerprint", d.cfg.Fingerprint)
			}
			continue
		}
		out = append(out, m)
	}
	return out
}

// Nodes lists the live executors and their slots, waiting up to
// Config.WaitForExecutors (and ctx) while there is none, logging every
// few seconds that it waits.
func (d *Driver) Nodes(ctx context.Context) ([]scheduler.Node, error) {
	deadline := time.Now().Add(d.cfg.WaitForExecutors)
	logged := time.Time{}
	for {
		changed := d.members.Changed()
		var nodes []scheduler.Node
		for _, m := range d.Executors() {
			nodes = append(nodes, scheduler.Node{Name: m.Name, Slots: max(m.Meta.Slots, 1)})
		}
		if len(nodes) > 0 {
			d.waiting.Store(nil)
			return nodes, nil
		}
		if d.waiting.Load() == nil {
			now := time.Now()
			d.waiting.Store(&now)
		}
		if time.Now().After(deadline) {
			d.waiting.Store(nil)
			return nil, fmt.Errorf("cluster: no executor alive after waiting %v (driver %s, members %v)", d.cfg.WaitForExecutors, d.Name(), memberNames(d.members.Members()))
		}
		if time.Since(logged) > 5*time.Second {
			d.log.Warn("waiting for an executor to join", "driver", d.Name(), "gossip", d.members.Self().Gossip, "waited_until", deadline.Format(time.RFC3339))
			logged = time.Now()
		}
		select {
		case <-changed:
		case <-time.After(time.Second):
		case <-ctx.Done():
			d.waiting.Store(nil)
			return nil, ctx.Err()
		}
	}
}

// Waiting says, while a batch waits for an executor to join, since when
// and for how long at most; "" otherwise.
func (d *Driver) Waiting() string {
	since := d.waiting.Load()
	if since == nil {
		return ""
	}
	return fmt.Sprintf("waiting for an executor to join (for %v, at most %v)", time.Since(*since).Round(time.Second), d.cfg.WaitForExecutors)
}

// RunTask sends an encoded task of run to executor node and returns its
// encoded result. Errors of the transport (the node is gone, unreachable,
// past the task deadline) wrap scheduler.ErrNodeLost; a block the task
// could not fetch is a *scheduler.FetchError; the task's own error says
// which node ran it.
func (d *Driver) RunTask(ctx context.Context, node, run string, task []byte) ([]byte, error) {
	m, ok := d.member(node)
	if !ok {
		return nil, fmt.Errorf("node %s is not a live member: %w", node, scheduler.ErrNodeLost)
	}
	peers := map[string]string{d.Name(): d.Flight()}
	for _, x := range d.members.Executors() {
		peers[x.Name] = x.Meta.Flight
	}
	body, err := json.Marshal(taskCall{Run: run, Driver: d.Name(), Body: task, Peers: peers})
	if err != nil {
		return nil, err
	}
	d.sent.Add(1)
	tctx, cancel := context.WithTimeout(ctx, d.cfg.TaskTimeout)
	defer cancel()
	tctx, done := d.watch(tctx, m.Meta.Flight)
	defer done()
	res, err := d.action(tctx, m.Meta.Flight, actionTask, body)
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Aborted:
		return nil, taskError(node, st)
	case codes.FailedPrecondition, codes.InvalidArgument:
		return nil, fmt.Errorf("on node %s: %s", node, st.Message())
	case codes.DataLoss:
		var fe fetchError
		if json.Unmarshal([]byte(st.Message()), &fe) == nil {
			return nil, &scheduler.FetchError{Loc: fe.Loc, Err: fmt.Errorf("on node %s: %s", node, fe.Err)}
		}
	}
	if cause := context.Cause(tctx); errors.Is(cause, errHung) {
		err = cause
	} else if tctx.Err() != nil {
		err = fmt.Errorf("no result within the task deadline %v", d.cfg.TaskTimeout)
	}
	d.lost.Add(1)
	d.mu.Lock()
	d.quarantine[node] = time.Now().Add(quarantineFor)
	d.mu.Unlock()
	d.log.Warn("task attempt lost its executor; it gets no work for a while", "node", node, "flight", m.Meta.Flight, "run", run, "err", err)
	return nil, fmt.Errorf("node %s (%s): %v: %w", node, m.Meta.Flight, err, scheduler.ErrNodeLost)
}

// Fetch returns the records of blocks of run from their executors.
func (d *Driver) Fetch(ctx context.Context, run string, locs []scheduler.Location) ([]arrow.Record, error) {
	return fetchBlocks(ctx, d.node, run, locs, nil, nil)
}

// Release frees blocks of run on every executor, in the background: a
// release that does not arrive costs memory until the run's blocks expire,
// never a result.
func (d *Driver) Release(run string, stage int) {
	call := releaseCall{Run: run, Stage: stage, All: stage < -1<<20}
	body, _ := json.Marshal(call)
	// Every member, quarantined ones too: one that hung and came back
	// still holds the run's blocks.
	for _, m := range d.members.Executors() {
		go func(addr string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d.action(ctx, addr, actionRelease, body)
		}(m.Meta.Flight)
	}
}

// Serve makes this driver serve fn's records under name.
func (d *Driver) Serve(name string, fn func(key string) ([]arrow.Record, bool)) (stop func()) {
	d.mu.Lock()
	d.served[name] = fn
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		delete(d.served, name)
		d.mu.Unlock()
	}
}

type driverService struct {
	flight.BaseFlightServer
	d *Driver
}

func (s *driverService) DoAction(a *flight.Action, stream flight.FlightService_DoActionServer) error {
	if a.Type == actionPing {
		return stream.Send(&flight.Result{})
	}
	return status.Errorf(codes.Unimplemented, "no action %q", a.Type)
}

func (s *driverService) DoGet(t *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	var tk ticket
	if err := json.Unmarshal(t.Ticket, &tk); err != nil {
		return status.Errorf(codes.InvalidArgument, "decode ticket: %v", err)
	}
	s.d.mu.Lock()
	fn, ok := s.d.served[tk.Name]
	s.d.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "driver %s serves no %q", s.d.Name(), tk.Name)
	}
	recs, ok := fn(tk.Key)
	if !ok {
		return status.Errorf(codes.NotFound, "driver %s: %q has no key %q", s.d.Name(), tk.Name, tk.Key)
	}
	return send(stream, s.d.cfg.Mem, [][]arrow.Record{recs})
}
