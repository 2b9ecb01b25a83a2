package microbatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	memsink "github.com/sluicedata/sluice/sinks/memory"
	"github.com/sluicedata/sluice/sources"
)

var (
	// ErrNotReplayable: the batch cannot be replayed: it is not committed,
	// its offsets or the state it read were purged, a source no longer
	// holds its input (sources.ErrOffsetGone), or the sink cannot read
	// back what it committed. The message says which and names the file,
	// batch or sink.
	ErrNotReplayable = errors.New("microbatch: batch cannot be replayed")
	// ErrReplayDiffers: a replayed batch's rows are not the rows the sink
	// committed for it; the ReplayReport names the first difference.
	ErrReplayDiffers = errors.New("microbatch: replay differs from the committed output")
)

// ReplayReport is what Replay ran and what it found.
type ReplayReport struct {
	Batch   int64  `json:"batch"`
	QueryID string `json:"query_id"`
	Sink    string `json:"sink"`
	// The batch's recorded values it ran with.
	Timestamp time.Time           `json:"timestamp"`
	Watermark *time.Time          `json:"watermark"` // nil: none
	Sources   []ReplaySourceRange `json:"sources"`
	// StateVersion is the state version the batch read: the one batch-1
	// committed (0, the empty state, for batch 0).
	StateVersion int64 `json:"state_version"`

	// StateFilesCompared counts the state files of version batch+1 the
	// replay wrote that the checkpoint still holds, compared byte for byte
	// (state files are a function of the state and its changes);
	// StateFilesDiffer are those that differ.
	StateFilesCompared int      `json:"state_files_compared"`
	StateFilesDiffer   []string `json:"state_files_differ,omitempty"`

	ReplayedRows  int64 `json:"replayed_rows"`
	CommittedRows int64 `json:"committed_rows"`
	// Identical: the rows are the sink's and no state file differs.
	Identical bool `json:"identical"`
	// OnlyInReplay and OnlyInSink count the rows (with multiplicity) one
	// side has more often than the other.
	OnlyInReplay int64 `json:"only_in_replay"`
	OnlyInSink   int64 `json:"only_in_sink"`
	// FirstDifference is the smallest differing row (in the rendering of
	// rows Replay compares) and how often each side has it; "" when
	// identical. FirstOnlyInReplay and FirstOnlyInSink are the smallest
	// row each side has more often than the other ("" when none): a
	// changed value shows as one of each.
	FirstDifference   string `json:"first_difference,omitempty"`
	FirstOnlyInReplay string `json:"first_only_in_replay,omitempty"`
	FirstOnlyInSink   string `json:"first_only_in_sink,omitempty"`
}

// ReplaySourceRange is one source's recorded (start, end] of the batch.
type ReplaySourceRange struct {
	Name  string          `json:"name"`
	Start json.RawMessage `json:"start"`
	End   json.RawMessage `json:"end"`
}

// WriteText writes the report for people: what ran, then "identical: ..."
// or "DIFFERENT: ..." with the first difference.
func (r *ReplayReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "replayed batch %d of query %s (state version %d, batch time %s, watermark %s)\n",
		r.Batch, r.QueryID, r.StateVersion, r.Timestamp.Format(time.RFC3339Nano), wmText(r.Watermark))
	for _, s := range r.Sources {
		fmt.Fprintf(&b, "  %s (%s, %s]\n", s.Name, s.Start, s.End)
	}
	if len(r.StateFilesDiffer) == 0 {
		fmt.Fprintf(&b, "state: %d files of version %d identical to the checkpoint's\n", r.StateFilesCompared, r.StateVersion+1)
	} else {
		fmt.Fprintf(&b, "state DIFFERENT: %d of %d files of version %d differ from the checkpoint's: %s\n",
			len(r.StateFilesDiffer), r.StateFilesCompared, r.StateVersion+1, strings.Join(r.StateFilesDiffer, ", "))
	}
	switch {
	case r.OnlyInReplay+r.OnlyInSink == 0:
		fmt.Fprintf(&b, "rows identical: %d rows replayed, %d rows committed in sink %s (compared as multisets)\n", r.ReplayedRows, r.CommittedRows, r.Sink)
	default:
		fmt.Fprintf(&b, "DIFFERENT: %d rows replayed, %d rows committed in sink %s; %s only in the replay, %s only in the sink\n",
			r.ReplayedRows, r.CommittedRows, r.Sink, rowsText(r.OnlyInReplay), rowsText(r.OnlyInSink))
		fmt.Fprintf(&b, "first difference: %s\n", r.FirstDifference)
		for _, d := range []string{r.FirstOnlyInReplay, r.FirstOnlyInSink} {
			if d != "" && d != r.FirstDifference {
				fmt.Fprintf(&b, "and: %s\n", d)
			}
		}
	}
	if r.Identical {
		fmt.Fprintf(&b, "identical: batch %d replays to the output and state it committed\n", r.Batch)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func rowsText(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}

func wmText(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.Format(time.RFC3339Nano)
}

// Replay re-executes committed batch `batch` of the query w configures (the
// job builds the same StreamWriter: sources, sink and checkpoint directory)
// and proves its output equals what the sink committed for it:
//
//	check: metadata.json's identity is the query's; batch is committed and
//	       its offsets are kept; every state range can load version batch
//	run:   the batch's recorded (start, end] per source, watermark, previous
//	       watermark and batch time, state version batch (what batch-1
//	       committed), on the local executor, into an in-memory sink
//	compare: its rows with the sink's ReadBatch(batch), as multisets, and
//	         the state files it committed (version batch+1) with the
//	         checkpoint's, byte for byte, where the checkpoint still has them
//
// Nothing is written to the checkpoint or the real sink: the state is read
// from the checkpoint and the batch's state commit goes to memory, and no
// lock is taken, so Replay may run beside the query's owner (it reads only
// committed, immutable files; if the owner purges the batch meanwhile,
// Replay fails saying so).
//
// Errors: ErrIncompatibleCheckpoint (another query's checkpoint or offsets),
// ErrNotReplayable (not committed, offsets or state purged, a source that
// no longer holds the batch's input, a sink without sinks.BatchReader), and ErrReplayDiffers with the report filled in when
// the rows differ. Rows compare by column name, each value rendered
// canonically (integers by value whatever their width, timestamps as UTC
// instants whatever their unit, all NaNs alike, -0 as 0, null distinct from
// every value); no sink promises an order of a batch's rows, so order is
// ignored.
func Replay(ctx context.Context, w *StreamWriter, batch int64) (*ReplayReport, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	br, ok := w.sink.(sinks.BatchReader)
	if !ok {
		return nil, fmt.Errorf("%w: sink %s cannot read back its committed batches (no sinks.BatchReader ability), so there is nothing to compare a replay with",
			ErrNotReplayable, w.sink.Name())
	}
	fsys, dir, closeFS, err := w.location(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFS()
	cp, err := checkpoint.Open(fsys, dir)
	if err != nil {
		return nil, err
	}
	meta, ok, err := cp.Metadata()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s holds no checkpoint (no metadata.json)", ErrNotReplayable, cp.Dir())
	}
	// The tasks run here, whatever executor the job uses: a replay's state
	// commits must reach only this process's scratch filesystem.
	cfg := w.ds.Config()
	cfg.Executor, cfg.Cluster = dataset.ExecutorLocal, nil
	ds := w.ds.WithConfig(cfg)
	mem := cfg.Allocator
	if mem == nil {
		// A Dataset without one uses the Go allocator; the sinks' readers
		// take no nil.
		mem = memory.DefaultAllocator
	}
	scratchFS := newScratchFS(fsys)
	stores := state.NewFileProvider(scratchFS, filepath.Join(cp.Dir(), "state"))
	defer stores.Close()
	scratch, err := memsink.New(memsink.Config{Name: "replay of " + w.sink.Name(), Mem: mem})
	if err != nil {
		return nil, err
	}
	defer scratch.Close()
	cq, err := ds.CompileStream(scratch, dataset.StreamOptions{KeyGroups: checkpoint.DefaultKeyGroups, Emit: w.mode, State: stores})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	defer cq.Close()
	if err := streamable(cq.Spec(), w.mode); err != nil {
		return nil, err
	}
	if d := meta.Identity.Diff(w.identity(cq.Spec())); len(d) > 0 {
		return nil, fmt.Errorf("%w: %s was written by a query that differs from this one: %s",
			ErrIncompatibleCheckpoint, filepath.Join(cp.Dir(), "metadata.json"), strings.Join(d, "; "))
	}
	e, err := replayable(cp, batch)
	if err != nil {
		return nil, err
	}
	if err := stateLoadable(fsys, cp.Dir(), batch); err != nil {
		return nil, err
	}
	r := &ReplayReport{Batch: batch, QueryID: meta.QueryID, Sink: w.sink.Name(), Timestamp: time.UnixMicro(e.Timestamp).UTC(), StateVersion: batch}
	if e.Watermark != math.MinInt64 {
		t := time.UnixMicro(e.Watermark).UTC()
		r.Watermark = &t
	}
	for _, name := range slices.Sorted(maps.Keys(e.Sources)) {
		o := e.Sources[name]
		r.Sources = append(r.Sources, ReplaySourceRange{Name: name, Start: jsonOffset(o.Start), End: jsonOffset(o.End)})
	}

	splits := map[string][]sources.Split{}
	for _, s := range w.ds.Streams() {
		o := e.Sources[s.Name()]
		sp, err := s.Splits(ctx, o.Start, o.End)
		if errors.Is(err, sources.ErrOffsetGone) {
			return nil, fmt.Errorf("%w: batch %d: source %s no longer holds its input (%s, %s]: %v", ErrNotReplayable, batch, s.Name(), o.Start, o.End, err)
		}
		if err != nil {
			return nil, fmt.Errorf("replay batch %d: source %s: read (%s, %s]: %w", batch, s.Name(), o.Start, o.End, err)
		}
		splits[s.Name()] = sp
	}
	res, err := cq.RunBatch(ctx, plan.BatchContext{ID: batch, StateVersion: batch, Watermark: e.Watermark,
		PrevWatermark: prevWatermark(e), BatchTime: e.Timestamp, OutputMode: w.mode, Query: meta.QueryID}, splits, false)
	if err != nil {
		if errors.Is(err, state.ErrMissing) {
			return nil, fmt.Errorf("%w: batch %d: the state it read was purged: %v", ErrNotReplayable, batch, err)
		}
		if errors.Is(err, sources.ErrOffsetGone) {
			// Sources that find the input gone only when reading it
			// (Kafka's split reader) say so here, not in Splits.
			return nil, fmt.Errorf("%w: batch %d: a source no longer holds its input: %v", ErrNotReplayable, batch, err)
		}
		return nil, fmt.Errorf("replay batch %d: %w", batch, err)
	}
	if err := compareState(r, scratchFS, fsys); err != nil {
		return nil, err
	}
	sb := sinks.Batch{ID: batch, Mode: w.mode, Schema: w.ds.Schema(), Query: meta.QueryID}
	if err := scratch.Commit(ctx, sb, res.Commit); err != nil {
		scratch.Abort(ctx, sb, res.Commit)
		return nil, fmt.Errorf("replay batch %d: %w", batch, err)
	}
	replayed, err := scratch.ReadBatch(ctx, sb, mem)
	if err != nil {
		return nil, fmt.Errorf("replay batch %d: %w", batch, err)
	}
	defer releaseAll(replayed)
	committed, err := br.ReadBatch(ctx, sb, mem)
	if errors.Is(err, sinks.ErrBatchNotCommitted) {
		return nil, fmt.Errorf("%w: batch %d is committed in the checkpoint but sink %s does not hold it apart: %v", ErrNotReplayable, batch, w.sink.Name(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("replay batch %d: read back from sink %s: %w", batch, w.sink.Name(), err)
	}
	defer releaseAll(committed)
	if err := compareRows(r, w.ds.Schema(), replayed, committed); err != nil {
		return r, err
	}
	if len(r.StateFilesDiffer) > 0 {
		r.Identical = false
		if r.FirstDifference == "" {
			r.FirstDifference = fmt.Sprintf("state file %s differs from the one the replay wrote", r.StateFilesDiffer[0])
		}
	}
	if !r.Identical {
		return r, fmt.Errorf("%w: batch %d: %s", ErrReplayDiffers, batch, r.FirstDifference)
	}
	return r, nil
}

// compareState compares the state files the replay wrote (in scratch's
// memory) with the checkpoint's of the same path, where it still has them:
// a file of a version depends only on the state and its changes (package
// state, invariant 3), so equal inputs write equal bytes.
func compareState(r *ReplayReport, scratch *scratchFS, base vfs.FS) error {
	for _, p := range scratch.mem.Files() {
		mine, err := scratch.mem.ReadFile(p)
		if err != nil {
			return err
		}
		theirs, err := base.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // purged since (a delta a later snapshot replaced)
		}
		if err != nil {
			return fmt.Errorf("replay batch %d: %w", r.Batch, err)
		}
		r.StateFilesCompared++
		if !bytes.Equal(mine, theirs) {
			r.StateFilesDiffer = append(r.StateFilesDiffer, p)
		}
	}
	return nil
}

// replayable reads batch's offsets, refusing a batch that is not
// committed or whose files were purged, and a foreign offsets file.
func replayable(cp *checkpoint.Checkpoint, batch int64) (*checkpoint.OffsetEntry, error) {
	_, commits, err := cp.Batches() // a commit always has its offsets (the shape checks it)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(commits, batch) {
		switch {
		case len(commits) == 0:
			return nil, fmt.Errorf("%w: batch %d is not committed (%s has no committed batch)", ErrNotReplayable, batch, cp.Dir())
		case batch > commits[len(commits)-1]:
			return nil, fmt.Errorf("%w: batch %d is not committed (the last committed batch is %d)", ErrNotReplayable, batch, commits[len(commits)-1])
		default:
			return nil, fmt.Errorf("%w: batch %d's offsets and commit were purged (%s keeps committed batches %d..%d; Retain sets how many)",
				ErrNotReplayable, batch, cp.Dir(), commits[0], commits[len(commits)-1])
		}
	}
	e, err := cp.OwnedOffsets(batch)
	if errors.Is(err, checkpoint.ErrForeign) {
		return nil, fmt.Errorf("%w: %w", ErrIncompatibleCheckpoint, err)
	}
	return e, err
}

// stateLoadable refuses a batch whose state version some operator range
// no longer has (purged), before anything runs.
func stateLoadable(fsys vfs.FS, dir string, version int64) error {
	files, err := state.ListNames(fsys, filepath.Join(dir, "state"))
	if err != nil {
		return err
	}
	type rng struct {
		op     string
		lo, hi int
	}
	byRange := map[rng][]state.FileInfo{}
	for _, f := range files {
		k := rng{f.Operator, f.Lo, f.Hi}
		byRange[k] = append(byRange[k], f)
	}
	for k, fs := range byRange {
		if why := state.Loadable(fs, version); why != "" {
			return fmt.Errorf("%w: batch %d reads state version %d, which %s no longer has (purged: Retain keeps the state of the last batches; or damaged: checkpoint verify says): %s",
				ErrNotReplayable, version, version, filepath.Join(dir, "state", k.op, fmt.Sprintf("%d-%d", k.lo, k.hi)), why)
		}
	}
	return nil
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}
