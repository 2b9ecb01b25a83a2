package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A hung peer (SIGSTOP, a partition) keeps its TCP connections open, and
// gRPC's keepalive takes over ten seconds to notice (clients may not ping
// more often than every 10 s). While a call to a peer is in flight, the
// caller pings it every pingEvery; a peer that misses pingMisses pings in
// a row is hung, and the calls to it are cancelled.
const (
	pingEvery   = 500 * time.Millisecond
	pingTimeout = time.Second
	pingMisses  = 2
	actionPing  = "ping"
)

// errHung is the cause of a call cancelled because its peer stopped
// answering pings.
var errHung = errors.New("the node stopped answering pings")

type health struct {
	mu    sync.Mutex
	peers map[string]*watched
}

type watched struct {
	refs int
	hung chan struct{} // closed when the peer missed pingMisses pings
	stop chan struct{} // closed when no call watches it any more
}

// watch returns ctx cancelled (cause errHung) if the peer at addr stops
// answering pings before done is called.
func (n *node) watch(ctx context.Context, addr string) (context.Context, func()) {
	n.health.mu.Lock()
	if n.health.peers == nil {
		n.health.peers = map[string]*watched{}
	}
	w := n.health.peers[addr]
	if w == nil {
		w = &watched{hung: make(chan struct{}), stop: make(chan struct{})}
		n.health.peers[addr] = w
		go n.ping(addr, w)
	}
	w.refs++
	n.health.mu.Unlock()
	cctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-w.hung:
			cancel(fmt.Errorf("%s: %w", addr, errHung))
		case <-cctx.Done():
		}
	}()
	return cctx, func() {
		cancel(nil)
		n.health.mu.Lock()
		defer n.health.mu.Unlock()
		if w.refs--; w.refs == 0 {
			close(w.stop)
			if n.health.peers[addr] == w {
				delete(n.health.peers, addr)
			}
		}
	}
}

func (n *node) ping(addr string, w *watched) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-w.stop:
			return
		case <-n.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		_, err := n.action(ctx, addr, actionPing, nil)
		cancel()
		if err == nil {
			missed = 0
			continue
		}
		if missed++; missed >= pingMisses {
			n.log.Warn("a node stopped answering pings; its calls are given up", "flight", addr, "err", err)
			n.health.mu.Lock()
			if n.health.peers[addr] == w {
				delete(n.health.peers, addr) // the next call watches afresh
			}
			n.health.mu.Unlock()
			close(w.hung)
			return
		}
	}
}
