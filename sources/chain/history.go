package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/parquet"
)

// HistoryConfig configures a bounded Parquet history stream.
type HistoryConfig struct {
	// Name identifies the stream; default "history".
	Name string
	// Dir is the history: a directory of Parquet files (required), read
	// with sources/parquet's rules (recursive, Hive partitions, names
	// starting with "_" or "." skipped, a _sluice_log commit log obeyed).
	Dir string
	// Schema projects the history to these columns (a subset of the files'
	// columns, by name, same types); default: every column of the files.
	Schema *arrow.Schema
	// MaxSplitsPerBatch caps the splits (row groups, merged up to about 1 M
	// rows per file) one batch reads; 0 = the whole history in one batch.
	MaxSplitsPerBatch int
	// BatchRows is the most rows in one emitted record; default
	// parquet.DefaultBatchRows.
	BatchRows int
}

// Validate reports a config NewHistory cannot use.
func (c HistoryConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("chain: history config: Dir is required")
	case c.MaxSplitsPerBatch < 0:
		return fmt.Errorf("chain: history config: MaxSplitsPerBatch %d is negative", c.MaxSplitsPerBatch)
	case c.BatchRows < 0:
		return fmt.Errorf("chain: history config: BatchRows %d is negative", c.BatchRows)
	}
	return nil
}

func (c HistoryConfig) String() string {
	return fmt.Sprintf("history{name=%s dir=%s max_splits_per_batch=%d}", c.Name, c.Dir, c.MaxSplitsPerBatch)
}

// History is a bounded stream over a Parquet directory: the files present
// when NewHistory ran, read split by split. Its Latest stops moving at the
// last split, which is what Chain takes as "the history is exhausted".
//
// Offsets are {"split":N,"files":"<fingerprint>"}: the first N splits are
// read. The fingerprint (SHA-256 of every file's path, size and row group
// count) pins the directory the offsets were taken over: a restart that
// finds other files is sources.ErrOffsetGone, never a silent shift of rows.
type History struct {
	cfg    HistoryConfig
	table  *parquet.Table
	schema *arrow.Schema
	splits []parquet.Split
	fp     string
	absDir string // cfg.Dir made absolute when NewHistory ran (Identity)
}

var _ sources.Stream = (*History)(nil)

// NewHistory lists the directory and reads every file footer.
func NewHistory(ctx context.Context, cfg HistoryConfig) (*History, error) {
	if cfg.Name == "" {
		cfg.Name = "history"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := parquet.Open(ctx, cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("history %q: %w", cfg.Name, err)
	}
	absDir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("history %q: %w", cfg.Name, err)
	}
	h := &History{cfg: cfg, table: t, schema: t.Schema, absDir: absDir}
	if cfg.Schema != nil {
		for _, f := range cfg.Schema.Fields() {
			idx := t.Schema.FieldIndices(f.Name)
			if len(idx) == 0 {
				return nil, fmt.Errorf("history %q: %w: column %q is not in the files of %s", cfg.Name, ErrSchemaMismatch, f.Name, cfg.Dir)
			}
			if got := t.Schema.Field(idx[0]).Type; !arrow.TypeEqual(got, f.Type) {
				return nil, fmt.Errorf("history %q: %w: column %q is %s in the files of %s, the schema says %s",
					cfg.Name, ErrSchemaMismatch, f.Name, got, cfg.Dir, f.Type)
			}
		}
		h.schema = cfg.Schema
	}
	h.splits, _ = t.Splits(nil)
	sum := sha256.New()
	for _, f := range t.Files {
		fmt.Fprintf(sum, "%s\x00%d\x00%d\n", f.Path, f.Size, f.RowGroups)
	}
	h.fp = hex.EncodeToString(sum.Sum(nil)[:12])
	return h, nil
}

func (h *History) Name() string { return h.cfg.Name }

// Identity is "history dir=<absolute directory>"; which files the offsets
// were taken over is pinned by the offsets themselves (their fingerprint).
func (h *History) Identity() string { return "history dir=" + h.absDir }

func (h *History) Schema() *arrow.Schema { return h.schema }

// Table is the opened directory (files and merged schema).
func (h *History) Table() *parquet.Table { return h.table }

func (h *History) Initial(context.Context) (sources.Offset, error) { return h.encode(0), nil }

// Latest is start plus at most MaxSplitsPerBatch splits; at the last split
// it returns start.
func (h *History) Latest(_ context.Context, start sources.Offset) (sources.Offset, error) {
	n, err := h.parse(start)
	if err != nil {
		return nil, err
	}
	end := len(h.splits)
	if m := h.cfg.MaxSplitsPerBatch; m > 0 && end-n > m {
		end = n + m
	}
	return h.encode(end), nil
}

// Splits returns the Parquet splits start .. end-1, in directory order.
func (h *History) Splits(_ context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := h.parse(start)
	if err != nil {
		return nil, err
	}
	hi, err := h.parse(end)
	if err != nil {
		return nil, err
	}
	if hi < lo {
		return nil, fmt.Errorf("history %q: end offset %s before start %s: %w", h.cfg.Name, end, start, sources.ErrBadOffset)
	}
	out := make([]sources.Split, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, h.split(i))
	}
	return out, nil
}

func (h *History) split(i int) *HistorySplit {
	return &HistorySplit{Split: h.splits[i], Schema: h.schema, PartitionColumns: h.table.PartitionColumns, BatchRows: h.cfg.BatchRows,
		index: i, fp: h.fp, source: h.cfg.Name}
}

// historyKind names History splits in the sources envelope.
const historyKind = "history"

// historySplit is a HistorySplit's encoded body: its index among the
// history's splits and the fingerprint of the files they were cut from, as
// in the offsets; the path is there for people reading it, and checked.
type historySplit struct {
	Files string `json:"files"`
	Split int    `json:"split"`
	Path  string `json:"path"`
}

// DecodeSplit rebuilds a split from HistorySplit.Encode's bytes. The
// decoding History lists the same directory: a fingerprint other than its
// own means it sees other files, an error that wraps both
// sources.ErrBadSplit and sources.ErrOffsetGone.
func (h *History) DecodeSplit(b []byte) (sources.Split, error) {
	var body historySplit
	if err := sources.UnmarshalSplit(b, historyKind, h.cfg.Name, &body); err != nil {
		return nil, err
	}
	if body.Files != h.fp {
		return nil, fmt.Errorf("history %q: decode split: it was cut from other files than %s holds now (fingerprint %s, now %s): %w: %w",
			h.cfg.Name, h.cfg.Dir, body.Files, h.fp, sources.ErrBadSplit, sources.ErrOffsetGone)
	}
	if body.Split < 0 || body.Split >= len(h.splits) || h.splits[body.Split].Path != body.Path {
		return nil, sources.BadSplitf(historyKind, h.cfg.Name, "split %d (%s) is not one of the %d splits of %s", body.Split, body.Path, len(h.splits), h.cfg.Dir)
	}
	return h.split(body.Split), nil
}

func (h *History) encode(n int) sources.Offset {
	return sources.Offset(`{"split":` + strconv.Itoa(n) + `,"files":"` + h.fp + `"}`)
}

func (h *History) parse(off sources.Offset) (int, error) {
	var o struct {
		Split *int   `json:"split"`
		Files string `json:"files"`
	}
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	err := d.Decode(&o)
	if err == nil {
		if _, e := d.Token(); e != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err != nil || o.Split == nil || *o.Split < 0 || o.Files == "" {
		return 0, fmt.Errorf("history %q: offset %q: want {\"split\":N,\"files\":\"...\"} with N >= 0: %w", h.cfg.Name, string(off), sources.ErrBadOffset)
	}
	if o.Files != h.fp {
		return 0, fmt.Errorf("history %q: offset %s was taken over other files than %s holds now (fingerprint %s, now %s): %w",
			h.cfg.Name, off, h.cfg.Dir, o.Files, h.fp, sources.ErrOffsetGone)
	}
	if *o.Split > len(h.splits) {
		return 0, fmt.Errorf("history %q: offset %s is past the %d splits of %s: %w", h.cfg.Name, off, len(h.splits), h.cfg.Dir, sources.ErrBadOffset)
	}
	return *o.Split, nil
}

// HistorySplit reads some row groups of one history file. Plain data.
type HistorySplit struct {
	parquet.Split
	Schema           *arrow.Schema `json:"-"`
	PartitionColumns []string
	BatchRows        int

	index  int    // among the History's splits
	fp     string // the History's file fingerprint
	source string // the History's name
}

var (
	_ sources.Split          = (*HistorySplit)(nil)
	_ sources.PositionReader = (*HistorySplit)(nil)
)

func (sp *HistorySplit) Rows() int64 { return sp.NumRows }

// Encode is {"v":1,"kind":"history","name":..,"split":{"files":<fingerprint>,
// "split":N,"path":..}}.
func (sp *HistorySplit) Encode() ([]byte, error) {
	if sp.fp == "" {
		return nil, fmt.Errorf("history: encode split of %s: not made by a History", sp.Path)
	}
	return sources.MarshalSplit(historyKind, sp.source, historySplit{Files: sp.fp, Split: sp.index, Path: sp.Path})
}

// Read emits the split's rows projected to the history schema, in records
// allocated from mem that emit owns.
func (sp *HistorySplit) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	return sp.ReadAt(ctx, mem, nil, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadAt is Read naming each record's file, row group and file rows; cols
// is nil (a history split is no ColumnReader).
func (sp *HistorySplit) ReadAt(ctx context.Context, mem memory.Allocator, _ []string, emit func(arrow.Record, func() string) error) error {
	err := parquet.ReadSplitAt(ctx, mem, sp.Split, sp.Schema, sp.PartitionColumns, sp.BatchRows, func(rec arrow.Record, at parquet.Position) error {
		n := rec.NumRows()
		return emit(rec, func() string { return at.Describe(n) })
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("history: %s was deleted before its batch ran: %w: %w", sp.Path, sources.ErrOffsetGone, err)
	}
	return err
}
