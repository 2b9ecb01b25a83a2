package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

// Report is what Verify found: how many files it checked and every
// problem, each naming the file (or directory) and what is wrong with it.
type Report struct {
	Dir      string    `json:"dir"`
	Files    int       `json:"files_checked"`
	Problems []Problem `json:"problems"`
}

// Problem is one thing wrong in a checkpoint.
type Problem struct {
	Path    string `json:"path"`
	Problem string `json:"problem"`
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// WriteText writes "ok: N files checked in DIR", or one line per problem
// ("PATH: PROBLEM") and a last line counting them.
func (r *Report) WriteText(w io.Writer) error {
	if r.OK() {
		_, err := fmt.Fprintf(w, "ok: %d files checked in %s\n", r.Files, r.Dir)
		return err
	}
	for _, p := range r.Problems {
		if _, err := fmt.Fprintf(w, "%s: %s\n", p.Path, p.Problem); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d problems in %d files checked in %s\n", len(r.Problems), r.Files, r.Dir)
	return err
}

func (r *Report) add(path, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Path: path, Problem: fmt.Sprintf(format, args...)})
}

// addErr records err as a problem of path, without the "checkpoint: <path>: "
// or "state: " prefix the error repeats.
func (r *Report) addErr(path string, err error) {
	msg := err.Error()
	for _, prefix := range []string{"checkpoint: " + path + ": ", "checkpoint: ", "state: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	msg = strings.Replace(msg, path+": ", "", 1)
	r.add(path, "%s", msg)
}

// Verify checks the checkpoint in dir, reading every file and writing
// none (format.md, "Verify"): each log file's header, version, checksum,
// body and batch number; that each offsets file names metadata.json's query
// and sources; the logs' shape; metadata.json itself; and every state
// file's checksum and metadata, that each operator's state loads at the
// version the next batch reads, and that state directories belong to the
// identity's operators. Problems are in the report; the error is only for
// a directory that cannot be read at all.
func Verify(fsys vfs.FS, dir string) (*Report, error) {
	cp, err := Open(fsys, dir)
	if err != nil {
		return nil, err
	}
	r := &Report{Dir: cp.dir}
	metaPath := filepath.Join(cp.dir, metadataName)
	offsets, oerr := cp.list(offsetsDir)
	commits, cerr := cp.list(commitsDir)
	for _, err := range []error{oerr, cerr} {
		if err != nil {
			return nil, err
		}
	}
	meta, ok, err := cp.readMetadata()
	switch {
	case err != nil:
		r.Files++
		r.addErr(metaPath, err)
	case ok:
		r.Files++
	case len(offsets) > 0 || len(commits) > 0:
		r.add(metaPath, "missing while the logs hold batches (it is written before the first offsets)")
	default:
		r.add(metaPath, "missing: %s is not a checkpoint, or its query never started", cp.dir)
	}
	for _, n := range offsets {
		r.Files++
		path := cp.path(offsetsDir, n)
		e, err := cp.Offsets(n)
		if err != nil {
			r.addErr(path, err)
			continue
		}
		if meta != nil {
			if d := ownerDiff(e, meta); len(d) > 0 {
				r.add(path, "written for another query or other sources than %s (%s)", metadataName, strings.Join(d, "; "))
			}
		}
	}
	for _, n := range commits {
		r.Files++
		if _, err := cp.Commit(n); err != nil {
			r.addErr(cp.path(commitsDir, n), err)
		}
	}
	l, err := cp.layout()
	if err != nil {
		var path string
		for _, d := range []string{filepath.Join(cp.dir, offsetsDir), filepath.Join(cp.dir, commitsDir)} {
			if strings.HasPrefix(err.Error(), "checkpoint: "+d+": ") {
				path = d
			}
		}
		if path == "" {
			path = cp.dir
		}
		r.addErr(path, err)
	}
	if data, err := fsys.ReadFile(filepath.Join(cp.dir, epochName)); err == nil {
		r.Files++
		var e epochEntry
		if err := decode(filepath.Join(cp.dir, epochName), data, &e); err != nil {
			r.addErr(filepath.Join(cp.dir, epochName), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		r.addErr(filepath.Join(cp.dir, epochName), err)
	}
	verifyState(fsys, cp, meta, l, r)
	return r, nil
}

// readMetadata is Metadata without its layout check for a missing file
// (Verify reports the shape on its own) and without the cache.
func (c *Checkpoint) readMetadata() (*Metadata, bool, error) {
	path := filepath.Join(c.dir, metadataName)
	if _, err := c.fs.ReadFile(path); errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	fresh := &Checkpoint{fs: c.fs, dir: c.dir}
	return fresh.Metadata()
}

func verifyState(fsys vfs.FS, cp *Checkpoint, meta *Metadata, l layout, r *Report) {
	dir := filepath.Join(cp.dir, "state")
	// CheckFile reads each file whole; ListFiles would read it first.
	files, err := state.ListNames(fsys, dir)
	if err != nil {
		r.addErr(dir, err)
		return
	}
	mem := memory.NewGoAllocator()
	for _, f := range files {
		r.Files++
		checked, err := state.CheckFile(fsys, f.Path, mem)
		if err != nil {
			r.addErr(f.Path, err)
			continue
		}
		if meta != nil && checked.KeyGroups != meta.KeyGroups {
			r.add(f.Path, "written with %d key groups, %s pins %d", checked.KeyGroups, metadataName, meta.KeyGroups)
		}
	}
	if meta == nil {
		return
	}
	ops := map[string]bool{}
	for _, op := range meta.Identity.Operators {
		ops[op.ID] = true
	}
	// Batch N reads state version N and commits N+1: the next batch reads
	// one past the last commit, and an uncommitted batch may have committed
	// its state already.
	lastCommit, committed := l.lastCommit()
	// The newest batch in either log (the shape may be broken).
	newest, logged := l.lastOffsets()
	if committed && (!logged || lastCommit > newest) {
		newest, logged = lastCommit, true
	}
	byOp := groupState(files)
	for _, op := range slices.Sorted(maps.Keys(byOp)) {
		if !ops[op] {
			r.add(filepath.Join(dir, op), "state of no operator of %s's identity", metadataName)
			continue
		}
		ranges := byOp[op]
		for _, k := range slices.SortedFunc(maps.Keys(ranges), func(a, b [2]int) int { return a[0] - b[0] }) {
			rdir := filepath.Join(dir, op, fmt.Sprintf("%d-%d", k[0], k[1]))
			var latest int64
			for _, f := range ranges[k] {
				latest = max(latest, f.Version)
			}
			if committed {
				if why := state.Loadable(ranges[k], lastCommit+1); why != "" {
					r.add(rdir, "the next batch (%d) cannot load its state: %s", lastCommit+1, why)
				}
			}
			if !logged || latest > newest+1 {
				r.add(rdir, "state version %d is ahead of the logs (%s): state of another run of the query?", latest, l.offsetState())
			}
		}
	}
}
