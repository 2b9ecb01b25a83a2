// Package browsertest drives a real headless Chromium (Debian's package,
// found or installed by scripts/chromium) for the tests of sluice's web
// pages: the job's UI and examples/dashboard.
//
// A Browser records what a user's console would show: uncaught exceptions,
// console.error calls, and requests that failed or left the loopback
// interface (the pages must load nothing from the internet). Tests assert
// Errors() is empty after the page has run. Screenshots are kept as test
// artifacts under $SLUICE_ARTIFACTS (default <repo>/.cache/artifacts).
//
// Where no Chromium can be had the test is skipped naming what is missing,
// or fails under CI=true (testenv.Missing).
package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sluicedata/sluice/internal/testenv"
)

var (
	findOnce sync.Once
	execPath string
	findErr  error
)

// chromium is the browser scripts/chromium finds or installs, once per
// test process.
func chromium(t testing.TB) string {
	t.Helper()
	findOnce.Do(func() {
		// The first test's context bounds the script (it may run apt-get).
		cmd := exec.CommandContext(t.Context(), filepath.Join(testenv.Root(), "scripts", "chromium"))
		cmd.WaitDelay = 5 * time.Second
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		execPath = strings.TrimSpace(string(out))
		if err != nil || execPath == "" {
			findErr = fmt.Errorf("scripts/chromium: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
	})
	if findErr != nil {
		testenv.Missing(t, "headless Chromium (%v)", findErr)
	}
	return execPath
}

// Browser is one headless Chromium tab, closed when the test ends.
type Browser struct {
	t   testing.TB
	ctx context.Context

	mu   sync.Mutex
	errs []string
	urls map[network.RequestID]string // for failed requests' messages
}

// Open starts Chromium with one tab. Every call in the test is bounded by
// the test's deadline and by a minute per call.
func Open(t testing.TB) *Browser {
	t.Helper()
	path := chromium(t)
	// Chromium's own temporary files (its singleton socket directory,
	// which it leaves behind) go here, removed after the browser stops; a
	// short path, since a socket's may be at most 107 bytes.
	tmp, err := os.MkdirTemp("", "chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1000),
		// No UserDataDir: only for a profile directory of its own making
		// does chromedp kill Chromium's children (zygote, network service)
		// that outlive the browser, and remove the directory after them.
		chromedp.Env("TMPDIR="+tmp),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t, urls: map[network.RequestID]string{}}
	// The runtime and network domains are enabled when the tab attaches;
	// the listener sees every event from then on.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return b
}

// listen records console errors, exceptions and failed or non-loopback
// requests.
func (b *Browser) listen(ev any) {
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		b.addErr("exception: %s (%s:%d)", msg, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range e.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			b.addErr("console.%s: %s", e.Type, strings.Join(parts, " "))
		}
	case *network.EventRequestWillBeSent:
		b.mu.Lock()
		b.urls[e.RequestID] = e.Request.URL
		b.mu.Unlock()
		if u, err := url.Parse(e.Request.URL); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "ws" || u.Scheme == "wss") {
			if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
				b.addErr("request leaves the machine: %s", e.Request.URL)
			}
		}
	case *network.EventLoadingFailed:
		if !e.Canceled {
			b.mu.Lock()
			u := b.urls[e.RequestID]
			b.mu.Unlock()
			b.addErr("request failed: %s: %s (%s)", u, e.ErrorText, e.Type)
		}
	case *network.EventResponseReceived:
		// The browser asks every site for a favicon by itself.
		if e.Response.Status >= 400 && !strings.HasSuffix(e.Response.URL, "/favicon.ico") {
			b.addErr("request failed: %s: HTTP %d", e.Response.URL, e.Response.Status)
		}
	}
}

func (b *Browser) addErr(format string, args ...any) {
	b.mu.Lock()
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

// Errors is what the page's console showed so far: exceptions,
// console.error calls, failed requests and requests to other hosts.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Context is the tab's context, for chromedp calls the helpers below do
// not cover.
func (b *Browser) Context() context.Context { return b.ctx }

// Navigate opens url and waits for its load event.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("chromium: open %s: %v (console: %q)", url, err, b.Errors())
	}
}

// Eval evaluates a JavaScript expression in the page; its value is
// JSON-decoded into T.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("chromium: evaluate %s: %v (console: %q)", expr, err, b.Errors())
	}
	return v
}

// WaitFor evaluates a boolean JavaScript expression every 100 ms until it is
// true, failing the test with why() after timeout.
func (b *Browser) WaitFor(expr string, timeout time.Duration, why func() string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %v for %s (last error %v): %s; console: %q", timeout, expr, err, why(), b.Errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Screenshot keeps a PNG of the whole page as a test artifact and returns
// its path: $SLUICE_ARTIFACTS/<name>.png (default .cache/artifacts).
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("chromium: screenshot: %v", err)
	}
	dir := os.Getenv("SLUICE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testenv.Root(), ".cache", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}
