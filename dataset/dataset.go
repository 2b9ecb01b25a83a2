package dataset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
	pq "github.com/sluicedata/sluice/sources/parquet"
)

// Config says how a Dataset's actions run. The zero value is usable.
type Config struct {
	Allocator         memory.Allocator // every record of the job is allocated here; default memory.DefaultAllocator
	Parallelism       int              // tasks run at once; default GOMAXPROCS
	ShufflePartitions int              // partitions of aggregates and joins; default Parallelism
	BatchRows         int              // max rows per record; default 65536
	// Executor is how tasks run: ExecutorLocal (default: in this process)
	// or ExecutorIsolated (in this process, every task and its result
	// crossing as bytes, as they do to a remote executor; for tests).
	// The default comes from $SLUICE_EXECUTOR when set. With Cluster set
	// it is ExecutorCluster.
	Executor string
	// Cluster runs the tasks on a cluster's executors: package cluster's
	// Driver. The executors run the same job binary (NewTaskServer); a
	// streaming query's checkpoint must be on a directory they all reach.
	Cluster plan.Dispatcher
	// Params are the job's parameters (brokers, topics, paths: whatever
	// its code is built from), sent with every task so executors rebuild
	// the same job (NewTaskServer's JobFunc).
	Params map[string]string
	// OnTask, when set, is called as a batch action's tasks finish, with
	// the tasks done and the action's total (all stages): a progress bar's
	// hook (package jobcli draws one). Calls come one at a time, from the
	// goroutines running the tasks; a retried task may count twice. Not
	// called by streaming micro-batches (microbatch.OnProgress is theirs).
	OnTask func(done, total int)
	// Logger receives the job's logs: task attempts retried and executors
	// lost (cluster mode), at Warn; default slog.Default(). A streaming
	// query logs through StreamWriter.Logger instead.
	Logger *slog.Logger
}

// Executors.
const (
	ExecutorLocal    = "local"
	ExecutorIsolated = "local-isolated"
	ExecutorCluster  = "cluster"
)

func (c Config) withDefaults() Config {
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	if c.Parallelism <= 0 {
		c.Parallelism = runtime.GOMAXPROCS(0)
	}
	if c.ShufflePartitions <= 0 {
		c.ShufflePartitions = c.Parallelism
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 1 << 16
	}
	if c.Executor == "" && c.Cluster != nil {
		c.Executor = ExecutorCluster
	}
	if c.Executor == "" {
		c.Executor = os.Getenv("SLUICE_EXECUTOR")
	}
	if c.Executor == "" {
		c.Executor = ExecutorLocal
	}
	return c
}

// Dataset is an immutable, lazily evaluated relational plan. Transformations
// return new Datasets; nothing runs until an action (Collect, Show, Write,
// Count). A transformation that fails (unknown column, type error) returns a
// Dataset carrying the error, which every later action returns.
type Dataset struct {
	node *plan.Node
	err  error
	cfg  Config
	// funcs holds the user functions node names (MapBatches,
	// FlatMapGroupsWithState): the job's registry, handed to every task.
	// Copy-on-write, so a Dataset never sees a registration made on
	// another Dataset derived from the same parent.
	funcs *exec.Funcs
}

func errDataset(err error) *Dataset { return &Dataset{err: err} }

func (d *Dataset) derive(n *plan.Node, err error) *Dataset {
	if d.err != nil {
		return d
	}
	if err != nil {
		return &Dataset{err: err, cfg: d.cfg}
	}
	return &Dataset{node: n, cfg: d.cfg, funcs: d.funcs}
}

// combine returns d with the function registry of a plan made of d and
// others (a union, a join), to derive that plan from: the registry has the
// functions of all of them, and a name registered differently by two of
// them is an error (see exec.Funcs). On an error it returns d itself.
func (d *Dataset) combine(what string, others ...*Dataset) (*Dataset, error) {
	funcs := d.funcs
	for _, o := range others {
		var err error
		if funcs, err = funcs.Merge(o.funcs); err != nil {
			return d, fmt.Errorf("%s: %w: %w", what, plan.ErrPlan, err)
		}
	}
	out := *d
	out.funcs = funcs
	return &out, nil
}

// withFunc is derive for a node that names the user function fn,
// registered by the caller of the Dataset method calling withFunc.
func (d *Dataset) withFunc(what string, n *plan.Node, fn *exec.Func) *Dataset {
	if d.err != nil {
		return d
	}
	if _, file, line, ok := runtime.Caller(2); ok {
		fn.At = fmt.Sprintf("%s:%d", filepath.Join(filepath.Base(filepath.Dir(file)), filepath.Base(file)), line)
	}
	funcs, err := d.funcs.With(fn)
	if err != nil {
		return d.derive(nil, fmt.Errorf("%s: %w: %w", what, plan.ErrPlan, err))
	}
	out := d.derive(n, nil)
	out.funcs = funcs
	return out
}

// Err is the error of the first failed transformation, if any.
func (d *Dataset) Err() error { return d.err }

// Schema is the output schema (nil when Err is set).
func (d *Dataset) Schema() *arrow.Schema {
	if d.err != nil {
		return nil
	}
	return d.node.Schema
}

// Config is the execution config the Dataset's actions run with, as
// given (defaults are filled in when an action runs).
func (d *Dataset) Config() Config { return d.cfg }

// WithConfig returns the same plan with another execution config.
func (d *Dataset) WithConfig(c Config) *Dataset {
	out := *d
	out.cfg = c
	return &out
}

// Read reads Parquet files, directories (recursively, Hive-style partition
// directories like day=2026-11-01/ become columns) and globs. A directory
// holding a _delta_log is read as a Delta table (its latest version; see
// ReadDelta), one holding a _sluice_log as the stream sink's committed files.
func Read(paths ...string) *Dataset {
	t, err := pq.Open(context.Background(), paths...)
	if err != nil {
		return errDataset(fmt.Errorf("read %v: %w", paths, err))
	}
	return &Dataset{node: plan.NewParquetScan(t, paths)}
}

// ReadDelta makes a Dataset of version of the Delta table at dir (time
// travel); Read(dir) reads its latest version. Only the files of that
// version are read, with the partition values the log gives them.
func ReadDelta(dir string, version int64) *Dataset {
	if version < 0 {
		return errDataset(fmt.Errorf("read delta %s: version %d < 0", dir, version))
	}
	return Read(pq.DeltaPath(dir, version))
}

// FromRecords makes a Dataset of records already in memory. It does not take
// ownership: the records must stay valid (unreleased) while this Dataset, or
// any derived from it, runs. All records must have schema.
func FromRecords(schema *arrow.Schema, recs ...arrow.Record) *Dataset {
	for i, r := range recs {
		if !r.Schema().Equal(schema) {
			return errDataset(fmt.Errorf("from records: record %d has schema %s, want %s", i, r.Schema(), schema))
		}
	}
	return &Dataset{node: plan.NewMemoryScan(schema, recs)}
}

// reopen copies n with every Parquet table listed and read again, so files
// added since the Dataset was made are seen. A scanned column whose type
// changed is an error.
func reopen(ctx context.Context, n *plan.Node) (*plan.Node, error) {
	c := *n
	c.Inputs = make([]*plan.Node, len(n.Inputs))
	for i, in := range n.Inputs {
		x, err := reopen(ctx, in)
		if err != nil {
			return nil, err
		}
		c.Inputs[i] = x
	}
	if n.Kind != plan.KindScan || n.Scan.Table == nil {
		return &c, nil
	}
	t, err := pq.Open(ctx, n.Scan.Paths...)
	if err != nil {
		return nil, fmt.Errorf("read %v: %w", n.Scan.Paths, err)
	}
	for _, col := range n.Scan.Columns {
		was := n.Scan.Table.Schema.Field(n.Scan.Table.Schema.FieldIndices(col)[0])
		idx := t.Schema.FieldIndices(col)
		if len(idx) == 0 || !arrow.TypeEqual(t.Schema.Field(idx[0]).Type, was.Type) {
			return nil, fmt.Errorf("read %v: column %q was %s and is now %v", n.Scan.Paths, col, was.Type, t.Schema)
		}
	}
	scan := *n.Scan
	scan.Table = t
	c.Scan = &scan
	return &c, nil
}

// run compiles and executes a batch plan; the caller owns the records.
func (d *Dataset) run(ctx context.Context, root *plan.Node) ([]arrow.Record, error) {
	cfg := d.cfg.withDefaults()
	spec, err := plan.Compile(root, cfg.ShufflePartitions, nil)
	if err != nil {
		return nil, err
	}
	bc := &plan.StaticCache{}
	defer bc.Release()
	bc.SetMemory(spec)
	ex, err := d.executor(cfg, &plan.Job{Funcs: d.funcs}, bc, nil)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	return plan.Collect(ctx, ex, spec, &plan.Run{Batch: plan.NoBatch, Workers: cfg.Parallelism, OnTask: cfg.OnTask})
}

// executor makes the executor of a run of d's plan.
func (d *Dataset) executor(cfg Config, job *plan.Job, bc *plan.StaticCache, st state.Provider) (plan.Executor, error) {
	switch {
	case cfg.Executor == ExecutorCluster && cfg.Cluster != nil:
		ex := &plan.RemoteExecutor{D: cfg.Cluster, Broadcast: bc, Params: cfg.Params, Logger: cfg.Logger}
		if st != nil {
			dir, ok := sharedDir(st)
			if !ok {
				return nil, errors.New("dataset: a query with state runs on a cluster only with its checkpoint on a filesystem directory every executor reaches or on object storage (s3://, gs://, azblob://), not in memory")
			}
			ex.StateDir = dir
			ex.StateBackend = st.Backend()
		}
		return ex, nil
	case cfg.Executor == ExecutorCluster:
		return nil, errors.New("dataset: executor \"cluster\" needs Config.Cluster (a cluster.Driver)")
	case cfg.Cluster != nil:
		return nil, fmt.Errorf("dataset: Config.Cluster is set but the executor is %q", cfg.Executor)
	case cfg.Executor != ExecutorLocal && cfg.Executor != ExecutorIsolated:
		return nil, fmt.Errorf("dataset: executor %q (Config.Executor or $SLUICE_EXECUTOR): want %q, %q or %q with Config.Cluster", cfg.Executor, ExecutorLocal, ExecutorIsolated, ExecutorCluster)
	}
	return &plan.LocalExecutor{
		Env:      plan.ExecEnv{Node: "local", Mem: cfg.Allocator, BatchRows: cfg.BatchRows, Job: job, State: st, Broadcast: bc, Blocks: &shuffle.Local{Node: "local"}},
		Isolated: cfg.Executor == ExecutorIsolated,
		Logger:   cfg.Logger,
	}, nil
}

func sharedDir(st state.Provider) (string, bool) {
	s, ok := st.(interface{ Shared() (string, bool) })
	if !ok {
		return "", false
	}
	dir, ok := s.Shared()
	if ok && !vfs.IsURL(dir) && !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", false
		}
		dir = abs
	}
	return dir, ok
}
