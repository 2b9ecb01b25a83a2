package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/proctest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		proctest.RemoveBuilds()
		os.Exit(code)
	}))
}

// newHubServer serves a hub; the test's clients, dialled later, are
// cleaned up first, so closing the hub waits for no one.
func newHubServer(t *testing.T) (*Hub, *httptest.Server) {
	hub := NewHub()
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close)
	return hub, srv
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws" }

func dial(t *testing.T, ctx context.Context, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL(srv), err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, ctx context.Context, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(msg)
}

// A page that connects gets the latest message at once, then every
// published one, in order.
func TestHubSendsTheLatestOnConnectThenEveryPush(t *testing.T) {
	hub, srv := newHubServer(t)
	ctx := context.Background()

	hub.Publish([]byte("m1"))
	c := dial(t, ctx, srv)
	if got := read(t, ctx, c); got != "m1" {
		t.Fatalf("on connect: got %q, want the latest message m1", got)
	}
	for _, m := range []string{"m2", "m3", "m4"} {
		hub.Publish([]byte(m))
		if got := read(t, ctx, c); got != m {
			t.Fatalf("got %q, want %q", got, m)
		}
	}
	if n := hub.Clients(); n != 1 {
		t.Fatalf("%d clients, want 1", n)
	}
}

// A page that stops reading holds up neither Publish nor the other pages,
// and the pages that read get the newest message.
func TestHubASlowClientBlocksNobody(t *testing.T) {
	hub, srv := newHubServer(t)
	ctx := context.Background()

	stuck := dial(t, ctx, srv) // never reads
	_ = stuck
	live := dial(t, ctx, srv)
	waitFor(t, 5*time.Second, func() bool { return hub.Clients() == 2 }, "two clients connected")

	// 200 × 256 KiB is far more than the socket buffers hold, so a hub that
	// waited for the stuck client would stall here.
	big := bytes.Repeat([]byte("x"), 256<<10)
	began := time.Now()
	var last []byte
	for i := range 200 {
		last = fmt.Appendf(append([]byte(nil), big...), "%d", i)
		hub.Publish(last)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("200 publishes took %v with a client that does not read", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := read(t, ctx, live); got == string(last) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reading client never got the last message")
		}
	}
}

// Close sends "going away" to the pages, waits for their handlers and
// refuses new connections.
func TestHubCloseDisconnectsEveryClient(t *testing.T) {
	hub, srv := newHubServer(t)
	ctx := context.Background()
	c := dial(t, ctx, srv)
	waitFor(t, 5*time.Second, func() bool { return hub.Clients() == 1 }, "the client connected")

	closed := make(chan struct{})
	go func() { hub.Close(); close(closed) }()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _, err := c.Read(rctx)
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Fatalf("read after Close: %v (status %v), want going away", err, s)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	hub.Close() // idempotent
	_, resp, err := websocket.Dial(rctx, wsURL(srv), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %v (response %v), want 503", err, resp)
	}
}

// The server numbers a snapshot only when a batch changed the board, keeps
// the recent ones by number, and shows the rows of the queries' sinks:
// upserted minutes (update mode), replaced regions (complete mode).
func TestServerPushesBoardChangesAndKeepsThemBySeq(t *testing.T) {
	board := NewBoard()
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	srv := NewServer(board, start)
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	defer srv.hub.Close()
	ctx := context.Background()
	minute := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }

	if s := srv.Push(); s.Seq != 1 || len(s.Minutes) != 0 || s.ConvFig.Batch != -1 {
		t.Fatalf("first push of an empty board: %+v", s)
	}
	if s := srv.Push(); s.Seq != 1 {
		t.Fatalf("an unchanged board was pushed again as %d", s.Seq)
	}
	must(t, board.Minutes(ctx, 0, dataset.FromStructs([]MinuteRow{{Start: minute(0), Orders: 5, Paid: 1, Offset: 6}})))
	must(t, board.Regions(ctx, 0, dataset.FromStructs([]RegionRow{{Region: "emea", Revenue: "10.00", Paid: 1, Offset: 3}})))
	must(t, board.Minutes(ctx, 1, dataset.FromStructs([]MinuteRow{
		{Start: minute(0), Orders: 7, Paid: 2, Offset: 9}, {Start: minute(1), Orders: 1, Offset: 10}})))
	must(t, board.Regions(ctx, 1, dataset.FromStructs([]RegionRow{
		{Region: "amer", Revenue: "4.50", Paid: 1, Offset: 8}, {Region: "emea", Revenue: "10.00", Paid: 1, Offset: 3}})))
	s := srv.Push()
	if s.Seq != 2 {
		t.Fatalf("seq %d after batches, want 2", s.Seq)
	}
	want := Snapshot{Seq: 2, Time: s.Time, Start: start,
		Minutes:    []MinuteRow{{Start: minute(1), Orders: 1, Offset: 10}, {Start: minute(0), Orders: 7, Paid: 2, Offset: 9}},
		MinutesFig: Figure{Batch: 1, Offset: 10},
		Regions:    []RegionRow{{Region: "amer", Revenue: "4.50", Paid: 1, Offset: 8}, {Region: "emea", Revenue: "10.00", Paid: 1, Offset: 3}},
		RegionsFig: Figure{Batch: 1, Offset: 8},
		ConvFig:    Figure{Batch: -1, Offset: -1}}
	if g, w := jsonOf(t, s), jsonOf(t, want); g != w {
		t.Fatalf("snapshot\n got %s\nwant %s", g, w)
	}
	// Minutes older than the shown ones are forgotten.
	must(t, board.Minutes(ctx, 2, dataset.FromStructs([]MinuteRow{{Start: minute(shownMinutes), Orders: 3, Offset: 20}})))
	if s := srv.Push(); len(s.Minutes) != 2 || !s.Minutes[1].Start.Equal(minute(1)) {
		t.Fatalf("after minute %d: minutes %+v, want minute 1 and the newest", shownMinutes, s.Minutes)
	}

	for seq, code := range map[string]int{"1": 200, "2": 200, "3": 200, "4": 404, "x": 400} {
		resp, err := http.Get(web.URL + "/api/snapshot?seq=" + seq)
		if err != nil {
			t.Fatal(err)
		}
		var got Snapshot
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != code || (code == 200 && fmt.Sprint(got.Seq) != seq) {
			t.Errorf("snapshot %s: HTTP %d seq %d, want HTTP %d", seq, resp.StatusCode, got.Seq, code)
		}
	}
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		resp, err := http.Get(web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, timeout time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
