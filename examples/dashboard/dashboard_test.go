package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/browsertest"
	"github.com/sluicedata/sluice/internal/proctest"
	"github.com/sluicedata/sluice/microbatch/jobcli"
)

// recount is snap's figures recomputed in plain Go from the events the
// generator makes for (seed, snap.Start, rate), with no Kafka, Dataset or
// query: offset k is the k-th event, and each figure counts the events up
// to its offset. Times and push numbers are snap's.
func recount(t *testing.T, snap Snapshot, seed uint64, rate int) Snapshot {
	t.Helper()
	events, err := NewEvents(seed, snap.Start, rate)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]Event, max(snap.MinutesFig.Offset, snap.RegionsFig.Offset, snap.ConvFig.Offset)+1)
	for k := range evs {
		evs[k] = events.Next()
	}
	want := Snapshot{Seq: snap.Seq, Time: snap.Time, Start: snap.Start,
		MinutesFig: snap.MinutesFig, RegionsFig: snap.RegionsFig, ConvFig: snap.ConvFig}

	if n := snap.ConvFig.Offset; n >= 0 {
		c := ConversionRow{Offset: n}
		for _, e := range evs[:n+1] {
			if e.Status == StatusPlaced {
				c.Placed++
			} else {
				c.Paid++
			}
		}
		c.Rate = float64(c.Paid) / float64(c.Placed)
		want.Conversion = c
	}

	regions := map[string]*RegionRow{}
	cents := map[string]int64{}
	for k, e := range evs[:snap.RegionsFig.Offset+1] {
		if e.Status != StatusPaid {
			continue
		}
		r := regions[e.Region]
		if r == nil {
			r = &RegionRow{Region: e.Region}
			regions[e.Region] = r
		}
		cents[e.Region] += e.Cents
		r.Paid++
		r.Offset = int64(k)
	}
	want.Regions = []RegionRow{}
	for _, name := range slices.Sorted(maps.Keys(regions)) {
		r := *regions[name]
		r.Revenue = fmt.Sprintf("%d.%02d", cents[name]/100, cents[name]%100)
		want.Regions = append(want.Regions, r)
	}

	minutes := map[time.Time]*MinuteRow{}
	for k, e := range evs[:snap.MinutesFig.Offset+1] {
		m := e.TS.Truncate(time.Minute)
		r := minutes[m]
		if r == nil {
			r = &MinuteRow{Start: m}
			minutes[m] = r
		}
		if e.Status == StatusPlaced {
			r.Orders++
		} else {
			r.Paid++
		}
		r.Offset = int64(k)
	}
	want.Minutes = []MinuteRow{}
	for _, m := range slices.Backward(slices.SortedFunc(maps.Keys(minutes), time.Time.Compare)) {
		if len(want.Minutes) > 0 && m.Before(want.Minutes[0].Start.Add(-(shownMinutes-1)*time.Minute)) {
			break
		}
		want.Minutes = append(want.Minutes, *minutes[m])
	}
	return want
}

// checkRecount fails the test unless snap equals its recount.
func checkRecount(t *testing.T, snap Snapshot, seed uint64, rate int) {
	t.Helper()
	if g, w := jsonOf(t, snap), jsonOf(t, recount(t, snap, seed, rate)); g != w {
		t.Fatalf("push %d differs from the generator's events recounted:\n got %s\nwant %s", snap.Seq, g, w)
	}
}

var urlLine = regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+/)`)

// pageURL waits for the URL the dashboard run in-process prints.
func pageURL(t *testing.T, out *proctest.Buffer, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if m := urlLine.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-exited:
			t.Fatalf("the dashboard ended before printing its URL:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed within a minute:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getSnapshot(t *testing.T, url string) Snapshot {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	var s Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return s
}

// waitSnapshot polls the latest snapshot until ok, for at most a minute.
func waitSnapshot(t *testing.T, base string, ok func(Snapshot) bool, what string) Snapshot {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s := getSnapshot(t, base+"api/snapshot")
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot with %s within a minute; the last: %s", what, jsonOf(t, s))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// complete: every figure has rows, payments included.
func complete(s Snapshot) bool {
	return s.Conversion.Paid > 0 && len(s.Regions) > 0 && len(s.Minutes) > 0
}

var uiLine = regexp.MustCompile(`msg="web UI" url=(http://127\.0\.0\.1:\d+/)`)

// checkUI fails unless the job's log names its web UI and the UI's API
// lists the dashboard's three queries.
func checkUI(t *testing.T, log string) {
	t.Helper()
	m := uiLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the log names no web UI:\n%s", log)
	}
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(m[1] + "api/queries")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Job     string `json:"job"`
		Queries []struct {
			Name string `json:"name"`
		} `json:"queries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %sapi/queries: HTTP %d, %v", m[1], resp.StatusCode, err)
	}
	var names []string
	for _, q := range list.Queries {
		names = append(names, q.Name)
	}
	slices.Sort(names)
	if want := []string{"conversion", "orders-per-minute", "revenue-by-region"}; list.Job != "dashboard" || !slices.Equal(names, want) {
		t.Fatalf("the web UI lists job %q, queries %q; want dashboard, %q", list.Job, names, want)
	}
}

// The dashboard's stream command run in-process through jobcli: the
// figures it pushes are the generator's events recounted, push after
// push; its web UI lists its queries; its checkpoints go to a directory
// of the run under --checkpoint-dir; and cancelling the context (SIGTERM
// in the binary) stops it cleanly (goleak checks that nothing is left
// running).
func TestStreamPushesTheEventsRecounted(t *testing.T) {
	const seed, rate = 7, 400
	ckpt := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, log proctest.Buffer
	done := make(chan error, 1)
	exited := make(chan struct{})
	args := []string{"stream", "--port", "0", "--ui-addr", "127.0.0.1:0", "--rate", strconv.Itoa(rate), "--seed", strconv.Itoa(seed),
		"--checkpoint-dir", ckpt}
	go func() { done <- jobcli.Run(ctx, dashboardJob(&Config{}), args, &out, &log); close(exited) }()
	base := pageURL(t, &out, exited)
	checkUI(t, log.String())

	first := waitSnapshot(t, base, complete, "payments")
	checkRecount(t, first, seed, rate)
	later := waitSnapshot(t, base, func(s Snapshot) bool {
		return s.ConvFig.Offset > first.ConvFig.Offset && s.RegionsFig.Offset > first.RegionsFig.Offset
	}, "more events than push "+strconv.FormatInt(first.Seq, 10))
	checkRecount(t, later, seed, rate)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stream after cancel: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stream did not return within 30 s of its context ending")
	}
	if !strings.Contains(out.String(), "stopped: ") {
		t.Fatalf("no summary printed:\n%s", out.String())
	}
	runs, err := filepath.Glob(filepath.Join(ckpt, "run-*"))
	if err != nil || len(runs) != 1 || !strings.Contains(out.String(), "checkpoints in "+runs[0]+"\n") {
		t.Fatalf("want one run's checkpoints under %s, printed: found %q (%v); output:\n%s", ckpt, runs, err, out.String())
	}
	for _, q := range []string{"conversion", "orders-per-minute", "revenue-by-region"} {
		if _, err := os.Stat(filepath.Join(runs[0], q)); err != nil {
			t.Errorf("no checkpoint of query %s: %v", q, err)
		}
	}
}

// shown is what the page shows, read from its DOM.
type shown struct {
	Seq        string     `json:"seq"`
	Placed     string     `json:"placed"`
	Paid       string     `json:"paid"`
	Conversion string     `json:"conversion"`
	Minutes    [][]string `json:"minutes"`
	Regions    [][]string `json:"regions"`
}

const readPage = `(() => {
	const text = (id) => document.getElementById(id).textContent;
	const cells = (id) => [...document.querySelectorAll("#" + id + " tbody tr")].map(
		(tr) => [...tr.cells].slice(0, 3).map((td) => td.textContent));
	return {seq: text("seq"), placed: text("placed"), paid: text("paid"), conversion: text("conversion"),
		minutes: cells("minutes"), regions: cells("regions")};
})()`

// render is how the page shows snap, but for the conversion rate.
func render(s Snapshot) shown {
	out := shown{Seq: strconv.FormatInt(s.Seq, 10), Placed: strconv.FormatInt(s.Conversion.Placed, 10),
		Paid: strconv.FormatInt(s.Conversion.Paid, 10), Minutes: [][]string{}, Regions: [][]string{}}
	for _, m := range s.Minutes {
		out.Minutes = append(out.Minutes, []string{m.Start.UTC().Format("15:04"), strconv.FormatInt(m.Orders, 10), strconv.FormatInt(m.Paid, 10)})
	}
	for _, r := range s.Regions {
		out.Regions = append(out.Regions, []string{r.Region, r.Revenue, strconv.FormatInt(r.Paid, 10)})
	}
	return out
}

// checkPage fails unless the page shows push seq as the job emitted it.
func checkPage(t *testing.T, got shown, snap Snapshot) {
	t.Helper()
	want := render(snap)
	conv := got.Conversion
	got.Conversion = ""
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		t.Fatalf("the page differs from push %d:\n page %s\n push %s", snap.Seq, g, w)
	}
	// The page rounds to 0.1 %; JavaScript and Go may round a tie apart.
	pct, err := strconv.ParseFloat(strings.TrimSuffix(conv, "%"), 64)
	if err != nil || !strings.HasSuffix(conv, "%") || math.Abs(pct-100*snap.Conversion.Rate) > 0.05+1e-9 {
		t.Fatalf("the page shows conversion %q for push %d, whose rate is %v", conv, snap.Seq, snap.Conversion.Rate)
	}
}

// The built dashboard's stream command in a real browser: the page loads
// with no console error, shows the figures of the push it names exactly as
// the job emitted them (and those are the generator's events recounted),
// shows new figures a few seconds later; the job's web UI, named in its
// log, lists the three queries; and SIGTERM stops the binary with exit
// code 0.
func TestThePageShowsTheJobsFigures(t *testing.T) {
	const seed, rate = 3, 300
	b := browsertest.Open(t) // skips first when no Chromium can be had
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := proctest.Start(t, exec.CommandContext(ctx, proctest.Build(t, "."), "stream", "--port", "0", "--ui-addr", "127.0.0.1:0",
		"--rate", strconv.Itoa(rate), "--seed", strconv.Itoa(seed), "--duration", "5m"))
	base := p.WaitFor(t, p.Stdout, urlLine.String(), 1, time.Minute)[1]
	checkUI(t, p.Stderr.String())

	b.Navigate(base)
	progress := func() string {
		return fmt.Sprintf("page %+v; output:\n%s\n%s", browsertest.Eval[shown](b, readPage), p.Stdout.String(), p.Stderr.String())
	}
	b.WaitFor(`document.getElementById("status").textContent === "live" && Number(document.getElementById("paid").textContent) > 0 &&
		document.querySelectorAll("#regions tbody tr").length > 0`, time.Minute, progress)
	first := browsertest.Eval[shown](b, readPage)
	snap := getSnapshot(t, base+"api/snapshot?seq="+first.Seq)
	checkPage(t, first, snap)
	checkRecount(t, snap, seed, rate)

	b.WaitFor(fmt.Sprintf(`Number(document.getElementById("seq").textContent) > %s && document.getElementById("placed").textContent !== %q`,
		first.Seq, first.Placed), 30*time.Second, progress)
	second := browsertest.Eval[shown](b, readPage)
	snap = getSnapshot(t, base+"api/snapshot?seq="+second.Seq)
	checkPage(t, second, snap)
	checkRecount(t, snap, seed, rate)
	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("the page's console: %q", errs)
	}
	b.Screenshot("dashboard")

	p.Term(t)
	if !strings.Contains(p.Stdout.String(), "stopped: ") {
		t.Fatalf("after SIGTERM: want exit code 0 and a summary:\n%s", p.Stdout.String())
	}
}
