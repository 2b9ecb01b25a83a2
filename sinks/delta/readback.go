package delta

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

var _ sinks.BatchReader = (*Sink)(nil)

// ReadBatch reads back the rows committed batch `batch` wrote (for
// microbatch.Replay): the files of the table's latest version whose names
// say they are this AppID's files of the batch, read with the Parquet
// source (partition columns with the table's types). A batch above the
// table's txn version for AppID is sinks.ErrBatchNotCommitted; a batch
// with no rows (or whose files another writer has since removed) reads as
// no records.
func (s *Sink) ReadBatch(ctx context.Context, b sinks.Batch, mem memory.Allocator) ([]arrow.Record, error) {
	batch := b.ID
	app, err := s.appOf(b)
	if err != nil {
		return nil, err
	}
	snap, err := s.latest()
	if err != nil {
		return nil, err
	}
	if snap == nil || snap.TxnVersion(app) < batch {
		return nil, fmt.Errorf("delta sink %s: read batch %d: %w", s.dir, batch, sinks.ErrBatchNotCommitted)
	}
	ours := map[string]bool{}
	for path := range snap.Files {
		p, err := snap.FilePath(path)
		if err != nil {
			return nil, fmt.Errorf("delta sink %s: read batch %d: %w", s.dir, batch, err)
		}
		if strings.HasPrefix(filepath.Base(p), filePrefix(app, batch)) {
			ours[filepath.Clean(p)] = true
		}
	}
	if len(ours) == 0 {
		return nil, nil
	}
	tbl, err := pqsource.Open(ctx, pqsource.DeltaPath(s.dir, snap.Version))
	if err != nil {
		return nil, fmt.Errorf("delta sink %s: read batch %d: %w", s.dir, batch, err)
	}
	splits, _ := tbl.Splits(nil)
	var out []arrow.Record
	for _, sp := range splits {
		if !ours[filepath.Clean(sp.Path)] {
			continue
		}
		err := pqsource.ReadSplit(ctx, mem, sp, tbl.Schema, tbl.PartitionColumns, 0, func(rec arrow.Record) error {
			out = append(out, rec)
			return nil
		})
		if err != nil {
			for _, r := range out {
				r.Release()
			}
			return nil, fmt.Errorf("delta sink %s: read batch %d: %w", s.dir, batch, err)
		}
	}
	return out, nil
}
