package parquet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/sluicedata/sluice/internal/delta"
	"github.com/sluicedata/sluice/internal/vfs"
)

// versionSuffix is Delta's time-travel path syntax, "table@v<version>".
var versionSuffix = regexp.MustCompile(`^(.*)@v([0-9]+)$`)

// DeltaPath is the path Open reads as version of the Delta table at dir
// (time travel): dir + "@v" + version.
func DeltaPath(dir string, version int64) string {
	return dir + "@v" + strconv.FormatInt(version, 10)
}

// isDelta reports whether dir holds a Delta log.
func isDelta(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, delta.LogDir))
	return err == nil && st.IsDir()
}

// splitVersion reads "dir@v<N>" when dir is a Delta table and arg itself
// is not a path that exists.
func splitVersion(arg string) (string, int64, bool) {
	if _, err := os.Stat(arg); err == nil {
		return arg, -1, false
	}
	m := versionSuffix.FindStringSubmatch(arg)
	if m == nil || !isDelta(m[1]) {
		return arg, -1, false
	}
	v, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return arg, -1, false
	}
	return m[1], v, true
}

// listDelta lists, through add, the data files of the Delta table at root
// at version (-1: latest): only the files its log holds, never others in
// the directory. Partition values come from the log (as Hive directory
// names, so they read as the partition columns of a directory do).
//
// It returns the version read and the Arrow types of the partition
// columns, from the table's schema: integers read as int64, dates as
// date32, every other type as string (what ReadSplit builds partition
// values as).
func listDelta(root string, version int64, add func(path string, size int64, dirs []string)) (int64, map[string]arrow.DataType, error) {
	snap, err := delta.Open(vfs.OS{}, root).Snapshot(version)
	if err != nil {
		return -1, nil, err
	}
	cols := snap.Metadata.PartitionColumns
	fields, err := delta.SchemaFields(snap.Metadata.SchemaString)
	if err != nil {
		return -1, nil, fmt.Errorf("version %d: %w", snap.Version, err)
	}
	types := map[string]arrow.DataType{}
	for _, c := range cols {
		types[c] = arrow.BinaryTypes.String
		for _, f := range fields {
			if f.Name != c {
				continue
			}
			switch strings.Trim(string(f.Type), `"`) {
			case "byte", "short", "integer", "long":
				types[c] = arrow.PrimitiveTypes.Int64
			case "date":
				types[c] = arrow.FixedWidthTypes.Date32
			}
		}
	}
	for _, a := range snap.SortedFiles() {
		p, err := snap.FilePath(a.Path)
		if err != nil {
			return -1, nil, err
		}
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return -1, nil, fmt.Errorf("file %s of version %d of delta table %s is missing: %w", a.Path, snap.Version, root, err)
			}
			return -1, nil, err
		}
		dirs := make([]string, len(cols))
		for i, c := range cols {
			v := a.PartitionValues[c]
			if v == nil {
				dirs[i] = escapePart(c) + "=" + hiveNull
				continue
			}
			dirs[i] = escapePart(c) + "=" + escapePart(*v)
		}
		add(p, a.Size, dirs)
	}
	return snap.Version, types, nil
}

// escapePart escapes what unescapePath decodes, and an underscore that
// would make a value read as the null partition.
func escapePart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == '/' || c == '=' || c < 0x20 || (c == '_' && i == 0) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
