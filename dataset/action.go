package dataset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks/parquet"
)

// Collect runs the plan and returns the result as an Arrow table, which the
// caller must Release.
func (d *Dataset) Collect(ctx context.Context) (arrow.Table, error) {
	recs, err := d.collect(ctx)
	if err != nil {
		return nil, err
	}
	defer releaseAll(recs)
	return array.NewTableFromRecords(d.node.Schema, recs), nil
}

// CollectRecords runs the plan and returns its records; the caller releases each.
func (d *Dataset) CollectRecords(ctx context.Context) ([]arrow.Record, error) {
	return d.collect(ctx)
}

func (d *Dataset) collect(ctx context.Context) ([]arrow.Record, error) {
	if err := d.checkBatch(); err != nil {
		return nil, err
	}
	return d.run(ctx, d.node)
}

// Count returns the number of rows.
func (d *Dataset) Count(ctx context.Context) (int64, error) {
	recs, err := d.Agg(CountAll().As("count")).collect(ctx)
	if err != nil {
		return 0, err
	}
	defer releaseAll(recs)
	for _, r := range recs {
		if r.NumRows() > 0 {
			return r.Column(0).(*array.Int64).Value(0), nil
		}
	}
	return 0, nil
}

// Show prints up to n rows as an aligned text table to stdout.
func (d *Dataset) Show(ctx context.Context, n int) error { return d.ShowTo(ctx, os.Stdout, n) }

// ShowTo prints up to n rows as an aligned text table to w.
func (d *Dataset) ShowTo(ctx context.Context, w io.Writer, n int) error {
	recs, err := d.Limit(int64(n) + 1).collect(ctx)
	if err != nil {
		return err
	}
	defer releaseAll(recs)
	return exec.FormatTable(w, d.node.Schema, recs, n)
}

// WriteOptions configures Write.
type WriteOptions struct {
	Mode parquet.Mode // ErrorIfExists (default), Overwrite, Append
	parquet.Options
}

// Write writes the Dataset as Parquet under path. Output is atomic: tasks
// write into a staging directory and the files appear under path, with a
// _SUCCESS marker, only when every task succeeded; on failure nothing is left.
func (d *Dataset) Write(ctx context.Context, path string, opts WriteOptions) error {
	if err := d.checkBatch(); err != nil {
		return err
	}
	var id [8]byte
	rand.Read(id[:])
	jobID := hex.EncodeToString(id[:])
	w, err := plan.NewWrite(d.node, &plan.Write{Target: path, JobID: jobID, Options: opts.Options})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	recs, err := d.run(ctx, w)
	releaseAll(recs)
	if err != nil {
		parquet.Abort(path, jobID)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := parquet.Commit(path, jobID, opts.Mode); err != nil {
		parquet.Abort(path, jobID)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Explain returns the logical, optimized and physical plans as text; the
// physical plan is printed from the compiled spec.
func (d *Dataset) Explain() (string, error) {
	if d.err != nil {
		return "", d.err
	}
	cfg := d.cfg.withDefaults()
	// A streaming Dataset is explained as a batch job over its streams;
	// microbatch's query explains its compiled micro-batch plan.
	spec, err := plan.Compile(d.node, cfg.ShufflePartitions, nil)
	if err != nil {
		return "", err
	}
	return explainText(d.node, spec), nil
}

// Compile compiles the Dataset as a batch job into the spec its actions run:
// stages of operators over Arrow records, plain data that encodes to bytes
// (plan.Spec.Encode). A streaming Dataset compiles as a batch job over its
// streams; microbatch compiles it per query (CompileStream).
func (d *Dataset) Compile() (*plan.Spec, error) {
	if d.err != nil {
		return nil, d.err
	}
	return plan.Compile(d.node, d.cfg.withDefaults().ShufflePartitions, nil)
}

func explainText(logical *plan.Node, spec *plan.Spec) string {
	var b strings.Builder
	b.WriteString("== Logical Plan ==\n")
	b.WriteString(plan.Format(logical))
	b.WriteString("== Optimized Plan ==\n")
	b.WriteString(plan.Format(spec.Optimized()))
	b.WriteString("== Physical Plan ==\n")
	b.WriteString(spec.Explain())
	return b.String()
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}
