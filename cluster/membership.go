package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Roles a member announces in its Meta.
const (
	RoleDriver   = "driver"
	RoleExecutor = "executor"
)

// Kinds of Event.
const (
	EventJoin   = "join"
	EventLeave  = "leave"
	EventUpdate = "update"
)

const (
	defaultBind        = "127.0.0.1:0"
	defaultJoinTimeout = 30 * time.Second
	// leaveTimeout and updateTimeout bound how long Close and SetMeta wait
	// for their broadcast to go out; with DefaultLocalConfig's 100 ms gossip
	// interval it goes out well within this, and a member that misses it
	// learns the change from failure detection or the next push/pull.
	leaveTimeout  = time.Second
	updateTimeout = time.Second
	// eventBuffer is how many events wait for a slow reader of Events
	// before further ones are dropped (and counted).
	eventBuffer = 128
)

// Meta is what a member gossips about itself. Encoded (JSON, compact) it must
// stay under memberlist's 512-byte limit: Encode refuses (error naming the
// size) anything larger.
type Meta struct {
	Role        string `json:"r"` // RoleDriver or RoleExecutor
	Flight      string `json:"f"` // host:port of the member's Flight (gRPC) server
	Slots       int    `json:"s,omitempty"`
	Fingerprint string `json:"p"` // build/job fingerprint; executors whose differs from the driver's get no work
	Incarnation string `json:"i"` // unique per process start
}

// Encode returns the gossiped form of m. memberlist panics on metadata over
// memberlist.MetaMaxSize (512) bytes, so the limit is checked here, where
// the error can still name the size.
func (m Meta) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode member metadata: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("encode member metadata: %d bytes encoded, over memberlist's limit of %d bytes", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes metadata made by Meta.Encode.
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 {
		return Meta{}, errors.New("decode member metadata: empty")
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("decode member metadata: %w", err)
	}
	return m, nil
}

// Member is one live member as this process sees it.
type Member struct {
	Name   string
	Gossip string // host:port of its gossip (memberlist) endpoint
	Meta   Meta
}

// Event is one membership change, for logs and metrics. Scheduling decisions
// read Members/Executors after Changed fires instead: events can be dropped.
type Event struct {
	Kind   string // EventJoin, EventLeave or EventUpdate
	Member Member
}

// MembershipConfig configures Join.
type MembershipConfig struct {
	// Name is the member's gossip name; default <role>-<hostname>-<random 8
	// hex>, unique per process start. memberlist refuses a member whose name
	// is still known at another address, so a name given here must also be
	// new on every start (a restarted process under its old name is refused
	// until the others forget the old one).
	Name string
	// Bind is the gossip host:port (TCP and UDP); default "127.0.0.1:0".
	// Port 0 picks a free port. The host is required: "0.0.0.0:7946" listens
	// on every interface, but only when asked for.
	Bind string
	// Advertise is the host:port others reach this member at; default the
	// bound address. A port of 0 (or none) means the bound port.
	Advertise string
	// Seeds are host:port of members to join; empty means this is the first.
	Seeds []string
	// Key is the gossip encryption key (16, 24 or 32 bytes, AES); required.
	// Members with different keys cannot read each other and never meet.
	Key  []byte
	Meta Meta
	// Logger receives memberlist's own log lines at debug level and this
	// package's warnings; nil discards them. Nothing goes to stderr.
	Logger *slog.Logger
	// JoinTimeout bounds how long Join keeps retrying seeds that do not
	// answer; default 30 s.
	JoinTimeout time.Duration

	rejoinEvery time.Duration // tests: how often a lone member joins its seeds again
}

// Membership is this process's member of the gossip cluster: it tracks the
// live members and their Meta. Safe for concurrent use.
//
// memberlist calls the event delegate under its own lock, so the delegate
// only copies the node under m.mu, wakes Changed waiters and offers the event
// to a buffered channel; nothing here calls memberlist while holding m.mu or
// metaMu (UpdateNode and Leave call back into the delegates).
type Membership struct {
	ml     *memberlist.Memberlist
	log    *slog.Logger
	name   string
	gossip string

	metaMu   sync.Mutex
	meta     Meta
	metaWire []byte // meta encoded; what NodeMeta hands memberlist

	mu      sync.Mutex
	members map[string]Member
	changed chan struct{}
	events  chan Event
	closed  bool
	dropped atomic.Uint64

	closeOnce sync.Once
	closeErr  error

	stopRejoin, rejoinDone chan struct{} // nil until joined
}

// Join starts this process's member and joins the seeds, retrying (bounded
// by cfg.JoinTimeout and ctx) until at least one answers; the error names
// every seed and why it failed. A bind address in use is an error naming the
// address. One attempt at an unresponsive seed can block for memberlist's TCP
// timeout (1 s), so Join may overrun ctx by that much.
func Join(ctx context.Context, cfg MembershipConfig) (*Membership, error) {
	if err := checkGossipKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("join cluster: %w", err)
	}
	if cfg.Meta.Role != RoleDriver && cfg.Meta.Role != RoleExecutor {
		return nil, fmt.Errorf("join cluster: meta role %q, want %q or %q", cfg.Meta.Role, RoleDriver, RoleExecutor)
	}
	if cfg.JoinTimeout < 0 {
		return nil, fmt.Errorf("join cluster: negative join timeout %v", cfg.JoinTimeout)
	}
	if cfg.JoinTimeout == 0 {
		cfg.JoinTimeout = defaultJoinTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	suffix, err := randomHex(4)
	if err != nil {
		return nil, fmt.Errorf("join cluster: %w", err)
	}
	if cfg.Name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "unknown"
		}
		cfg.Name = cfg.Meta.Role + "-" + host + "-" + suffix
	}
	if cfg.Meta.Incarnation == "" {
		if cfg.Meta.Incarnation, err = randomHex(8); err != nil {
			return nil, fmt.Errorf("join cluster: %w", err)
		}
	}
	wire, err := cfg.Meta.Encode()
	if err != nil {
		return nil, fmt.Errorf("join cluster as %s: %w", cfg.Name, err)
	}

	if cfg.Bind == "" {
		cfg.Bind = defaultBind
	}
	bindIP, bindPort, err := resolveHostPort(ctx, cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("join cluster: bind %w", err)
	}
	mlLog := log.New(logWriter{logger}, "", 0)
	transport, err := listen(bindIP, bindPort, mlLog)
	if err != nil {
		return nil, fmt.Errorf("join cluster: listen for gossip on %s: %w", cfg.Bind, err)
	}
	bound := transport.GetAutoBindPort()

	m := &Membership{
		log:      logger,
		name:     cfg.Name,
		meta:     cfg.Meta,
		metaWire: wire,
		members:  make(map[string]Member),
		changed:  make(chan struct{}),
		events:   make(chan Event, eventBuffer),
	}

	conf := memberlist.DefaultLocalConfig()
	conf.Name = cfg.Name
	conf.Transport = transport
	conf.BindAddr = bindIP
	// BindPort is also the port memberlist assumes for a seed given without one.
	conf.BindPort = bound
	conf.AdvertisePort = bound
	if cfg.Advertise != "" {
		ip, port, err := resolveHostPort(ctx, cfg.Advertise)
		if err != nil {
			_ = transport.Shutdown()
			return nil, fmt.Errorf("join cluster: advertise %w", err)
		}
		conf.AdvertiseAddr = ip
		if port != 0 {
			conf.AdvertisePort = port
		}
	}
	conf.SecretKey = cfg.Key
	conf.GossipVerifyIncoming = true
	conf.GossipVerifyOutgoing = true
	conf.Delegate = delegate{m}
	conf.Events = eventDelegate{m}
	conf.Logger = mlLog

	ml, err := memberlist.Create(conf)
	if err != nil {
		// Create does not always release a transport it was given.
		_ = transport.Shutdown()
		return nil, fmt.Errorf("join cluster: start gossip as %s on %s: %w", cfg.Name, cfg.Bind, err)
	}
	m.ml = ml
	m.gossip = ml.LocalNode().Address()

	if len(cfg.Seeds) > 0 {
		if err := joinSeeds(ctx, ml, cfg.Seeds, cfg.JoinTimeout); err != nil {
			// Nobody learnt of this member, so there is nothing to leave.
			m.shutdown()
			return nil, err
		}
	}
	logger.Debug("cluster: joined", "name", m.name, "gossip", m.gossip, "seeds", cfg.Seeds)
	m.stopRejoin, m.rejoinDone = make(chan struct{}), make(chan struct{})
	every := cfg.rejoinEvery
	if every <= 0 {
		every = rejoinEvery
	}
	go m.rejoin(cfg.Seeds, every)
	return m, nil
}

// rejoinEvery is how often a member that finds itself alone joins its
// seeds again.
const rejoinEvery = 5 * time.Second

// rejoin joins the seeds again whenever this member is alone: a seed list
// that named only this member when it started (a Kubernetes headless
// Service before the other pods are up), or a partition that outlived
// memberlist's memory of the others, would otherwise leave an island.
func (m *Membership) rejoin(seeds []string, every time.Duration) {
	defer close(m.rejoinDone)
	if len(seeds) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stopRejoin:
			return
		case <-t.C:
		}
		if m.ml.NumMembers() > 1 {
			continue
		}
		if n, err := m.ml.Join(seeds); err == nil && n > 0 {
			m.log.Debug("cluster: alone, joined the seeds again", "name", m.name, "seeds", seeds, "contacted", n)
		}
	}
}

// listen opens memberlist's TCP and UDP listeners ourselves so that a bind
// error names the address and the port picked for port 0 is known before
// Create. For port 0 the UDP port may be taken after the TCP one was picked,
// so that case retries (as memberlist's own setup does).
func listen(ip string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var t *memberlist.NetTransport
		t, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ip},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return t, nil
		}
	}
	return nil, err
}

// joinSeeds asks each seed for a push/pull until one answers or the timeout
// or ctx ends. The error reports the last attempt at every seed.
func joinSeeds(ctx context.Context, ml *memberlist.Memberlist, seeds []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 100 * time.Millisecond
	for {
		var failures []string
		for _, seed := range seeds {
			// One seed per call, so each failure is attributed to its seed.
			if _, err := ml.Join([]string{seed}); err != nil {
				failures = append(failures, seed+": "+joinFailure(err))
			}
		}
		if len(failures) < len(seeds) {
			return nil
		}
		why := strings.Join(failures, "; ")
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("join seeds %v: %w: %s", seeds, err, why)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("join seeds %v: %s (gave up after %v)", seeds, why, timeout)
		}
		// The last wait ends at the deadline, so the last attempt is made then.
		t := time.NewTimer(min(backoff, remaining))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("join seeds %v: %w: %s", seeds, ctx.Err(), why)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// joinFailure turns memberlist's join error (a multierror of "failed to join
// <addr>: <cause>", causes formatted with %v so not unwrappable) into the
// causes alone: the caller already names the seed.
func joinFailure(err error) string {
	var causes []error
	var multi interface{ WrappedErrors() []error }
	if errors.As(err, &multi) {
		causes = multi.WrappedErrors()
	} else {
		causes = []error{err}
	}
	out := make([]string, 0, len(causes))
	for _, c := range causes {
		s := c.Error()
		if strings.HasPrefix(s, "failed to join ") {
			if i := strings.Index(s, ": "); i >= 0 {
				s = s[i+2:]
			}
		}
		// memberlist's words for a reply sealed with another key.
		if strings.Contains(s, "no installed keys could decrypt") {
			s += " (the seed uses a different gossip key)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// resolveHostPort splits host:port and resolves the host to one IP, since
// memberlist's transport treats a host it cannot parse as an IP as "every
// interface". IPv4 is preferred when a name has both.
func resolveHostPort(ctx context.Context, hostport string) (string, int, error) {
	host, sport, err := net.SplitHostPort(hostport)
	if err != nil {
		// A bare host (no port) means port 0.
		host, sport = hostport, "0"
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: no host (127.0.0.1 for this machine only, 0.0.0.0 for every interface)", hostport)
	}
	port, err := strconv.ParseUint(sport, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%q: bad port %q", hostport, sport)
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), int(port), nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", hostport, err)
	}
	if len(addrs) == 0 {
		return "", 0, fmt.Errorf("%q: host has no address", hostport)
	}
	ip := addrs[0].IP
	for _, a := range addrs {
		if a.IP.To4() != nil {
			ip = a.IP
			break
		}
	}
	return ip.String(), int(port), nil
}

// Self is this member as it announces itself.
func (m *Membership) Self() Member {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	return Member{Name: m.name, Gossip: m.gossip, Meta: m.meta}
}

// Members returns the live members, this one included, sorted by Name.
// After Close it is empty.
func (m *Membership) Members() []Member {
	return m.list(func(Member) bool { return true })
}

// Executors returns the live executors (Role RoleExecutor with a Flight
// address; a member whose metadata did not decode has neither), sorted by
// Name. Fingerprints are not compared here: that is the driver's decision.
func (m *Membership) Executors() []Member {
	return m.list(func(x Member) bool { return x.Meta.Role == RoleExecutor && x.Meta.Flight != "" })
}

func (m *Membership) list(keep func(Member) bool) []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, x := range m.members {
		if keep(x) {
			out = append(out, x)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Changed returns a channel that is closed on the next membership change
// (join, leave, metadata update) after the call: waiters call it again after
// each wake-up. Close closes the pending channel once; after Close the
// returned channel never closes, so waiters also select on their context.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Events returns a buffered channel of membership events for logging and
// metrics. It never blocks memberlist: when the buffer is full an event is
// dropped and counted (DroppedEvents). Close closes the channel.
func (m *Membership) Events() <-chan Event { return m.events }

// DroppedEvents is how many events were dropped because Events was full.
func (m *Membership) DroppedEvents() uint64 { return m.dropped.Load() }

// SetMeta replaces this member's metadata and gossips it, waiting at most 1 s
// for the broadcast to go out. The member's Incarnation is kept (it names
// the process start, not the metadata version); meta.Incarnation is ignored.
func (m *Membership) SetMeta(meta Meta) error {
	if meta.Role != RoleDriver && meta.Role != RoleExecutor {
		return fmt.Errorf("set member metadata of %s: role %q, want %q or %q", m.name, meta.Role, RoleDriver, RoleExecutor)
	}
	m.metaMu.Lock()
	meta.Incarnation = m.meta.Incarnation
	wire, err := meta.Encode()
	if err == nil {
		m.meta, m.metaWire = meta, wire
	}
	m.metaMu.Unlock()
	if err != nil {
		return fmt.Errorf("set member metadata of %s: %w", m.name, err)
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return fmt.Errorf("set member metadata of %s: membership closed", m.name)
	}
	// UpdateNode calls NodeMeta and NotifyUpdate: no lock of ours is held.
	if err := m.ml.UpdateNode(updateTimeout); err != nil {
		return fmt.Errorf("set member metadata of %s: %w", m.name, err)
	}
	return nil
}

// Close leaves the cluster (waiting at most 1 s for the leave to be
// gossiped, so the others drop this member at once instead of after failure
// detection) and shuts memberlist down. Idempotent; later calls return the
// first result.
func (m *Membership) Close() error {
	m.closeOnce.Do(func() {
		var leaveErr error
		if err := m.ml.Leave(leaveTimeout); err != nil {
			leaveErr = fmt.Errorf("leave cluster as %s: %w", m.name, err)
		}
		m.closeErr = errors.Join(leaveErr, m.shutdownErr())
	})
	return m.closeErr
}

// shutdown stops memberlist without leaving (Join's failure path).
func (m *Membership) shutdown() {
	m.closeOnce.Do(func() { m.closeErr = m.shutdownErr() })
}

func (m *Membership) shutdownErr() error {
	if m.stopRejoin != nil {
		close(m.stopRejoin)
		<-m.rejoinDone
	}
	err := m.ml.Shutdown()
	// memberlist may still be finishing a message it was handling when
	// Shutdown returned: the closed flag keeps its callbacks away from the
	// closed events channel.
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		m.members = map[string]Member{}
		close(m.changed)
		m.changed = make(chan struct{})
		close(m.events)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("shut down gossip of %s: %w", m.name, err)
	}
	return nil
}

// member copies a memberlist node. It runs under memberlist's lock, so it
// only logs: metadata that does not decode leaves Meta zero, which makes the
// member unusable (no role, no Flight address) but still listed.
func (m *Membership) member(n *memberlist.Node) Member {
	x := Member{Name: n.Name, Gossip: n.Address()}
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		m.log.Warn("cluster: member metadata does not decode; the member gets no work",
			"member", n.Name, "gossip", x.Gossip, "err", err)
		return x
	}
	x.Meta = meta
	return x
}

// observe records a change reported by memberlist. Never blocks.
func (m *Membership) observe(kind string, n *memberlist.Node) {
	x := m.member(n)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if kind == EventLeave {
		delete(m.members, x.Name)
	} else {
		m.members[x.Name] = x
	}
	close(m.changed)
	m.changed = make(chan struct{})
	select {
	case m.events <- Event{Kind: kind, Member: x}:
	default:
		m.dropped.Add(1)
	}
}

// delegate hands memberlist this member's metadata; the cluster exchanges
// no user messages or state over gossip.
type delegate struct{ m *Membership }

func (d delegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	defer d.m.metaMu.Unlock()
	if len(d.m.metaWire) > limit {
		// Encode checks against memberlist.MetaMaxSize, which is the limit
		// memberlist passes; announcing nothing beats memberlist's panic.
		return nil
	}
	return d.m.metaWire
}

func (delegate) NotifyMsg([]byte)                  {}
func (delegate) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (delegate) LocalState(bool) []byte            { return nil }
func (delegate) MergeRemoteState(_ []byte, _ bool) {}

// eventDelegate runs under memberlist's lock: observe copies and returns.
type eventDelegate struct{ m *Membership }

func (e eventDelegate) NotifyJoin(n *memberlist.Node)   { e.m.observe(EventJoin, n) }
func (e eventDelegate) NotifyLeave(n *memberlist.Node)  { e.m.observe(EventLeave, n) }
func (e eventDelegate) NotifyUpdate(n *memberlist.Node) { e.m.observe(EventUpdate, n) }

// logWriter turns memberlist's log lines ("[DEBUG] memberlist: ...") into
// debug records of the caller's logger, keeping memberlist's own level as an
// attribute: memberlist is chatty at [ERR] about peers that simply left.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	w.log.Debug(line, "memberlist_level", level)
	return len(p), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return hex.EncodeToString(b), nil
}
