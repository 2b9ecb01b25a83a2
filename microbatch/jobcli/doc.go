// Package jobcli turns a user's job into a complete command-line program:
// DESIGN.md's "one binary, many roles". A job's main is one call:
//
//	func main() {
//		cfg := &Config{Brokers: []string{"localhost:9092"}}   // defaults
//		jobcli.Main(jobcli.Job{Name: "fraud", Config: cfg,
//			Batch:  func(ctx context.Context, env *jobcli.Env) error { ... },
//			Stream: func(ctx context.Context, env *jobcli.Env) error { ... env.Start(ctx, w, opts) ... },
//			Tasks:  func(env *jobcli.Env, params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) { ... },
//		})
//	}
//
// and the binary has the commands batch, backfill, stream and executor
// (those whose code the Job has), checkpoint inspect|verify|replay, config
// print, version and help, plus the Job's own Commands. Run is the same as
// a function, for tests.
//
// In: the command line, the environment, an optional YAML file (--config
// FILE or <NAME>_CONFIG) and SIGINT/SIGTERM. Out: the job's code run in
// one role with a *slog.Logger, its Settings, its typed config filled in,
// a cluster Driver when --join is given, and a progress bar on a
// terminal; the exit status.
//
// Configuration. The common Settings and the fields of the job's config
// struct are settings of one namespace. A setting's key is its flag name
// (--checkpoint-dir), its YAML key (checkpoint-dir: ...) and, upper-cased
// with '_' for '-' after the job's name, its environment variable
// (FRAUD_CHECKPOINT_DIR for a job named fraud). The struct tags of a job's
// config field are sluice (the key, default: the field name in kebab
// case; "-" skips it), help, roles (the commands that take it, default
// all) and alias (a second flag name).
//
// Invariants:
//  1. Precedence is flag > environment > file > default, per setting; the
//     source of every value is kept, and config print shows it.
//  2. A value that does not parse, a key the file has but no setting, and
//     a value Validate refuses are errors that name the key and where the
//     value came from (flag --k, env X_K, file F:line, default).
//  3. -h, --help and help print usage on stdout and exit 0 at every level;
//     an unknown command, flag or argument exits 2; a failure exits 1.
//  4. SIGINT and SIGTERM are a requested stop and exit 0: the queries
//     stop (the batch in flight is abandoned cleanly and re-runs from the
//     checkpoint on restart), a batch job's context is cancelled, an
//     executor leaves the cluster. A second signal kills the process.
//  5. The functions given to Env.Defer run once, last first, after the
//     queries stopped (on an executor: after it left the cluster).
//  6. The progress bar (github.com/schollz/progressbar) is drawn on stderr
//     for batch and backfill only when stderr is a terminal (or with
//     --progress always): tasks done of total for a batch action
//     (dataset.Config.OnTask), rows read (of Env.Expect's total when
//     given) for a backfill (microbatch.OnProgress).
//  7. Metrics and UI addresses (metrics-addr, ui-addr) are settings but
//     nothing serves them yet.
//
// Checkpoint tools (checkpoint.go). inspect DIR and verify DIR read one
// query's checkpoint directory (a path or a URL, as --checkpoint-dir
// takes: s3://bucket/prefix?region=...) with checkpoint.Inspect and
// checkpoint.Verify, and need no job code; verify exits 1 when it finds a
// problem. replay --batch N [--query NAME] takes the stream role's
// settings and the job's config, runs Job.Stream in the replay role
// (Env.Role "replay"), where Env.Start starts nothing but records the
// StreamWriter with the checkpoint directory it would have given it
// (Checkpoint(name); --checkpoint-dir is required, as a temporary one
// holds no batch), then runs microbatch.Replay on the query --query names
// (the only one by default) and the deferred functions. It exits 0 when
// the batch replays identical, 1 on a difference or a refusal, each
// printed; the job's own output goes to stderr, so --json output on
// stdout parses. A job whose Stream uses the Query Start returns must
// check env.Role: in the replay role it is nil.
//
// A role's main loop:
//
//	settings := load(defaults, file, env, flags); validate
//	log := slog text|json on stderr
//	if --join: driver := cluster.StartDriver(...)        // tasks run on executors
//	switch role {
//	case batch:    job.Batch(ctx, env)
//	case backfill: job.Stream(ctx, env)                   // env.Start: AvailableNow
//	               wait until every query ended or a signal
//	case stream:   job.Stream(ctx, env)                   // env.Start: ProcessingTime
//	               wait for a signal (or a query failing)
//	case executor: cluster.StartExecutor(..., dataset.NewTaskServer(job.Tasks)); wait for a signal; leave
//	case replay:   job.Stream(ctx, env)                   // env.Start: record w, start nothing
//	               microbatch.Replay(ctx, w of --query, --batch); print the report
//	}
//	stop queries; run env's deferred functions; exit 0, 1 or 2
//
// Package jobcli is the composition root where queries meet the cluster:
// it may import cluster and microbatch (internal/archtest allows it).
package jobcli
