package parquet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicedata/sluice/internal/manifest"
)

// listLogged lists, through add, the files the commit log of directory root
// (root/_sluice_log, written by the streaming Parquet sink) records as
// committed, and reports whether root has such a log. Files on disk that
// the log does not list belong to batches not (yet) committed, or aborted,
// and are never read. A listed file that is missing is an error: the
// directory was damaged after the commit.
func listLogged(root string, add func(path string, size int64, dirs []string)) (bool, error) {
	paths, ok, err := manifest.Read(root)
	if err != nil || !ok {
		return ok, err
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return true, fmt.Errorf("file committed in %s: %w", filepath.Join(root, manifest.LogDir), err)
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return true, err
		}
		var dirs []string
		if rel != "." {
			dirs = strings.Split(filepath.ToSlash(rel), "/")
		}
		add(p, st.Size(), dirs)
	}
	return true, nil
}
