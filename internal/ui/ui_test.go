package ui

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	sinkmem "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sources/generate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runQuery starts a real streaming query: a rate source of 2000 rows/s
// counted per key in 1 s event-time windows (so it has a watermark and
// state), in append mode, a batch every 200 ms. It stops when the test
// ends, and its allocator must then hold nothing.
func runQuery(t *testing.T, name string) *microbatch.Query {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	src, err := generate.NewRate(generate.RateConfig{Name: "rate", RowsPerSecond: 2000, Keys: 10})
	if err != nil {
		t.Fatal(err)
	}
	ds := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 2}).
		WithWatermark("timestamp", 500*time.Millisecond).
		GroupBy(dataset.Window("timestamp", time.Second), "key").
		Agg(dataset.CountAll().As("n"))
	sink, err := sinkmem.New(sinkmem.Config{Name: "counts", Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	q, err := microbatch.WriteStream(ds, sink).QueryName(name).Checkpoint(t.TempDir()).OutputMode(sinks.Append).
		Trigger(microbatch.ProcessingTime(200 * time.Millisecond)).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Stop(); err != nil {
			t.Errorf("query %s: %v", name, err)
		}
	})
	return q
}

// waitBatches waits (up to 30 s) until q has completed batch n.
func waitBatches(t *testing.T, q *microbatch.Query, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p := q.LastProgress(); p != nil && p.Batch >= n {
			return
		}
		if err := q.Exception(); err != nil {
			t.Fatalf("query failed: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s completed no batch %d in 30 s (status %+v)", q.Name(), n, q.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	// Streams end first: the test server waits for its requests.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { s.Close() })
	return s, srv
}

func getJSON(t *testing.T, url string, wantCode int, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != wantCode {
		t.Fatalf("GET %s: HTTP %d, want %d: %s", url, res.StatusCode, wantCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// progressJSON is the part of Spark's StreamingQueryProgress the tests read.
type progressJSON struct {
	ID             string           `json:"id"`
	RunID          string           `json:"runId"`
	Name           string           `json:"name"`
	BatchID        int64            `json:"batchId"`
	Timestamp      string           `json:"timestamp"`
	NumInputRows   int64            `json:"numInputRows"`
	DurationMs     map[string]int64 `json:"durationMs"`
	EventTime      struct{ Watermark string }
	StateOperators []struct {
		OperatorName string `json:"operatorName"`
		NumRowsTotal int64  `json:"numRowsTotal"`
	} `json:"stateOperators"`
	Sources []struct {
		Description string          `json:"description"`
		EndOffset   json.RawMessage `json:"endOffset"`
	} `json:"sources"`
}

type summaryJSON struct {
	ID     string `json:"id"`
	RunID  string `json:"runId"`
	Name   string `json:"name"`
	Status struct {
		Message  string `json:"message"`
		IsActive bool   `json:"isActive"`
	} `json:"status"`
	Exception    string        `json:"exception"`
	LastProgress *progressJSON `json:"lastProgress"`
}

// The JSON API shows the running queries with their last progress in
// Spark's names, one query's plan and recent batches, and the local
// executor; an unknown query is a 404 naming it.
func TestTheAPIShowsTheQueriesTheirBatchesPlanAndTheLocalExecutor(t *testing.T) {
	a, b := runQuery(t, "counts-a"), runQuery(t, "counts-b")
	waitBatches(t, a, 2)
	waitBatches(t, b, 0)
	_, srv := newServer(t, Config{Job: "ui-test", Queries: func() []*microbatch.Query { return []*microbatch.Query{a, b} }})

	var list struct {
		Job     string        `json:"job"`
		Queries []summaryJSON `json:"queries"`
	}
	getJSON(t, srv.URL+"/api/queries", http.StatusOK, &list)
	if list.Job != "ui-test" || len(list.Queries) != 2 {
		t.Fatalf("queries answer %+v: want job ui-test and 2 queries", list)
	}
	for i, q := range []*microbatch.Query{a, b} {
		got := list.Queries[i]
		if got.ID != q.ID() || got.RunID != q.RunID() || got.Name != q.Name() || !got.Status.IsActive || got.Exception != "" {
			t.Fatalf("query %d: %+v, want id %s run %s name %s, active", i, got, q.ID(), q.RunID(), q.Name())
		}
		if got.LastProgress == nil || got.LastProgress.ID != q.ID() || got.LastProgress.DurationMs["triggerExecution"] <= 0 ||
			len(got.LastProgress.Sources) != 1 || got.LastProgress.Sources[0].Description == "" {
			t.Fatalf("query %d: last progress %+v: want Spark's progress with a trigger duration and the rate source", i, got.LastProgress)
		}
	}
	if list.Queries[0].LastProgress.BatchID < 2 {
		t.Fatalf("query a: last batch %d, want >= 2", list.Queries[0].LastProgress.BatchID)
	}

	var d struct {
		summaryJSON
		Plan           string         `json:"plan"`
		RecentProgress []progressJSON `json:"recentProgress"`
	}
	getJSON(t, srv.URL+"/api/queries/"+a.ID(), http.StatusOK, &d)
	if d.ID != a.ID() || d.Plan != a.Explain() || !strings.Contains(d.Plan, "rate") {
		t.Fatalf("query detail: id %s, plan %q; want %s and its Explain %q", d.ID, d.Plan, a.ID(), a.Explain())
	}
	if len(d.RecentProgress) < 3 {
		t.Fatalf("query detail has %d recent batches, want >= 3", len(d.RecentProgress))
	}
	for i, p := range d.RecentProgress {
		if i > 0 && p.BatchID != d.RecentProgress[i-1].BatchID+1 {
			t.Fatalf("recent batches %d then %d: want consecutive, oldest first", d.RecentProgress[i-1].BatchID, p.BatchID)
		}
	}
	state := false
	for _, p := range d.RecentProgress {
		state = state || (len(p.StateOperators) > 0 && p.StateOperators[0].NumRowsTotal > 0)
	}
	if !state {
		t.Fatalf("no recent batch shows state rows: %+v", d.RecentProgress)
	}

	var e struct{ Error string }
	getJSON(t, srv.URL+"/api/queries/no-such-query", http.StatusNotFound, &e)
	if !strings.Contains(e.Error, `"no-such-query"`) {
		t.Fatalf("unknown query: error %q does not name it", e.Error)
	}

	var ex executorsAnswer
	getJSON(t, srv.URL+"/api/executors", http.StatusOK, &ex)
	if len(ex.Executors) != 1 || ex.Error != "" {
		t.Fatalf("executors %+v: want the local one", ex)
	}
	if l := ex.Executors[0]; l.Role != "local" || l.State != "active" || l.Slots != runtime.GOMAXPROCS(0) || l.Runtime == nil ||
		l.Runtime.Goroutines <= 0 || l.Runtime.HeapBytes <= 0 || l.Runtime.TotalBytes < l.Runtime.HeapBytes {
		t.Fatalf("local executor %+v (runtime %+v): want slots %d and this process's goroutines and heap", l, l.Runtime, runtime.GOMAXPROCS(0))
	}
}

// event is one Server-Sent Event.
type event struct {
	id, name string
	snap     snapshotJSON
}

type snapshotJSON struct {
	Time      string          `json:"time"`
	Queries   []summaryJSON   `json:"queries"`
	Executors executorsAnswer `json:"executors"`
	Query     string          `json:"query"`
	Progress  []progressJSON  `json:"progress"`
}

// stream is a client of /api/events.
type stream struct {
	t      *testing.T
	res    *http.Response
	cancel context.CancelFunc
	events chan event
	done   chan struct{} // closed when the read loop ends
	err    error         // why it ended; read after done
}

func openStream(t *testing.T, url string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("GET %s: HTTP %d: %s", url, res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	s := &stream{t: t, res: res, cancel: cancel, events: make(chan event, 1000), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *stream) read() {
	defer close(s.done)
	sc := bufio.NewScanner(s.res.Body)
	sc.Buffer(nil, 16<<20)
	var ev event
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if err := json.Unmarshal([]byte(data), &ev.snap); err != nil {
				s.err = fmt.Errorf("event data %q: %w", data, err)
				return
			}
			select {
			case s.events <- ev:
			default:
				s.err = errors.New("the test read too few events: over 1000 queued")
				return
			}
			ev, data = event{}, ""
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		default:
			s.err = fmt.Errorf("unexpected line %q", line)
			return
		}
	}
	s.err = sc.Err()
}

// next is the next event, failing the test after timeout.
func (s *stream) next(timeout time.Duration) event {
	s.t.Helper()
	select {
	case ev := <-s.events:
		if ev.name != "snapshot" {
			s.t.Fatalf("event %q, want snapshot", ev.name)
		}
		return ev
	case <-s.done:
		s.t.Fatalf("the stream ended: %v", s.err)
	case <-time.After(timeout):
		s.t.Fatalf("no event in %v", timeout)
	}
	return event{}
}

// ended waits (up to timeout) for the server to end the stream.
func (s *stream) ended(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case <-s.events:
		case <-s.done:
			return s.err
		case <-deadline:
			return fmt.Errorf("the stream did not end in %v", timeout)
		}
	}
}

func (s *stream) close() {
	s.cancel()
	s.res.Body.Close()
	<-s.done
}

// A stream pushes every completed batch of the followed query once, in
// order, each event's id the last batch it carried; a client that
// reconnects with Last-Event-ID gets the batches after it.
func TestEventsPushEachCompletedBatchOnceInOrder(t *testing.T) {
	q := runQuery(t, "counts")
	waitBatches(t, q, 1)
	_, srv := newServer(t, Config{Queries: func() []*microbatch.Query { return []*microbatch.Query{q} }})

	s := openStream(t, srv.URL+"/api/events?query="+q.ID(), nil)
	first := s.next(10 * time.Second)
	if first.snap.Query != q.ID() || len(first.snap.Queries) != 1 || first.snap.Queries[0].ID != q.ID() ||
		len(first.snap.Executors.Executors) != 1 || first.snap.Executors.Executors[0].Role != "local" {
		t.Fatalf("first snapshot %+v: want the query and the local executor", first.snap)
	}
	if len(first.snap.Progress) < 2 || first.snap.Progress[0].BatchID != 0 {
		t.Fatalf("first snapshot carries batches %+v: want every recent batch from 0", first.snap.Progress)
	}
	last := int64(-1)
	seen := 0
	for ev := first; ; ev = s.next(10 * time.Second) {
		for _, p := range ev.snap.Progress {
			if p.BatchID != last+1 {
				t.Fatalf("batch %d after batch %d: want each batch once, in order", p.BatchID, last)
			}
			last = p.BatchID
		}
		if n := len(ev.snap.Progress); n > 0 {
			if ev.id != strconv.FormatInt(last, 10) {
				t.Fatalf("event with batches up to %d has id %q", last, ev.id)
			}
			seen++
		} else if ev.id != "" {
			t.Fatalf("event without batches has id %q", ev.id)
		}
		if seen >= 4 {
			break
		}
	}
	s.close()

	// As an EventSource reconnects: after the last batch it saw.
	from := last - 1
	r := openStream(t, srv.URL+"/api/events?query="+q.ID()+"&after=0", http.Header{"Last-Event-ID": {strconv.FormatInt(from, 10)}})
	ev := r.next(10 * time.Second)
	if len(ev.snap.Progress) == 0 || ev.snap.Progress[0].BatchID != from+1 {
		t.Fatalf("after Last-Event-ID %d the first event carries %+v, want batches from %d", from, ev.snap.Progress, from+1)
	}
}

// With no batch completing, a stream still sends a snapshot every
// Interval (the page's status and executors stay current), and a query
// that stopped shows as inactive.
func TestEventsComeEveryIntervalWithoutBatches(t *testing.T) {
	q := runQuery(t, "stopped")
	waitBatches(t, q, 0)
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	_, srv := newServer(t, Config{Interval: 150 * time.Millisecond, Queries: func() []*microbatch.Query { return []*microbatch.Query{q} }})
	s := openStream(t, srv.URL+"/api/events", nil)
	start := time.Now()
	for range 4 {
		ev := s.next(5 * time.Second)
		if len(ev.snap.Queries) != 1 || ev.snap.Queries[0].Status.IsActive || ev.snap.Queries[0].Status.Message != "Stopped" {
			t.Fatalf("snapshot %+v: want the stopped query, inactive", ev.snap.Queries)
		}
		if len(ev.snap.Progress) != 0 {
			t.Fatalf("a stream that follows no query carried batches %+v", ev.snap.Progress)
		}
	}
	if el := time.Since(start); el < 3*150*time.Millisecond || el > 4*time.Second {
		t.Fatalf("4 snapshots took %v, want about 3 intervals of 150 ms", el)
	}
}

// Streams are bounded: one over MaxStreams is refused with 503; a client
// that goes frees its slot; Close ends the open streams and refuses new
// ones (goleak in TestMain checks that no handler is left).
func TestStreamsAreBoundedAndEndWithTheirClientOrTheServer(t *testing.T) {
	s, srv := newServer(t, Config{MaxStreams: 2, Queries: func() []*microbatch.Query { return nil }})
	url := srv.URL + "/api/events"
	a := openStream(t, url, nil)
	a.next(5 * time.Second)
	b := openStream(t, url, nil)
	b.next(5 * time.Second)

	var e struct{ Error string }
	getJSON(t, url, http.StatusServiceUnavailable, &e)
	if !strings.Contains(e.Error, "2 streams open") {
		t.Fatalf("third stream: error %q, want it to say 2 streams are open", e.Error)
	}

	a.close()
	deadline := time.Now().Add(5 * time.Second)
	for s.streams.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open 5 s after a client went, want 1", s.streams.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := openStream(t, url, nil)
	c.next(5 * time.Second)

	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	for _, st := range []*stream{b, c} {
		if err := st.ended(5 * time.Second); err != nil {
			t.Fatalf("after Close: %v", err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return in 5 s")
	}
	if n := s.streams.Load(); n != 0 {
		t.Fatalf("%d streams open after Close", n)
	}
	getJSON(t, url, http.StatusServiceUnavailable, &e)
	if !strings.Contains(e.Error, "closing") {
		t.Fatalf("a stream after Close: error %q", e.Error)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestEventsRefuseABadBatchID(t *testing.T) {
	_, srv := newServer(t, Config{Queries: func() []*microbatch.Query { return nil }})
	var e struct{ Error string }
	getJSON(t, srv.URL+"/api/events?after=seven", http.StatusBadRequest, &e)
	if !strings.Contains(e.Error, `"seven"`) {
		t.Fatalf("error %q does not name the bad id", e.Error)
	}
}

func TestConfigValidate(t *testing.T) {
	qs := func() []*microbatch.Query { return nil }
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"Queries is required", Config{}, "Queries is required"},
		{"durations are not negative", Config{Queries: qs, Poll: -time.Second}, "negative duration"},
		{"MaxStreams is not negative", Config{Queries: qs, MaxStreams: -1}, "MaxStreams -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want ErrConfig saying %q", err, c.want)
			}
		})
	}
	if _, err := New(Config{Queries: qs}); err != nil {
		t.Fatal(err)
	}
}

// The page and its assets are served from the binary with a policy that
// allows this origin only; the UI's own files name no other host, and the
// page loads the vendored chart library.
func TestThePageAndItsAssetsAreEmbedded(t *testing.T) {
	_, srv := newServer(t, Config{Queries: func() []*microbatch.Query { return nil }})
	get := func(path string, wantCode int, wantType string) string {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != wantCode || !strings.HasPrefix(res.Header.Get("Content-Type"), wantType) {
			t.Fatalf("GET %s: HTTP %d %q, want %d %q", path, res.StatusCode, res.Header.Get("Content-Type"), wantCode, wantType)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
		}
		return string(body)
	}
	page := get("/", http.StatusOK, "text/html")
	for _, ref := range []string{"/assets/vendor/uPlot.iife.min.js", "/assets/vendor/uPlot.min.css", "/assets/ui.js", "/assets/ui.css"} {
		if !strings.Contains(page, ref) {
			t.Fatalf("the page does not load %s", ref)
		}
	}
	get("/assets/ui.js", http.StatusOK, "text/javascript")
	get("/assets/vendor/uPlot.iife.min.js", http.StatusOK, "text/javascript")
	get("/assets/ui.css", http.StatusOK, "text/css")
	get("/no-such-page", http.StatusNotFound, "text/plain")
	for _, f := range []string{"assets/index.html", "assets/ui.js", "assets/ui.css"} {
		b, err := assets.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") || strings.Contains(string(b), "//cdn") {
			t.Fatalf("%s names another host: the UI must load nothing from the internet", f)
		}
	}
}

// The vendored chart library is exactly what scripts/vendor-ui fetched:
// every file it wrote has the sha256 it recorded in VENDOR, and nothing
// else is in the folder.
func TestVendoredFilesAreWhatTheScriptFetched(t *testing.T) {
	raw, err := assets.ReadFile("assets/vendor/VENDOR")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	var version string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(line, "#"):
		case f[0] == "version" && len(f) == 2:
			version = f[1]
		case f[0] == "sha256" && len(f) == 3:
			recorded[f[2]] = f[1]
		}
	}
	if version == "" || len(recorded) != 3 {
		t.Fatalf("VENDOR records version %q and %d files, want a version and 3 files:\n%s", version, len(recorded), raw)
	}
	entries, err := fs.ReadDir(assets, "assets/vendor")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "VENDOR" {
			continue
		}
		want, ok := recorded[e.Name()]
		if !ok {
			t.Errorf("assets/vendor/%s is not recorded in VENDOR: rerun scripts/vendor-ui", e.Name())
			continue
		}
		delete(recorded, e.Name())
		b, err := assets.ReadFile("assets/vendor/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			t.Errorf("assets/vendor/%s has sha256 %x, VENDOR records %s: the file is not what scripts/vendor-ui fetched", e.Name(), sum, want)
		}
	}
	for name := range recorded {
		t.Errorf("VENDOR records %s, which is missing", name)
	}
}

// stalledWriter is a client that stops reading: every write blocks until
// the write deadline the handler set, then fails as a net.Conn's would.
type stalledWriter struct {
	header   http.Header
	mu       sync.Mutex
	deadline time.Time
	writes   int
}

func (w *stalledWriter) Header() http.Header { return w.header }
func (w *stalledWriter) WriteHeader(int)     {}
func (w *stalledWriter) FlushError() error   { return nil }
func (w *stalledWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	w.deadline = t
	w.mu.Unlock()
	return nil
}

func (w *stalledWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	d := w.deadline
	w.mu.Unlock()
	if d.IsZero() {
		return 0, errors.New("write with no deadline: a stalled client would block it for ever")
	}
	time.Sleep(time.Until(d))
	return 0, os.ErrDeadlineExceeded
}

// A client that stops reading is dropped after WriteTimeout: the stream's
// write is bounded, so its handler returns and frees its slot.
func TestAStalledClientIsDroppedAfterTheWriteTimeout(t *testing.T) {
	s, err := New(Config{WriteTimeout: 200 * time.Millisecond, Queries: func() []*microbatch.Query { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := &stalledWriter{header: http.Header{}}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		s.ServeHTTP(w, httptest.NewRequest("GET", "/api/events", nil))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream to a stalled client still runs after 5 s")
	}
	if el := time.Since(start); el < 200*time.Millisecond || w.writes != 1 {
		t.Fatalf("dropped after %v and %d writes, want one write blocked for the 200 ms timeout", el, w.writes)
	}
	if n := s.streams.Load(); n != 0 {
		t.Fatalf("%d streams open after the client was dropped", n)
	}
}

// The end of Config.Context (the job's signal context) ends the streams
// as Close does, and later ones are refused.
func TestTheConfigContextEndsTheStreams(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, srv := newServer(t, Config{Context: ctx, Queries: func() []*microbatch.Query { return nil }})
	a := openStream(t, srv.URL+"/api/events", nil)
	a.next(5 * time.Second)
	cancel()
	if err := a.ended(5 * time.Second); err != nil {
		t.Fatalf("after the context ended: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.streams.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open 5 s after the context ended", s.streams.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var e struct{ Error string }
	getJSON(t, srv.URL+"/api/events", http.StatusServiceUnavailable, &e)
	if !strings.Contains(e.Error, "closing") {
		t.Fatalf("a stream after the context ended: error %q", e.Error)
	}
}
