package browsertest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/internal/browsertest"
)

// The browser reports what a user's console would show, and nothing on a
// clean page: the UI tests' "no console errors" check can fail.
func TestTheBrowserReportsConsoleErrorsExceptionsAndOutsideRequests(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/clean", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>clean</title><p id=n>0</p><script>setTimeout(() => document.getElementById("n").textContent = "1", 50)</script>`))
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>broken</title><script>console.error("boom"); undefinedFunction();</script>
<img src="http://192.0.2.1/x.png"><script src="/missing.js"></script>`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := browsertest.Open(t)
	b.Navigate(srv.URL + "/clean")
	b.WaitFor(`document.getElementById("n").textContent === "1"`, 5*time.Second, func() string { return "the page's script did not run" })
	if got := browsertest.Eval[string](b, `document.title`); got != "clean" {
		t.Fatalf("title %q", got)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("a clean page reported %q", errs)
	}
	png := b.Screenshot("browsertest-clean")
	if data, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG (%v)", png, err)
	}

	b.Navigate(srv.URL + "/broken")
	b.WaitFor(`true`, time.Second, func() string { return "" })
	deadline := time.Now().Add(5 * time.Second)
	want := []string{"console.error: \"boom\"", "undefinedFunction", "192.0.2.1", "missing.js"}
	for {
		errs := strings.Join(b.Errors(), "\n")
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(errs, w) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors %q do not mention %q", b.Errors(), missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Chromium and chromedp's goroutines end with the test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
