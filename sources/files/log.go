package files

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/internal/vfs"
)

const logVersion = 1

// logged is one file assigned to an offset.
type logged struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// logEntry is the content of <LogDir>/<end>.json (format.md).
type logEntry struct {
	Version int      `json:"version"`
	Start   int64    `json:"start"`
	Files   []logged `json:"files"`
}

type logFile struct {
	Entry json.RawMessage `json:"entry"`
	CRC32 uint32          `json:"crc32"`
}

func logPath(dir string, end int64) string {
	return path.Join(dir, strconv.FormatInt(end, 10)+".json")
}

// writeLog durably appends the entry for files start .. start+len(fs)-1.
func writeLog(fsys vfs.FS, dir string, start int64, fs []logged) error {
	entry, err := json.Marshal(logEntry{Version: logVersion, Start: start, Files: fs})
	if err != nil {
		return err
	}
	b, err := json.Marshal(logFile{Entry: entry, CRC32: crc32.ChecksumIEEE(entry)})
	if err != nil {
		return err
	}
	return fsys.WriteFileAtomic(logPath(dir, start+int64(len(fs))), append(b, '\n'))
}

// readLog returns every logged file in offset order.
func readLog(fsys vfs.FS, dir string) ([]logged, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	var ends []int64
	for _, n := range names {
		digits, ok := strings.CutSuffix(n, ".json")
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		end, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptLog, path.Join(dir, n), err)
		}
		ends = append(ends, end)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
	var out []logged
	for _, end := range ends {
		p := logPath(dir, end)
		b, err := fsys.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var lf logFile
		if err := json.Unmarshal(b, &lf); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptLog, p, err)
		}
		if crc32.ChecksumIEEE(lf.Entry) != lf.CRC32 {
			return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorruptLog, p)
		}
		var e logEntry
		if err := json.Unmarshal(lf.Entry, &e); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptLog, p, err)
		}
		if e.Version != logVersion {
			return nil, fmt.Errorf("%w: %s: unknown version %d", ErrCorruptLog, p, e.Version)
		}
		if e.Start != int64(len(out)) || e.Start+int64(len(e.Files)) != end || len(e.Files) == 0 {
			return nil, fmt.Errorf("%w: %s: entry holds files %d..%d, the log before it ends at %d",
				ErrCorruptLog, p, e.Start, e.Start+int64(len(e.Files)), len(out))
		}
		out = append(out, e.Files...)
	}
	return out, nil
}
