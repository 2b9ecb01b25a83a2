package killtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Progress is where a kill left a query that writes a streamed Parquet
// table, read from its checkpoint and the sink's log.
type Progress struct {
	Phase                   string
	LastOffsets, LastCommit int64 // newest batch in offsets/ and commits/; -1 = none
	LastSink                int64 // newest batch the sink's log holds; -1 = none
}

// ReadProgress reads the Progress of the query checkpointed in checkpoint
// and writing the Parquet table out.
func ReadProgress(checkpoint, out string) Progress {
	lastOf := func(dir string, suffixes ...string) int64 {
		last := int64(-1)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			for _, suffix := range suffixes {
				if name, ok := strings.CutSuffix(e.Name(), suffix); ok {
					if n, err := strconv.ParseInt(name, 10, 64); err == nil {
						last = max(last, n)
					}
				}
			}
		}
		return last
	}
	p := Progress{
		LastOffsets: lastOf(filepath.Join(checkpoint, "offsets"), ".json"),
		LastCommit:  lastOf(filepath.Join(checkpoint, "commits"), ".json"),
		LastSink:    lastOf(filepath.Join(out, "_sluice_log"), ".json", ".checkpoint.json"),
	}
	// The sink writes a batch's files under hidden in-progress names and
	// renames them at commit.
	written, _ := filepath.Glob(filepath.Join(out, "*", fmt.Sprintf("part-%d-*.parquet", p.LastOffsets)))
	inProgress, _ := filepath.Glob(filepath.Join(out, "*", fmt.Sprintf(".part-%d-*.inprogress", p.LastOffsets)))
	written = append(written, inProgress...)
	switch {
	case p.LastOffsets < 0:
		p.Phase = "before the first batch"
	case p.LastOffsets == p.LastCommit:
		p.Phase = "between batches"
	case p.LastSink == p.LastOffsets:
		p.Phase = "after the sink commit, before commits/N"
	case len(written) > 0:
		p.Phase = "in a batch, with files of it on disk"
	default:
		p.Phase = "in a batch, before its files"
	}
	return p
}

// CheckSink reports an error unless what a reader sees matches the
// checkpoint: the sink's log ends at the last committed batch, or at the
// one after it when the kill came between the sink commit and commits/N.
func (p Progress) CheckSink() error {
	if p.LastSink != p.LastCommit && (p.LastSink != p.LastCommit+1 || p.LastSink != p.LastOffsets) {
		return fmt.Errorf("the sink's log ends at batch %d, with offsets up to %d and commits up to %d", p.LastSink, p.LastOffsets, p.LastCommit)
	}
	return nil
}
