package files

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/sources"
)

// Bad-file policies (Config.BadFiles): what Splits does with a logged file
// it cannot read (no Parquet footer: truncated, corrupt, not Parquet) or
// whose column types conflict with the source schema.
const (
	BadFilesFail       = "fail"       // the batch fails naming the file (default)
	BadFilesSkip       = "skip"       // the file is recorded, counted, logged and left where it is
	BadFilesQuarantine = "quarantine" // as skip, and the file moves to Config.QuarantineDir
)

// Offsets-gone policies (Config.OffsetsGone), as the Kafka source's: what
// Splits does when a logged file was deleted or replaced before its batch
// ran (Spark's failOnDataLoss).
const (
	OffsetsGoneFail = "fail" // sources.ErrOffsetGone naming the file (default)
	OffsetsGoneSkip = "skip" // the batch goes on without it; recorded, counted, logged as lost
)

// dropVersion is the version of <LogDir>/dropped-<i>.json.
const dropVersion = 1

// dropped is the decision, recorded in the checkpoint, that the logged file
// at offset Index is left out of every batch that covers it.
type dropped struct {
	Version int   `json:"version"`
	Index   int64 `json:"index"` // the file's position in the seen-file log
	// RowGroup is the first row group of the file the recording batch
	// read (MaxRowsPerBatch: later batches read later row groups of it).
	RowGroup int    `json:"row_group,omitempty"`
	Name     string `json:"name"`
	Kind     string `json:"kind"` // sources.DropSkipped, DropQuarantined or DropLost
	Reason   string `json:"reason"`
	To       string `json:"to,omitempty"` // quarantine: the file's path there
}

func droppedPath(dir string, index int64) string {
	return path.Join(dir, "dropped-"+strconv.FormatInt(index, 10)+".json")
}

// writeDropped makes d durable before the batch that drops the file runs.
func writeDropped(fsys vfs.FS, dir string, d dropped) error {
	entry, err := json.Marshal(d)
	if err != nil {
		return err
	}
	b, err := json.Marshal(logFile{Entry: entry, CRC32: crc32.ChecksumIEEE(entry)})
	if err != nil {
		return err
	}
	return fsys.WriteFileAtomic(droppedPath(dir, d.Index), append(b, '\n'))
}

// readDropped returns the recorded decisions by log index; names is the
// log dir's listing.
func readDropped(fsys vfs.FS, dir string, names []string, log []logged) (map[int64]dropped, error) {
	out := map[int64]dropped{}
	for _, n := range names {
		digits, ok := strings.CutPrefix(n, "dropped-")
		if !ok {
			continue
		}
		if digits, ok = strings.CutSuffix(digits, ".json"); !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		p := path.Join(dir, n)
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
		var d dropped
		if err := json.Unmarshal(lf.Entry, &d); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptLog, p, err)
		}
		switch {
		case d.Version != dropVersion:
			return nil, fmt.Errorf("%w: %s: unknown version %d", ErrCorruptLog, p, d.Version)
		case strconv.FormatInt(d.Index, 10) != digits:
			return nil, fmt.Errorf("%w: %s: holds the decision of file %d", ErrCorruptLog, p, d.Index)
		case d.Index >= int64(len(log)) || log[d.Index].Name != d.Name:
			return nil, fmt.Errorf("%w: %s: file %d is %q, not in the seen-file log as such", ErrCorruptLog, p, d.Index, d.Name)
		case d.Kind != sources.DropSkipped && d.Kind != sources.DropQuarantined && d.Kind != sources.DropLost:
			return nil, fmt.Errorf("%w: %s: unknown kind %q", ErrCorruptLog, p, d.Kind)
		}
		out[d.Index] = d
	}
	return out, nil
}

// quarantine moves the file at from to to: a rename, or, across
// filesystems, a copy (fsynced) and a remove. It is safe to repeat after a
// crash at any point: a file already at to of from's size counts as moved.
func quarantine(from, to string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if st, err := os.Stat(to); err == nil {
		if st.Size() != size {
			return fmt.Errorf("quarantine %s: %s exists with %d bytes, want %d", from, to, st.Size(), size)
		}
		if err := os.Remove(from); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	err := os.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // moved already
	}
	if err == nil {
		// Durable: both directories' entries survive a crash.
		return errors.Join(vfs.OS{}.SyncDir(filepath.Dir(to)), vfs.OS{}.SyncDir(filepath.Dir(from)))
	}
	// Another filesystem (EXDEV), most likely: copy through vfs.OS's
	// temp file, fsync and rename (Commit), then remove the original.
	if err := copyDurably(from, to); err != nil {
		return fmt.Errorf("quarantine %s to %s: %w", from, to, err)
	}
	return os.Remove(from)
}

func copyDurably(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := vfs.OS{}.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Abort()
		return err
	}
	return dst.Commit()
}
