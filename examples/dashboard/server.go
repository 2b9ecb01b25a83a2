package main

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"sync"
	"time"
)

//go:embed page
var pageFiles embed.FS

// keptSnapshots is how many pushed snapshots /api/snapshot?seq=N can
// still return.
const keptSnapshots = 64

// Server pushes the board to the page: every tick, when a batch changed the
// board since the last push, it takes a snapshot, numbers it and publishes
// it to the hub.
//
//	GET /                  the page (embedded)
//	GET /ws                WebSocket: the latest snapshot, then every push
//	GET /api/snapshot      the latest snapshot as JSON; ?seq=N: push N
type Server struct {
	board *Board
	hub   *Hub
	start time.Time // event time of the first order

	mu      sync.Mutex
	version int64      // the board's version at the last push
	kept    []Snapshot // the last keptSnapshots pushes, oldest first
}

// NewServer returns a server of board whose first push, of the board as
// it is, is taken at once: /api/snapshot always has one.
func NewServer(board *Board, start time.Time) *Server {
	s := &Server{board: board, hub: NewHub(), start: start, version: -1}
	s.Push()
	return s
}

// Handler serves the page, the WebSocket and the snapshot API.
func (s *Server) Handler() http.Handler {
	page, _ := fs.Sub(pageFiles, "page")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(page))
	mux.Handle("GET /ws", s.hub)
	mux.HandleFunc("GET /api/snapshot", s.serveSnapshot)
	return mux
}

// Run pushes every interval until ctx ends, then disconnects the clients.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	defer s.hub.Close()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.Push()
		}
	}
}

// Push publishes a new snapshot if the board changed since the last one
// and returns the latest snapshot.
func (s *Server) Push() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, version := s.board.snapshot()
	if version == s.version && len(s.kept) > 0 {
		return s.kept[len(s.kept)-1]
	}
	s.version = version
	snap.Seq, snap.Time, snap.Start = 1, time.Now().UTC(), s.start
	if n := len(s.kept); n > 0 {
		snap.Seq = s.kept[n-1].Seq + 1
	}
	if len(s.kept) == keptSnapshots {
		s.kept = s.kept[1:]
	}
	s.kept = append(s.kept, snap)
	msg, _ := json.Marshal(snap)
	s.hub.Publish(msg) // under mu, so clients get pushes in seq order
	return snap
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var snap *Snapshot
	if q := r.URL.Query().Get("seq"); q != "" {
		seq, err := strconv.ParseInt(q, 10, 64)
		if err != nil {
			s.mu.Unlock()
			http.Error(w, "seq: want an integer", http.StatusBadRequest)
			return
		}
		for i := range s.kept {
			if s.kept[i].Seq == seq {
				snap = &s.kept[i]
			}
		}
	} else if len(s.kept) > 0 {
		snap = &s.kept[len(s.kept)-1]
	}
	var body []byte
	if snap != nil {
		body, _ = json.Marshal(snap)
	}
	s.mu.Unlock()
	if snap == nil {
		http.Error(w, "no such snapshot (kept: the last "+strconv.Itoa(keptSnapshots)+" pushes)", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}
