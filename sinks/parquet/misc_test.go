package parquet

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestWriteRejects(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	t.Run("a seconds timestamp beyond int64 milliseconds, naming file and column", func(t *testing.T) {
		s := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Second}, Nullable: true}}, nil)
		b := array.NewRecordBuilder(mem, s)
		defer b.Release()
		b.Field(0).(*array.TimestampBuilder).AppendNull()
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(math.MaxInt64 / 100))
		rec := b.NewRecord()
		defer rec.Release()
		w, err := NewFileWriter(mem, t.TempDir(), "part", s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		err = w.Write(rec)
		if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "part-00000.parquet") || !strings.Contains(err.Error(), "ts") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("a record of another schema", func(t *testing.T) {
		rec := recordFromJSON(t, mem, allTypes, `[{}]`)
		defer rec.Release()
		w, err := NewFileWriter(mem, t.TempDir(), "part", partSchema, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		if err := w.Write(rec); !errors.Is(err, ErrSchemaMismatch) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("every column a partition column", func(t *testing.T) {
		s := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		if _, err := NewFileWriter(mem, t.TempDir(), "part", s, Options{PartitionBy: []string{"id"}}); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("a repeated column name", func(t *testing.T) {
		s := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
		if _, err := NewFileWriter(mem, t.TempDir(), "part", s, Options{}); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("bad options", func(t *testing.T) {
		for _, o := range []Options{{Compression: "lzo"}, {RowGroupRows: -1}, {TargetFileBytes: -1}, {PartitionBy: []string{""}}} {
			if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("%+v: err = %v", o, err)
			}
		}
	})

	t.Run("Write after Close", func(t *testing.T) {
		rec := recordFromJSON(t, mem, partSchema, `[{"id": 1}]`)
		defer rec.Release()
		dir := t.TempDir()
		w, _ := NewFileWriter(mem, dir, "part", partSchema, Options{})
		w.Write(rec)
		f1, err1 := w.Close()
		f2, err2 := w.Close()
		if err1 != nil || err2 != nil || len(f1) != 1 || len(f2) != 1 {
			t.Errorf("Close twice: %v %v %v %v", f1, err1, f2, err2)
		}
		if err := w.Write(rec); !errors.Is(err, ErrClosed) {
			t.Errorf("err = %v", err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if got := listTree(t, dir); len(got) != 0 {
			t.Errorf("Abort after Close left %q", got)
		}
	})
}

// Seams never import the engine (STYLE.md habit 11).
func TestImportsNoEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"/dataset", "/scheduler", "/microbatch"} {
			if strings.HasPrefix(p, "github.com/sluicedata/sluice"+bad) {
				t.Errorf("sinks/parquet depends on %s", p)
			}
		}
	}
}

// fullDisk fails writes once limit bytes were written, like a full disk.
type fullDisk struct {
	*os.File
	left int
}

func (f *fullDisk) Write(b []byte) (int, error) {
	if len(b) > f.left {
		n, _ := f.File.Write(b[:f.left])
		f.left = 0
		return n, syscall.ENOSPC
	}
	f.left -= len(b)
	return f.File.Write(b)
}

func TestDiskFullMidJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	parent := t.TempDir()
	target := filepath.Join(parent, "out")
	w, err := NewFileWriter(mem, StagingDir(target, "j1"), "part", partSchema, Options{RowGroupRows: 100, TargetFileBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	w.create = func(path string) (dataFile, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		files++
		if files < 3 {
			return f, nil
		}
		return &fullDisk{File: f, left: 1000}, nil
	}
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id": %d, "region": "r", "v": %d}`, i, i)
	}
	b.WriteString("]")
	rec := recordFromJSON(t, mem, partSchema, b.String())
	defer rec.Release()
	err = w.Write(rec)
	if err == nil {
		_, err = w.Close()
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "part-00002.parquet") {
		t.Fatalf("err = %v, want ENOSPC naming part-00002.parquet", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := Abort(target, "j1"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("parent holds %v", ents)
	}
}
