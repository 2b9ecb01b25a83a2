package parquet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var partSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "region", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

// listTree returns every file under root as slash paths, sorted.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestPartitionBy(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Interleaved partitions (gathered with take) and one contiguous run.
	rec := recordFromJSON(t, mem, partSchema, `[
		{"id": 0, "region": "eu/west", "day": 19723, "v": 0.5},
		{"id": 1, "region": "us", "day": 19723, "v": 1.5},
		{"id": 2, "region": "eu/west", "day": 19723},
		{"id": 3, "region": null, "day": 19724, "v": 3.5},
		{"id": 4, "region": "", "day": 19724, "v": 4.5},
		{"id": 5, "region": "us", "day": null, "v": 5.5},
		{"id": 6, "region": "a=b%", "day": 19723, "v": 6.5},
		{"id": 7, "region": "a=b%", "day": 19723, "v": 7.5}
	]`)
	defer rec.Release()
	dir := t.TempDir()
	files := writeFiles(t, mem, dir, partSchema, Options{PartitionBy: []string{"region", "day"}}, rec)
	var paths []string
	var rows int64
	for _, f := range files {
		paths = append(paths, f.Path)
		rows += f.Rows
	}
	slices.Sort(paths)
	want := []string{
		"region=__HIVE_DEFAULT_PARTITION__/day=2024-01-02/part-00000.parquet",
		"region=a%3Db%25/day=2024-01-01/part-00000.parquet",
		"region=eu%2Fwest/day=2024-01-01/part-00000.parquet",
		"region=us/day=2024-01-01/part-00000.parquet",
		"region=us/day=__HIVE_DEFAULT_PARTITION__/part-00000.parquet",
	}
	if !slices.Equal(paths, want) || rows != 8 {
		t.Errorf("files = %q (%d rows), want %q", paths, rows, want)
	}
	if !slices.Equal(listTree(t, dir), want) {
		t.Errorf("tree = %q", listTree(t, dir))
	}
	got := pyRead(t, dir, "hive", "sort")
	jsonEqual(t, "pyarrow hive read", got, `{
		"schema": {"id": "int64", "v": "double", "region": "string", "day": "string"},
		"columns": {
			"id": [0, 1, 2, 3, 4, 5, 6, 7],
			"v": [0.5, 1.5, null, 3.5, 4.5, 5.5, 6.5, 7.5],
			"region": ["eu/west", "us", "eu/west", null, null, "us", "a=b%", "a=b%"],
			"day": ["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", null, "2024-01-01", "2024-01-01"]
		}}`)
}

func TestPartitionByRejects(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		by   []string
		want error
	}{
		{"an unknown column", []string{"nope"}, ErrInvalidOptions},
		{"a float column", []string{"v"}, ErrUnsupportedType},
		{"a repeated column", []string{"id", "id"}, ErrInvalidOptions},
		{"every column", []string{"id", "region", "day", "v"}, ErrUnsupportedType},
		{"every storable column but a float", []string{"id", "region", "day"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFileWriter(mem, dir, "p", partSchema, Options{PartitionBy: tc.by})
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	s := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.StructOf(
		arrow.Field{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true}), Nullable: true}}, nil)
	if _, err := NewFileWriter(mem, dir, "p", s, Options{}); !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), `"s.m"`) {
		t.Errorf("map column: err = %v, want ErrUnsupportedType naming the column", err)
	}
}

// stage writes rows ids [from, from+n) as job jobID's output for target.
func stage(t *testing.T, mem memory.Allocator, target, jobID string, from, n int, opts Options) {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id": %d, "region": "r%d", "day": 19724, "v": %d.5}`, i, i%2, i)
	}
	b.WriteString("]")
	rec := recordFromJSON(t, mem, partSchema, b.String())
	defer rec.Release()
	writeFiles(t, mem, StagingDir(target, jobID), partSchema, opts, rec)
}

func readIDs(t *testing.T, target string, hive bool) []int64 {
	t.Helper()
	args := []string{"sort"}
	if hive {
		args = []string{"hive", "sort"}
	}
	var got struct {
		Columns struct {
			ID []int64 `json:"id"`
		} `json:"columns"`
	}
	out := pyRead(t, target, args...)
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return got.Columns.ID
}

func ids(from, n int) []int64 {
	var out []int64
	for i := from; i < from+n; i++ {
		out = append(out, int64(i))
	}
	return out
}

func successJobs(t *testing.T, target string) []string {
	t.Helper()
	jobs, err := readSuccess(target)
	if err != nil {
		t.Fatalf("_SUCCESS: %v", err)
	}
	return jobs
}

func TestCommitModes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	t.Run("ErrorIfExists publishes a new target with _SUCCESS and no staging", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		stage(t, mem, target, "j1", 0, 10, Options{})
		if exists(target) {
			t.Fatal("target exists before commit")
		}
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		if exists(StagingDir(target, "j1")) {
			t.Error("staging dir left after commit")
		}
		if got := listTree(t, target); !slices.Equal(got, []string{"_SUCCESS", "part-00000.parquet"}) {
			t.Errorf("target = %q", got)
		}
		if got := successJobs(t, target); !slices.Equal(got, []string{"j1"}) {
			t.Errorf("_SUCCESS jobs = %q", got)
		}
		if got := readIDs(t, target, false); !slices.Equal(got, ids(0, 10)) {
			t.Errorf("ids = %v", got)
		}
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Errorf("second commit of the same job: %v, want a no-op", err)
		}
	})

	t.Run("ErrorIfExists fails on a non-empty target and leaves it untouched", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		stage(t, mem, target, "j1", 0, 10, Options{})
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		before := listTree(t, target)
		stage(t, mem, target, "j2", 100, 5, Options{})
		err := Commit(target, "j2", ErrorIfExists)
		if !errors.Is(err, ErrTargetExists) || !strings.Contains(err.Error(), target) {
			t.Fatalf("err = %v, want ErrTargetExists naming %s", err, target)
		}
		if got := listTree(t, target); !slices.Equal(got, before) {
			t.Errorf("target changed: %q", got)
		}
		if got := successJobs(t, target); !slices.Equal(got, []string{"j1"}) {
			t.Errorf("_SUCCESS jobs = %q", got)
		}
		if err := Abort(target, "j2"); err != nil {
			t.Fatal(err)
		}
		if exists(StagingDir(target, "j2")) {
			t.Error("staging left after Abort")
		}
		if got := readIDs(t, target, false); !slices.Equal(got, ids(0, 10)) {
			t.Errorf("ids = %v", got)
		}
	})

	t.Run("ErrorIfExists accepts an empty existing target", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		os.Mkdir(target, 0o755)
		stage(t, mem, target, "j1", 0, 3, Options{})
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, target, false); !slices.Equal(got, ids(0, 3)) {
			t.Errorf("ids = %v", got)
		}
	})

	t.Run("Overwrite replaces the target", func(t *testing.T) {
		parent := t.TempDir()
		target := filepath.Join(parent, "out")
		opts := Options{PartitionBy: []string{"region"}}
		stage(t, mem, target, "j1", 0, 10, opts)
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		stage(t, mem, target, "j2", 100, 4, opts)
		if err := Commit(target, "j2", Overwrite); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, target, true); !slices.Equal(got, ids(100, 4)) {
			t.Errorf("ids = %v", got)
		}
		if got := successJobs(t, target); !slices.Equal(got, []string{"j2"}) {
			t.Errorf("_SUCCESS jobs = %q", got)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("parent holds %v, want only the target", ents)
		}
	})

	t.Run("Overwrite of a missing target creates it", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		stage(t, mem, target, "j1", 0, 2, Options{})
		if err := Commit(target, "j1", Overwrite); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, target, false); !slices.Equal(got, ids(0, 2)) {
			t.Errorf("ids = %v", got)
		}
	})

	t.Run("Append adds files under names holding the job id", func(t *testing.T) {
		parent := t.TempDir()
		target := filepath.Join(parent, "out")
		opts := Options{PartitionBy: []string{"region"}}
		stage(t, mem, target, "j1", 0, 10, opts)
		if err := Commit(target, "j1", Append); err != nil { // a missing target is created
			t.Fatal(err)
		}
		stage(t, mem, target, "j2", 100, 5, opts)
		if err := Commit(target, "j2", Append); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"_SUCCESS",
			"region=r0/part-00000-j2.parquet", "region=r0/part-00000.parquet",
			"region=r1/part-00000-j2.parquet", "region=r1/part-00000.parquet",
		}
		if got := listTree(t, target); !slices.Equal(got, want) {
			t.Errorf("target = %q, want %q", got, want)
		}
		if got := successJobs(t, target); !slices.Equal(got, []string{"j1", "j2"}) {
			t.Errorf("_SUCCESS jobs = %q", got)
		}
		if got := readIDs(t, target, true); !slices.Equal(got, append(ids(0, 10), ids(100, 5)...)) {
			t.Errorf("ids = %v", got)
		}
		if err := Commit(target, "j2", Append); err != nil {
			t.Errorf("second commit of the same job: %v, want a no-op", err)
		}
		if got := listTree(t, target); !slices.Equal(got, want) {
			t.Errorf("after repeated commit target = %q", got)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("parent holds %v, want only the target", ents)
		}
	})

	t.Run("a job that wrote nothing commits an empty target", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		if got := listTree(t, target); !slices.Equal(got, []string{"_SUCCESS"}) {
			t.Errorf("target = %q", got)
		}
	})

	t.Run("Abort leaves nothing", func(t *testing.T) {
		parent := t.TempDir()
		target := filepath.Join(parent, "out")
		stage(t, mem, target, "j1", 0, 10, Options{PartitionBy: []string{"region"}})
		if err := Abort(target, "j1"); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("parent holds %v after Abort", ents)
		}
	})
}

func TestFailuresLeaveNoOutput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	t.Run("a write error mid-job, then Abort, leaves no target and no staging", func(t *testing.T) {
		parent := t.TempDir()
		target := filepath.Join(parent, "out")
		staging := StagingDir(target, "j1")
		w, err := NewFileWriter(mem, staging, "part", partSchema, Options{PartitionBy: []string{"region"}})
		if err != nil {
			t.Fatal(err)
		}
		first := recordFromJSON(t, mem, partSchema, `[{"id": 1, "region": "a"}]`)
		defer first.Release()
		if err := w.Write(first); err != nil {
			t.Fatal(err)
		}
		// A regular file where the next partition directory must go.
		if err := os.WriteFile(filepath.Join(staging, "region=b"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		second := recordFromJSON(t, mem, partSchema, `[{"id": 2, "region": "b"}]`)
		defer second.Release()
		err = w.Write(second)
		if err == nil || !strings.Contains(err.Error(), "region=b") {
			t.Fatalf("Write err = %v, want an error naming region=b", err)
		}
		if err2 := w.Write(first); err2 == nil {
			t.Error("Write after an error succeeded")
		}
		if _, err := w.Close(); err == nil {
			t.Error("Close after a write error returned nil")
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if exists(filepath.Join(staging, "region=a")) {
			t.Error("FileWriter.Abort left region=a")
		}
		if err := Abort(target, "j1"); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("parent holds %v after Abort", ents)
		}
	})

	t.Run("a file where the target's parent must be fails before any output", func(t *testing.T) {
		root := t.TempDir()
		os.WriteFile(filepath.Join(root, "parent"), nil, 0o644)
		target := filepath.Join(root, "parent", "out")
		if _, err := NewFileWriter(mem, StagingDir(target, "j1"), "part", partSchema, Options{}); err == nil {
			t.Error("NewFileWriter under a regular file succeeded")
		}
		if err := Commit(target, "j1", ErrorIfExists); err == nil {
			t.Error("Commit under a regular file succeeded")
		}
	})

	t.Run("a missing target parent fails the commit and creates nothing", func(t *testing.T) {
		root := t.TempDir()
		target := filepath.Join(root, "missing", "out")
		if err := Commit(target, "j1", ErrorIfExists); err == nil {
			t.Error("Commit with a missing parent succeeded")
		}
		if ents, _ := os.ReadDir(root); len(ents) != 0 {
			t.Errorf("root holds %v", ents)
		}
	})

	t.Run("an Append that cannot place a file rolls back every file it placed", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		opts := Options{PartitionBy: []string{"region"}}
		stage(t, mem, target, "j1", 0, 4, opts)
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		// Make region=r1 a regular file in target, after region=r0 sorts first.
		os.RemoveAll(filepath.Join(target, "region=r1"))
		os.WriteFile(filepath.Join(target, "region=r1"), []byte("x"), 0o644)
		before := listTree(t, target)
		stage(t, mem, target, "j2", 100, 4, opts)
		if err := Commit(target, "j2", Append); err == nil {
			t.Fatal("Append over a file in the way succeeded")
		}
		if got := listTree(t, target); !slices.Equal(got, before) {
			t.Errorf("target = %q, want unchanged %q", got, before)
		}
		if !exists(StagingDir(target, "j2")) {
			t.Error("failed commit removed the staging dir; the driver decides between retry and Abort")
		}
		if err := Abort(target, "j2"); err != nil {
			t.Fatal(err)
		}
		if got := listTree(t, target); !slices.Equal(got, before) {
			t.Errorf("after Abort target = %q", got)
		}
	})

	t.Run("Abort after a crash inside Append unlinks what the commit placed", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		opts := Options{PartitionBy: []string{"region"}}
		stage(t, mem, target, "j1", 0, 4, opts)
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		before := listTree(t, target)
		stage(t, mem, target, "j2", 100, 4, opts)
		// The crash: marker written, one of two files linked, nothing else.
		staging := StagingDir(target, "j2")
		if err := writeMarker(staging, appendingFile); err != nil {
			t.Fatal(err)
		}
		rel := filepath.Join("region=r0", "part-00000.parquet")
		if err := os.Link(filepath.Join(staging, rel), filepath.Join(target, appendedName(rel, "j2"))); err != nil {
			t.Fatal(err)
		}
		if err := Abort(target, "j2"); err != nil {
			t.Fatal(err)
		}
		if got := listTree(t, target); !slices.Equal(got, before) {
			t.Errorf("after Abort target = %q, want %q", got, before)
		}
		if exists(staging) {
			t.Error("staging left")
		}
	})

	t.Run("Commit after a crash inside Append completes it", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		opts := Options{PartitionBy: []string{"region"}}
		stage(t, mem, target, "j1", 0, 4, opts)
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		stage(t, mem, target, "j2", 100, 4, opts)
		staging := StagingDir(target, "j2")
		writeMarker(staging, appendingFile)
		rel := filepath.Join("region=r0", "part-00000.parquet")
		os.Link(filepath.Join(staging, rel), filepath.Join(target, appendedName(rel, "j2")))
		if err := Commit(target, "j2", Append); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, target, true); !slices.Equal(got, append(ids(0, 4), ids(100, 4)...)) {
			t.Errorf("ids = %v", got)
		}
		if got := successJobs(t, target); !slices.Equal(got, []string{"j1", "j2"}) {
			t.Errorf("_SUCCESS jobs = %q", got)
		}
	})

	t.Run("Abort after a crash inside Overwrite restores the old target", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "out")
		stage(t, mem, target, "j1", 0, 4, Options{})
		if err := Commit(target, "j1", ErrorIfExists); err != nil {
			t.Fatal(err)
		}
		stage(t, mem, target, "j2", 100, 4, Options{})
		// The crash: target moved aside, staging not yet renamed in.
		if err := os.Rename(target, oldDir(target, "j2")); err != nil {
			t.Fatal(err)
		}
		if err := Abort(target, "j2"); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, target, false); !slices.Equal(got, ids(0, 4)) {
			t.Errorf("ids = %v", got)
		}
		if exists(oldDir(target, "j2")) || exists(StagingDir(target, "j2")) {
			t.Error("Abort left the old or staging dir")
		}
	})
}
