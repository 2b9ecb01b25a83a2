package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	idelta "github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/parquet"
)

// Config configures a Source.
type Config struct {
	Name string // the source's name in the query; default "delta"
	Dir  string // the table directory (local or a shared mount)
	// MaxVersionsPerBatch caps how many versions after the first batch one
	// batch reads; 0 is no cap. The first batch reads the whole snapshot.
	MaxVersionsPerBatch int
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("delta source: config: Dir is required")
	case vfs.IsURL(c.Dir):
		return fmt.Errorf("delta source: config: Dir %q: tables on object storage are not read yet", c.Dir)
	case c.MaxVersionsPerBatch < 0:
		return fmt.Errorf("delta source: config: MaxVersionsPerBatch %d < 0", c.MaxVersionsPerBatch)
	}
	return nil
}

// Source streams a Delta table; see the package doc.
type Source struct {
	cfg      Config
	abs      string
	table    *idelta.Table
	schema   *arrow.Schema
	partCols []string

	mu    sync.Mutex
	bound int64 // -1: none
}

var (
	_ sources.Stream  = (*Source)(nil)
	_ sources.Bounder = (*Source)(nil)
)

// New reads the table's latest snapshot for the source schema: its files'
// columns, then its partition columns.
func New(ctx context.Context, cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "delta"
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("delta source %q: %w", cfg.Name, err)
	}
	t, err := parquet.Open(ctx, cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("delta source %q: schema of %s: %w", cfg.Name, cfg.Dir, err)
	}
	return &Source{cfg: cfg, abs: abs, table: idelta.Open(vfs.OS{}, cfg.Dir), schema: t.Schema, partCols: t.PartitionColumns, bound: -1}, nil
}

func (s *Source) Name() string { return s.cfg.Name }

// Identity names the table by its absolute directory.
func (s *Source) Identity() string { return "delta dir=" + s.abs }

func (s *Source) Schema() *arrow.Schema { return s.schema }

func (s *Source) Initial(context.Context) (sources.Offset, error) { return encode(-1), nil }

// Bound fixes the end of the input at the table's version now.
func (s *Source) Bound(context.Context) error {
	v, err := s.table.LatestVersion()
	if err != nil {
		return fmt.Errorf("delta source %q: %w", s.cfg.Name, err)
	}
	s.mu.Lock()
	s.bound = v
	s.mu.Unlock()
	return nil
}

// Latest is the table's newest version, capped by Bound and MaxVersionsPerBatch.
func (s *Source) Latest(ctx context.Context, start sources.Offset) (sources.Offset, error) {
	lo, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	v, err := s.table.LatestVersion()
	if err != nil {
		return nil, fmt.Errorf("delta source %q: %w", s.cfg.Name, err)
	}
	s.mu.Lock()
	if s.bound >= 0 {
		v = min(v, s.bound)
	}
	s.mu.Unlock()
	if m := int64(s.cfg.MaxVersionsPerBatch); m > 0 && lo >= 0 {
		v = min(v, lo+m)
	}
	return encode(max(v, lo)), nil
}

// file is one data file a batch reads.
type file struct {
	rel  string // path on disk relative to the table
	size int64
	part []parquet.PartitionValue
}

// Splits returns the splits of the files (start, end] adds; see the package doc.
func (s *Source) Splits(ctx context.Context, start, end sources.Offset) ([]sources.Split, error) {
	lo, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	hi, err := s.parse(end)
	if err != nil {
		return nil, err
	}
	if hi < lo {
		return nil, fmt.Errorf("delta source %q: end offset %s before start %s: %w", s.cfg.Name, end, start, sources.ErrBadOffset)
	}
	if hi == lo {
		return nil, nil
	}
	var files []file
	if lo < 0 {
		snap, err := s.table.Snapshot(hi)
		if err != nil {
			return nil, s.gone(err, hi)
		}
		for _, a := range snap.SortedFiles() {
			f, err := s.fileOf(a)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
	} else {
		for v := lo + 1; v <= hi; v++ {
			acts, err := s.table.ReadCommit(v)
			if err != nil {
				return nil, s.gone(err, v)
			}
			var adds []*idelta.Add
			for _, a := range acts {
				switch {
				case a.Remove != nil && a.Remove.DataChange:
					return nil, fmt.Errorf("delta source %q: table %s version %d removes %s (a delete, update or overwrite): this source reads append-only tables", s.cfg.Name, s.cfg.Dir, v, a.Remove.Path)
				case a.Add != nil && a.Add.DataChange:
					adds = append(adds, a.Add)
				case a.MetaData != nil:
					return nil, fmt.Errorf("delta source %q: table %s version %d changes the table's metadata (schema or partitioning): restart the query with a new checkpoint", s.cfg.Name, s.cfg.Dir, v)
				}
			}
			sort.Slice(adds, func(i, j int) bool { return adds[i].Path < adds[j].Path })
			for _, a := range adds {
				f, err := s.fileOf(a)
				if err != nil {
					return nil, err
				}
				files = append(files, f)
			}
		}
	}
	var out []sources.Split
	for _, f := range files {
		p := filepath.Join(s.cfg.Dir, filepath.FromSlash(f.rel))
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("delta source %q: %s was deleted before its batch ran: %w", s.cfg.Name, p, sources.ErrOffsetGone)
		}
		t, err := parquet.Open(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("delta source %q: %w", s.cfg.Name, err)
		}
		if err := s.checkSchema(p, t.Schema); err != nil {
			return nil, err
		}
		pss, _ := t.Splits(nil)
		for _, ps := range pss {
			ps.Partition = f.part
			out = append(out, &Split{Split: ps, src: s, rel: f.rel})
		}
	}
	return out, nil
}

func (s *Source) gone(err error, v int64) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, idelta.ErrNoVersion) {
		return fmt.Errorf("delta source %q: version %d of %s is no longer in its log: %w: %w", s.cfg.Name, v, s.cfg.Dir, sources.ErrOffsetGone, err)
	}
	return fmt.Errorf("delta source %q: %w", s.cfg.Name, err)
}

// fileOf resolves an add against the table and the source's partition columns.
func (s *Source) fileOf(a *idelta.Add) (file, error) {
	p, err := idelta.FilePath("", a.Path)
	if err != nil || strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
		return file{}, fmt.Errorf("delta source %q: table %s: file %q is not inside the table", s.cfg.Name, s.cfg.Dir, a.Path)
	}
	f := file{rel: p, size: a.Size}
	for _, c := range s.partCols {
		v, ok := a.PartitionValues[c]
		switch {
		case !ok:
			return file{}, fmt.Errorf("delta source %q: table %s: file %s has no value of partition column %q", s.cfg.Name, s.cfg.Dir, a.Path, c)
		case v == nil:
			f.part = append(f.part, parquet.PartitionValue{Null: true})
		default:
			f.part = append(f.part, parquet.PartitionValue{Value: *v})
		}
	}
	return f, nil
}

// checkSchema refuses a file whose columns have other types than the source schema's.
func (s *Source) checkSchema(path string, fileSchema *arrow.Schema) error {
	for _, want := range s.schema.Fields() {
		idx := fileSchema.FieldIndices(want.Name)
		if len(idx) == 0 || slices.Contains(s.partCols, want.Name) {
			continue
		}
		if got := fileSchema.Field(idx[0]).Type; !arrow.TypeEqual(got, want.Type) {
			return fmt.Errorf("delta source %q: %s: %w: column %q is %s in the file, the source schema says %s",
				s.cfg.Name, path, parquet.ErrSchemaConflict, want.Name, got, want.Type)
		}
	}
	return nil
}

// Split reads some row groups of one data file of the table.
type Split struct {
	parquet.Split
	src *Source
	rel string
}

var _ sources.Split = (*Split)(nil)

func (sp *Split) Rows() int64 { return sp.NumRows }

const splitKind = "delta"

type splitBody struct {
	File      string                   `json:"file"` // relative to the table
	RowGroups []int                    `json:"row_groups"`
	Rows      int64                    `json:"rows"`
	Partition []parquet.PartitionValue `json:"partition"`
}

func (sp *Split) Encode() ([]byte, error) {
	return sources.MarshalSplit(splitKind, sp.src.cfg.Name, splitBody{File: sp.rel, RowGroups: sp.RowGroups, Rows: sp.NumRows, Partition: sp.Partition})
}

// DecodeSplit rebuilds a split from Split.Encode's bytes, reading the file
// in this source's Dir.
func (s *Source) DecodeSplit(b []byte) (sources.Split, error) {
	var body splitBody
	if err := sources.UnmarshalSplit(b, splitKind, s.cfg.Name, &body); err != nil {
		return nil, err
	}
	bad := func(why string) (sources.Split, error) {
		return nil, sources.BadSplitf(splitKind, s.cfg.Name, "file %q: %s", body.File, why)
	}
	switch {
	case body.File == "" || strings.HasPrefix(body.File, "/") || strings.Contains(body.File, ".."):
		return bad("not a file inside the table")
	case len(body.RowGroups) == 0:
		return bad("no row groups")
	case body.Rows < 0:
		return bad("negative row count")
	case len(body.Partition) != len(s.partCols):
		return bad(fmt.Sprintf("%d partition values for %d partition columns", len(body.Partition), len(s.partCols)))
	}
	for i, rg := range body.RowGroups {
		if rg < 0 || i > 0 && rg <= body.RowGroups[i-1] {
			return bad(fmt.Sprintf("row groups %v are not ascending indexes", body.RowGroups))
		}
	}
	return &Split{
		Split: parquet.Split{Path: filepath.Join(s.cfg.Dir, filepath.FromSlash(body.File)), RowGroups: body.RowGroups, NumRows: body.Rows, Partition: body.Partition},
		src:   s, rel: body.File,
	}, nil
}

var (
	_ sources.ColumnReader   = (*Split)(nil)
	_ sources.PositionReader = (*Split)(nil)
)

// Read emits the split's rows as records of the source schema, allocated
// from mem, that emit owns.
func (sp *Split) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	return sp.ReadAt(ctx, mem, nil, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadColumns is Read building only the columns cols, in that order
// (sources.ColumnReader): the file's other columns are never decoded.
func (sp *Split) ReadColumns(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record) error) error {
	return sp.ReadAt(ctx, mem, cols, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadAt is ReadColumns (Read when cols is nil) naming each record's file,
// row group and file rows, so a runtime error on one of its values names
// them (sources.PositionReader).
func (sp *Split) ReadAt(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record, func() string) error) error {
	sch, err := parquet.Columns(sp.src.schema, cols)
	if err != nil {
		return fmt.Errorf("delta source %q: %s: %w", sp.src.cfg.Name, sp.Path, err)
	}
	err = parquet.ReadSplitAt(ctx, mem, sp.Split, sch, sp.src.partCols, 0, func(rec arrow.Record, at parquet.Position) error {
		n := rec.NumRows()
		return emit(rec, func() string { return at.Describe(n) })
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delta source %q: %s was deleted before its batch ran: %w: %w", sp.src.cfg.Name, sp.Path, sources.ErrOffsetGone, err)
	}
	return err
}

type offset struct {
	Version *int64 `json:"version"`
}

func encode(v int64) sources.Offset {
	return sources.Offset(`{"version":` + strconv.FormatInt(v, 10) + `}`)
}

func (s *Source) parse(off sources.Offset) (int64, error) {
	var o offset
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	err := d.Decode(&o)
	if err == nil {
		if _, e := d.Token(); e != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err != nil || o.Version == nil || *o.Version < -1 {
		return 0, fmt.Errorf("delta source %q: offset %q: want {\"version\":V} with V >= -1: %w", s.cfg.Name, string(off), sources.ErrBadOffset)
	}
	return *o.Version, nil
}
