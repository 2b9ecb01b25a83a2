package parquet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// successFile marks a committed target. Readers (Spark, pyarrow) skip names
// starting with "_". Its body lists the jobs whose files the target holds,
// which makes Commit and Abort safe to repeat.
const successFile = "_SUCCESS"

// appendingFile in a staging dir says an Append commit may have linked
// some of its files into target, so Abort must look for them there.
const appendingFile = "_APPENDING"

type successBody struct {
	Writer string   `json:"writer"`
	Jobs   []string `json:"jobs"`
}

// StagingDir is where the tasks of job jobID write their files: a hidden
// sibling of target, so that publishing it is a rename on one filesystem
// and readers of target's parent skip it (names starting with ".").
func StagingDir(target, jobID string) string {
	t := filepath.Clean(target)
	return filepath.Join(filepath.Dir(t), "."+filepath.Base(t)+".sluice-staging-"+jobID)
}

// oldDir is where Overwrite moves the previous target while swapping.
func oldDir(target, jobID string) string {
	t := filepath.Clean(target)
	return filepath.Join(filepath.Dir(t), "."+filepath.Base(t)+".sluice-old-"+jobID)
}

func checkJobID(jobID string) error {
	if jobID == "" || strings.ContainsAny(jobID, `/\`) || jobID == "." || jobID == ".." {
		return fmt.Errorf("%w: job id %q", ErrInvalidOptions, jobID)
	}
	return nil
}

// Commit publishes StagingDir(target, jobID) as target according to mode;
// see the package doc for the protocol. On error target is as it was before
// (except a crash in Append; see Abort) and the staging dir is kept: retry
// Commit or call Abort. Committing a job that target already records as
// committed is a no-op.
func Commit(target, jobID string, mode Mode) error {
	if err := checkJobID(jobID); err != nil {
		return err
	}
	if mode < ErrorIfExists || mode > Append {
		return fmt.Errorf("%w: mode %v", ErrInvalidOptions, mode)
	}
	target = filepath.Clean(target)
	staging := StagingDir(target, jobID)
	if err := recoverOld(target, jobID); err != nil {
		return err
	}
	if _, err := os.Stat(staging); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("parquet sink: commit %s: %w", target, err)
		}
		if committed(target, jobID) {
			return nil
		}
		// A job whose tasks wrote nothing still publishes an empty target.
		if err := os.Mkdir(staging, 0o755); err != nil {
			return fmt.Errorf("parquet sink: commit %s: %w", target, err)
		}
	}
	exists, empty, err := dirState(target)
	if err != nil {
		return err
	}
	if mode == Append && exists {
		return appendInto(staging, target, jobID)
	}
	if err := writeSuccess(staging, []string{jobID}); err != nil {
		return err
	}
	if err := syncTree(staging); err != nil {
		return err
	}
	parent := filepath.Dir(target)
	switch {
	case !exists:
	case mode == ErrorIfExists && !empty:
		return fmt.Errorf("%w: %s", ErrTargetExists, target)
	case mode == ErrorIfExists:
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("parquet sink: commit %s: %w", target, err)
		}
	case mode == Overwrite:
		old := oldDir(target, jobID)
		if err := os.Rename(target, old); err != nil {
			return fmt.Errorf("parquet sink: commit %s: move old target aside: %w", target, err)
		}
		if err := os.Rename(staging, target); err != nil {
			if rerr := os.Rename(old, target); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restore old target from %s: %w", old, rerr))
			}
			return fmt.Errorf("parquet sink: commit %s: %w", target, err)
		}
		if err := syncDir(parent); err != nil {
			return err
		}
		// The new target is published; a failure here only leaves garbage
		// that Abort or the next Commit of this job removes.
		os.RemoveAll(old)
		return nil
	}
	if err := os.Rename(staging, target); err != nil {
		return fmt.Errorf("parquet sink: commit %s: %w", target, err)
	}
	return syncDir(parent)
}

// appendInto hard-links every staged file into target under a name holding
// jobID, then rewrites _SUCCESS and removes the staging dir. Links (not
// renames) keep the staging dir whole until the end, so a failure can undo
// exactly the links it made.
func appendInto(staging, target, jobID string) error {
	prev, _ := readSuccess(target)
	if slices.Contains(prev, jobID) {
		return removeStaging(staging, target)
	}
	files, err := stagedFiles(staging)
	if err != nil {
		return fmt.Errorf("parquet sink: commit %s: list staging: %w", target, err)
	}
	if err := writeMarker(staging, appendingFile); err != nil {
		return fmt.Errorf("parquet sink: commit %s: %w", target, err)
	}
	var linked, made []string
	undo := func(err error) error {
		for _, p := range linked {
			os.Remove(p)
		}
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i])
		}
		return fmt.Errorf("parquet sink: commit %s: %w", target, err)
	}
	touched := map[string]bool{target: true}
	for _, rel := range files {
		dir := filepath.Join(target, filepath.Dir(rel))
		if !touched[dir] {
			m, err := mkdirsIn(target, filepath.Dir(rel))
			made = append(made, m...)
			if err != nil {
				return undo(err)
			}
			touched[dir] = true
		}
		dest := filepath.Join(target, appendedName(rel, jobID))
		src := filepath.Join(staging, rel)
		if err := os.Link(src, dest); err != nil {
			if errors.Is(err, fs.ErrExist) && sameFile(src, dest) {
				continue // linked by an earlier, interrupted Commit of this job
			}
			return undo(err)
		}
		linked = append(linked, dest)
	}
	for dir := range touched {
		if err := syncDir(dir); err != nil {
			return undo(err)
		}
	}
	if err := writeSuccess(target, append(prev, jobID)); err != nil {
		return undo(err)
	}
	return removeStaging(staging, target)
}

func removeStaging(staging, target string) error {
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("parquet sink: remove staging of %s: %w", target, err)
	}
	return syncDir(filepath.Dir(target))
}

// Abort removes the staging dir of jobID. It also repairs what a crash in
// the middle of Commit left behind: a target moved aside by Overwrite is
// moved back, and files an interrupted Append linked into target (not
// recorded in _SUCCESS) are removed. It is a no-op for a committed job.
func Abort(target, jobID string) error {
	if err := checkJobID(jobID); err != nil {
		return err
	}
	target = filepath.Clean(target)
	if err := recoverOld(target, jobID); err != nil {
		return err
	}
	var errs []error
	staging := StagingDir(target, jobID)
	if exists(filepath.Join(staging, appendingFile)) && !committed(target, jobID) {
		// An Append commit of this job stopped half way: unlink what it
		// linked into target before the staging dir (and its marker) goes.
		files, err := stagedFiles(staging)
		if err != nil {
			return fmt.Errorf("parquet sink: abort %s: list staging: %w", target, err)
		}
		for _, rel := range files {
			dest := filepath.Join(target, appendedName(rel, jobID))
			if sameFile(filepath.Join(staging, rel), dest) {
				if err := os.Remove(dest); err != nil {
					errs = append(errs, fmt.Errorf("parquet sink: abort %s: %w", target, err))
				}
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	if err := os.RemoveAll(staging); err != nil {
		errs = append(errs, fmt.Errorf("parquet sink: abort %s: %w", target, err))
	}
	return errors.Join(errs...)
}

// recoverOld finishes or undoes an Overwrite that crashed between its two
// renames: with target missing the old one goes back; with both present
// the swap happened and the old one is garbage.
func recoverOld(target, jobID string) error {
	old := oldDir(target, jobID)
	if _, err := os.Lstat(old); err != nil {
		return nil
	}
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(old, target); err != nil {
			return fmt.Errorf("parquet sink: restore %s from %s: %w", target, old, err)
		}
		return syncDir(filepath.Dir(target))
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("parquet sink: remove %s: %w", old, err)
	}
	return nil
}

func committed(target, jobID string) bool {
	jobs, err := readSuccess(target)
	return err == nil && slices.Contains(jobs, jobID)
}

// readSuccess returns the jobs recorded in target/_SUCCESS; an empty
// _SUCCESS (as Spark writes) records none.
func readSuccess(target string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(target, successFile))
	if err != nil {
		return nil, err
	}
	var body successBody
	if len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			return nil, nil
		}
	}
	return body.Jobs, nil
}

// writeSuccess writes dir/_SUCCESS via temp file, fsync and rename.
func writeSuccess(dir string, jobs []string) error {
	b, _ := json.Marshal(successBody{Writer: "sluice", Jobs: jobs})
	tmp := filepath.Join(dir, "._SUCCESS.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("parquet sink: write %s: %w", filepath.Join(dir, successFile), err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, successFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("parquet sink: write %s: %w", filepath.Join(dir, successFile), err)
	}
	return syncDir(dir)
}

// dirState reports whether path exists and, if it is a directory, whether
// it is empty. A non-directory counts as a non-empty target.
func dirState(path string) (exists, empty bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("parquet sink: commit %s: %w", path, err)
	}
	if !fi.IsDir() {
		return true, false, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return false, false, fmt.Errorf("parquet sink: commit %s: %w", path, err)
	}
	return true, len(ents) == 0, nil
}

// syncTree fsyncs every directory under root (files were synced by their
// writers).
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("parquet sink: fsync %s: %w", path, err)
		}
		if d.IsDir() {
			return syncDir(path)
		}
		return nil
	})
}

// mkdirsIn creates rel under root one level at a time and returns the
// directories it made.
func mkdirsIn(root, rel string) ([]string, error) {
	var made []string
	if rel == "." || rel == "" {
		return nil, nil
	}
	path := root
	for _, seg := range splitPath(filepath.ToSlash(rel)) {
		path = filepath.Join(path, seg)
		err := os.Mkdir(path, 0o755)
		switch {
		case err == nil:
			made = append(made, path)
		case errors.Is(err, fs.ErrExist):
			if fi, serr := os.Stat(path); serr != nil || !fi.IsDir() {
				return made, fmt.Errorf("create dir %s: not a directory", path)
			}
		default:
			return made, fmt.Errorf("create dir %s: %w", path, err)
		}
	}
	return made, nil
}

// stagedFiles lists the data files of a staging dir, relative to it.
func stagedFiles(staging string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(staging, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(staging, path)
		if !d.IsDir() && rel != successFile && rel != appendingFile {
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// appendedName is where Append puts a staged file: the same partition
// directory, the job id added before the extension so names cannot collide.
func appendedName(rel, jobID string) string {
	ext := filepath.Ext(rel)
	return strings.TrimSuffix(rel, ext) + "-" + jobID + ext
}

// writeMarker creates an empty file in dir and makes its name durable.
func writeMarker(dir, name string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(dir)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
