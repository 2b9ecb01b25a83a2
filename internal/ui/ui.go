package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedata/sluice/microbatch"
)

//go:embed assets
var assets embed.FS

var (
	// ErrConfig: New was given a Config it cannot use.
	ErrConfig = errors.New("ui: invalid config")
)

// Config configures a Server.
type Config struct {
	// Job names the job in the page's title; default "sluice".
	Job string
	// Queries lists the queries to show, in the order they are shown
	// (required). It is called on every request and every snapshot, from
	// many goroutines, so it must be cheap and safe for concurrent use; a
	// query that stopped may stay in the list (it shows as stopped).
	Queries func() []*microbatch.Query
	// Executors lists the processes that run tasks; default
	// LocalExecutors (this process). In cluster mode use
	// ClusterExecutors(driver). Its answer is cached for CacheFor, so
	// clients do not multiply a cluster's stats calls.
	Executors ExecutorsFunc
	// Context, when it ends, ends the event streams as Close does (give
	// the job's signal context); default: only Close ends them.
	Context context.Context
	// Logger receives the server's events (streams opened, closed and
	// refused); default slog.Default().
	Logger *slog.Logger

	// Interval is the longest time between two snapshots on an event
	// stream (a batch completing sends one at once); default 1 s.
	Interval time.Duration
	// Poll is how often a stream looks for a completed batch; default
	// 100 ms.
	Poll time.Duration
	// MaxStreams bounds the event streams open at once; one more is
	// refused with 503. Default 32.
	MaxStreams int
	// WriteTimeout bounds one write to a stream's client: a client that
	// stops reading is dropped after it. Default 10 s.
	WriteTimeout time.Duration
	// CacheFor is how long an Executors answer is reused; default 1 s.
	CacheFor time.Duration
}

// Validate reports a config New cannot use.
func (c Config) Validate() error {
	switch {
	case c.Queries == nil:
		return fmt.Errorf("%w: Queries is required", ErrConfig)
	case c.Interval < 0, c.Poll < 0, c.WriteTimeout < 0, c.CacheFor < 0:
		return fmt.Errorf("%w: negative duration (interval %v, poll %v, write timeout %v, cache %v)", ErrConfig, c.Interval, c.Poll, c.WriteTimeout, c.CacheFor)
	case c.MaxStreams < 0:
		return fmt.Errorf("%w: MaxStreams %d is negative", ErrConfig, c.MaxStreams)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Job == "" {
		c.Job = "sluice"
	}
	if c.Executors == nil {
		c.Executors = LocalExecutors
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Poll == 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 32
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.CacheFor == 0 {
		c.CacheFor = time.Second
	}
	return c
}

// Server is the web UI: an http.Handler serving the page, its assets, the
// JSON API and the event streams. Mount it at the root of a listener (its
// paths are absolute). Close ends its event streams.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger

	ctx    context.Context // ends every stream: Config.Context's end or Close cancels it
	cancel context.CancelFunc
	// streams counts open event streams; wg waits for their handlers.
	// mu orders wg.Add after Close's check of closed before its Wait.
	streams atomic.Int64
	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup

	execMu   sync.Mutex
	execAt   time.Time
	execList []Executor
	execErr  error
}

var _ http.Handler = (*Server)(nil)

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("ui: embedded assets: %w", err)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	base := cfg.Context
	if base == nil {
		base = context.Background()
	}
	s.ctx, s.cancel = context.WithCancel(base)
	files := http.FileServerFS(static)
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// The page is served from the embedded file, not FileServer's
		// directory index, so every path but / is a 404.
		http.ServeFileFS(w, r, static, "index.html")
	})
	s.mux.HandleFunc("GET /api/queries", s.handleQueries)
	s.mux.HandleFunc("GET /api/queries/{id}", s.handleQuery)
	s.mux.HandleFunc("GET /api/executors", s.handleExecutors)
	s.mux.HandleFunc("GET /api/events", s.handleEvents)
	return s, nil
}

// ServeHTTP serves the UI. Every answer forbids loading anything from
// another origin: the page must work with no network but this server's.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	h.Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Close ends every open event stream and waits for their handlers to
// return; later streams are refused. An http.Server's Shutdown waits for
// streams, which never go idle, so call Close first (or register it with
// http.Server.RegisterOnShutdown). Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// executors is cfg.Executors, answered from a cache of CacheFor.
func (s *Server) executors() ([]Executor, error) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	if !s.execAt.IsZero() && time.Since(s.execAt) < s.cfg.CacheFor {
		return s.execList, s.execErr
	}
	// The server's context, not a request's: the answer is shared, so a
	// client that goes away must not cache its cancellation for others.
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	s.execList, s.execErr = s.cfg.Executors(ctx)
	s.execAt = time.Now()
	return s.execList, s.execErr
}
