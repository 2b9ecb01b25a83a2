package ui

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/browsertest"
	"github.com/sluicedata/sluice/microbatch"
)

// In a real headless Chromium, the page of a running windowed query loads
// with no console error and no request off the machine, its five charts
// gain points as batches complete (pushed over the event stream), and it
// shows the batches, the plan, the source, the state operator and the
// local executor. The screenshot is kept as the artifact ui-query.png.
func TestThePageFollowsARunningQueryInChromium(t *testing.T) {
	q := runQuery(t, "counts-per-key")
	waitBatches(t, q, 1)
	_, srv := newServer(t, Config{Job: "ui-browser-test", Queries: func() []*microbatch.Query { return []*microbatch.Query{q} }})

	b := browsertest.Open(t)
	b.Navigate(srv.URL + "/")
	state := func() string {
		return browsertest.Eval[string](b, `JSON.stringify({points: window.sluiceUI ? window.sluiceUI.points() : null, conn: document.getElementById("conn").textContent})`)
	}
	b.WaitFor(fmt.Sprintf(`window.sluiceUI !== undefined && window.sluiceUI.selected() === %q && window.sluiceUI.points().rates >= 2`, q.ID()),
		20*time.Second, state)
	if got := browsertest.Eval[string](b, `document.title`); got != "sluice · ui-browser-test" {
		t.Fatalf("title %q", got)
	}

	// Every chart gains points while the query runs: the page is pushed
	// each batch, with no reload.
	before := browsertest.Eval[map[string]int](b, `window.sluiceUI.points()`)
	if len(before) != 5 {
		t.Fatalf("charts %v, want rates, durations, watermark, state and late", before)
	}
	cond := []string{}
	for name, n := range before {
		cond = append(cond, fmt.Sprintf("p[%q] >= %d", name, n+3))
	}
	b.WaitFor(`(() => { const p = window.sluiceUI.points(); return `+strings.Join(cond, " && ")+`; })()`, 20*time.Second, state)
	if got := browsertest.Eval[string](b, `document.getElementById("conn").textContent`); got != "live" {
		t.Fatalf("connection shows %q, want live", got)
	}
	// uPlot drew them: one canvas per chart.
	if n := browsertest.Eval[int](b, `document.querySelectorAll(".chart canvas").length`); n != 5 {
		t.Fatalf("%d chart canvases, want 5", n)
	}

	rows := func(table string) int {
		return browsertest.Eval[int](b, fmt.Sprintf(`document.querySelectorAll("#%s tbody tr").length`, table))
	}
	if n := rows("batches"); n < 5 {
		t.Fatalf("the batches table has %d rows, want >= 5", n)
	}
	if n := rows("queries"); n != 1 {
		t.Fatalf("the queries table has %d rows, want 1", n)
	}
	if got := browsertest.Eval[string](b, `document.querySelector("#queries tbody tr").textContent`); !strings.Contains(got, "counts-per-key") || !strings.Contains(got, q.ID()) {
		t.Fatalf("queries row %q: want the name and id", got)
	}
	if got := browsertest.Eval[string](b, `document.getElementById("plan").textContent`); got != q.Explain() {
		t.Fatalf("plan shown:\n%s\nwant the query's Explain:\n%s", got, q.Explain())
	}
	if got := browsertest.Eval[string](b, `document.querySelector("#sources tbody tr").textContent`); !strings.Contains(got, "rate") {
		t.Fatalf("sources row %q: want the rate source", got)
	}
	if n := rows("state"); n < 1 {
		t.Fatal("no state operator shown")
	}
	if got := browsertest.Eval[string](b, `document.querySelector("#executors tbody tr").textContent`); !strings.Contains(got, "local") || !strings.Contains(got, "active") {
		t.Fatalf("executors row %q: want the local executor, active", got)
	}
	// The newest batch row is the query's latest (at most one behind: a
	// batch may complete between the two reads).
	top := browsertest.Eval[string](b, `document.querySelector("#batches tbody tr td").textContent`)
	if last := q.LastProgress().Batch; top != fmt.Sprint(last) && top != fmt.Sprint(last-1) {
		t.Fatalf("the newest batch row is %s, the query's last batch %d", top, last)
	}

	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("the page reported %q", errs)
	}
	b.Screenshot("ui-query")
}

// A page opened before any query runs waits for one and follows the first
// that starts; a click on another query's row follows that one, its
// charts and plan replacing the first's.
func TestThePageFindsQueriesThatStartLaterAndSwitchesBetweenThem(t *testing.T) {
	var mu sync.Mutex
	var running []*microbatch.Query
	_, srv := newServer(t, Config{Queries: func() []*microbatch.Query {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(running)
	}})
	b := browsertest.Open(t)
	b.Navigate(srv.URL + "/")
	conn := func() string {
		return browsertest.Eval[string](b, `document.getElementById("conn").textContent + " following " + window.sluiceUI.selected() + " " + JSON.stringify(window.sluiceUI.points())`)
	}
	b.WaitFor(`document.getElementById("noqueries").hidden === false && document.getElementById("conn").textContent === "live"`, 20*time.Second, conn)

	qa := runQuery(t, "first")
	mu.Lock()
	running = append(running, qa)
	mu.Unlock()
	b.WaitFor(fmt.Sprintf(`window.sluiceUI.selected() === %q && window.sluiceUI.points().rates >= 3`, qa.ID()), 20*time.Second, conn)

	qb := runQuery(t, "second")
	mu.Lock()
	running = append(running, qb)
	mu.Unlock()
	b.WaitFor(`document.querySelectorAll("#queries tbody tr").length === 2`, 20*time.Second, conn)
	browsertest.Eval[bool](b, `(document.querySelectorAll("#queries tbody tr")[1].click(), true)`)
	b.WaitFor(fmt.Sprintf(`location.hash === %q && window.sluiceUI.selected() === %q && window.sluiceUI.points().rates >= 2 && document.getElementById("qname").textContent === "second"`,
		"#q="+qb.ID(), qb.ID()), 20*time.Second, conn)
	if got := browsertest.Eval[string](b, `document.getElementById("plan").textContent`); got != qb.Explain() {
		t.Fatalf("plan after the switch:\n%s\nwant the second query's", got)
	}
	// The charts hold the second query's batches only: no more than it ran.
	if n, last := browsertest.Eval[int](b, `window.sluiceUI.points().rates`), qb.LastProgress().Batch; int64(n) > last+1 {
		t.Fatalf("the rates chart has %d points after the switch; the second query ran %d batches", n, last+1)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("the page reported %q", errs)
	}
}
