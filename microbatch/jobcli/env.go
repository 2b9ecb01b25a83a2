package jobcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
)

// Env is what a role gives the job's code: its settings, logger, output,
// the cluster in cluster mode, and the hooks that tie queries and
// Datasets to the CLI's lifecycle and progress bar.
type Env struct {
	// Role is the command's role: batch, backfill, stream, executor, or
	// replay (checkpoint replay: Start records the query, runs nothing).
	Role string
	// Log is the job's logger (text, or JSON with --log-format json, on
	// stderr, at --log-level).
	Log            *slog.Logger
	Stdout, Stderr io.Writer
	// Settings are the effective common settings. A job may fill in a
	// default the settings leave empty (CheckpointDir) before Start.
	Settings Settings
	// Cluster is the driver of the cluster the tasks run on (--join);
	// nil when they run in this process.
	Cluster *cluster.Driver
	// UIURL and MetricsURL are where this process serves its web UI and
	// Prometheus metrics ("" when it does not), for the job to print.
	UIURL, MetricsURL string

	jobName string
	reg     *prometheus.Registry // the role's metrics (serve)
	metrics *microbatch.Metrics  // the queries' series in reg
	stop    context.CancelFunc
	bar     *bar

	mu      sync.Mutex
	defers  []func() error
	queries []*microbatch.Query
	tmpDir  string
	replay  *replayRecorder // the replay role's queries (checkpoint.go)
}

// Dataset is the dataset.Config a Dataset of the job takes (WithConfig):
// in cluster mode its tasks run on the executors, which rebuild the job
// from params (Job.Tasks); in a batch job it drives the progress bar.
func (e *Env) Dataset(params map[string]string) dataset.Config {
	cfg := dataset.Config{Logger: e.Log}
	if e.Cluster != nil {
		cfg.Cluster, cfg.Params = e.Cluster, params
	}
	if e.Role == roleBatch && e.bar != nil {
		cfg.OnTask = e.bar.tasks
	}
	return cfg
}

// Checkpoint is the absolute checkpoint directory of the query name:
// CheckpointDir/name (a URL when CheckpointDir is one: its path gets
// /name). Without a checkpoint-dir setting it is under a
// temporary directory removed when the command ends.
func (e *Env) Checkpoint(name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	base := e.Settings.CheckpointDir
	if base == "" {
		if e.tmpDir == "" {
			dir, err := os.MkdirTemp("", "sluice-checkpoints-")
			if err != nil {
				return "", fmt.Errorf("checkpoint directory: %w", err)
			}
			e.tmpDir = dir
			e.Log.Warn("no --checkpoint-dir: checkpoints go to a temporary directory removed at exit; a restart starts over", "dir", dir)
		}
		base = e.tmpDir
	}
	if vfs.IsURL(base) {
		// Object storage (s3://bucket/prefix?...): the query's checkpoint
		// is a prefix below it, the URL's query kept.
		return vfs.Join(base, name), nil
	}
	// Executors are told this path: it must not depend on the driver's
	// working directory.
	return filepath.Abs(filepath.Join(base, name))
}

// QueryOptions are how Start runs a query.
type QueryOptions struct {
	// Name names the query in logs and its checkpoint directory
	// (Checkpoint(Name)).
	Name string
	// Every is the query's trigger interval in the stream role when the
	// trigger-interval setting is not set (0: as fast as data comes).
	Every time.Duration
	// OnProgress, when set, is called with each batch's progress after
	// the CLI's own listener (Start sets the StreamWriter's OnProgress).
	OnProgress func(microbatch.Progress)
}

// Start starts w as one of the job's queries, with the checkpoint of
// o.Name, the role's trigger (AvailableNow in backfill, ProcessingTime in
// stream) and the CLI's progress listener, overriding what w had. The
// query lives until the CLI stops it (SIGINT, SIGTERM, Stop) or, in
// backfill, until it has read all its input; ctx only bounds the start.
// In the replay role (checkpoint replay) it starts nothing: it records w
// with that checkpoint for the replay and returns a nil Query.
func (e *Env) Start(ctx context.Context, w *microbatch.StreamWriter, o QueryOptions) (*microbatch.Query, error) {
	if e.replay != nil {
		return nil, e.replay.record(e, w, o)
	}
	if e.Role != roleStream && e.Role != roleBackfill {
		return nil, fmt.Errorf("jobcli: query %s: Start is for the stream and backfill roles, not %s", o.Name, e.Role)
	}
	if o.Name == "" {
		return nil, errors.New("jobcli: a query needs QueryOptions.Name")
	}
	dir, err := e.Checkpoint(o.Name)
	if err != nil {
		return nil, err
	}
	trigger := microbatch.AvailableNow()
	if e.Role == roleStream {
		every := o.Every
		if e.Settings.TriggerInterval > 0 {
			every = e.Settings.TriggerInterval
		}
		trigger = microbatch.ProcessingTime(every)
	}
	// The query logs its start, each batch and its end itself, as "query".
	local := e.Settings.StateLocalDir
	if local == "" && e.Settings.CheckpointDir == "" {
		// A temporary checkpoint's local state databases go with it (the
		// default place outlives the query so that a restart reuses them;
		// this checkpoint has no restart).
		e.mu.Lock()
		local = filepath.Join(e.tmpDir, ".state-"+o.Name)
		e.mu.Unlock()
	}
	w.StateBackend(e.Settings.StateBackend, local)
	restart, err := e.Settings.Restart.strategy() // validated with the settings
	if err != nil {
		return nil, err
	}
	w.RestartStrategy(restart)
	w.QueryName(o.Name).Checkpoint(dir).Trigger(trigger).Logger(e.Log).Metrics(e.metrics).OnProgress(func(p microbatch.Progress) {
		if e.bar != nil {
			e.bar.rows(p.InputRows)
		}
		if o.OnProgress != nil {
			o.OnProgress(p)
		}
	})
	// The query's lifetime is the CLI's: a signal stops it through Stop,
	// which abandons the batch in flight cleanly (it re-runs on restart).
	q, err := w.Start(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("start query %s: %w", o.Name, err)
	}
	e.mu.Lock()
	e.queries = append(e.queries, q)
	e.mu.Unlock()
	return q, nil
}

// Expect tells the backfill progress bar how many input rows the queries
// will read in all (when the job knows: its files' row counts, end
// offsets): it then shows a fraction and an estimated time left.
func (e *Env) Expect(rows int64) {
	if e.bar != nil {
		e.bar.expect(rows)
	}
}

// Defer registers fn to run when the command ends, after its queries
// stopped (or, on an executor, after it left the cluster), in reverse
// order of registration: closing sources and sinks, printing a summary.
func (e *Env) Defer(fn func() error) {
	e.mu.Lock()
	e.defers = append(e.defers, fn)
	e.mu.Unlock()
}

// Stop asks the command to stop as SIGTERM would: the queries stop, the
// command returns nil. A job's own duration limit calls it.
func (e *Env) Stop() { e.stop() }

// finish runs the deferred functions and removes the temporary
// checkpoint directory.
func (e *Env) finish() error {
	e.mu.Lock()
	defers := e.defers
	e.defers = nil
	e.mu.Unlock()
	var errs []error
	for i := len(defers) - 1; i >= 0; i-- {
		errs = append(errs, defers[i]())
	}
	if e.tmpDir != "" {
		errs = append(errs, os.RemoveAll(e.tmpDir))
	}
	return errors.Join(errs...)
}

// bar is the progress bar of a bounded role on a terminal: tasks done of
// the action's total (batch), rows read (backfill).
type bar struct {
	w  io.Writer
	mu sync.Mutex
	pb *progressbar.ProgressBar
	// batch: the total of the current action's bar
	total int
	// backfill: rows expected (0: unknown) and read
	want, read int64
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

func (b *bar) options(desc, unit string) []progressbar.Option {
	return []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
	}
}

// tasks is dataset.Config.OnTask: a new bar per action (its first task,
// or a new total).
func (b *bar) tasks(done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb == nil || done == 1 || total != b.total {
		if b.pb != nil && !b.pb.IsFinished() {
			b.pb.Finish()
		}
		b.pb = progressbar.NewOptions(total, b.options("tasks", "tasks")...)
		b.total = total
	}
	b.pb.Set(done)
}

func (b *bar) expect(rows int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.want += rows
	if b.pb != nil {
		b.pb.ChangeMax64(b.want)
	}
}

func (b *bar) rows(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb == nil {
		max := b.want
		if max == 0 {
			max = -1 // a spinner: the count and rate without a total
		}
		b.pb = progressbar.NewOptions64(max, b.options("rows read", "rows")...)
	}
	b.read += n
	b.pb.Set64(b.read)
}

func (b *bar) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil && !b.pb.IsFinished() {
		b.pb.Finish()
	}
}
