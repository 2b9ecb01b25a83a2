package ui

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluicedata/sluice/microbatch"
)

// The JSON API. Progress is microbatch.Progress's JSON: Spark's
// StreamingQueryProgress, so the page reads Spark's field names.
//
//	GET /api/queries       {"job", "queries": [summary...]}
//	GET /api/queries/{id}  summary + {"plan", "recentProgress": [progress...]}
//	GET /api/executors     {"executors": [Executor...], "error"?}
//	GET /api/events        text/event-stream of snapshots (events.go)

// summary is one query as the queries table shows it.
type summary struct {
	ID           string               `json:"id"`
	RunID        string               `json:"runId"`
	Name         string               `json:"name"`
	Status       status               `json:"status"`
	Exception    string               `json:"exception,omitempty"`
	LastProgress *microbatch.Progress `json:"lastProgress"`
}

// status is Spark's StreamingQueryStatus, less isDataAvailable (sluice
// does not know it apart from a batch running).
type status struct {
	Message         string `json:"message"`
	IsActive        bool   `json:"isActive"`
	IsTriggerActive bool   `json:"isTriggerActive"`
}

// detail is one query as its page shows it.
type detail struct {
	summary
	Plan           string                `json:"plan"`
	RecentProgress []microbatch.Progress `json:"recentProgress"`
}

func summarize(q *microbatch.Query) summary {
	st := q.Status()
	out := summary{ID: q.ID(), RunID: q.RunID(), Name: q.Name(), LastProgress: q.LastProgress(),
		Status: status{Message: st.Message, IsActive: st.Active, IsTriggerActive: st.BatchActive}}
	if err := q.Exception(); err != nil {
		out.Exception = err.Error()
	}
	return out
}

// find is the query with id; of several (a query restarted in the same
// process), the last listed, which is the newest run.
func (s *Server) find(id string) *microbatch.Query {
	var found *microbatch.Query
	for _, q := range s.cfg.Queries() {
		if q != nil && q.ID() == id {
			found = q
		}
	}
	return found
}

func (s *Server) summaries() []summary {
	out := []summary{}
	for _, q := range s.cfg.Queries() {
		if q != nil {
			out = append(out, summarize(q))
		}
	}
	return out
}

func (s *Server) handleQueries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Job     string    `json:"job"`
		Queries []summary `json:"queries"`
	}{s.cfg.Job, s.summaries()})
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := s.find(id)
	if q == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("no query with id %q", id))
		return
	}
	recent := q.RecentProgress()
	if recent == nil {
		recent = []microbatch.Progress{}
	}
	writeJSON(w, http.StatusOK, detail{summary: summarize(q), Plan: q.Explain(), RecentProgress: recent})
}

// executorsAnswer is what /api/executors and snapshots carry: the list
// and, when some process did not answer, why (the others are listed).
type executorsAnswer struct {
	Executors []Executor `json:"executors"`
	Error     string     `json:"error,omitempty"`
}

func (s *Server) executorsAnswer() executorsAnswer {
	list, err := s.executors()
	out := executorsAnswer{Executors: list}
	if out.Executors == nil {
		out.Executors = []Executor{}
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

func (s *Server) handleExecutors(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.executorsAnswer())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("encode answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{"ui: " + err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
