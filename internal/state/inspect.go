package state

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// FileInfo is one state file as tools see it (checkpoint inspect and
// verify): where it is, what its name says, its size, and the row count
// its schema metadata states.
type FileInfo struct {
	Path     string // full path
	Operator string // the operator directory
	Lo, Hi   int    // the key-group range directory
	Version  int64
	Kind     string // "delta" or "snapshot"
	Bytes    int64
	// KeyGroups is the file's sluice.state.key_groups metadata (0 when it
	// cannot be read).
	KeyGroups int
	// Rows is the file's sluice.state.rows metadata (-1 when it cannot be
	// read): live rows for a snapshot, changed keys and tombstones for a
	// delta.
	Rows int64
}

// ListFiles lists the state files under dir (a <checkpoint>/state), sorted
// by operator, range, version and kind (delta before snapshot). It reads
// each file's footer for its row count; a file whose footer does not read
// is listed with Rows -1 (CheckFile says what is wrong with it). Names that
// are not state files are skipped, as the store skips them. A missing dir
// is empty.
func ListFiles(fsys vfs.FS, dir string) ([]FileInfo, error) {
	out, err := ListNames(fsys, dir)
	if err != nil {
		return nil, err
	}
	for i := range out {
		fi := &out[i]
		if data, err := fsys.ReadFile(fi.Path); err == nil {
			fi.Bytes = int64(len(data))
			if md, err := footerMetadata(data); err == nil {
				if n, err := strconv.ParseInt(md[mdRows], 10, 64); err == nil {
					fi.Rows = n
				}
				fi.KeyGroups, _ = strconv.Atoi(md[mdKeyGroups])
			}
		}
	}
	return out, nil
}

// ListNames is ListFiles without reading any file: only what the paths
// say (Bytes and KeyGroups 0, Rows -1), which is all Loadable needs.
func ListNames(fsys vfs.FS, dir string) ([]FileInfo, error) {
	ops, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("state: list %s: %w", dir, err)
	}
	var out []FileInfo
	for _, op := range ops {
		ranges, err := fsys.List(filepath.Join(dir, op))
		if err != nil {
			return nil, fmt.Errorf("state: list: %w", err)
		}
		for _, rg := range ranges {
			lo, hi, ok := parseRange(rg)
			if !ok {
				continue
			}
			rdir := filepath.Join(dir, op, rg)
			names, err := fsys.List(rdir)
			if err != nil {
				return nil, fmt.Errorf("state: list: %w", err)
			}
			for _, name := range names {
				v, kind, ok := parseName(name)
				if !ok {
					continue
				}
				out = append(out, FileInfo{Path: filepath.Join(rdir, name), Operator: op, Lo: lo, Hi: hi, Version: v, Kind: kind, Rows: -1})
			}
		}
	}
	slices.SortFunc(out, func(a, b FileInfo) int {
		if c := strings.Compare(a.Operator, b.Operator); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Lo, b.Lo); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out, nil
}

// parseRange splits a key-group range directory name "<lo>-<hi>".
func parseRange(name string) (lo, hi int, ok bool) {
	a, b, found := strings.Cut(name, "-")
	if !found {
		return 0, 0, false
	}
	lo, e1 := strconv.Atoi(a)
	hi, e2 := strconv.Atoi(b)
	return lo, hi, e1 == nil && e2 == nil && lo >= 0 && lo < hi
}

// footerMetadata reads the schema metadata of an IPC file without its
// record batches.
func footerMetadata(data []byte) (md map[string]string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r, err := ipc.NewFileReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m := r.Schema().Metadata()
	md = make(map[string]string, m.Len())
	for i, k := range m.Keys() {
		md[k] = m.Values()[i]
	}
	return md, nil
}

const arrowMagic = "ARROW1"

// CheckFile reads the state file at path (…/<operator>/<lo>-<hi>/<V>.<kind>.arrow)
// whole and checks what loading it checks, without knowing the store's
// schemas: it decodes as Arrow IPC; its metadata has this build's format,
// and the kind, version, operator and range its path says; the last column
// is a non-null __deleted, never set in a snapshot; every column can be a
// state column; and the row count and CRC-32C of the canonical row bytes
// equal the metadata's. The checksum covers the rows' values, not every
// byte of the file: a flipped padding byte, which changes no value, passes. Errors name the file and wrap ErrCorrupt or
// ErrVersion. mem is used while reading and holds nothing afterwards.
func CheckFile(fsys vfs.FS, path string, mem memory.Allocator) (fi FileInfo, err error) {
	rdir := filepath.Dir(path)
	fi = FileInfo{Path: path, Operator: filepath.Base(filepath.Dir(rdir)), Rows: -1}
	var ok bool
	if fi.Lo, fi.Hi, ok = parseRange(filepath.Base(rdir)); !ok {
		return fi, fmt.Errorf("%w: %s: not in a key-group range directory", ErrCorrupt, path)
	}
	if fi.Version, fi.Kind, ok = parseName(filepath.Base(path)); !ok {
		return fi, fmt.Errorf("%w: %s: not a state file name (<version>.delta.arrow or <version>.snapshot.arrow)", ErrCorrupt, path)
	}
	data, err := fsys.ReadFile(path)
	if err != nil {
		return fi, fmt.Errorf("state: read %s: %w", path, err)
	}
	fi.Bytes = int64(len(data))
	// The IPC reader checks only the trailing magic.
	if !bytes.HasPrefix(data, []byte(arrowMagic)) {
		return fi, fmt.Errorf("%w: %s: does not start with the Arrow file magic %q", ErrCorrupt, path, arrowMagic)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
		}
	}()
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return fi, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	defer r.Close()
	sch := r.Schema()
	md := map[string]string{}
	for i, k := range sch.Metadata().Keys() {
		md[k] = sch.Metadata().Values()[i]
	}
	if md[mdFormat] == "" {
		return fi, fmt.Errorf("%w: %s: no %s metadata: not a state file", ErrCorrupt, path, mdFormat)
	}
	for k, want := range map[string]string{mdKind: fi.Kind, mdVersion: strconv.FormatInt(fi.Version, 10),
		mdOperator: fi.Operator, mdRange: fmt.Sprintf("%d-%d", fi.Lo, fi.Hi)} {
		if got := md[k]; got != want {
			return fi, fmt.Errorf("%w: %s: %s is %q, its path says %q", ErrCorrupt, path, k, got, want)
		}
	}
	if fi.KeyGroups, err = strconv.Atoi(md[mdKeyGroups]); err != nil || fi.KeyGroups < fi.Hi {
		return fi, fmt.Errorf("%w: %s: %s is %q, want a number >= %d", ErrCorrupt, path, mdKeyGroups, md[mdKeyGroups], fi.Hi)
	}
	wantRows, err1 := strconv.ParseInt(md[mdRows], 10, 64)
	wantCRC, err2 := strconv.ParseUint(md[mdCRC], 16, 32)
	if err1 != nil || err2 != nil {
		return fi, fmt.Errorf("%w: %s: bad %s or %s metadata", ErrCorrupt, path, mdRows, mdCRC)
	}
	fi.Rows = wantRows
	n := sch.NumFields()
	if n < 2 || sch.Field(n-1).Name != deletedField || sch.Field(n-1).Type.ID() != arrow.BOOL {
		return fi, fmt.Errorf("%w: %s: columns %s do not end in %s: bool", ErrCorrupt, path, fieldsString(sch), deletedField)
	}
	types, err := typesOf(sch)
	if err != nil {
		return fi, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	get := func(k string) string { return md[k] }
	if _, err := checkFormat(path, fi.Kind, get, n-1, func(c int) bool { return intType(types[c]) }); err != nil {
		return fi, err
	}
	c := newCodec(types)
	crc := crc32.New(castagnoli)
	var (
		rows int64
		buf  []byte
		offs []int
	)
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordAt(i)
		if err != nil {
			return fi, fmt.Errorf("%w: %s: record batch %d: %v", ErrCorrupt, path, i, err)
		}
		err = checkRecord(rec, fi.Kind, c, crc, &buf, &offs)
		rows += rec.NumRows()
		rec.Release()
		if err != nil {
			return fi, fmt.Errorf("%w: %s: record batch %d: %v", ErrCorrupt, path, i, err)
		}
	}
	if rows != wantRows || crc.Sum32() != uint32(wantCRC) {
		return fi, fmt.Errorf("%w: %s: %d rows with crc32c %08x, metadata says %d rows with %08x",
			ErrCorrupt, path, rows, crc.Sum32(), wantRows, wantCRC)
	}
	return fi, nil
}

func checkRecord(rec arrow.Record, kind string, c *codec, crc io.Writer, buf *[]byte, offs *[]int) error {
	n := int(rec.NumRows())
	cols := rec.Columns()
	*buf, *offs = c.encode(cols, n, *buf, *offs)
	crc.Write(*buf)
	del := cols[len(cols)-1]
	if del.NullN() > 0 {
		return fmt.Errorf("%s has nulls", deletedField)
	}
	if kind == kindSnapshot && n > 0 {
		bits := del.Data().Buffers()[1].Bytes()
		for i := 0; i < n; i++ {
			if bitutil.BitIsSet(bits, del.Data().Offset()+i) {
				return fmt.Errorf("row %d of a snapshot is a tombstone", i)
			}
		}
	}
	return nil
}

// Loadable says why version cannot be loaded from the files of one
// operator's key-group range (the FileInfos ListFiles returned for it), or
// "" when it can: the newest snapshot S <= version, then every delta
// S+1..version, must be there (invariant 1). Version 0 is always loadable.
func Loadable(files []FileInfo, version int64) string {
	if version == 0 {
		return ""
	}
	var snap int64
	deltas := map[int64]bool{}
	for _, f := range files {
		switch {
		case f.Kind == kindSnapshot && f.Version <= version && f.Version > snap:
			snap = f.Version
		case f.Kind == kindDelta:
			deltas[f.Version] = true
		}
	}
	var missing []int64
	for v := snap + 1; v <= version; v++ {
		if !deltas[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("version %d needs the delta of version %s (after %s), which is missing", version, versions(missing), snapText(snap))
}

func snapText(snap int64) string {
	if snap == 0 {
		return "the empty state"
	}
	return fmt.Sprintf("the snapshot of version %d", snap)
}

func versions(vs []int64) string {
	if len(vs) > 3 {
		return fmt.Sprintf("%d..%d (%d files)", vs[0], vs[len(vs)-1], len(vs))
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, ", ")
}
