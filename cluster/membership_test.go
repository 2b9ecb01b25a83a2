package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

// memberlist's Shutdown does not wait for a probe already in flight: that
// goroutine ends on its own within the probe interval (1 s, up to 8 s when
// memberlist thinks itself degraded). So the leak check waits that long
// before it calls anything left a leak.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		err := goleak.Find()
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func testKey(t *testing.T) []byte {
	t.Helper()
	k, err := NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// start joins a member and closes it at the end of the test.
func start(t *testing.T, cfg MembershipConfig) *Membership {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Join(ctx, cfg)
	if err != nil {
		t.Fatalf("join %s: %v", cfg.Meta.Role, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// waitFor polls cond every 10 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func sortedNames(ms ...*Membership) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Self().Name
	}
	slices.Sort(out)
	return out
}

// sees reports whether m lists exactly want (by their own Self, Meta included).
func sees(m *Membership, want ...*Membership) bool {
	got := m.Members()
	if !slices.Equal(names(got), sortedNames(want...)) {
		return false
	}
	for _, w := range want {
		self := w.Self()
		i := slices.IndexFunc(got, func(x Member) bool { return x.Name == self.Name })
		if got[i] != self {
			return false
		}
	}
	return true
}

// closedWithin reports whether ch closes within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// nextEvent returns the next event of kind about name, skipping others.
func nextEvent(t *testing.T, m *Membership, kind, name string) Event {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				t.Fatalf("events closed before %s of %s", kind, name)
			}
			if ev.Kind == kind && ev.Member.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event for %s within 3s", kind, name)
		}
	}
}

func TestMembershipThreeMembersSeeEachOtherAndLeave(t *testing.T) {
	key := testKey(t)
	driver := start(t, MembershipConfig{Key: key, Meta: Meta{Role: RoleDriver, Flight: "127.0.0.1:9001", Fingerprint: "fp-1"}})
	self := driver.Self()
	if !strings.HasPrefix(self.Name, "driver-") || !strings.HasPrefix(self.Gossip, "127.0.0.1:") || strings.HasSuffix(self.Gossip, ":0") {
		t.Fatalf("driver self = %+v, want a driver-… name and a bound 127.0.0.1 port", self)
	}
	if self.Meta.Incarnation == "" {
		t.Fatal("driver has no incarnation")
	}

	changed := driver.Changed()
	seeds := []string{self.Gossip}
	e1 := start(t, MembershipConfig{Key: key, Seeds: seeds, Meta: Meta{Role: RoleExecutor, Flight: "127.0.0.1:9002", Slots: 4, Fingerprint: "fp-1"}})
	if !closedWithin(changed, 3*time.Second) {
		t.Fatal("driver's Changed did not fire when an executor joined")
	}
	e2 := start(t, MembershipConfig{Key: key, Seeds: seeds, Meta: Meta{Role: RoleExecutor, Flight: "127.0.0.1:9003", Slots: 2, Fingerprint: "fp-2"}})

	all := []*Membership{driver, e1, e2}
	for _, m := range all {
		waitFor(t, 3*time.Second, m.Self().Name+" sees all three members with their meta", func() bool { return sees(m, all...) })
	}
	if got, want := names(driver.Executors()), sortedNames(e1, e2); !slices.Equal(got, want) {
		t.Fatalf("driver's executors = %v, want %v", got, want)
	}
	if got, want := names(e1.Executors()), sortedNames(e1, e2); !slices.Equal(got, want) {
		t.Fatalf("e1's executors = %v, want %v (itself included)", got, want)
	}
	if ev := nextEvent(t, driver, EventJoin, e2.Self().Name); ev.Member != e2.Self() {
		t.Fatalf("join event = %+v, want %+v", ev.Member, e2.Self())
	}

	// Graceful leave is gossiped: the others drop e1 far sooner than crash
	// detection (4-5 s) would.
	gone := e1.Self().Name
	changed = driver.Changed()
	began := time.Now()
	if err := e1.Close(); err != nil {
		t.Fatalf("close e1: %v", err)
	}
	for _, m := range []*Membership{driver, e2} {
		waitFor(t, 2*time.Second, m.Self().Name+" drops the executor that left", func() bool { return sees(m, driver, e2) })
	}
	t.Logf("leave seen by both in %v", time.Since(began))
	if !closedWithin(changed, time.Second) {
		t.Fatal("driver's Changed did not fire on leave")
	}
	nextEvent(t, driver, EventLeave, gone)
	if got := names(driver.Executors()); !slices.Equal(got, []string{e2.Self().Name}) {
		t.Fatalf("driver's executors after leave = %v, want only e2", got)
	}

	if err := e1.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if len(e1.Members()) != 0 {
		t.Fatalf("closed member still lists %v", e1.Members())
	}
	// The buffer may still hold events, but the channel ends.
	for range e1.Events() {
	}
}

func TestMembershipSetMetaIsGossiped(t *testing.T) {
	key := testKey(t)
	driver := start(t, MembershipConfig{Key: key, Meta: Meta{Role: RoleDriver, Flight: "127.0.0.1:9001"}})
	// An executor that has no Flight server yet is listed but gets no work.
	exec := start(t, MembershipConfig{Key: key, Seeds: []string{driver.Self().Gossip}, Meta: Meta{Role: RoleExecutor}})
	waitFor(t, 3*time.Second, "driver sees the executor", func() bool { return sees(driver, driver, exec) })
	if ex := driver.Executors(); len(ex) != 0 {
		t.Fatalf("an executor without a Flight address is usable: %v", ex)
	}

	inc := exec.Self().Meta.Incarnation
	changed := driver.Changed()
	if err := exec.SetMeta(Meta{Role: RoleExecutor, Flight: "127.0.0.1:9100", Slots: 8, Incarnation: "ignored"}); err != nil {
		t.Fatal(err)
	}
	if got := exec.Self().Meta; got.Incarnation != inc || got.Slots != 8 {
		t.Fatalf("self meta after SetMeta = %+v, want slots 8 and incarnation %q kept", got, inc)
	}
	if !closedWithin(changed, 3*time.Second) {
		t.Fatal("driver's Changed did not fire on a metadata update")
	}
	waitFor(t, 3*time.Second, "driver sees the new metadata", func() bool { return sees(driver, driver, exec) })
	if ex := driver.Executors(); len(ex) != 1 || ex[0].Meta.Flight != "127.0.0.1:9100" {
		t.Fatalf("driver's executors = %+v, want the executor at 127.0.0.1:9100", ex)
	}
	nextEvent(t, driver, EventUpdate, exec.Self().Name)

	err := exec.SetMeta(Meta{Role: RoleExecutor, Flight: "127.0.0.1:9100", Fingerprint: strings.Repeat("x", 600)})
	if err == nil || !strings.Contains(err.Error(), "over memberlist's limit of 512 bytes") {
		t.Fatalf("SetMeta of oversized meta: err = %v, want the 512-byte limit named", err)
	}
	if got := exec.Self().Meta.Flight; got != "127.0.0.1:9100" {
		t.Fatalf("refused SetMeta changed the meta: flight %q", got)
	}
}

func TestMembershipDifferentKeyCannotJoin(t *testing.T) {
	driver := start(t, MembershipConfig{Key: testKey(t), Meta: Meta{Role: RoleDriver}})
	seed := driver.Self().Gossip

	began := time.Now()
	_, err := Join(context.Background(), MembershipConfig{
		Key:         testKey(t),
		Seeds:       []string{seed},
		Meta:        Meta{Role: RoleExecutor, Flight: "127.0.0.1:9002"},
		JoinTimeout: 500 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("a member with another gossip key joined")
	}
	if !strings.Contains(err.Error(), "join seeds ["+seed+"]: "+seed+": ") || !strings.Contains(err.Error(), "different gossip key") {
		t.Fatalf("err = %v, want it to name seed %s and the key mismatch", err, seed)
	}
	t.Logf("refused in %v: %v", time.Since(began), err)
	if d := time.Since(began); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Join gave up after %v with a 500ms join timeout", d)
	}
	// Give any gossip that might have slipped through time to land.
	for range 5 {
		if got := names(driver.Members()); !slices.Equal(got, []string{driver.Self().Name}) {
			t.Fatalf("driver lists %v, want only itself", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMembershipConfigRefused(t *testing.T) {
	key := testKey(t)
	for _, tc := range []struct {
		name string
		cfg  MembershipConfig
		want string
	}{
		{"a member without a key", MembershipConfig{Meta: Meta{Role: RoleExecutor}}, "gossip key is empty"},
		{"a key of a length AES does not take", MembershipConfig{Key: make([]byte, 20), Meta: Meta{Role: RoleExecutor}}, "gossip key is 20 bytes, want 16, 24 or 32"},
		{"a member without a role", MembershipConfig{Key: key}, `meta role "", want "driver" or "executor"`},
		{"metadata over 512 bytes", MembershipConfig{Key: key, Meta: Meta{Role: RoleExecutor, Fingerprint: strings.Repeat("f", 600)}}, "over memberlist's limit of 512 bytes"},
		{"a bind address without a host", MembershipConfig{Key: key, Bind: ":0", Meta: Meta{Role: RoleExecutor}}, `":0": no host`},
		{"a negative join timeout", MembershipConfig{Key: key, JoinTimeout: -time.Second, Meta: Meta{Role: RoleExecutor}}, "negative join timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Join(context.Background(), tc.cfg)
			if err == nil {
				_ = m.Close()
				t.Fatal("joined")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// freeAddr returns a 127.0.0.1 port nobody listens on (TCP) right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestMembershipUnreachableSeedsAreNamed(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	began := time.Now()
	_, err := Join(context.Background(), MembershipConfig{
		Key:         testKey(t),
		Seeds:       []string{a, b},
		Meta:        Meta{Role: RoleExecutor},
		JoinTimeout: 300 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("joined nobody")
	}
	msg := err.Error()
	for _, want := range []string{"join seeds [" + a + " " + b + "]: ", a + ": dial tcp " + a + ": connect: connection refused", b + ": dial tcp " + b + ": connect: connection refused"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("err = %v, want it to contain %q", err, want)
		}
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("gave up after %v with a 300ms join timeout", d)
	}

	// The context bounds the retries too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began = time.Now()
	_, err = Join(ctx, MembershipConfig{Key: testKey(t), Seeds: []string{a}, Meta: Meta{Role: RoleExecutor}})
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") || !strings.Contains(err.Error(), a+": ") {
		t.Fatalf("err = %v, want the deadline and seed %s", err, a)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("gave up after %v with a 200ms context", d)
	}
}

func TestMembershipBindPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, err = Join(context.Background(), MembershipConfig{Key: testKey(t), Bind: addr, Meta: Meta{Role: RoleExecutor}})
	if err == nil {
		t.Fatalf("bound %s twice", addr)
	}
	if !strings.Contains(err.Error(), "listen for gossip on "+addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want it to name %s and say it is in use", err, addr)
	}
}

func TestMetaEncodeLimit(t *testing.T) {
	base := Meta{Role: RoleExecutor, Flight: "10.0.0.7:8815", Slots: 16, Incarnation: "0123456789abcdef"}
	b, err := base.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMeta(b)
	if err != nil || got != base {
		t.Fatalf("round trip = %+v, %v, want %+v", got, err, base)
	}

	// Pad the fingerprint to land exactly on the limit, then one past it.
	atLimit := base
	atLimit.Fingerprint = strings.Repeat("a", memberlist.MetaMaxSize-len(b))
	if b, err := atLimit.Encode(); err != nil || len(b) != memberlist.MetaMaxSize {
		t.Fatalf("meta of exactly %d bytes: %d bytes, %v", memberlist.MetaMaxSize, len(b), err)
	}
	over := atLimit
	over.Fingerprint += "a"
	if _, err := over.Encode(); err == nil || !strings.Contains(err.Error(), "513 bytes encoded, over memberlist's limit of 512 bytes") {
		t.Fatalf("513-byte meta: err = %v, want the sizes named", err)
	}

	for _, bad := range []string{"", "{", "not json"} {
		if _, err := DecodeMeta([]byte(bad)); err == nil {
			t.Fatalf("DecodeMeta(%q) succeeded", bad)
		}
	}
}

// crash stops m's gossip without leaving, as a killed process would.
func crash(m *Membership) { m.shutdown() }

func TestMembershipRestartGetsANewName(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	driver := start(t, MembershipConfig{Key: key, Meta: Meta{Role: RoleDriver}})
	cfg := MembershipConfig{Key: key, Seeds: []string{driver.Self().Gossip}, Meta: Meta{Role: RoleExecutor, Flight: "127.0.0.1:9002"}}

	// Restart after a clean stop.
	old := start(t, cfg)
	waitFor(t, 3*time.Second, "driver sees the first incarnation", func() bool { return sees(driver, driver, old) })
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := start(t, cfg)
	if restarted.Self().Name == old.Self().Name || restarted.Self().Meta.Incarnation == old.Self().Meta.Incarnation {
		t.Fatalf("restart reused name or incarnation: %+v after %+v", restarted.Self(), old.Self())
	}
	waitFor(t, 3*time.Second, "driver lists the new incarnation only", func() bool { return sees(driver, driver, restarted) })

	// Restart after a crash: the new incarnation is listed at once, while
	// the crashed one is still alive or suspect; failure detection drops it
	// later (4-5 s with DefaultLocalConfig).
	crash(restarted)
	again := start(t, cfg)
	waitFor(t, 3*time.Second, "driver lists the incarnation after the crash", func() bool {
		return slices.Contains(names(driver.Members()), again.Self().Name)
	})
	began := time.Now()
	waitFor(t, 15*time.Second, "driver drops the crashed incarnation", func() bool { return sees(driver, driver, again) })
	t.Logf("crashed incarnation dropped %v after the new one was listed", time.Since(began))
	if got := names(driver.Executors()); !slices.Equal(got, []string{again.Self().Name}) {
		t.Fatalf("executors = %v, want only the latest incarnation", got)
	}
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(level slog.Level, substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Level == level && strings.Contains(rec.Message, substr) {
			return true
		}
	}
	return false
}

// A member whose metadata is not ours (another program on the same key, an
// older build) is listed with zero Meta, never used, and never panics us.
func TestMembershipUndecodableMetaGetsNoWork(t *testing.T) {
	key := testKey(t)
	rec := &recorder{}
	driver := start(t, MembershipConfig{Key: key, Meta: Meta{Role: RoleDriver}, Logger: slog.New(rec)})

	conf := memberlist.DefaultLocalConfig()
	conf.Name = "stranger"
	conf.BindAddr, conf.BindPort = "127.0.0.1", 0
	conf.SecretKey = key
	conf.Delegate = rawMeta("not json at all")
	conf.Logger = log.New(io.Discard, "", 0)
	stranger, err := memberlist.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stranger.Leave(time.Second); _ = stranger.Shutdown() }()
	if _, err := stranger.Join([]string{driver.Self().Gossip}); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 3*time.Second, "driver lists the stranger", func() bool {
		return slices.Contains(names(driver.Members()), "stranger")
	})
	for _, x := range driver.Members() {
		if x.Name == "stranger" && x.Meta != (Meta{}) {
			t.Fatalf("stranger's meta = %+v, want zero", x.Meta)
		}
	}
	if ex := driver.Executors(); len(ex) != 0 {
		t.Fatalf("executors = %v, want none", ex)
	}
	if !rec.find(slog.LevelWarn, "member metadata does not decode") {
		t.Fatal("no warning about the undecodable metadata")
	}
	// memberlist's own lines reach the logger, at debug level only.
	if !rec.find(slog.LevelDebug, "memberlist") {
		t.Fatal("memberlist's log lines did not reach the logger")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.recs {
		if r.Level != slog.LevelDebug && !strings.HasPrefix(r.Message, "cluster: ") {
			t.Fatalf("memberlist line at %v: %q", r.Level, r.Message)
		}
	}
}

type rawMeta string

func (r rawMeta) NodeMeta(int) []byte             { return []byte(r) }
func (rawMeta) NotifyMsg([]byte)                  {}
func (rawMeta) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (rawMeta) LocalState(bool) []byte            { return nil }
func (rawMeta) MergeRemoteState(_ []byte, _ bool) {}

func TestGossipKeyFiles(t *testing.T) {
	k1, k2 := testKey(t), testKey(t)
	if len(k1) != 32 || bytes.Equal(k1, k2) {
		t.Fatalf("NewGossipKey gave %d bytes, twice the same: %v", len(k1), bytes.Equal(k1, k2))
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	good := write("good", base64.StdEncoding.EncodeToString(k1)+"\n")
	got, err := LoadGossipKey(good)
	if err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("LoadGossipKey = %x, %v, want %x", got, err, k1)
	}
	aes128 := write("aes128", base64.StdEncoding.EncodeToString(k1[:16]))
	if got, err := LoadGossipKey(aes128); err != nil || len(got) != 16 {
		t.Fatalf("16-byte key: %d bytes, %v", len(got), err)
	}

	for _, tc := range []struct{ name, path, want string }{
		{"wrong length", write("short", base64.StdEncoding.EncodeToString(k1[:20])), "gossip key is 20 bytes, want 16, 24 or 32"},
		{"not base64", write("garbage", "not base64!"), "not base64"},
		{"missing file", filepath.Join(dir, "missing"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadGossipKey(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s and contain %q", err, tc.path, tc.want)
			}
		})
	}
}

func TestMembershipAddresses(t *testing.T) {
	key := testKey(t)
	// Host names are resolved: memberlist would take a name it cannot
	// parse as an IP for "every interface".
	m := start(t, MembershipConfig{Key: key, Bind: "localhost:0", Meta: Meta{Role: RoleDriver}})
	if g := m.Self().Gossip; !strings.HasPrefix(g, "127.0.0.1:") || strings.HasSuffix(g, ":0") {
		t.Fatalf("bound at %s, want 127.0.0.1 and a real port", g)
	}
	_, port, _ := net.SplitHostPort(m.Self().Gossip)

	// An advertised address is what the others are told, port 0 meaning the bound one.
	adv := start(t, MembershipConfig{Key: key, Advertise: "localhost:0", Seeds: []string{m.Self().Gossip}, Meta: Meta{Role: RoleExecutor}})
	if g := adv.Self().Gossip; !strings.HasPrefix(g, "127.0.0.1:") || strings.HasSuffix(g, ":0") || strings.HasSuffix(g, ":"+port) {
		t.Fatalf("advertised %s, want 127.0.0.1 and its own bound port", g)
	}
	waitFor(t, 3*time.Second, "the first member sees the advertised address", func() bool { return sees(m, m, adv) })

	fixed := start(t, MembershipConfig{Key: key, Advertise: "127.0.0.1:7", Meta: Meta{Role: RoleExecutor}})
	if g := fixed.Self().Gossip; g != "127.0.0.1:7" {
		t.Fatalf("advertised %s, want 127.0.0.1:7", g)
	}
}

// The event delegate runs under memberlist's lock: with nobody reading
// Events it must still return at once, count the drop and wake Changed.
func TestMembershipEventsNeverBlock(t *testing.T) {
	m := &Membership{
		log:     slog.New(slog.DiscardHandler),
		members: map[string]Member{},
		changed: make(chan struct{}),
		events:  make(chan Event, 1),
	}
	wire, err := Meta{Role: RoleExecutor, Flight: "127.0.0.1:1"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ev := eventDelegate{m}
	done := make(chan struct{})
	changed := m.Changed()
	go func() {
		defer close(done)
		ev.NotifyJoin(&memberlist.Node{Name: "a", Addr: net.IPv4(127, 0, 0, 1), Port: 1, Meta: wire})
		ev.NotifyJoin(&memberlist.Node{Name: "b", Addr: net.IPv4(127, 0, 0, 1), Port: 2, Meta: wire})
		ev.NotifyLeave(&memberlist.Node{Name: "a", Addr: net.IPv4(127, 0, 0, 1), Port: 1, Meta: wire})
	}()
	if !closedWithin(done, time.Second) {
		t.Fatal("event delegate blocked on a full events channel")
	}
	if !closedWithin(changed, 100*time.Millisecond) {
		t.Fatal("Changed did not fire")
	}
	if got := m.DroppedEvents(); got != 2 {
		t.Fatalf("dropped %d events, want 2", got)
	}
	if got := names(m.Executors()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("executors = %v, want [b]", got)
	}
	if e := <-m.Events(); e.Kind != EventJoin || e.Member.Name != "a" || e.Member.Gossip != "127.0.0.1:1" {
		t.Fatalf("first event = %+v", e)
	}
}

// Two members each started with a seed list that answered with only
// themselves (a headless Service resolving to its own pod, before the
// others are up) are islands; joining the seeds again while alone merges
// them.
func TestLoneMembersJoinTheirSeedsAgainAndMerge(t *testing.T) {
	key := testKey(t)
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	a, b := free(), free()
	seeds := []string{a, b}
	// a starts first: of its seeds only itself answers.
	ma := start(t, MembershipConfig{Bind: a, Seeds: seeds, Key: key, Meta: Meta{Role: RoleExecutor, Flight: "x"}, JoinTimeout: time.Second, rejoinEvery: 100 * time.Millisecond})
	mb := start(t, MembershipConfig{Bind: b, Seeds: []string{b}, Key: key, Meta: Meta{Role: RoleExecutor, Flight: "y"}, JoinTimeout: time.Second})
	waitFor(t, 5*time.Second, "the two islands merge", func() bool {
		return len(ma.Members()) == 2 && len(mb.Members()) == 2
	})
}
