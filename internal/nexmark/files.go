package nexmark

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
)

// Kinds are the Nexmark event kinds: each a subdirectory of a generated
// directory, in the generator's order (person, auction, bid).
var Kinds = []struct {
	Name   string
	Schema *arrow.Schema
}{{"person", generate.PersonSchema}, {"auction", generate.AuctionSchema}, {"bid", generate.BidSchema}}

// MetaFile, in a generated directory, records the generator config.
const MetaFile = "nexmark.json"

// Meta is the content of MetaFile.
type Meta struct {
	Events int64  `json:"events"`
	Seed   uint64 `json:"seed"`
	// EventRate is the generator's events per second of event time (0:
	// the default, 10 000 000).
	EventRate float64 `json:"event_rate,omitempty"`
}

// chunk is how many events are generated (and written) at once.
const chunk = 1_000_000

// WriteFiles writes events [0, events) of cfg's generator as Parquet under
// out/person, out/auction and out/bid (zstd, files of about 32 MiB, row groups of 128 Ki rows) and the
// config in out/MetaFile. out must not exist or be empty: a generated
// directory is never mixed with another; on error every file written so
// far is removed. progress, when not nil, is called with the events done
// after each chunk of them.
func WriteFiles(ctx context.Context, out string, cfg generate.NexmarkConfig, events int64, mem memory.Allocator, progress func(done int64)) error {
	if events <= 0 {
		return fmt.Errorf("%d events: want at least one", events)
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty", out)
	}
	if cfg.EventRate < 0 {
		return fmt.Errorf("event rate %g: want a positive rate (or 0, the default)", cfg.EventRate)
	}
	// Row groups of 128 Ki rows: a stream over the files takes whole row
	// groups per batch (Options.BatchEvents), so they are its step.
	opts := pqsink.Options{TargetFileBytes: 32 << 20, RowGroupRows: 1 << 17}
	ws := make([]*pqsink.FileWriter, len(Kinds))
	abort := func() {
		for _, w := range ws {
			if w != nil {
				w.Abort()
			}
		}
	}
	for i, k := range Kinds {
		w, err := pqsink.NewFileWriter(mem, filepath.Join(out, k.Name), "part", k.Schema, opts)
		if err != nil {
			abort()
			return err
		}
		ws[i] = w
	}
	for from := int64(0); from < events; from += chunk {
		if err := ctx.Err(); err != nil {
			abort()
			return err
		}
		p, a, b := cfg.Generate(mem, from, min(chunk, events-from))
		var err error
		for i, r := range []arrow.Record{p, a, b} {
			if err == nil && r.NumRows() > 0 {
				err = ws[i].Write(r)
			}
			r.Release()
		}
		if err != nil {
			abort()
			return err
		}
		if progress != nil {
			progress(from + min(chunk, events-from))
		}
	}
	for _, w := range ws {
		if _, err := w.Close(); err != nil {
			abort()
			return err
		}
	}
	b, _ := json.Marshal(Meta{Events: events, Seed: cfg.Seed, EventRate: cfg.EventRate})
	return os.WriteFile(filepath.Join(out, MetaFile), append(b, '\n'), 0o644)
}

// ReadMeta reads the config of a generated directory.
func ReadMeta(dir string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return m, fmt.Errorf("%s is not a generated Nexmark directory: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, MetaFile), err)
	}
	return m, nil
}
