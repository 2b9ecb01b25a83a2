package files

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/internal/vfs"
	_ "github.com/sluicedata/sluice/internal/vfs/blobfs" // s3:// for vfs.Open
	"github.com/sluicedata/sluice/internal/vfs/vfstest"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/parquet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type row struct {
	ID   int64  `parquet:"id"`
	Name string `parquet:"name"`
}

type otherRow struct {
	ID string `parquet:"id"`
}

var base = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// put writes a Parquet file of rows the way a careful writer does (a hidden
// temp name renamed into place), with modification time base+age.
func put[T any](t *testing.T, dir, name string, age time.Duration, rows ...T) {
	t.Helper()
	tmp := filepath.Join(dir, ".tmp-"+name)
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	w := pq.NewGenericWriter[T](f, pq.MaxRowsPerRowGroup(2))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, base.Add(age), base.Add(age)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func rows(prefix string, ids ...int64) []row {
	var out []row
	for _, id := range ids {
		out = append(out, row{ID: id, Name: fmt.Sprintf("%s%d", prefix, id)})
	}
	return out
}

type fixture struct {
	dir, logDir string
	cfg         Config
}

func newFixture(t *testing.T) *fixture {
	root := t.TempDir()
	f := &fixture{dir: filepath.Join(root, "in"), logDir: filepath.Join(root, "checkpoint", "sources", "files")}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.cfg = Config{Dir: f.dir, LogDir: f.logDir, SettleDelay: time.Millisecond}
	return f
}

func (f *fixture) open(t *testing.T, edit func(*Config)) *Source {
	t.Helper()
	cfg := f.cfg
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func latest(t *testing.T, s sources.Stream, start string) string {
	t.Helper()
	end, err := s.Latest(context.Background(), sources.Offset(start))
	if err != nil {
		t.Fatalf("latest(%s): %v", start, err)
	}
	return string(end)
}

// readAll renders the rows of (start, end] as "id:name" cells.
func readAll(t *testing.T, mem memory.Allocator, s sources.Stream, start, end string) []string {
	t.Helper()
	splits, err := s.Splits(context.Background(), sources.Offset(start), sources.Offset(end))
	if err != nil {
		t.Fatalf("splits(%s, %s): %v", start, end, err)
	}
	var out []string
	for _, sp := range splits {
		n := int64(0)
		err := sp.Read(context.Background(), mem, func(r arrow.Record) error {
			defer r.Release()
			n += r.NumRows()
			if !r.Schema().Equal(s.Schema()) {
				t.Errorf("record schema %s, want %s", r.Schema(), s.Schema())
			}
			for i := 0; i < int(r.NumRows()); i++ {
				var cells []string
				for _, c := range r.Columns() {
					cells = append(cells, c.ValueStr(i))
				}
				out = append(out, strings.Join(cells, ":"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != sp.Rows() {
			t.Errorf("split said %d rows, read %d", sp.Rows(), n)
		}
	}
	return out
}

func TestPicksUpFilesAddedBetweenBatches(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	put(t, f.dir, "b.parquet", time.Minute, rows("b", 3, 4)...)
	put(t, f.dir, "a.parquet", 2*time.Minute, rows("a", 1, 2, 5)...)
	put(t, f.dir, "_SUCCESS", 0, rows("x", 9)...)
	s := f.open(t, nil)

	end := latest(t, s, `{"files":0}`)
	if end != `{"files":2}` {
		t.Fatalf("first batch ends at %s, want 2 files", end)
	}
	// b is older, so it comes first although a sorts first by name.
	got := readAll(t, mem, s, `{"files":0}`, end)
	if want := "[3:b3 4:b4 1:a1 2:a2 5:a5]"; fmt.Sprint(got) != want {
		t.Errorf("batch 1 rows %v, want %s", got, want)
	}
	if again := latest(t, s, end); again != end {
		t.Errorf("latest with nothing new = %s, want %s", again, end)
	}
	put(t, f.dir, "c.parquet", 0, rows("c", 6)...) // older than both: still after them
	end2 := latest(t, s, end)
	if end2 != `{"files":3}` {
		t.Fatalf("second batch ends at %s, want 3", end2)
	}
	if got := readAll(t, mem, s, end, end2); fmt.Sprint(got) != "[6:c6]" {
		t.Errorf("batch 2 rows %v, want the new file only", got)
	}
}

func TestMaxFilesPerBatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	for i := range 3 {
		put(t, f.dir, fmt.Sprintf("p%d.parquet", i), time.Duration(i)*time.Second, rows("p", int64(i))...)
	}
	s := f.open(t, func(c *Config) { c.MaxFilesPerBatch = 2 })
	var ends []string
	start := `{"files":0}`
	var all []string
	for range 3 {
		end := latest(t, s, start)
		ends = append(ends, end)
		all = append(all, readAll(t, mem, s, start, end)...)
		start = end
	}
	if got := strings.Join(ends, " "); got != `{"files":2} {"files":3} {"files":3}` {
		t.Errorf("batch ends %s", got)
	}
	if fmt.Sprint(all) != "[0:p0 1:p1 2:p2]" {
		t.Errorf("rows %v", all)
	}
}

func TestRestartGivesTheSameSplits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	put(t, f.dir, "x.parquet", 0, rows("x", 1, 2, 3)...)
	put(t, f.dir, "y.parquet", time.Second, rows("y", 4)...)
	s := f.open(t, func(c *Config) { c.MaxFilesPerBatch = 1 })
	e1 := latest(t, s, `{"files":0}`)
	e2 := latest(t, s, e1)
	first := readAll(t, mem, s, `{"files":0}`, e2)
	again := readAll(t, mem, s, `{"files":0}`, e2)

	// New files arrive, with older times than the logged ones; the query
	// restarts with a new source over the same log.
	put(t, f.dir, "a.parquet", -time.Hour, rows("a", 7)...)
	r := f.open(t, nil)
	after := readAll(t, mem, r, `{"files":0}`, e2)
	if fmt.Sprint(first) != fmt.Sprint(again) || fmt.Sprint(first) != fmt.Sprint(after) {
		t.Fatalf("rows %v, again %v, after restart %v", first, again, after)
	}
	if fmt.Sprint(first) != "[1:x1 2:x2 3:x3 4:y4]" {
		t.Errorf("rows %v", first)
	}
	if got := latest(t, r, e2); got != `{"files":3}` {
		t.Errorf("after restart the new file ends at %s, want 3", got)
	}
	// A restarted source that is asked again for a batch the log already
	// holds returns the logged end, not a new listing.
	r2 := f.open(t, func(c *Config) { c.MaxFilesPerBatch = 1 })
	if got := latest(t, r2, e1); got != e2 {
		t.Errorf("latest(%s) from the log = %s, want %s", e1, got, e2)
	}
}

func TestOnlyCompleteFilesAreTaken(t *testing.T) {
	f := newFixture(t)
	put(t, f.dir, "done.parquet", 0, rows("d", 1)...)
	growing := filepath.Join(f.dir, "growing.parquet")
	if err := os.WriteFile(growing, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, ".hidden.parquet"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "empty.parquet"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := f.open(t, nil)
	s.betweenListings = func() {
		fh, err := os.OpenFile(growing, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.Write([]byte("more"))
		fh.Close()
	}
	if got := latest(t, s, `{"files":0}`); got != `{"files":1}` {
		t.Fatalf("latest = %s, want only the finished file", got)
	}
	if s.log[0].Name != "done.parquet" {
		t.Errorf("logged %v", s.log)
	}
	// The writer finishes: the file is taken by the next call.
	s.betweenListings = nil
	if err := os.Remove(growing); err != nil {
		t.Fatal(err)
	}
	put(t, f.dir, "growing.parquet", time.Second, rows("g", 2)...)
	if got := latest(t, s, `{"files":1}`); got != `{"files":2}` {
		t.Fatalf("latest = %s, want the finished file", got)
	}
}

func TestErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	tests := []struct {
		name  string
		run   func(t *testing.T, f *fixture) error
		want  error
		names string // the error must contain this
	}{
		{"an offset that is not JSON is a bad offset", func(t *testing.T, f *fixture) error {
			_, err := f.open(t, nil).Latest(ctx, sources.Offset(`files=1`))
			return err
		}, sources.ErrBadOffset, `"files"`},
		{"an offset of another source is a bad offset", func(t *testing.T, f *fixture) error {
			_, err := f.open(t, nil).Splits(ctx, sources.Offset(`{"pos":0}`), sources.Offset(`{"files":1}`))
			return err
		}, sources.ErrBadOffset, `{\"pos\":0}`},
		{"an offset past the log is a bad offset", func(t *testing.T, f *fixture) error {
			_, err := f.open(t, nil).Splits(ctx, sources.Offset(`{"files":0}`), sources.Offset(`{"files":5}`))
			return err
		}, sources.ErrBadOffset, "5"},
		{"an end before the start is a bad offset", func(t *testing.T, f *fixture) error {
			s := f.open(t, nil)
			latest(t, s, `{"files":0}`)
			_, err := s.Splits(ctx, sources.Offset(`{"files":1}`), sources.Offset(`{"files":0}`))
			return err
		}, sources.ErrBadOffset, "before"},
		{"a file with a conflicting column type is an error naming it", func(t *testing.T, f *fixture) error {
			s := f.open(t, nil)
			put(t, f.dir, "bad.parquet", time.Hour, otherRow{ID: "x"})
			end := latest(t, s, `{"files":0}`)
			_, err := s.Splits(ctx, sources.Offset(`{"files":0}`), sources.Offset(end))
			return err
		}, parquet.ErrSchemaConflict, "bad.parquet"},
		{"a file deleted before its batch ran is gone", func(t *testing.T, f *fixture) error {
			s := f.open(t, nil)
			end := latest(t, s, `{"files":0}`)
			os.Remove(filepath.Join(f.dir, "first.parquet"))
			_, err := s.Splits(ctx, sources.Offset(`{"files":0}`), sources.Offset(end))
			return err
		}, sources.ErrOffsetGone, "first.parquet"},
		{"a file deleted after planning fails its read as gone", func(t *testing.T, f *fixture) error {
			s := f.open(t, nil)
			end := latest(t, s, `{"files":0}`)
			splits, err := s.Splits(ctx, sources.Offset(`{"files":0}`), sources.Offset(end))
			if err != nil {
				return err
			}
			os.Remove(filepath.Join(f.dir, "first.parquet"))
			return splits[0].Read(ctx, mem, func(r arrow.Record) error { r.Release(); return nil })
		}, sources.ErrOffsetGone, "first.parquet"},
		{"a corrupt log entry is an error naming it", func(t *testing.T, f *fixture) error {
			latest(t, f.open(t, nil), `{"files":0}`)
			p := filepath.Join(f.logDir, "1.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "first", "fxrst", 1)), 0o644)
			_, err := New(f.cfg)
			return err
		}, ErrCorruptLog, "1.json"},
		{"a log with a missing entry is corrupt", func(t *testing.T, f *fixture) error {
			s := f.open(t, func(c *Config) { c.MaxFilesPerBatch = 1 })
			put(t, f.dir, "second.parquet", time.Hour, rows("s", 2)...)
			latest(t, s, latest(t, s, `{"files":0}`))
			os.Remove(filepath.Join(f.logDir, "1.json"))
			_, err := New(f.cfg)
			return err
		}, ErrCorruptLog, "2.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			put(t, f.dir, "first.parquet", 0, rows("f", 1)...)
			err := tc.run(t, f)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("error %q does not contain %q", err, tc.names)
			}
		})
	}
}

func TestSchema(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	if _, err := New(f.cfg); !errors.Is(err, ErrNoSchema) {
		t.Errorf("an empty directory without a schema: %v, want ErrNoSchema", err)
	}
	put(t, f.dir, "a.parquet", 0, rows("a", 1)...)
	s := f.open(t, nil)
	if got := s.Schema().String(); !strings.Contains(got, "id: type=int64") || !strings.Contains(got, "name: type=utf8") {
		t.Errorf("inferred schema %s", got)
	}
	// An explicit schema projects: a subset of the columns, in its order,
	// with a column the files lack read as nulls.
	want := arrow.NewSchema([]arrow.Field{
		{Name: "extra", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	p := f.open(t, func(c *Config) { c.Schema = want; c.LogDir += "-p" })
	end := latest(t, p, `{"files":0}`)
	if got := readAll(t, mem, p, `{"files":0}`, end); fmt.Sprint(got) != "[(null):1]" {
		t.Errorf("projected rows %v", got)
	}
}

func TestBoundStopsListing(t *testing.T) {
	f := newFixture(t)
	put(t, f.dir, "a.parquet", 0, rows("a", 1)...)
	put(t, f.dir, "b.parquet", time.Second, rows("b", 2)...)
	s := f.open(t, func(c *Config) { c.MaxFilesPerBatch = 1 })
	if err := s.Bound(context.Background()); err != nil {
		t.Fatal(err)
	}
	put(t, f.dir, "c.parquet", 2*time.Second, rows("c", 3)...)
	var ends []string
	start := `{"files":0}`
	for range 3 {
		start = latest(t, s, start)
		ends = append(ends, start)
	}
	if got := strings.Join(ends, " "); got != `{"files":1} {"files":2} {"files":2}` {
		t.Errorf("bounded batch ends %s", got)
	}
}

func TestLogGoesThroughFS(t *testing.T) {
	f := newFixture(t)
	put(t, f.dir, "a.parquet", 0, rows("a", 1)...)
	failing := failFS{FS: vfs.OS{}}
	s := f.open(t, func(c *Config) { c.FS = failing })
	if _, err := s.Latest(context.Background(), sources.Offset(`{"files":0}`)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("latest with a failing log write: %v", err)
	}
	// Nothing was assigned: a working source takes the file as batch 1.
	if got := latest(t, f.open(t, nil), `{"files":0}`); got != `{"files":1}` {
		t.Errorf("latest = %s", got)
	}
}

// A LogDir given as a URL puts the seen-file log in that bucket (not in a
// local directory named after the URL, which a restart elsewhere would not
// find: the files would be read again), and a restarted source resumes
// from it.
func TestALogDirURLKeepsTheLogInTheBucket(t *testing.T) {
	f := newFixture(t)
	put(t, f.dir, "a.parquet", 0, rows("a", 1)...)
	s3 := vfstest.NewS3(t, "ckpts")
	logURL := vfs.Join(s3.URL("q/checkpoint"), "sources", "files")
	s := f.open(t, func(c *Config) { c.LogDir = logURL })
	defer s.Close()
	e1 := latest(t, s, `{"files":0}`)
	if e1 != `{"files":1}` {
		t.Fatalf("latest = %s", e1)
	}
	if keys := s3.Keys("q/checkpoint/sources/files/"); len(keys) != 1 {
		t.Fatalf("log objects in the bucket: %v, want one", keys)
	}
	if ents, _ := os.ReadDir("."); len(ents) > 0 {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "s3") {
				t.Fatalf("a local %q was created for the URL log dir", e.Name())
			}
		}
	}
	// A new file arrives; a restarted source knows a.parquet from the
	// bucket's log and takes only the new one.
	put(t, f.dir, "b.parquet", time.Second, rows("b", 2)...)
	r := f.open(t, func(c *Config) { c.LogDir = logURL })
	defer r.Close()
	if got := latest(t, r, e1); got != `{"files":2}` {
		t.Fatalf("latest after restart = %s, want {\"files\":2}", got)
	}
	if _, err := New(Config{Dir: f.dir, LogDir: "s3:///no-bucket"}); err == nil || !strings.Contains(err.Error(), "no bucket") {
		t.Fatalf("New with a bad log URL: %v", err)
	}
}

type failFS struct{ vfs.FS }

func (failFS) WriteFileAtomic(path string, _ []byte) error {
	return fmt.Errorf("vfs: write %s: disk full", path)
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Dir: "x"}, {Dir: "x", LogDir: "y", MaxFilesPerBatch: -1}} {
		if _, err := New(c); err == nil {
			t.Errorf("config %s accepted", c)
		}
	}
}

func TestImportsNoEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"/dataset", "/scheduler", "/microbatch"} {
			if strings.HasPrefix(p, "github.com/sluicedata/sluice"+bad) {
				t.Errorf("sources/files depends on %s", p)
			}
		}
	}
}

// Backlog counts the files a rate-limited batch left for later, those in
// the log and those the listing found but the cap kept out of it.
func TestBacklogCountsTheFilesLeftForLaterBatches(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		put(t, f.dir, fmt.Sprintf("p%d.parquet", i), time.Duration(i)*time.Second, rows("p", int64(i))...)
	}
	s := f.open(t, func(c *Config) { c.MaxFilesPerBatch = 2 })
	var _ sources.Backlog = s
	start := `{"files":0}`
	var got []string
	for range 4 {
		end := latest(t, s, start)
		l, lag, per, err := s.Backlog(context.Background(), sources.Offset(end))
		if err != nil {
			t.Fatal(err)
		}
		if per != nil {
			t.Errorf("per partition %v; a directory has none", per)
		}
		got = append(got, fmt.Sprintf("%s lag=%d latest=%s", end, lag, l))
		start = end
	}
	want := []string{`{"files":2} lag=3 latest={"files":5}`, `{"files":4} lag=1 latest={"files":5}`,
		`{"files":5} lag=0 latest={"files":5}`, `{"files":5} lag=0 latest={"files":5}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("backlog per batch:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMaxRowsPerBatchSplitsFilesByRowGroups: under a row cap a batch takes
// whole row groups while they fit, so a file spans batches; every row is
// read once, in log order, and a restarted source without the cap reads
// the same rows for each recorded batch.
func TestMaxRowsPerBatchSplitsFilesByRowGroups(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	// Row groups of two rows (put): x 2+2+1, y 1, z 2+2.
	put(t, f.dir, "x.parquet", 0, rows("x", 1, 2, 3, 4, 5)...)
	put(t, f.dir, "y.parquet", time.Second, rows("y", 6)...)
	put(t, f.dir, "z.parquet", 2*time.Second, rows("z", 7, 8, 9, 10)...)
	s := f.open(t, func(c *Config) { c.MaxRowsPerBatch = 3 })
	start := `{"files":0}`
	var ends []string
	var batches [][]string
	for range 5 {
		end := latest(t, s, start)
		ends = append(ends, end)
		got := readAll(t, mem, s, start, end)
		if len(got) > 3 {
			t.Errorf("batch (%s, %s] has %d rows, over the cap of 3", start, end, len(got))
		}
		batches = append(batches, got)
		start = end
	}
	want := `{"files":0,"row_groups":1} {"files":1} {"files":2,"row_groups":1} {"files":3} {"files":3}`
	if got := strings.Join(ends, " "); got != want {
		t.Errorf("batch ends %s, want %s", got, want)
	}
	if got := fmt.Sprint(batches); got != "[[1:x1 2:x2] [3:x3 4:x4 5:x5] [6:y6 7:z7 8:z8] [9:z9 10:z10] []]" {
		t.Errorf("batches %s", got)
	}
	r := f.open(t, nil)
	prev := `{"files":0}`
	for i, end := range ends {
		if got := readAll(t, mem, r, prev, end); fmt.Sprint(got) != fmt.Sprint(batches[i]) {
			t.Errorf("after restart batch (%s, %s] reads %v, want %v", prev, end, got, batches[i])
		}
		prev = end
	}
	// One row group over the cap is still taken: a batch always moves on.
	big := f.open(t, func(c *Config) { c.MaxRowsPerBatch = 1 })
	if got := latest(t, big, `{"files":0}`); got != `{"files":0,"row_groups":1}` {
		t.Errorf("cap of 1 row: first batch ends at %s", got)
	}
	// Offsets that name no row group of the log.
	for _, off := range []string{`{"files":0,"row_groups":-1}`, `{"files":3,"row_groups":1}`} {
		if _, err := s.Latest(context.Background(), sources.Offset(off)); !errors.Is(err, sources.ErrBadOffset) {
			t.Errorf("Latest(%s): %v, want ErrBadOffset", off, err)
		}
	}
	if _, err := s.Splits(context.Background(), sources.Offset(`{"files":0}`), sources.Offset(`{"files":1,"row_groups":2}`)); !errors.Is(err, sources.ErrBadOffset) || !strings.Contains(err.Error(), "y.parquet") {
		t.Errorf("Splits past y's one row group: %v, want ErrBadOffset naming y.parquet", err)
	}
	// A start past its file's row groups (a foreign offset): Latest moves
	// on, the batch's Splits names the file.
	past := `{"files":0,"row_groups":7}`
	end := latest(t, s, past)
	if _, err := s.Splits(context.Background(), sources.Offset(past), sources.Offset(end)); !errors.Is(err, sources.ErrBadOffset) || !strings.Contains(err.Error(), "x.parquet") {
		t.Errorf("Splits(%s, %s): %v, want ErrBadOffset naming x.parquet", past, end, err)
	}
}

// TestAFileGoneBetweenItsBatchesIsReportedOnce: a file some batches read
// part of, deleted after the first, is recorded lost by the next and
// reported by that batch only.
func TestAFileGoneBetweenItsBatchesIsReportedOnce(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	f := newFixture(t)
	put(t, f.dir, "x.parquet", 0, rows("x", 1, 2, 3, 4, 5)...)
	s := f.open(t, func(c *Config) { c.MaxRowsPerBatch = 2; c.OffsetsGone = OffsetsGoneSkip })
	e1 := latest(t, s, `{"files":0}`)
	if got := readAll(t, mem, s, `{"files":0}`, e1); fmt.Sprint(got) != "[1:x1 2:x2]" {
		t.Fatalf("batch 1 rows %v", got)
	}
	if err := os.Remove(filepath.Join(f.dir, "x.parquet")); err != nil {
		t.Fatal(err)
	}
	e2 := latest(t, s, e1)
	e3 := latest(t, s, e2)
	if e1 != `{"files":0,"row_groups":1}` || e2 != `{"files":0,"row_groups":2}` || e3 != `{"files":1}` {
		t.Fatalf("batch ends %s %s %s", e1, e2, e3)
	}
	if got := readAll(t, mem, s, e1, e2); len(got) != 0 {
		t.Errorf("batch 2 read %v of a deleted file", got)
	}
	if got := readAll(t, mem, s, e2, e3); len(got) != 0 {
		t.Errorf("batch 3 read %v of a deleted file", got)
	}
	d1 := s.Drops(sources.Offset(`{"files":0}`), sources.Offset(e1))
	d2 := s.Drops(sources.Offset(e1), sources.Offset(e2))
	d3 := s.Drops(sources.Offset(e2), sources.Offset(e3))
	if len(d1) != 0 || len(d2) != 1 || len(d3) != 0 || d2[0].Kind != sources.DropLost || !strings.HasSuffix(d2[0].Input, "x.parquet") {
		t.Errorf("drops by batch %v / %v / %v, want x lost in batch 2 only", d1, d2, d3)
	}
}
