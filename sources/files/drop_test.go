package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/parquet"
)

func TestBadFilePolicyConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"an unknown bad-file policy", func(c *Config) { c.BadFiles = "ignore" }, `BadFiles "ignore": want fail, skip or quarantine`},
		{"quarantine without a directory", func(c *Config) { c.BadFiles = BadFilesQuarantine }, `needs QuarantineDir`},
		{"quarantine to object storage", func(c *Config) { c.BadFiles, c.QuarantineDir = BadFilesQuarantine, "s3://b/q" }, `want a local directory`},
		{"an unknown offsets-gone policy", func(c *Config) { c.OffsetsGone = "ignore" }, `OffsetsGone "ignore": want fail or skip`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Dir: "in", LogDir: "log"}
			tc.edit(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// A quarantine recorded but not carried out (a crash between the record and
// the move) is finished by the next Splits of the batch, whatever the
// policy is then; a file quarantined already is not an error.
func TestQuarantineRecordedBeforeTheMoveIsFinishedByTheReRun(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	put(t, f.dir, "a.parquet", 1, rows("a", 1)...)
	put(t, f.dir, "b.parquet", 2, otherRow{ID: "x"})
	put(t, f.dir, "c.parquet", 3, rows("c", 3)...)
	qdir := filepath.Join(t.TempDir(), "q")
	s := f.open(t, nil)
	end := latest(t, s, `{"files":0}`)
	if err := s.drop(dropped{Index: 1, Name: "b.parquet", Kind: sources.DropQuarantined, Reason: "test", To: filepath.Join(qdir, "b.parquet")}); err != nil {
		t.Fatal(err)
	}
	// A new process, with the default policies, re-runs the batch.
	s = f.open(t, nil)
	for run := 0; run < 2; run++ {
		if got := readAll(t, mem, s, `{"files":0}`, end); strings.Join(got, ",") != "1:a1,3:c3" {
			t.Fatalf("run %d read %v", run, got)
		}
	}
	if _, err := os.Stat(filepath.Join(qdir, "b.parquet")); err != nil {
		t.Errorf("not moved to quarantine: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "b.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("still in the input directory: %v", err)
	}
	if d := s.Drops(sources.Offset(`{"files":0}`), sources.Offset(end)); len(d) != 1 || d[0].Kind != sources.DropQuarantined || d[0].Input != filepath.Join(f.dir, "b.parquet") {
		t.Errorf("Drops = %+v", d)
	}
}

// A damaged decision record is an error naming it, never a silent re-read
// of the file.
func TestACorruptDropRecordIsAnErrorNamingIt(t *testing.T) {
	f := newFixture(t)
	put(t, f.dir, "a.parquet", 1, rows("a", 1)...)
	s := f.open(t, nil)
	latest(t, s, `{"files":0}`)
	if err := s.drop(dropped{Index: 0, Name: "a.parquet", Kind: sources.DropSkipped, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.logDir, "dropped-0.json")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), "test", "tost", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	_, err := New(cfg)
	if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), p) {
		t.Errorf("New with a damaged record: %v, want ErrCorruptLog naming %s", err, p)
	}
}

// Only a file's own fault is a bad file a policy may skip for good; an
// I/O error or a refused permission fails the batch whatever the policy.
func TestOnlyAFilesOwnFaultIsABadFile(t *testing.T) {
	for _, c := range []struct {
		err error
		bad bool
	}{
		{fmt.Errorf("open x.parquet: %w: no PAR1 magic at end", parquet.ErrCorrupt), true},
		{fmt.Errorf("x.parquet: %w: 3 bytes", parquet.ErrNotParquet), true},
		{fmt.Errorf("x.parquet: %w: column \"a\"", parquet.ErrSchemaConflict), true},
		{fmt.Errorf("read x.parquet: %w", syscall.EIO), false},
		{fmt.Errorf("open x.parquet: %w", fs.ErrPermission), false},
		{context.Canceled, false},
	} {
		if got := isBadFile(c.err); got != c.bad {
			t.Errorf("isBadFile(%v) = %v, want %v", c.err, got, c.bad)
		}
	}
}
