package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/microbatch"
)

// snapshot is one event of a stream: every query's summary, the
// executors, and the followed query's batches completed since the last
// event (the page appends them to its charts and table).
type snapshot struct {
	Time      string                `json:"time"`
	Queries   []summary             `json:"queries"`
	Executors executorsAnswer       `json:"executors"`
	Query     string                `json:"query,omitempty"`
	Progress  []microbatch.Progress `json:"progress"`
}

// handleEvents streams snapshots as Server-Sent Events:
//
//	GET /api/events?query=ID&after=N
//
// follows query ID, sending its batches after batch N (a reconnecting
// EventSource's Last-Event-ID takes the place of after). Each event is
// "event: snapshot", its id the last batch sent, its data a snapshot.
//
// The loop, for one client:
//
//	send a snapshot
//	every Poll until the client goes or the server closes:
//	    if a batch completed, a query's status changed, or Interval passed:
//	        send a snapshot (a write blocked over WriteTimeout ends the stream)
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("query")
	after := int64(-1)
	for _, v := range []string{r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("events: batch id %q is not a number", v))
			return
		}
		after = n
	}

	s.mu.Lock()
	if s.closed || s.ctx.Err() != nil {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, errors.New("events: the server is closing"))
		return
	}
	if n := s.streams.Add(1); n > int64(s.cfg.MaxStreams) {
		s.streams.Add(-1)
		s.mu.Unlock()
		s.log.Warn("ui: event stream refused: too many open", "remote", r.RemoteAddr, "max", s.cfg.MaxStreams)
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("events: %d streams open, the most this server keeps", s.cfg.MaxStreams))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.streams.Add(-1)
		s.wg.Done()
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	s.log.Debug("ui: event stream open", "remote", r.RemoteAddr, "query", id, "after", after)

	var lastSent time.Time
	lastState := ""
	send := func(state string) error {
		snap := snapshot{Time: time.Now().UTC().Format(time.RFC3339Nano), Queries: s.summaries(),
			Executors: s.executorsAnswer(), Query: id, Progress: []microbatch.Progress{}}
		if id != "" {
			if q := s.find(id); q != nil {
				for _, p := range q.RecentProgress() {
					if p.Batch > after {
						snap.Progress = append(snap.Progress, p)
					}
				}
			}
		}
		b, err := json.Marshal(snap)
		if err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
		var ev strings.Builder
		if n := len(snap.Progress); n > 0 {
			after = snap.Progress[n-1].Batch
			fmt.Fprintf(&ev, "id: %d\n", after)
		}
		fmt.Fprintf(&ev, "event: snapshot\ndata: %s\n\n", b)
		// A client that stops reading would block this write for ever.
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write([]byte(ev.String())); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		lastSent, lastState = time.Now(), state
		return nil
	}

	err := send(s.state())
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for err == nil {
		select {
		case <-r.Context().Done():
			s.log.Debug("ui: event stream closed by the client", "remote", r.RemoteAddr)
			return
		case <-s.ctx.Done():
			s.log.Debug("ui: event stream closed: the server closes", "remote", r.RemoteAddr)
			return
		case <-tick.C:
		}
		if st := s.state(); st != lastState || time.Since(lastSent) >= s.cfg.Interval {
			err = send(st)
		}
	}
	s.log.Info("ui: event stream dropped", "remote", r.RemoteAddr, "err", err)
}

// state is what a snapshot is due for when it changes: each query's run,
// last batch and whether it runs. (Not the status message: it changes as
// each batch starts, and a batch's end sends a snapshot anyway.)
func (s *Server) state() string {
	var b strings.Builder
	for _, q := range s.cfg.Queries() {
		if q == nil {
			continue
		}
		last := int64(-1)
		if p := q.LastProgress(); p != nil {
			last = p.Batch
		}
		fmt.Fprintf(&b, "%s/%s/%d/%t\n", q.ID(), q.RunID(), last, q.Status().Active)
	}
	return b.String()
}
