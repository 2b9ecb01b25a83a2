package checkpoint

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

// Summary is what a checkpoint directory holds, for people (WriteText) and
// tools (its JSON encoding): whose it is, which batches ran, where the last
// one read and what state the operators keep. Times are UTC, at the
// checkpoint's microsecond precision; a nil watermark is "none yet".
type Summary struct {
	Dir           string            `json:"dir"`
	QueryID       string            `json:"query_id"`
	FormatVersion int               `json:"format_version"`
	KeyGroups     int               `json:"key_groups"`
	IdentityHash  string            `json:"identity_hash"`
	Config        map[string]string `json:"config,omitempty"`
	Sources       []SourceIdentity  `json:"sources"`
	// Committed is the range of committed batches still in commits/ (older
	// ones were purged); nil when none committed.
	Committed *BatchRange `json:"committed,omitempty"`
	// LastBatch is the newest committed batch.
	LastBatch *BatchSummary `json:"last_batch,omitempty"`
	// Uncommitted is the newest batch when it has offsets but no commit:
	// the batch a restart runs again with exactly these offsets.
	Uncommitted *BatchSummary     `json:"uncommitted,omitempty"`
	Operators   []OperatorSummary `json:"operators"`
	// StateOrphans are state directories of no operator of the identity.
	StateOrphans []string `json:"state_orphans,omitempty"`
}

// BatchRange is an inclusive range of batch ids.
type BatchRange struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	Count int64 `json:"count"`
}

// BatchSummary is one batch's offsets entry (and commit, when committed).
type BatchSummary struct {
	Batch     int64     `json:"batch"`
	Timestamp time.Time `json:"timestamp"` // the batch's processing time
	// Watermark is the one the batch ran with.
	Watermark *time.Time         `json:"watermark"`
	Sources   []SourceBatchRange `json:"sources"`
	// IdleInputs are the inputs the watermark left out as idle.
	IdleInputs []string `json:"idle_inputs,omitempty"`
	// NextWatermark and Watermarks are the commit's: the watermark computed
	// from the batch's data (in effect for the next batch) and the
	// per-input watermarks it combines. Absent for an uncommitted batch.
	NextWatermark *time.Time           `json:"next_watermark,omitempty"`
	Watermarks    map[string]time.Time `json:"watermarks,omitempty"`
}

// SourceBatchRange is one source's (start, end] of a batch, each offset in
// the source's own JSON (null: none).
type SourceBatchRange struct {
	Name     string          `json:"name"`
	Identity string          `json:"identity"`
	Start    json.RawMessage `json:"start"`
	End      json.RawMessage `json:"end"`
}

// OperatorSummary is a stateful operator of the identity and the state
// files under state/<id>/. Rows are read from the files' metadata, not by
// loading the state: SnapshotRows is the live rows at each range's newest
// snapshot (summed over ranges), DeltaRows the rows of the deltas after it
// (changed keys and tombstones), so the live rows now are at most their
// sum. Rows in files whose metadata does not read are not counted.
type OperatorSummary struct {
	OperatorIdentity
	Ranges int   `json:"ranges"`
	Files  int   `json:"files"`
	Bytes  int64 `json:"bytes"`
	// LatestVersion is the highest state version any range has (batch N
	// commits version N+1); 0 when there are no files.
	LatestVersion int64 `json:"latest_version"`
	SnapshotRows  int64 `json:"snapshot_rows"`
	DeltaRows     int64 `json:"delta_rows"`
}

// Inspect reads the checkpoint in dir and summarises it, writing nothing.
// A directory that is not a checkpoint (no metadata.json), or whose logs
// do not read (a damaged file, a gap), is an error naming what is wrong;
// Verify lists every problem.
func Inspect(fsys vfs.FS, dir string) (*Summary, error) {
	cp, err := Open(fsys, dir)
	if err != nil {
		return nil, err
	}
	meta, ok, err := cp.Metadata()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("checkpoint: %s: no %s: not a checkpoint, or its query never started", cp.dir, metadataName)
	}
	s := &Summary{Dir: cp.dir, QueryID: meta.QueryID, FormatVersion: meta.FormatVersion, KeyGroups: meta.KeyGroups,
		IdentityHash: meta.IdentityHash, Config: meta.Config, Sources: meta.Identity.Sources}
	l, err := cp.layout()
	if err != nil {
		return nil, fmt.Errorf("%w (checkpoint verify lists every problem)", err)
	}
	if lc, ok := l.lastCommit(); ok {
		s.Committed = &BatchRange{First: l.commits[0], Last: lc, Count: int64(len(l.commits))}
		if s.LastBatch, err = cp.batchSummary(lc, true); err != nil {
			return nil, err
		}
	}
	if lo, ok := l.lastOffsets(); ok && (s.Committed == nil || lo > s.Committed.Last) {
		if s.Uncommitted, err = cp.batchSummary(lo, false); err != nil {
			return nil, err
		}
	}
	files, err := state.ListFiles(fsys, filepath.Join(cp.dir, "state"))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	byOp := groupState(files)
	for _, op := range meta.Identity.Operators {
		s.Operators = append(s.Operators, summarizeOperator(op, byOp[op.ID]))
		delete(byOp, op.ID)
	}
	s.StateOrphans = slices.Sorted(maps.Keys(byOp))
	return s, nil
}

// stateRanges are one operator's state files by key-group range.
type stateRanges map[[2]int][]state.FileInfo

func groupState(files []state.FileInfo) map[string]stateRanges {
	out := map[string]stateRanges{}
	for _, f := range files {
		if out[f.Operator] == nil {
			out[f.Operator] = stateRanges{}
		}
		k := [2]int{f.Lo, f.Hi}
		out[f.Operator][k] = append(out[f.Operator][k], f)
	}
	return out
}

func summarizeOperator(id OperatorIdentity, ranges stateRanges) OperatorSummary {
	o := OperatorSummary{OperatorIdentity: id, Ranges: len(ranges)}
	for _, files := range ranges {
		var snap int64 // newest snapshot of the range
		for _, f := range files {
			o.Files++
			o.Bytes += f.Bytes
			o.LatestVersion = max(o.LatestVersion, f.Version)
			if f.Kind == "snapshot" {
				snap = max(snap, f.Version)
			}
		}
		for _, f := range files {
			switch {
			case f.Rows < 0:
			case f.Kind == "snapshot" && f.Version == snap:
				o.SnapshotRows += f.Rows
			case f.Kind == "delta" && f.Version > snap:
				o.DeltaRows += f.Rows
			}
		}
	}
	return o
}

func (c *Checkpoint) batchSummary(n int64, committed bool) (*BatchSummary, error) {
	e, err := c.Offsets(n)
	if err != nil {
		return nil, err
	}
	b := &BatchSummary{Batch: n, Timestamp: usTime(e.Timestamp), Watermark: wmTime(e.Watermark), IdleInputs: e.Idle}
	for _, name := range slices.Sorted(maps.Keys(e.Sources)) {
		o := e.Sources[name]
		b.Sources = append(b.Sources, SourceBatchRange{Name: name, Identity: o.Identity, Start: jsonOrNull(o.Start), End: jsonOrNull(o.End)})
	}
	if !committed {
		return b, nil
	}
	ce, err := c.Commit(n)
	if err != nil {
		return nil, err
	}
	b.NextWatermark = wmTime(ce.NextWatermark)
	if len(ce.Watermarks) > 0 {
		b.Watermarks = map[string]time.Time{}
		for id, v := range ce.Watermarks {
			if t := wmTime(v); t != nil {
				b.Watermarks[id] = *t
			}
		}
	}
	return b, nil
}

func usTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// wmTime is a watermark's time; nil for none (math.MinInt64).
func wmTime(us int64) *time.Time {
	if us == math.MinInt64 {
		return nil
	}
	t := usTime(us)
	return &t
}

func jsonOrNull(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

// WriteText writes the summary for people: a few labelled lines, then one
// table row per stateful operator.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("checkpoint\t%s", s.Dir)
	p("query id\t%s (format v%d, %d key groups, identity %s)", s.QueryID, s.FormatVersion, s.KeyGroups, s.IdentityHash)
	if len(s.Config) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(s.Config)) {
			kv = append(kv, k+"="+s.Config[k])
		}
		p("config\t%s", strings.Join(kv, " "))
	}
	for i, src := range s.Sources {
		label := ""
		if i == 0 {
			label = "sources"
		}
		p("%s\t%s: %s", label, src.Name, src.Identity)
	}
	switch {
	case s.Committed == nil:
		p("batches\tnone committed")
	case s.Committed.First == 0:
		p("batches\tcommitted 0..%d (%d batches)", s.Committed.Last, s.Committed.Count)
	default:
		p("batches\tcommitted %d..%d (%d batches in the log; batches before %d were purged)",
			s.Committed.First, s.Committed.Last, s.Committed.Count, s.Committed.First)
	}
	if b := s.LastBatch; b != nil {
		writeBatch(p, "last batch", b)
	}
	if b := s.Uncommitted; b != nil {
		writeBatch(p, "uncommitted", b)
		p("\t(offsets written, no commit: a restart runs batch %d again with these offsets)", b.Batch)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Operators) == 0 {
		_, err := fmt.Fprintln(w, "state\tnone (no stateful operators)")
		return err
	}
	fmt.Fprintln(w, "state (rows from file metadata: live rows at the newest snapshot + rows of later deltas)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  OPERATOR\tKIND\tRANGES\tFILES\tBYTES\tVERSION\tSNAPSHOT ROWS\tDELTA ROWS")
	for _, o := range s.Operators {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", o.ID, o.Kind, o.Ranges, o.Files, o.Bytes, o.LatestVersion, o.SnapshotRows, o.DeltaRows)
	}
	for _, d := range s.StateOrphans {
		fmt.Fprintf(tw, "  %s\t(not an operator of this query)\t\t\t\t\t\t\n", d)
	}
	return tw.Flush()
}

func writeBatch(p func(string, ...any), label string, b *BatchSummary) {
	p("%s\t%d at %s", label, b.Batch, b.Timestamp.Format(time.RFC3339Nano))
	if len(b.IdleInputs) > 0 {
		p("  watermark\t%s (idle: %s)", wmText(b.Watermark), strings.Join(b.IdleInputs, ", "))
	} else {
		p("  watermark\t%s", wmText(b.Watermark))
	}
	if b.NextWatermark != nil || len(b.Watermarks) > 0 {
		next := "next " + wmText(b.NextWatermark)
		for _, id := range slices.Sorted(maps.Keys(b.Watermarks)) {
			next += fmt.Sprintf("; %s %s", id, b.Watermarks[id].Format(time.RFC3339Nano))
		}
		p("\t%s", next)
	}
	for _, s := range b.Sources {
		p("  %s\t(%s, %s]", s.Name, s.Start, s.End)
	}
}

func wmText(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.Format(time.RFC3339Nano)
}

// OwnedOffsets reads offsets/<n>.json and checks that it names
// metadata.json's query and sources (ErrForeign otherwise). A missing file
// satisfies errors.Is(err, fs.ErrNotExist); missing metadata.json is
// ErrCorrupt.
func (c *Checkpoint) OwnedOffsets(n int64) (*OffsetEntry, error) {
	meta, ok, err := c.metadata()
	if err != nil {
		return nil, err
	}
	e, err := c.Offsets(n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("checkpoint: %s: no %s beside the logs: %w", c.dir, metadataName, ErrCorrupt)
	}
	return e, checkOwner(c.path(offsetsDir, n), e, meta)
}

// Batches returns the batch numbers in offsets/ and in commits/, sorted,
// after checking the logs' shape (ErrCorrupt otherwise).
func (c *Checkpoint) Batches() (offsets, commits []int64, err error) {
	l, err := c.layout()
	return l.offsets, l.commits, err
}
