package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/ipc"

	"github.com/sluicedata/sluice/internal/vfs"
)

// FormatVersion is the newest state file format this code writes and
// reads (format.md): 2, a delta that records evictions (mdEvict); files
// without them are format 1, which it also reads.
const FormatVersion = 2

// Schema metadata keys of a state file (format.md).
const (
	mdFormat    = "sluice.state.format"
	mdKind      = "sluice.state.kind"
	mdVersion   = "sluice.state.version"
	mdOperator  = "sluice.state.operator"
	mdKeyGroups = "sluice.state.key_groups"
	mdRange     = "sluice.state.key_group_range"
	mdRows      = "sluice.state.rows"
	mdCRC       = "sluice.state.crc32c"
	mdEvict     = "sluice.state.evict"
)

const (
	kindDelta    = "delta"
	kindSnapshot = "snapshot"
)

// fileChunk is the most rows per record batch in a state file.
const fileChunk = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func rangeDir(dir, op string, lo, hi int) string {
	return filepath.Join(dir, op, fmt.Sprintf("%d-%d", lo, hi))
}

func fileName(v int64, kind string) string { return fmt.Sprintf("%d.%s.arrow", v, kind) }

// parseName splits "<V>.<kind>.arrow"; ok is false for any other name.
func parseName(name string) (v int64, kind string, ok bool) {
	base, found := strings.CutSuffix(name, ".arrow")
	if !found {
		return 0, "", false
	}
	num, kind, found := strings.Cut(base, ".")
	if !found || (kind != kindDelta && kind != kindSnapshot) {
		return 0, "", false
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 || strconv.FormatInt(v, 10) != num {
		return 0, "", false
	}
	return v, kind, true
}

// load reads version into the empty store s.
func (s *memStore) load(version int64) error {
	if version == 0 {
		return nil
	}
	if s.tix != nil {
		// One O(n) heapify at the end instead of a push per row.
		s.tix.off = true
		defer s.rebuildIndex()
	}
	names, err := s.cfg.FS.List(s.dir)
	if err != nil {
		return fmt.Errorf("state: open version %d: %w", version, err)
	}
	snap := lastSnapshot(names, version)
	if snap > 0 {
		if _, err := s.loadFile(snap, kindSnapshot); err != nil {
			return err
		}
	}
	s.snapAt, s.since = snap, 0
	for v := snap + 1; v <= version; v++ {
		rows, err := s.loadFile(v, kindDelta)
		if err != nil {
			return err
		}
		s.since += rows
	}
	s.version = version
	return nil
}

// lastSnapshot is the newest snapshot version at or before version among
// a range directory's file names (0: none), where a load of version starts.
func lastSnapshot(names []string, version int64) int64 {
	var snap int64
	for _, n := range names {
		if v, k, ok := parseName(n); ok && k == kindSnapshot && v <= version && v > snap {
			snap = v
		}
	}
	return snap
}

// loadFile applies state file v of kind and returns its rows.
func (s *memStore) loadFile(v int64, kind string) (int64, error) {
	var (
		buf  []byte
		offs []int
		rows int64
	)
	_, err := s.readStateFile(v, kind, s.evictLoaded, func(rec arrow.Record, crc io.Writer) error {
		rows += rec.NumRows()
		return s.applyRecord(rec, kind, crc, &buf, &offs)
	})
	return rows, err
}

// readStateFile checks state file v of kind (metadata, schema, row count,
// CRC-32C), hands a delta's recorded evictions to evict (before any row),
// then its record batches in order to apply, which writes the canonical
// bytes of every row (s.fullc) to crc. When s.sumFiles is set it also
// returns the CRC-32C of the file's bytes (the disk backend's proof of
// which file its local copy was built from).
func (s *memStore) readStateFile(v int64, kind string, evict func(evictions) error, apply func(rec arrow.Record, crc io.Writer) error) (sum uint32, err error) {
	path := filepath.Join(s.dir, fileName(v, kind))
	data, err := s.cfg.FS.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s (needed to load version %d)", ErrMissing, path, v)
	}
	if err != nil {
		return 0, fmt.Errorf("state: read %s: %w", path, err)
	}
	if s.sumFiles {
		sum = crc32.Checksum(data, castagnoli)
	}
	// The IPC reader trusts offsets in the file; a damaged file can make it
	// panic, which is a corrupt file, not a broken invariant of ours.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
		}
	}()
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(s.cfg.Allocator))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	defer r.Close()
	want, err := s.checkFileSchema(path, r.Schema(), v, kind)
	if err != nil {
		return 0, err
	}
	if want.evict != nil {
		if err := evict(want.evict); err != nil {
			return 0, fmt.Errorf("state: %s: %w", path, err)
		}
	}
	crc := crc32.New(castagnoli)
	var rows int64
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordAt(i)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: record batch %d: %v", ErrCorrupt, path, i, err)
		}
		rows += rec.NumRows()
		err = apply(rec, crc)
		rec.Release()
		if err != nil {
			return 0, fmt.Errorf("%w: %s: record batch %d: %v", ErrCorrupt, path, i, err)
		}
	}
	if rows != want.rows || crc.Sum32() != want.crc {
		return 0, fmt.Errorf("%w: %s: %d rows with crc32c %08x, metadata says %d rows with %08x",
			ErrCorrupt, path, rows, crc.Sum32(), want.rows, want.crc)
	}
	return sum, nil
}

type fileCheck struct {
	rows  int64
	crc   uint32
	evict evictions
}

func (s *memStore) checkFileSchema(path string, sch *arrow.Schema, v int64, kind string) (fileCheck, error) {
	md := sch.Metadata()
	get := func(k string) string {
		if i := md.FindKey(k); i >= 0 {
			return md.Values()[i]
		}
		return ""
	}
	var fc fileCheck
	nk := len(s.keyTypes)
	ev, err := checkFormat(path, kind, get, nk+len(s.vals), func(c int) bool {
		if c < nk {
			return intType(s.keyTypes[c])
		}
		return intType(s.vals[c-nk].t)
	})
	if err != nil {
		return fc, err
	}
	wantMD := map[string]string{
		mdKind:      kind,
		mdVersion:   strconv.FormatInt(v, 10),
		mdOperator:  s.cfg.Operator,
		mdKeyGroups: strconv.Itoa(s.cfg.KeyGroups),
		mdRange:     fmt.Sprintf("%d-%d", s.cfg.Lo, s.cfg.Hi),
	}
	for _, k := range []string{mdKind, mdVersion, mdOperator, mdKeyGroups, mdRange} {
		if got := get(k); got != wantMD[k] {
			return fc, fmt.Errorf("%w: %s: %s is %q, want %q", ErrCorrupt, path, k, got, wantMD[k])
		}
	}
	rows, err1 := strconv.ParseInt(get(mdRows), 10, 64)
	crc, err2 := strconv.ParseUint(get(mdCRC), 16, 32)
	if err1 != nil || err2 != nil {
		return fc, fmt.Errorf("%w: %s: bad %s or %s metadata", ErrCorrupt, path, mdRows, mdCRC)
	}
	fc = fileCheck{rows: rows, crc: uint32(crc), evict: ev}
	ok := sch.NumFields() == s.fileSch.NumFields()
	for i := 0; ok && i < sch.NumFields(); i++ {
		a, b := sch.Field(i), s.fileSch.Field(i)
		ok = a.Name == b.Name && arrow.TypeEqual(a.Type, b.Type)
	}
	if !ok {
		return fc, fmt.Errorf("%w: %s has columns %s, the store's key ++ value ++ %s schema is %s",
			ErrSchema, path, fieldsString(sch), deletedField, fieldsString(s.fileSch))
	}
	return fc, nil
}

func fieldsString(s *arrow.Schema) string {
	parts := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		parts[i] = f.Name + ": " + f.Type.String()
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// applyRecord checksums rec and applies its rows: upserts, or deletes for
// rows flagged __deleted (never in a snapshot).
func (s *memStore) applyRecord(rec arrow.Record, kind string, crc io.Writer, buf *[]byte, offs *[]int) error {
	n := int(rec.NumRows())
	cols := rec.Columns()
	*buf, *offs = s.fullc.encode(cols, n, *buf, *offs)
	crc.Write(*buf)
	nk := len(s.keyTypes)
	del := cols[len(cols)-1]
	if del.NullN() > 0 {
		return fmt.Errorf("%s has nulls", deletedField)
	}
	bits := del.Data().Buffers()[1].Bytes()
	s.kbuf, s.koffs = s.keyc.encode(cols[:nk], n, s.kbuf, s.koffs)
	var rows, slots []int32
	for i := 0; i < n; i++ {
		r := s.row(i)
		if bitutil.BitIsSet(bits, del.Data().Offset()+i) {
			if kind == kindSnapshot {
				return fmt.Errorf("row %d of a snapshot is a tombstone", i)
			}
			if pos, sl := s.find(s.hash(r), r); sl >= 0 {
				s.removeAt(pos, sl, false)
			}
			continue
		}
		rows = append(rows, int32(i))
		slots = append(slots, s.upsert(r, false))
	}
	s.setCols(cols[nk:nk+len(s.vals)], rows, slots)
	s.maybeCompactArena()
	return nil
}

func (s *memStore) writeDelta(v int64) (int64, error) {
	// Two runs, each often already in key order (a join's new rows and the
	// old rows it evicts arrive by sequence number): each is sorted only if
	// it is not, then the two are merged, instead of sorting all the keys.
	live, dead := make([]deltaRow, 0, len(s.dirty)), make([]deltaRow, 0, len(s.tombs))
	for _, sl := range s.dirty {
		if s.flags[sl]&fLive != 0 {
			live = append(live, deltaRow{s.key(sl), sl})
		}
	}
	for _, sl := range s.tombs {
		// An evicted key of the last version's value needs none: the
		// delta's evictions delete it again (evictions).
		if s.flags[sl]&(fTomb|fEvicted) == fTomb {
			dead = append(dead, deltaRow{s.key(sl), -1})
		}
	}
	sortRun(live)
	sortRun(dead)
	sk := make([][]byte, 0, len(live)+len(dead))
	ss := make([]int32, 0, cap(sk))
	add := func(r deltaRow) {
		// A key deleted, put back and deleted again is in s.tombs twice:
		// one tombstone (invariant 3).
		if n := len(sk); n > 0 && ss[n-1] < 0 && r.slot < 0 && bytes.Equal(sk[n-1], r.key) {
			return
		}
		sk, ss = append(sk, r.key), append(ss, r.slot)
	}
	for len(live) > 0 || len(dead) > 0 {
		if len(dead) == 0 || len(live) > 0 && bytes.Compare(live[0].key, dead[0].key) <= 0 {
			add(live[0])
			live = live[1:]
		} else {
			add(dead[0])
			dead = dead[1:]
		}
	}
	return int64(len(sk)), s.writeFile(v, kindDelta, sk, ss)
}

// deltaRow is a row of a delta file: a key and its slot (-1: tombstone).
type deltaRow struct {
	key  []byte
	slot int32
}

// sortRun puts rows in key order unless they already are.
func sortRun(rows []deltaRow) {
	for i := 1; i < len(rows); i++ {
		if bytes.Compare(rows[i-1].key, rows[i].key) > 0 {
			sortByKey(rows, func(r deltaRow) []byte { return r.key })
			return
		}
	}
}

func (s *memStore) writeSnapshot(v int64) error {
	live := s.sortedLive(nil)
	keys := make([][]byte, len(live))
	for i, sl := range live {
		keys[i] = s.key(sl)
	}
	return s.writeFile(v, kindSnapshot, keys, live)
}

// writeFile writes rows (keys[i], values of slots[i]; slot -1 = tombstone)
// as state file v of kind through FS.
func (s *memStore) writeFile(v int64, kind string, keys [][]byte, slots []int32) error {
	mem := s.cfg.Allocator
	var recs []arrow.Record
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	crc := crc32.New(castagnoli)
	var (
		buf  []byte
		offs []int
	)
	boolType := colType{kind: kBool, width: 1, dt: arrow.FixedWidthTypes.Boolean}
	for a := 0; a < len(keys); a += fileChunk {
		b := min(a+fileChunk, len(keys))
		cols := s.keyc.decode(mem, keys[a:b])
		for j := range s.vals {
			cols = append(cols, s.vals[j].gather(mem, slots[a:b]))
		}
		del := newColBuilder(mem, boolType, b-a)
		for i, sl := range slots[a:b] {
			if sl < 0 {
				del.setFixedRaw(i, []byte{1})
			}
		}
		cols = append(cols, del.finish())
		rec := newRecord(s.fileSch, cols, b-a)
		recs = append(recs, rec)
		buf, offs = s.fullc.encode(rec.Columns(), b-a, buf, offs)
		crc.Write(buf)
	}
	return s.writeRecords(v, kind, int64(len(keys)), crc.Sum32(), s.evictsOf(kind), func(write func(arrow.Record) error) error {
		for _, rec := range recs {
			if err := write(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeRecords writes state file v of kind, whose rows (count and CRC-32C
// of their canonical bytes known beforehand: the metadata is in the
// schema) each hands to write in record batches of at most fileChunk rows,
// atomically through FS. With s.sumFiles, s.lastSum becomes the CRC-32C of
// the file's bytes.
func (s *memStore) writeRecords(v int64, kind string, rows int64, sum uint32, ev evictions, each func(write func(arrow.Record) error) error) error {
	path := filepath.Join(s.dir, fileName(v, kind))
	keys := []string{mdFormat, mdKind, mdVersion, mdOperator, mdKeyGroups, mdRange, mdRows, mdCRC}
	vals := []string{
		"1", kind, strconv.FormatInt(v, 10), s.cfg.Operator,
		strconv.Itoa(s.cfg.KeyGroups), fmt.Sprintf("%d-%d", s.cfg.Lo, s.cfg.Hi),
		strconv.FormatInt(rows, 10), fmt.Sprintf("%08x", sum),
	}
	if len(ev) > 0 {
		vals[0] = strconv.Itoa(FormatVersion)
		keys, vals = append(keys, mdEvict), append(vals, ev.String())
	}
	md := arrow.NewMetadata(keys, vals)
	sch := arrow.NewSchema(s.fileSch.Fields(), &md)
	// Streamed into the file: a state file is never whole in memory
	// (a delta of q7's join was hundreds of MB, built in a growing buffer
	// that cost a third of the join's CPU), buffered so the IPC writer's
	// many small writes are few system calls or upload parts.
	f, err := s.cfg.FS.Create(path)
	if err != nil {
		return fmt.Errorf("state: write %s: %w", path, err)
	}
	defer f.Abort()
	out := &fileOut{w: f, sum: s.sumFiles}
	out.buf = bufio.NewWriterSize(writerFunc(out.write), 1<<20)
	w, err := ipc.NewFileWriter(out, ipc.WithSchema(sch), ipc.WithAllocator(s.cfg.Allocator))
	if err != nil {
		return fmt.Errorf("state: write %s: %w", path, err)
	}
	if err := each(w.Write); err != nil {
		w.Close()
		return fmt.Errorf("state: write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("state: write %s: %w", path, err)
	}
	if err := out.buf.Flush(); err != nil {
		return fmt.Errorf("state: write %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("state: commit version %d: %w", v, err)
	}
	if s.sumFiles {
		s.lastSum = out.crc
	}
	return nil
}

// fileOut is the io.WriteSeeker ipc.FileWriter needs (it only asks for the
// current position) over a buffered vfs.File, with the CRC-32C of the bytes
// when sum is set.
type fileOut struct {
	w   io.Writer
	buf *bufio.Writer
	n   int64
	sum bool
	crc uint32
}

func (o *fileOut) Write(p []byte) (int, error) {
	n, err := o.buf.Write(p)
	o.n += int64(n)
	return n, err
}

// write is what the buffer flushes to.
func (o *fileOut) write(p []byte) (int, error) {
	if o.sum {
		o.crc = crc32.Update(o.crc, castagnoli, p)
	}
	return o.w.Write(p)
}

func (o *fileOut) Seek(off int64, whence int) (int64, error) {
	if off == 0 && (whence == io.SeekCurrent || whence == io.SeekEnd) {
		return o.n, nil
	}
	return 0, fmt.Errorf("state: file writer cannot seek to %d from %d", off, whence)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Purge deletes the state files under dir (a <checkpoint>/state directory:
// every operator and key-group range below it) that no version >= keepFrom
// needs: in each range, everything older than the last snapshot at or
// before keepFrom, and the delta of that snapshot's version. A range with
// no such snapshot keeps all its files. Loading any version >= keepFrom
// that could be loaded before still works.
func Purge(fsys vfs.FS, dir string, keepFrom int64) error {
	ops, err := fsys.List(dir)
	if err != nil {
		return fmt.Errorf("state: purge %s: %w", dir, err)
	}
	var errs []error
	for _, op := range ops {
		ranges, err := fsys.List(filepath.Join(dir, op))
		if err != nil {
			errs = append(errs, fmt.Errorf("state: purge: %w", err))
			continue
		}
		for _, rg := range ranges {
			lo, hi, ok := strings.Cut(rg, "-")
			if _, e1 := strconv.Atoi(lo); e1 != nil || !ok {
				continue
			}
			if _, e2 := strconv.Atoi(hi); e2 != nil {
				continue
			}
			if err := purgeRange(fsys, filepath.Join(dir, op, rg), keepFrom); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func purgeRange(fsys vfs.FS, dir string, keepFrom int64) error {
	names, err := fsys.List(dir)
	if err != nil {
		return fmt.Errorf("state: purge: %w", err)
	}
	snap := lastSnapshot(names, keepFrom)
	if snap == 0 {
		return nil
	}
	for _, n := range names {
		v, k, ok := parseName(n)
		if !ok || v > snap || (v == snap && k == kindSnapshot) {
			continue
		}
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("state: purge: %w", err)
		}
	}
	return nil
}
