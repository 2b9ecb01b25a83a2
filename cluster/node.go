package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/flight"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/sluicedata/sluice/scheduler"
)

// Config is one member's configuration, driver or executor.
type Config struct {
	// Bind is the gossip address (default MembershipConfig.Bind's,
	// 127.0.0.1:0), Advertise the
	// host others reach this member at (default the bound IP), Seeds the
	// gossip addresses of members to join.
	Bind      string
	Advertise string
	Seeds     []string
	// GossipKey encrypts gossip (16, 24 or 32 bytes); required.
	GossipKey []byte
	// Flight is the Arrow Flight (gRPC) address to listen on; default
	// 127.0.0.1:0.
	Flight string
	// TLS is this member's identity in the cluster; required: every Flight
	// connection is mutual TLS.
	TLS *TLS
	// Slots are the tasks an executor runs at once; default GOMAXPROCS.
	Slots int
	// Fingerprint identifies the job's build; default Fingerprint(). A
	// driver gives no work to executors of another fingerprint.
	Fingerprint string
	Logger      *slog.Logger
	Mem         memory.Allocator
	// JoinTimeout bounds joining the seeds; default 30 s.
	JoinTimeout time.Duration
	// TaskTimeout (driver) bounds one task attempt; default 10 min.
	TaskTimeout time.Duration
	// WaitForExecutors (driver) is how long a batch waits for a live
	// executor before failing; default 2 min.
	WaitForExecutors time.Duration
	// SpillDir and MemoryLimit (executor): map output blocks beyond
	// MemoryLimit bytes (default 256 MiB) spill to Arrow IPC files under
	// SpillDir (default a temporary directory).
	SpillDir    string
	MemoryLimit int64

	orphanAfter time.Duration // tests: how soon a gone driver's runs are dropped
}

func (c Config) withDefaults() Config {
	if c.Flight == "" {
		c.Flight = "127.0.0.1:0"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Mem == nil {
		c.Mem = memory.DefaultAllocator
	}
	if c.Fingerprint == "" {
		c.Fingerprint = Fingerprint()
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = 10 * time.Minute
	}
	if c.WaitForExecutors <= 0 {
		c.WaitForExecutors = 2 * time.Minute
	}
	if c.MemoryLimit <= 0 {
		c.MemoryLimit = 256 << 20
	}
	return c
}

var (
	fpOnce sync.Once
	fp     string
)

// Fingerprint is this build's fingerprint: a hash of the running
// executable, so a driver and executors of the same job binary agree and
// any other build differs.
func Fingerprint() string {
	fpOnce.Do(func() {
		fp = "unknown"
		path, err := os.Executable()
		if err != nil {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return
		}
		fp = hex.EncodeToString(h.Sum(nil)[:8])
	})
	return fp
}

// incarnation is a new id per process start.
func incarnation() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// node is what a driver and an executor share: the Flight server, the
// membership, and clients of the other members' Flight servers.
type node struct {
	cfg     Config
	log     *slog.Logger
	members *Membership
	lis     net.Listener
	srv     *grpc.Server
	done    chan struct{}

	mu      sync.Mutex
	clients map[string]*grpc.ClientConn // by Flight address
	health  health
}

// startNode listens for Flight, joins the cluster as role, hands the node
// to bind (the service's owner) and only then serves svc: a call that
// arrives meanwhile waits in the listener's backlog, never finds a
// half-made member.
func startNode(ctx context.Context, cfg Config, role string, svc flight.FlightServer, bind func(*node)) (*node, error) {
	if cfg.TLS == nil {
		return nil, errors.New("cluster: no TLS identity (Config.TLS): every Flight connection is mutual TLS; make one with `sluice certs`")
	}
	if len(cfg.GossipKey) == 0 {
		return nil, errors.New("cluster: no gossip key (Config.GossipKey): gossip is encrypted; make one with `sluice certs`")
	}
	lis, err := net.Listen("tcp", cfg.Flight)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen for Flight on %s: %w", cfg.Flight, err)
	}
	n := &node{cfg: cfg, log: cfg.Logger, lis: lis, done: make(chan struct{}), clients: map[string]*grpc.ClientConn{}}
	n.srv = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(cfg.TLS.ServerConfig())),
		grpc.MaxRecvMsgSize(1<<30), grpc.MaxSendMsgSize(1<<30),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 5 * time.Second, Timeout: 5 * time.Second}),
	)
	flight.RegisterFlightServiceServer(n.srv, svc)
	flightAddr, advertise := lis.Addr().String(), ""
	if cfg.Advertise != "" {
		_, port, _ := net.SplitHostPort(flightAddr)
		flightAddr = net.JoinHostPort(cfg.Advertise, port)
		advertise = net.JoinHostPort(cfg.Advertise, "0") // port 0: the gossip port bound
	}
	meta := Meta{Role: role, Flight: flightAddr, Slots: cfg.Slots, Fingerprint: cfg.Fingerprint, Incarnation: incarnation()}
	n.members, err = Join(ctx, MembershipConfig{Bind: cfg.Bind, Advertise: advertise, Seeds: cfg.Seeds, Key: cfg.GossipKey,
		Meta: meta, Logger: cfg.Logger, JoinTimeout: cfg.JoinTimeout})
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("cluster: %s (Flight %s): %w", role, flightAddr, err)
	}
	bind(n)
	go func() {
		defer close(n.done)
		n.srv.Serve(lis)
	}()
	go n.dropGone()
	n.log.Info("cluster member started", "role", role, "node", n.members.Self().Name, "gossip", n.members.Self().Gossip, "flight", flightAddr, "fingerprint", cfg.Fingerprint)
	return n, nil
}

// Name is this member's name in the cluster (unique per process start).
func (n *node) Name() string { return n.members.Self().Name }

func (n *node) close() error {
	err := n.members.Close()
	n.srv.Stop()
	<-n.done
	n.mu.Lock()
	for addr, c := range n.clients {
		c.Close()
		delete(n.clients, addr)
	}
	n.mu.Unlock()
	return err
}

// member finds a live member by name.
func (n *node) member(name string) (Member, bool) {
	for _, m := range n.members.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// flightOf is the Flight address of member name: as the driver told
// (peers, may be nil), else as gossip says.
func (n *node) flightOf(name string, peers func(string) (string, bool)) (string, bool) {
	if peers != nil {
		if a, ok := peers(name); ok && a != "" {
			return a, true
		}
	}
	m, ok := n.member(name)
	return m.Meta.Flight, ok && m.Meta.Flight != ""
}

// dropGone closes the clients of members that left the cluster, so a
// long-lived driver among churning executors keeps no connection (and its
// reconnect loop) per departed one. An address never seen in gossip (a
// peer the driver told of first) is left alone.
func (n *node) dropGone() {
	seen := map[string]bool{}
	for {
		changed := n.members.Changed()
		now := map[string]bool{}
		for _, m := range n.members.Members() {
			if m.Meta.Flight != "" {
				now[m.Meta.Flight] = true
			}
		}
		n.mu.Lock()
		for addr := range seen {
			if !now[addr] {
				if c, ok := n.clients[addr]; ok {
					c.Close()
					delete(n.clients, addr)
				}
			}
		}
		n.mu.Unlock()
		seen = now
		select {
		case <-changed:
		case <-n.done:
			return
		}
	}
}

// client returns a Flight client of the member's address, dialled once.
func (n *node) client(addr string) (flight.FlightServiceClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.clients[addr]; ok {
		return flight.NewFlightServiceClient(c), nil
	}
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(n.cfg.TLS.ClientConfig())),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)),
		// gRPC pings no more often than every 10 s; hung peers are found
		// by our own pings (health.go).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	n.clients[addr] = c
	return flight.NewFlightServiceClient(c), nil
}

// ticket is what DoGet asks for: blocks of a run, or a broadcast key.
type ticket struct {
	Run    string               `json:"run,omitempty"`
	Blocks []scheduler.Location `json:"blocks,omitempty"`
	Name   string               `json:"name,omitempty"` // broadcast name
	Key    string               `json:"key,omitempty"`
}

// fetch reads t from the member at addr: every record with the index of
// the block it belongs to (the record's app metadata).
func (n *node) fetch(ctx context.Context, addr string, t ticket) (recs []arrow.Record, blocks []int, err error) {
	c, err := n.client(addr)
	if err != nil {
		return nil, nil, err
	}
	tb, err := json.Marshal(t)
	if err != nil {
		return nil, nil, err
	}
	ctx, done := n.watch(ctx, addr)
	defer done()
	stream, err := c.DoGet(ctx, &flight.Ticket{Ticket: tb})
	if err != nil {
		return nil, nil, err
	}
	r, err := flight.NewRecordReader(stream, ipc.WithAllocator(n.cfg.Mem))
	if errors.Is(err, io.EOF) {
		return nil, nil, nil // nothing to send
	}
	if err != nil {
		return nil, nil, err
	}
	defer r.Release()
	defer func() {
		if err != nil {
			for _, rec := range recs {
				rec.Release()
			}
			recs = nil
		}
	}()
	for r.Next() {
		rec := r.Record()
		rec.Retain()
		recs = append(recs, rec)
		var idx int
		if err := json.Unmarshal(r.LatestAppMetadata(), &idx); err != nil {
			return nil, nil, fmt.Errorf("record without its block index: %w", err)
		}
		blocks = append(blocks, idx)
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		if cause := context.Cause(ctx); errors.Is(cause, errHung) {
			err = cause
		}
		return nil, nil, err
	}
	return recs, blocks, nil
}

// send writes blocks of records to a DoGet stream, each record tagged
// with the index of its block.
func send(stream flight.FlightService_DoGetServer, mem memory.Allocator, blocks [][]arrow.Record) error {
	var w *flight.Writer
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	for i, recs := range blocks {
		meta, _ := json.Marshal(i)
		for _, rec := range recs {
			if w == nil {
				w = flight.NewRecordWriter(stream, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
			}
			if err := w.WriteWithAppMetadata(rec, meta); err != nil {
				return err
			}
		}
	}
	return nil
}

// action runs a DoAction call on the member at addr and returns its
// single result's body.
func (n *node) action(ctx context.Context, addr, typ string, body []byte) ([]byte, error) {
	c, err := n.client(addr)
	if err != nil {
		return nil, err
	}
	stream, err := c.DoAction(ctx, &flight.Action{Type: typ, Body: body})
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, res.Body...)
	}
}

// fetchError is a reduce task's failure to read a block, as it crosses
// from an executor to the driver (status DataLoss, this as message).
type fetchError struct {
	Loc scheduler.Location `json:"loc"`
	Err string             `json:"err"`
}

// taskStatus turns a task's error into the status the driver reads.
func taskStatus(err error) error {
	var fe *scheduler.FetchError
	if errors.As(err, &fe) {
		b, _ := json.Marshal(fetchError{Loc: fe.Loc, Err: fe.Err.Error()})
		return status.Error(codes.DataLoss, string(b))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.Canceled, err.Error())
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) && t.Transient() {
		// gRPC's own way to say "trying again may work": the driver's
		// RunTask turns it back into an error a restart strategy counts as
		// transient (a broker the task could not reach).
		if st, derr := status.New(codes.Aborted, err.Error()).WithDetails(&errdetails.RetryInfo{}); derr == nil {
			return st.Err()
		}
	}
	return status.Error(codes.Aborted, err.Error())
}

// TaskError is a task's error as it reached the driver from an executor,
// as text. One the executor found transient (its chain had a Transient()
// bool method returning true, such as sources/kafka's ErrUnavailable)
// comes as a TransientTaskError, so microbatch's restart strategies
// classify a task that failed on an executor as they would the same
// failure in the driver's process; a TaskError itself claims nothing, and
// the strategies judge it as any other error.
type TaskError struct {
	Msg string
}

func (e *TaskError) Error() string { return e.Msg }

// TransientTaskError is a TaskError the executor found transient.
type TransientTaskError struct {
	TaskError
}

// Transient reports true: a restart may cure the error.
func (e *TransientTaskError) Transient() bool { return true }

// taskError decodes st, a task's status with code Aborted.
func taskError(node string, st *status.Status) error {
	e := TaskError{Msg: fmt.Sprintf("on node %s: %s", node, st.Message())}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return &TransientTaskError{e}
		}
	}
	return &e
}

// memberNames lists members' names.
func memberNames(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

// Membership is this member's view of the cluster (members, events).
func (n *node) Membership() *Membership { return n.members }

// Gossip is this member's gossip address: the seed others join through.
func (n *node) Gossip() string { return n.members.Self().Gossip }

// Flight is this member's Flight address.
func (n *node) Flight() string { return n.members.Self().Meta.Flight }
