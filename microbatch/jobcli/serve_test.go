package jobcli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/browsertest"
)

// get fetches url and returns its body, failing the test on an error or a
// status other than 200.
func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v\n%s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// A stream serves its web UI, with /metrics beside it, at the address it
// logs; the UI lists the query the job started.
func TestAStreamServesItsWebUIAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := start(t, ctx, "stream", "--checkpoint-dir", t.TempDir(), "--rate", "2000", "--trigger-interval", "100ms", "--ui-addr", "127.0.0.1:0")
	p.WaitFor(t, p.Stderr, `msg=metrics url=\S+`, 1, 60*time.Second)
	uiURL := regexp.MustCompile(`msg="web UI" url=(\S+)`).FindStringSubmatch(p.Stderr.String())
	metricsURL := regexp.MustCompile(`msg=metrics url=(\S+)`).FindStringSubmatch(p.Stderr.String())
	if uiURL == nil || metricsURL == nil || !strings.HasPrefix(metricsURL[1], uiURL[1]) {
		t.Fatalf("want the UI's and the metrics' URLs logged, the metrics on the UI's address:\n%s", p.Stderr.String())
	}
	if page := get(t, uiURL[1]); !strings.Contains(page, "<html") {
		t.Fatalf("%s is not the UI's page:\n%.300s", uiURL[1], page)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ans struct {
			Job     string `json:"job"`
			Queries []struct {
				LastProgress *struct {
					BatchID int64 `json:"batchId"`
				} `json:"lastProgress"`
			} `json:"queries"`
		}
		body := get(t, uiURL[1]+"api/queries")
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatalf("api/queries: %v\n%s", err, body)
		}
		if qs := ans.Queries; ans.Job == "testjob" && len(qs) == 1 && qs[0].LastProgress != nil && qs[0].LastProgress.BatchID >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the UI does not list the running query with batches: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := get(t, metricsURL[1])
	for _, want := range []string{"go_goroutines ", "process_cpu_seconds_total ", `sluice_batches_total{query="`, `sluice_input_rows_total{query="`, `sluice_batch_duration_seconds_bucket{`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%.3000s", want, m)
		}
	}
	// The page itself, in a real browser: it follows the query with no
	// console error and its charts gain points.
	b := browsertest.Open(t)
	b.Navigate(uiURL[1])
	b.WaitFor(`window.sluiceUI !== undefined && window.sluiceUI.points().rates >= 3`, 30*time.Second, func() string {
		return browsertest.Eval[string](b, `document.body.innerText.slice(0, 500)`)
	})
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the job's web UI logged errors in the browser: %q", errs)
	}
	b.Screenshot("jobcli-stream-ui")
	p.Term(t)
}
