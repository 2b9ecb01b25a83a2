package microbatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/blobfs"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

var (
	// ErrInvalidQuery: the query cannot start as configured; the message says why.
	ErrInvalidQuery = errors.New("microbatch: invalid streaming query")
	// ErrIncompatibleCheckpoint: the checkpoint belongs to a query with other
	// sources (names or identities), stateful operators or key groups, or
	// holds an offsets file of another query. The error names the file and
	// what differs; the checkpoint is left as it was.
	ErrIncompatibleCheckpoint = errors.New("microbatch: checkpoint belongs to a different query")
)

// StreamWriter configures a streaming query; Start runs it.
type StreamWriter struct {
	ds      *dataset.Dataset
	sink    sinks.Sink
	trigger Trigger
	dir     string
	mode    sinks.Mode
	fs      vfs.FS
	fsSet   bool // FS was called: dir is a path in that FS, never a URL
	clock   Clock
	retain  int
	poll    time.Duration
	late    sinks.Sink
	policy  WatermarkPolicy
	listen  func(Progress)
	name    string
	log     *slog.Logger
	metrics *Metrics
	backend string // state.BackendMemory ("") or state.BackendDisk
	local   string // the disk backend's local directory; "" = state.DefaultLocalDir
	restart RestartStrategy
}

// WatermarkPolicy combines the watermarks of several inputs (each
// WithWatermark declaration) into the query's.
type WatermarkPolicy int

const (
	// MinWatermark follows the slowest input: nothing any input may still
	// send is treated as late (the default, as in Spark).
	MinWatermark WatermarkPolicy = iota
	// MaxWatermark follows the fastest input: results come sooner and
	// slower inputs' rows may be dropped as late.
	MaxWatermark
)

// OnProgress calls fn with the progress of every completed batch, on the
// query's goroutine, after the batch committed (RecentProgress keeps only
// the last 100). fn must be quick and must not call back into the query.
func (w *StreamWriter) OnProgress(fn func(Progress)) *StreamWriter { w.listen = fn; return w }

// QueryName names the query in its progress, logs, metrics and the web UI
// (Spark's queryName). It is not part of the checkpoint: renaming a query
// keeps its state.
func (w *StreamWriter) QueryName(name string) *StreamWriter { w.name = name; return w }

// Logger is where the query logs (default slog.Default() when Start runs):
// start and stop at Info, a refused start at Warn, a failure at Error, one
// Info record per completed batch (batch id, rows in and out, durations,
// watermark, lag: the heartbeat an operator reads, at most one line per
// trigger) and its start at Debug, bad records and failed source commits at
// Warn. Every record carries query=<name, else id>.
func (w *StreamWriter) Logger(l *slog.Logger) *StreamWriter { w.log = l; return w }

// Metrics publishes the query's Prometheus metrics into m (NewMetrics),
// which several queries may share: their series differ by the "query"
// label (the name, else the id), so queries sharing one m need distinct
// names.
func (w *StreamWriter) Metrics(m *Metrics) *StreamWriter { w.metrics = m; return w }

// WatermarkPolicy sets how several inputs' watermarks combine.
func (w *StreamWriter) WatermarkPolicy(p WatermarkPolicy) *StreamWriter { w.policy = p; return w }

// WriteStream starts configuring a streaming query of ds into sink:
//
//	q, err := microbatch.WriteStream(ds, sink).Trigger(microbatch.ProcessingTime(time.Second)).
//		Checkpoint(dir).OutputMode(sinks.Append).Start(ctx)
func WriteStream(ds *dataset.Dataset, sink sinks.Sink) *StreamWriter {
	return &StreamWriter{ds: ds, sink: sink, trigger: ProcessingTime(0), mode: sinks.Append,
		fs: vfs.OS{}, clock: realClock{}, retain: 100, poll: 100 * time.Millisecond,
		backend: os.Getenv(StateBackendEnv), restart: DefaultRestartStrategy()}
}

// RestartStrategy sets whether and when the query restarts itself from
// its checkpoint after a transient failure (restart.go; default
// DefaultRestartStrategy, NoRestart for none). Each restart is logged
// (Warn, "query restarting", with the error and the attempt), counted in
// Progress.Restarts and in sluice_query_restarts_total, and waits on the
// query's Clock.
func (w *StreamWriter) RestartStrategy(s RestartStrategy) *StreamWriter { w.restart = s; return w }

// StateBackendEnv names the environment variable whose value (memory or
// disk) is a query's state backend when StateBackend does not set one, as
// $SLUICE_EXECUTOR is dataset's executor: make test runs the stateful
// stream and kill tests a second time with it set to disk.
const StateBackendEnv = "SLUICE_STATE_BACKEND"

func (w *StreamWriter) Trigger(t Trigger) *StreamWriter { w.trigger = t; return w }

// Checkpoint sets where the checkpoint lives: a directory path, or a URL
// (file:///dir, s3://bucket/prefix?region=..., gs://, azblob://; see
// blobfs.Open), whose layout is the same keys as on disk.
func (w *StreamWriter) Checkpoint(dir string) *StreamWriter        { w.dir = dir; return w }
func (w *StreamWriter) OutputMode(m sinks.Mode) *StreamWriter      { w.mode = m; return w }
func (w *StreamWriter) Clock(c Clock) *StreamWriter                { w.clock = c; return w }
func (w *StreamWriter) FS(fs vfs.FS) *StreamWriter                 { w.fs, w.fsSet = fs, true; return w }
func (w *StreamWriter) Retain(batches int) *StreamWriter           { w.retain = batches; return w }
func (w *StreamWriter) PollInterval(d time.Duration) *StreamWriter { w.poll = d; return w }

// LateRows sends the rows a watermark drops as late to sink (append mode,
// committed with the same batch id before the main sink), instead of only
// counting them. The rows keep the columns they had where they were dropped
// (for windows, with window_start and window_end). In-process only: the
// rows travel from tasks to the driver in memory.
func (w *StreamWriter) LateRows(sink sinks.Sink) *StreamWriter { w.late = sink; return w }

// StateBackend picks where the query's operator state lives between
// batches: state.BackendMemory (the default) keeps it in memory,
// state.BackendDisk in local pebble databases under localDir ("" =
// state.DefaultLocalDir of the checkpoint's state directory), for state
// larger than memory. The checkpoint files are the same either way, so a
// query may restart with the other backend. An empty backend keeps the
// default ($SLUICE_STATE_BACKEND, else memory).
func (w *StreamWriter) StateBackend(backend, localDir string) *StreamWriter {
	if backend != "" {
		w.backend = backend
	}
	w.local = localDir
	return w
}

func (w *StreamWriter) validate() error {
	if err := w.ds.Err(); err != nil {
		return err
	}
	if !w.ds.IsStreaming() {
		return fmt.Errorf("%w: the Dataset reads no stream; run batch Datasets with Collect or Write", ErrInvalidQuery)
	}
	if w.dir == "" {
		return fmt.Errorf("%w: a checkpoint directory is required (Checkpoint(dir)): it is what makes restarts exactly-once", ErrInvalidQuery)
	}
	if w.fsSet && vfs.IsURL(w.dir) {
		return fmt.Errorf("%w: Checkpoint(%q) is a URL and FS(...) sets a filesystem: give one of them", ErrInvalidQuery, w.dir)
	}
	if w.retain < 1 {
		return fmt.Errorf("%w: Retain(%d): must keep at least one batch", ErrInvalidQuery, w.retain)
	}
	if err := w.restart.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	seen := map[string]bool{}
	for _, s := range w.ds.Streams() {
		if seen[s.Name()] {
			return fmt.Errorf("%w: two sources are named %q; offsets are keyed by source name", ErrInvalidQuery, s.Name())
		}
		seen[s.Name()] = true
	}
	if err := w.sink.Check(w.mode, w.ds.Schema()); err != nil {
		return fmt.Errorf("%w: sink %s: %v", ErrInvalidQuery, w.sink.Name(), err)
	}
	return nil
}

// identity is what the query's checkpoint must belong to (checkpoint.
// Identity): the key groups, each source's name and identity, and the
// stateful operators' kinds, ids and schemas from the compiled spec, all
// typed facts.
func (w *StreamWriter) identity(spec *plan.Spec) checkpoint.Identity {
	id := checkpoint.Identity{KeyGroups: spec.KeyGroups}
	for _, s := range w.ds.Streams() {
		id.Sources = append(id.Sources, checkpoint.SourceIdentity{Name: s.Name(), Identity: s.Identity()})
	}
	for _, op := range spec.Stateful {
		id.Operators = append(id.Operators, checkpoint.OperatorIdentity{Kind: op.Kind, ID: op.ID,
			KeySchema: checkpoint.SchemaText(op.KeySchema), ValueSchema: checkpoint.SchemaText(op.ValueSchema),
			Aggregates: op.Aggregates, StateType: op.StateType})
	}
	return id.Canonical()
}

// Start validates the query, opens (or creates) its checkpoint, becomes
// its one owner and runs it in the background until it ends (Once,
// AvailableNow), fails, or Stop is called.
//
// A checkpoint of another query (another identity: sources, their
// identities, stateful operators, key groups; or an offsets file of another
// query) is refused with ErrIncompatibleCheckpoint naming the file and what
// differs, one of an older format with checkpoint.ErrVersion, and one
// another instance owns with checkpoint.ErrLocked. A refused Start changes
// nothing in the checkpoint.
func (w *StreamWriter) Start(ctx context.Context) (*Query, error) {
	if w.log == nil {
		w.log = slog.Default()
	}
	q, err := w.start(ctx)
	if err != nil {
		w.log.LogAttrs(ctx, slog.LevelWarn, "query refused", slog.String("query", w.name),
			slog.String("checkpoint", w.dir), slog.String("reason", refusal(err)), slog.Any("error", err))
	}
	return q, err
}

// refusal names why Start refused, for the log.
func refusal(err error) string {
	switch {
	case errors.Is(err, ErrIncompatibleCheckpoint):
		return "incompatible checkpoint"
	case errors.Is(err, checkpoint.ErrLocked):
		return "checkpoint locked"
	case errors.Is(err, checkpoint.ErrVersion):
		return "checkpoint version"
	case errors.Is(err, ErrInvalidQuery):
		return "invalid query"
	}
	return "error"
}

// location is the checkpoint's filesystem and directory in it: FS and
// Checkpoint as given, or what blobfs.Open makes of a URL. closeFS releases
// what Open opened (a bucket's connections).
func (w *StreamWriter) location(ctx context.Context) (fsys vfs.FS, dir string, closeFS func() error, err error) {
	if !vfs.IsURL(w.dir) {
		return w.fs, w.dir, func() error { return nil }, nil
	}
	fsys, dir, err = blobfs.Open(ctx, w.dir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("checkpoint %s: %w", w.dir, err)
	}
	return fsys, dir, func() error { return vfs.CloseFS(fsys) }, nil
}

func (w *StreamWriter) start(ctx context.Context) (*Query, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	fsys, dir, closeFS, err := w.location(ctx)
	if err != nil {
		return nil, err
	}
	// Compiled once, before the checkpoint is touched: a plan that cannot
	// run is refused without leaving a checkpoint behind. The key-group
	// count is part of the checkpoint's identity, so a checkpoint with
	// another count is refused below rather than recompiled for.
	cq, stores, err := w.compile(fsys, dir)
	if err != nil {
		closeFS()
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			cq.Close()
			stores.Close()
			closeFS()
		}
	}()
	id := w.identity(cq.Spec())
	cp, err := checkpoint.Open(fsys, dir)
	if err != nil {
		return nil, err
	}
	// Checked before taking the lock, reading only: a start refused for a
	// foreign checkpoint leaves every byte of it as it was, the lock file
	// (which records its holder's pid) included.
	if _, _, err := recoverCheckpoint(cp, id); err != nil {
		return nil, err
	}
	lock, err := cp.Lock()
	if err != nil {
		return nil, err
	}
	// Again as the owner: another instance may have created the checkpoint
	// between the check and the lock.
	meta, rec, err := recoverCheckpoint(cp, id)
	if err == nil && meta == nil {
		var qid [8]byte
		rand.Read(qid[:])
		meta = &checkpoint.Metadata{QueryID: hex.EncodeToString(qid[:]), FormatVersion: checkpoint.FormatVersion, KeyGroups: id.KeyGroups, Identity: id,
			Config: map[string]string{"trigger": w.trigger.String(), "mode": string(w.mode), "sink": w.sink.Name()}}
		if err = cp.WriteMetadata(meta); err == nil {
			meta, _, err = cp.Metadata()
		}
	}
	var epoch int64
	if err == nil {
		epoch, err = cp.NextEpoch()
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	cq.Fence(meta.QueryID, epoch)
	ctx, cancel := context.WithCancel(ctx)
	q := &Query{w: w, cp: cp, meta: meta, lock: lock, closeFS: closeFS, cancel: cancel, done: make(chan struct{}), cq: cq, stores: stores,
		runID: newRunID(), status: Status{Message: "Initializing sources", Active: true}, fsys: fsys, dir: dir, id: id,
		restarter: NewRestarter(w.restart)}
	q.label, q.epoch = queryLabel(w.name, meta.QueryID), epoch
	q.log = w.log.With(slog.String("query", q.label))
	started = true
	if l, ok := lock.(interface{ Lost() <-chan struct{} }); ok {
		// A lease (object storage) another owner took over: stop, as Stop
		// would; run reports the lost lease as the query's error. Batches
		// this instance still had in flight lose at the put-if-absent logs.
		go func() {
			select {
			case <-l.Lost():
				cancel()
			case <-q.done:
			}
		}()
	}
	go q.run(ctx, rec)
	return q, nil
}

// compile makes the query's state provider over <dir>/state and compiles
// the query with it: what Start does first, and a restart again.
func (w *StreamWriter) compile(fsys vfs.FS, dir string) (*dataset.StreamQuery, state.Provider, error) {
	stores, err := state.NewProvider(w.backend, fsys, strings.TrimRight(dir, "/")+"/state", w.local)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	// The scheduler's records (retries, lost executors) name the query
	// when it has a name; its id is not known before the checkpoint is.
	tasksLog := w.log
	if w.name != "" {
		tasksLog = w.log.With(slog.String("query", w.name))
	}
	cq, err := w.ds.CompileStream(w.sink, dataset.StreamOptions{KeyGroups: checkpoint.DefaultKeyGroups, Emit: w.mode, State: stores, Logger: tasksLog})
	if err != nil {
		stores.Close()
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	if err := streamable(cq.Spec(), w.mode); err != nil {
		cq.Close()
		stores.Close()
		return nil, nil, err
	}
	return cq, stores, nil
}

// streamable refuses what a compiled streaming query cannot do: sort or
// limit (they need the whole input), or complete output mode without a
// streaming aggregation (there is no result table to emit whole).
func streamable(spec *plan.Spec, mode sinks.Mode) error {
	var err error
	spec.Walk(func(n *plan.Node) {
		if (n.Kind == plan.KindSort || n.Kind == plan.KindLimit) && err == nil {
			err = fmt.Errorf("%w: streaming %s is not supported (sort and limit need the whole input; use them in a ForeachBatch function)", ErrInvalidQuery, n.Kind)
		}
	})
	if err != nil {
		return err
	}
	if mode == sinks.Complete && !slices.ContainsFunc(spec.Stateful, func(op plan.StatefulOp) bool {
		return op.Kind == plan.OpAggregate || op.Kind == plan.OpSessionAggregate
	}) {
		return fmt.Errorf("%w: complete output mode needs a streaming aggregation; this query has none", ErrInvalidQuery)
	}
	return nil
}

// recoverCheckpoint reads cp's metadata and recovery state and checks them
// against the query's identity, writing nothing. meta is nil for a new
// checkpoint (rec then says batch 0).
func recoverCheckpoint(cp *checkpoint.Checkpoint, id checkpoint.Identity) (meta *checkpoint.Metadata, rec *checkpoint.Recovery, err error) {
	meta, ok, err := cp.Metadata()
	if err != nil {
		return nil, nil, err
	}
	if ok {
		if d := meta.Identity.Diff(id); len(d) > 0 {
			return nil, nil, fmt.Errorf("%w: %s was written by a query that differs from this one: %s; run this query on a new checkpoint directory",
				ErrIncompatibleCheckpoint, filepath.Join(cp.Dir(), "metadata.json"), strings.Join(d, "; "))
		}
	} else {
		meta = nil
	}
	rec, err = cp.Recover()
	if errors.Is(err, checkpoint.ErrForeign) {
		return nil, nil, fmt.Errorf("%w: %w", ErrIncompatibleCheckpoint, err)
	}
	if err != nil {
		return nil, nil, err
	}
	return meta, rec, nil
}

// Query is a running streaming query.
type Query struct {
	w    *StreamWriter
	cp   *checkpoint.Checkpoint
	meta *checkpoint.Metadata
	lock io.Closer // the checkpoint's lock, released when run ends
	// closeFS releases the checkpoint's filesystem when run ends (a
	// bucket's connections, for a URL checkpoint).
	closeFS func() error
	cancel  context.CancelFunc
	done    chan struct{}
	runID   string

	// cq is the compiled query and its executor; stores serves the
	// stateful operators' state under <checkpoint>/state and keeps it warm
	// between batches. Start makes them, a restart makes them anew (under
	// mu: Status and Explain read cq from other goroutines), run closes
	// them.
	cq     *dataset.StreamQuery
	stores state.Provider
	// fsys, dir and id are the checkpoint's filesystem, directory and the
	// identity it must have: what a restart reopens it with.
	fsys      vfs.FS
	dir       string
	id        checkpoint.Identity
	restarter *Restarter

	// log carries query=label; label is the query's name, else its id
	// (the metrics' "query" label too).
	log   *slog.Logger
	label string
	epoch int64 // the driver epoch this run fences older ones with
	// backlog is what sources.Backlog said of each source when the
	// running batch was planned; nil for a batch re-run after a restart.
	backlog map[string]sourceBacklog

	mu       sync.Mutex
	err      error
	status   Status
	progress []Progress
	restarts int64 // restarts so far (Progress.Restarts)
}

type sourceBacklog struct {
	latest sources.Offset
	lag    int64
	parts  map[string]int64
}

// ID is the query's id, stable across restarts from the same checkpoint.
func (q *Query) ID() string { return q.meta.QueryID }

// RunID identifies this start of the query: a restart from the same
// checkpoint keeps ID and gets a new RunID (as in Spark).
func (q *Query) RunID() string { return q.runID }

// Name is the name StreamWriter.QueryName gave the query, or "".
func (q *Query) Name() string { return q.w.name }

// newRunID is a random UUID (version 4), Spark's runId format.
func newRunID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Explain is the query's plan as it runs: the logical and optimized plans
// with the sink write, and the physical plan printed from the compiled spec
// every micro-batch runs.
func (q *Query) Explain() string {
	if cq := q.compiled(); cq != nil {
		return cq.Explain()
	}
	return ""
}

func (q *Query) compiled() *dataset.StreamQuery {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cq
}

// Stop stops the query after the batch in flight is abandoned (it will be
// re-run on restart) and waits for it; it returns the terminating error, if
// the query failed before it was stopped.
func (q *Query) Stop() error {
	q.cancel()
	<-q.done
	return q.Exception()
}

// AwaitTermination waits until the query ends and returns its error (nil
// when it ended normally or was stopped).
func (q *Query) AwaitTermination() error {
	<-q.done
	return q.Exception()
}

// Exception is the error that ended the query, or nil.
func (q *Query) Exception() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *Query) Status() Status {
	q.mu.Lock()
	st, cq := q.status, q.cq
	q.mu.Unlock()
	// A batch that waits for its executors says so (cluster mode).
	if cq == nil {
		return st
	}
	if why := cq.Waiting(); st.Active && why != "" {
		st.Message = fmt.Sprintf("%s: %s", st.Message, why)
	}
	return st
}

// LastProgress is the progress of the last completed batch, or nil.
func (q *Query) LastProgress() *Progress {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.progress) == 0 {
		return nil
	}
	p := q.progress[len(q.progress)-1]
	return &p
}

// RecentProgress is the progress of the last (up to 100) batches, oldest first.
func (q *Query) RecentProgress() []Progress {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Progress(nil), q.progress...)
}

func (q *Query) setStatus(msg string, batchActive bool) {
	q.mu.Lock()
	q.status = Status{Message: msg, Active: true, BatchActive: batchActive}
	q.mu.Unlock()
}

func (q *Query) run(ctx context.Context, rec *checkpoint.Recovery) {
	attrs := []slog.Attr{slog.String("query_id", q.meta.QueryID), slog.String("run_id", q.runID), slog.String("name", q.w.name),
		slog.String("checkpoint", q.w.dir), slog.String("trigger", q.w.trigger.String()), slog.String("sink", q.w.sink.Name()),
	}
	attrs = append(attrs, q.recoveryAttrs(rec)...)
	attrs = append(attrs, slog.String("restart_strategy", q.w.restart.String()))
	q.log.LogAttrs(ctx, slog.LevelInfo, "query started", attrs...)
	err := q.loop(ctx, rec)
	for err != nil && ctx.Err() == nil && Transient(err) {
		wait, ok := q.restarter.Next(q.w.clock.Now())
		if !ok {
			if k := q.w.restart.Kind; k != RestartNone && k != "" {
				err = fmt.Errorf("%w (%s; %d restarts before): %w", ErrRestartsExhausted, q.w.restart, q.restarter.Count(), err)
			}
			break
		}
		n := q.restarter.Count()
		q.log.LogAttrs(ctx, slog.LevelWarn, "query restarting", slog.Int64("attempt", n),
			slog.Int64("wait_ms", wait.Milliseconds()), slog.Any("error", err))
		q.w.metrics.restarted(q.label)
		q.mu.Lock()
		q.restarts = n
		q.status = Status{Message: fmt.Sprintf("Restarting (attempt %d) in %s after: %v", n, wait.Round(time.Millisecond), err), Active: true}
		q.mu.Unlock()
		if err = q.sleep(ctx, wait); err != nil {
			break
		}
		if rec, err = q.reopen(); err != nil {
			continue // classified as any failure: a checkpoint store still out may be transient
		}
		q.log.LogAttrs(ctx, slog.LevelInfo, "query restarted", append([]slog.Attr{slog.Int64("attempt", n)}, q.recoveryAttrs(rec)...)...)
		err = q.loop(ctx, rec)
	}
	if q.cq != nil {
		q.cq.Close()
		q.stores.Close()
	}
	// Released before done closes: once Stop or AwaitTermination returns,
	// a new instance may start on the checkpoint.
	lerr := q.lock.Close()
	q.closeFS()
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		err = nil // stopped: by Stop, by the caller's context ending, or by a lost lease
	}
	if err == nil && errors.Is(lerr, vfs.ErrLocked) {
		// A lease (object storage) another owner took over: say so (the
		// put-if-absent logs kept the two owners' batches apart).
		err = fmt.Errorf("checkpoint lock: %w", lerr)
	}
	q.logStop(ctx, err)
	q.mu.Lock()
	q.err = err
	q.status = Status{Message: "Stopped"}
	q.mu.Unlock()
	close(q.done)
}

// recoveryAttrs are the log attributes of where a start or restart resumes.
func (q *Query) recoveryAttrs(rec *checkpoint.Recovery) []slog.Attr {
	attrs := []slog.Attr{slog.Int64("next_batch", rec.Next), slog.Int64("epoch", q.epoch)}
	if rec.Rerun != nil {
		attrs = append(attrs, slog.Int64("rerun_batch", rec.Rerun.Batch))
	}
	return attrs
}

// reopen does what a new process does on the checkpoint, short of taking
// its lock (still held): it closes the compiled query and the state
// provider, makes them anew, checks the checkpoint's identity again, reads
// its recovery state (the batch to re-run with its recorded offsets) and
// takes a new driver epoch, which fences tasks of the failed run. The
// state provider is closed first: the disk backend's local databases
// allow one opener.
func (q *Query) reopen() (*checkpoint.Recovery, error) {
	q.mu.Lock()
	old, oldStores := q.cq, q.stores
	q.cq, q.stores = nil, nil
	q.mu.Unlock()
	if old != nil {
		old.Close()
		oldStores.Close()
	}
	cq, stores, err := q.w.compile(q.fsys, q.dir)
	if err != nil {
		return nil, err
	}
	_, rec, err := recoverCheckpoint(q.cp, q.id)
	var epoch int64
	if err == nil {
		epoch, err = q.cp.NextEpoch()
	}
	if err != nil {
		cq.Close()
		stores.Close()
		return nil, err
	}
	cq.Fence(q.meta.QueryID, epoch)
	q.mu.Lock()
	q.cq, q.stores, q.epoch, q.backlog = cq, stores, epoch, nil
	q.mu.Unlock()
	return rec, nil
}

// loop is the driver's main loop:
//
//	recover: re-run the batch whose offsets were written but not committed
//	for each trigger tick:
//	    end := Latest(start) per source; no new data -> wait (or stop)
//	    write offsets/N (the write-ahead log), run N, commit the sink, write commits/N
func (q *Query) loop(ctx context.Context, rec *checkpoint.Recovery) error {
	w := q.w
	streams := w.ds.Streams()
	next := rec.Next
	var starts map[string]sources.Offset
	// wm is the watermark the next batch runs with; lastWM the one the last
	// batch ran with. A watermark that moved without new data still closes
	// windows, so it earns a batch of its own.
	wm, lastWM := int64(math.MinInt64), int64(math.MinInt64)
	wms := map[string]int64{} // per input, as of the next batch
	if rec.Last != nil {
		wm = rec.Last.NextWatermark
		for id, v := range rec.Last.Watermarks {
			wms[id] = v
		}
	}
	// active and idle are the last recorded batch's idleness facts
	// (idle.go): where the next batch counts idleness from.
	var active map[string]int64
	var idle []string
	if rec.LastOffsets != nil {
		lastWM = rec.LastOffsets.Watermark
		active, idle = rec.LastOffsets.Active, rec.LastOffsets.Idle
	}
	if rec.Rerun != nil {
		q.log.LogAttrs(ctx, slog.LevelInfo, "re-running batch after restart", slog.Int64("batch", rec.Rerun.Batch))
		nw, err := q.runBatch(ctx, rec.Rerun, time.Time{}, nil, wms)
		if err != nil {
			return err
		}
		starts = ends(rec.Rerun)
		active, idle = rec.Rerun.Active, rec.Rerun.Idle
		next = rec.Rerun.Batch + 1
		wm, lastWM = nw, rec.Rerun.Watermark
		if c, err := q.cp.Commit(rec.Rerun.Batch); err == nil {
			wms = c.Watermarks
		}
	} else if rec.LastOffsets != nil {
		starts = ends(rec.LastOffsets)
	}
	spec := q.cq.Spec()
	// A watermark that moves closes windows and evicts state: a batch of
	// its own even without data, when something keeps state.
	closesWindows := len(spec.Watermarks) > 0 && len(spec.Stateful) > 0
	// Processing-time timeouts fire as batch time passes, data or not: a
	// periodic trigger runs a no-data batch every interval for them.
	timesOut := false
	spec.Walk(func(n *plan.Node) {
		if n.Kind == plan.KindGroups && n.State != nil && n.Groups.Timeout == exec.ProcessingTimeTimeout {
			timesOut = true
		}
	})
	timesOut = timesOut && w.trigger.kind == kindProcessingTime && w.trigger.interval > 0
	for _, s := range streams {
		if _, ok := starts[s.Name()]; ok {
			continue
		}
		if starts == nil {
			starts = map[string]sources.Offset{}
		}
		o, err := s.Initial(ctx)
		if err != nil {
			return fmt.Errorf("source %s: initial offset: %w", s.Name(), err)
		}
		starts[s.Name()] = o
	}
	if w.trigger.kind == kindAvailableNow {
		for _, s := range streams {
			if b, ok := s.(sources.Bounder); ok {
				if err := b.Bound(ctx); err != nil {
					return fmt.Errorf("source %s: bound: %w", s.Name(), err)
				}
			}
		}
	}
	var lastStart time.Time
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tick := w.clock.Now()
		q.setStatus("Getting offsets", false)
		prev := lastWM
		entry := &checkpoint.OffsetEntry{Batch: next, QueryID: q.meta.QueryID, Sources: map[string]checkpoint.SourceOffsets{},
			Watermark: wm, PrevWatermark: &prev, Timestamp: tick.UnixMicro()}
		hasData := false
		pre := map[string]time.Duration{}
		for _, s := range streams {
			start := starts[s.Name()]
			end, err := s.Latest(ctx, start)
			if err != nil {
				return fmt.Errorf("source %s: latest offset after %s: %w", s.Name(), start, err)
			}
			if !bytes.Equal(end, start) {
				hasData = true
			}
			entry.Sources[s.Name()] = checkpoint.SourceOffsets{Identity: s.Identity(), Start: start, End: end}
		}
		entry.Watermark, entry.Active, entry.Idle = q.idleWatermark(entry, active, wm, wms)
		if !hasData && !(closesWindows && entry.Watermark > lastWM) && !timesOut {
			if w.trigger.kind != kindProcessingTime {
				return nil
			}
			q.setStatus("Waiting for data to arrive", false)
			if err := q.sleep(ctx, max(w.trigger.interval, w.poll)); err != nil {
				return err
			}
			continue
		}
		q.backlog = q.backlogs(ctx, entry)
		pre[PhaseLatestOffset] = w.clock.Now().Sub(tick)
		t := w.clock.Now()
		if err := q.cp.WriteOffsets(entry); err != nil {
			return err
		}
		q.logIdle(ctx, entry, idle)
		pre[PhaseWALCommit] = w.clock.Now().Sub(t)
		nw, err := q.runBatch(ctx, entry, lastStart, pre, wms)
		if err != nil {
			return err
		}
		if c, err := q.cp.Commit(entry.Batch); err == nil {
			wms = c.Watermarks
		}
		wm, lastWM = nw, entry.Watermark
		active, idle = entry.Active, entry.Idle
		lastStart = tick
		starts = ends(entry)
		next++
		if w.trigger.kind == kindOnce {
			return nil
		}
		if w.trigger.kind == kindProcessingTime && w.trigger.interval > 0 {
			if wait := w.trigger.interval - w.clock.Now().Sub(tick); wait > 0 {
				q.setStatus("Waiting for next trigger", false)
				if err := q.sleep(ctx, wait); err != nil {
					return err
				}
			}
		}
	}
}

// commitLate writes a batch's late rows through the late-rows sink as one
// task and commits them under the batch's id (idempotent, so a re-run after a
// crash writes them once).
func (q *Query) commitLate(ctx context.Context, batch int64, recs []arrow.Record) error {
	sink := q.w.late
	schema := recs[0].Schema()
	if err := sink.Check(sinks.Append, schema); err != nil {
		return err
	}
	b := sinks.Batch{ID: batch, Mode: sinks.Append, Schema: schema, Query: q.meta.QueryID}
	wr, err := sink.NewWriter(ctx, b, 0)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := wr.Write(r); err != nil {
			wr.Abort()
			return err
		}
	}
	msg, err := wr.Prepare()
	if err != nil {
		wr.Abort()
		return err
	}
	if err := sink.Commit(ctx, b, []sinks.CommitMessage{msg}); err != nil {
		sink.Abort(ctx, b, []sinks.CommitMessage{msg})
		return err
	}
	return nil
}

func (q *Query) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-q.w.clock.After(d):
		return nil
	}
}

// prevWatermark is the watermark of the batch before e, as e recorded it.
func prevWatermark(e *checkpoint.OffsetEntry) int64 {
	if e.PrevWatermark == nil {
		return math.MinInt64
	}
	return *e.PrevWatermark
}

func ends(e *checkpoint.OffsetEntry) map[string]sources.Offset {
	m := map[string]sources.Offset{}
	for name, o := range e.Sources {
		m[name] = o.End
	}
	return m
}

// runBatch runs batch e.Batch with exactly its recorded offsets and commits
// it: sink first (idempotent per batch id), then commits/<N>. It reads as
// DESIGN.md's data path:
//
//	splits of (start, end] per source -> run the compiled query with the batch's values
//	-> late rows, sink commit -> next watermark from the tasks' metrics -> commits/N
func (q *Query) runBatch(ctx context.Context, e *checkpoint.OffsetEntry, prevStart time.Time, pre map[string]time.Duration, wms map[string]int64) (nextWM int64, err error) {
	w := q.w
	q.setStatus(fmt.Sprintf("Processing batch %d", e.Batch), true)
	began := w.clock.Now()
	if q.log.Enabled(ctx, slog.LevelDebug) {
		q.log.LogAttrs(ctx, slog.LevelDebug, "batch started", slog.Int64("batch", e.Batch), watermarkAttr(e.Watermark))
	}
	p := Progress{ID: q.meta.QueryID, RunID: q.runID, Name: w.name, Batch: e.Batch, Timestamp: time.UnixMicro(e.Timestamp).UTC(),
		Durations: map[string]time.Duration{}, Sink: SinkProgress{Description: w.sink.Name(), OutputRows: -1}}
	for k, v := range pre {
		p.Durations[k] = v
	}
	if e.Watermark != math.MinInt64 {
		p.Watermark = time.UnixMicro(e.Watermark).UTC()
	}
	p.IdleInputs = e.Idle
	p.Restarts = q.restarts
	splits, err := q.splits(ctx, e, &p)
	if err != nil {
		return 0, err
	}
	t := w.clock.Now()
	res, err := q.cq.RunBatch(ctx, plan.BatchContext{ID: e.Batch, StateVersion: e.Batch, Watermark: e.Watermark,
		PrevWatermark: prevWatermark(e), BatchTime: e.Timestamp, OutputMode: w.mode, Query: q.meta.QueryID}, splits, w.late != nil)
	p.Durations[PhaseAddBatch] = w.clock.Now().Sub(t)
	if err != nil {
		return 0, fmt.Errorf("batch %d: %w", e.Batch, err)
	}
	defer func() {
		for _, r := range res.Late {
			r.Release()
		}
	}()
	t = w.clock.Now()
	if err := q.commitSinks(ctx, e.Batch, res); err != nil {
		return 0, err
	}
	p.Durations[PhaseSinkCommit] = w.clock.Now().Sub(t)
	t = w.clock.Now()
	nextWM, perInput := q.nextWatermark(e, wms, res.Metrics.MaxEventTime)
	if err := q.cp.WriteCommit(&checkpoint.CommitEntry{Batch: e.Batch, NextWatermark: nextWM, Watermarks: perInput}); err != nil {
		return 0, err
	}
	if err := q.cp.Purge(w.retain); err != nil {
		return 0, err
	}
	// State versions the retained batches may need to re-run from.
	if keep := e.Batch + 2 - int64(w.retain); keep > 0 {
		if err := q.stores.Purge(keep); err != nil {
			return 0, fmt.Errorf("batch %d: purge state: %w", e.Batch, err)
		}
	}
	p.Durations[PhaseCommitLog] = w.clock.Now().Sub(t)
	for _, s := range w.ds.Streams() {
		if c, ok := s.(sources.Committer); ok {
			// Best effort: it only trims or reports.
			if err := c.Commit(ctx, e.Sources[s.Name()].End); err != nil {
				q.log.LogAttrs(ctx, slog.LevelWarn, "source commit failed", slog.Int64("batch", e.Batch),
					slog.String("source", s.Name()), slog.Any("error", err))
			}
		}
	}
	q.report(ctx, &p, res.Metrics, began, prevStart, pre)
	return nextWM, nil
}

// splits lists each source's splits of the batch's (start, end] and adds
// the sources to p (rows as the splits count them; report corrects them by
// what the tasks read).
func (q *Query) splits(ctx context.Context, e *checkpoint.OffsetEntry, p *Progress) (map[string][]sources.Split, error) {
	splits := map[string][]sources.Split{}
	for _, s := range q.w.ds.Streams() {
		o := e.Sources[s.Name()]
		sp, err := s.Splits(ctx, o.Start, o.End)
		if err != nil {
			return nil, fmt.Errorf("batch %d: source %s: read (%s, %s]: %w", e.Batch, s.Name(), o.Start, o.End, err)
		}
		splits[s.Name()] = sp
		var rows int64
		for _, x := range sp {
			rows += max(x.Rows(), 0)
		}
		src := SourceProgress{Name: s.Name(), Description: s.Identity(), Start: o.Start, End: o.End, Rows: rows, Lag: -1}
		if b, ok := q.backlog[s.Name()]; ok {
			src.Latest, src.Lag, src.PartitionLag = b.latest, b.lag, b.parts
		}
		if d, ok := s.(sources.Dropper); ok {
			src.Dropped = d.Drops(o.Start, o.End)
			for _, x := range src.Dropped {
				q.log.LogAttrs(ctx, slog.LevelWarn, "input dropped", slog.Int64(logBatch, e.Batch), slog.String(logSource, s.Name()),
					slog.String("kind", x.Kind), slog.String("input", x.Input), slog.Int64("count", x.Count), slog.String("reason", x.Reason), slog.String("to", x.To))
			}
		}
		p.Sources = append(p.Sources, src)
	}
	return splits, nil
}

// commitSinks commits a batch's late rows (when a late-rows sink is set),
// then its output, both under the batch's id; a failure aborts the output.
func (q *Query) commitSinks(ctx context.Context, batch int64, res *dataset.BatchResult) error {
	w := q.w
	b := sinks.Batch{ID: batch, Mode: w.mode, Schema: w.ds.Schema(), Query: q.meta.QueryID}
	if len(res.Late) > 0 {
		if err := q.commitLate(ctx, batch, res.Late); err != nil {
			w.sink.Abort(ctx, b, res.Commit)
			return fmt.Errorf("batch %d: late rows sink %s: %w", batch, w.late.Name(), err)
		}
	}
	if err := w.sink.Commit(ctx, b, res.Commit); err != nil {
		w.sink.Abort(ctx, b, res.Commit)
		return fmt.Errorf("batch %d: sink %s commit: %w", batch, w.sink.Name(), err)
	}
	return nil
}

// nextWatermark is the watermark of the batch after e: each input's only
// moves forward, to its largest event time seen (by the tasks) minus its
// delay; the query's combines them by the policy and never moves back.
func (q *Query) nextWatermark(e *checkpoint.OffsetEntry, wms map[string]int64, observed map[string]int64) (int64, map[string]int64) {
	next := e.Watermark
	specs := q.cq.Spec().Watermarks
	if len(specs) == 0 {
		return next, nil
	}
	perInput := map[string]int64{}
	combined := int64(math.MinInt64)
	for i, spec := range specs {
		v, ok := wms[spec.ID]
		if !ok {
			v = math.MinInt64
		}
		if m, ok := observed[spec.ID]; ok && m != math.MinInt64 {
			v = max(v, m-spec.DelayMicros)
		}
		perInput[spec.ID] = v
		switch {
		case i == 0:
			combined = v
		case q.w.policy == MaxWatermark:
			combined = max(combined, v)
		default:
			combined = min(combined, v)
		}
	}
	return max(next, combined), perInput
}

// report completes a batch's progress from its tasks' metrics and
// publishes it.
func (q *Query) report(ctx context.Context, p *Progress, m *exec.Metrics, began, prevStart time.Time, pre map[string]time.Duration) {
	// Rows actually read (a split may not know its count before reading).
	p.InputRows = 0
	p.Sink.OutputRows, p.Sink.DeadLettered = m.SinkRows, m.SinkDeadLettered
	for i := range p.Sources {
		p.Sources[i].Rows = m.SourceRows[p.Sources[i].Name]
		p.InputRows += p.Sources[i].Rows
	}
	for op, o := range m.Operators {
		p.StateOperators = append(p.StateOperators, StateProgress{Operator: op, Rows: o.StateRows, Bytes: o.StateBytes, DroppedLate: o.DroppedLate, Evicted: o.Evicted, Loads: o.Loads})
	}
	sort.Slice(p.StateOperators, func(i, j int) bool { return p.StateOperators[i].Operator < p.StateOperators[j].Operator })
	total := q.w.clock.Now().Sub(began)
	// The whole trigger, as in Spark: offsets and the write-ahead log too.
	p.Durations[PhaseTotal] = total + pre[PhaseLatestOffset] + pre[PhaseWALCommit]
	if total > 0 {
		p.ProcessedPerS = float64(p.InputRows) / total.Seconds()
		for i := range p.Sources {
			p.Sources[i].ProcessedPerS = float64(p.Sources[i].Rows) / total.Seconds()
		}
	}
	if !prevStart.IsZero() {
		if gap := began.Sub(prevStart); gap > 0 {
			p.InputRowsPerS = float64(p.InputRows) / gap.Seconds()
			for i := range p.Sources {
				p.Sources[i].InputRowsPerS = float64(p.Sources[i].Rows) / gap.Seconds()
			}
		}
	}
	q.mu.Lock()
	q.progress = append(q.progress, *p)
	if len(q.progress) > 100 {
		q.progress = q.progress[len(q.progress)-100:]
	}
	q.mu.Unlock()
	q.logBadRecords(ctx, p.Batch, m)
	q.w.metrics.observe(q.label, p, q.w.clock.Now(), m.Skipped, m.DeadLettered)
	q.logBatch(ctx, p)
	if q.w.listen != nil {
		q.w.listen(*p)
	}
}
