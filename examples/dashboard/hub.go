package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Hub sends every published message to every connected WebSocket client,
// and the latest one to a client as soon as it connects.
//
// A client that reads slowly never holds up Publish or other clients: each
// has a one-message mailbox where a newer message replaces an unsent one
// (the page only needs the latest snapshot), and a write that takes longer
// than writeTimeout drops the client.
type Hub struct {
	ctx    context.Context // ends with Close; every client's writer watches it
	cancel context.CancelFunc
	wg     sync.WaitGroup // running ServeHTTP calls

	mu      sync.Mutex
	clients map[chan []byte]struct{}
	last    []byte
}

const writeTimeout = 5 * time.Second

func NewHub() *Hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{ctx: ctx, cancel: cancel, clients: map[chan []byte]struct{}{}}
}

// Publish sends msg to every client; it never blocks on one.
func (h *Hub) Publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = msg
	for box := range h.clients {
		select {
		case <-box: // drop the unsent older message
		default:
		}
		box <- msg
	}
}

// Clients is the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// ServeHTTP upgrades the request to a WebSocket and writes messages to it
// until the client leaves or the hub closes.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		http.Error(w, "dashboard is stopping", http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	c, err := websocket.Accept(w, r, nil) // same-origin only (the default)
	if err != nil {
		return // Accept wrote the HTTP error
	}
	defer c.CloseNow()
	box := make(chan []byte, 1)
	h.mu.Lock()
	if h.last != nil {
		box <- h.last
	}
	h.clients[box] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, box)
		h.mu.Unlock()
	}()
	// The page sends nothing; reading is how a close from it is noticed.
	gone := c.CloseRead(context.Background())
	for {
		select {
		case <-h.ctx.Done():
			c.Close(websocket.StatusGoingAway, "dashboard stopping")
			return
		case <-gone.Done():
			return
		case msg := <-box:
			ctx, cancel := context.WithTimeout(gone, writeTimeout)
			err := c.Write(ctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// Close disconnects every client and waits for their handlers to return;
// later connections are refused. It is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	h.cancel()
	h.mu.Unlock()
	h.wg.Wait()
}
