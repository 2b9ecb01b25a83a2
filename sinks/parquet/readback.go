package parquet

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks"
	pqsource "github.com/sluicedata/sluice/sources/parquet"
)

var _ sinks.BatchReader = (*StreamSink)(nil)

// ReadBatch reads back the rows committed batch `batch` wrote: the files
// the log records whose names say they are the batch's
// (part-<batch>-<task>-<n>.parquet; a log checkpoint keeps files, not
// which batch wrote them), read with the Parquet source, partition columns
// from their directories (so with the types the source infers). Records
// are allocated from mem; the caller releases them. A batch the log does
// not record is sinks.ErrBatchNotCommitted; a committed file that is
// missing or unreadable is an error naming it.
func (s *StreamSink) ReadBatch(ctx context.Context, b sinks.Batch, mem memory.Allocator) ([]arrow.Record, error) {
	batch := b.ID
	committed, err := s.log.Committed(batch)
	if err != nil {
		return nil, fmt.Errorf("parquet sink %s: read batch %d: %w", s.dir, batch, err)
	}
	if !committed {
		return nil, fmt.Errorf("parquet sink %s: read batch %d: %w", s.dir, batch, sinks.ErrBatchNotCommitted)
	}
	snap, err := s.log.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("parquet sink %s: read batch %d: %w", s.dir, batch, err)
	}
	ours := map[string]bool{}
	for _, f := range snap.Files {
		if strings.HasPrefix(filepath.Base(filepath.FromSlash(f.Path)), filePrefix(batch)) {
			ours[filepath.Join(s.dir, filepath.FromSlash(f.Path))] = true
		}
	}
	if len(ours) == 0 {
		return nil, nil // a batch with no rows writes no file
	}
	// The table, not the batch's files alone: partition columns are
	// inferred from the directories under the table's root.
	tbl, err := pqsource.Open(ctx, s.dir)
	if err != nil {
		return nil, fmt.Errorf("parquet sink %s: read batch %d: %w", s.dir, batch, err)
	}
	splits, _ := tbl.Splits(nil)
	var out []arrow.Record
	fail := func(err error) ([]arrow.Record, error) {
		for _, r := range out {
			r.Release()
		}
		return nil, fmt.Errorf("parquet sink %s: read batch %d: %w", s.dir, batch, err)
	}
	read := map[string]bool{}
	for _, sp := range splits { // one split per group of row groups of a file
		if !ours[sp.Path] {
			continue
		}
		read[sp.Path] = true
		err := pqsource.ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			out = append(out, rec)
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	for p := range ours {
		if !read[p] {
			return fail(fmt.Errorf("committed file %s is not in the table", p))
		}
	}
	return out, nil
}
