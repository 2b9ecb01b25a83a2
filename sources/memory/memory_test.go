package memory_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	arrowmem "github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var schema = arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)

// ints builds a record of the given values.
func ints(mem arrowmem.Allocator, vs ...int64) arrow.Record {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(vs, nil)
	return b.NewRecord()
}

// appendOwned appends recs and drops the test's own reference.
func appendOwned(t *testing.T, s *memory.Source, recs ...arrow.Record) {
	t.Helper()
	err := s.Append(recs...)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// read returns the values of (start, end] and the row count of each split.
func read(t *testing.T, s sources.Stream, start, end string) (vals []int64, sizes []int64) {
	t.Helper()
	splits, err := s.Splits(context.Background(), sources.Offset(start), sources.Offset(end))
	if err != nil {
		t.Fatalf("splits(%s, %s): %v", start, end, err)
	}
	for _, sp := range splits {
		sizes = append(sizes, sp.Rows())
		err := sp.Read(context.Background(), arrowmem.DefaultAllocator, func(r arrow.Record) error {
			defer r.Release()
			vals = append(vals, r.Column(0).(*array.Int64).Int64Values()...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return vals, sizes
}

func latest(t *testing.T, s sources.Stream, start string) string {
	t.Helper()
	end, err := s.Latest(context.Background(), sources.Offset(start))
	if err != nil {
		t.Fatalf("latest(%s): %v", start, err)
	}
	return string(end)
}

func TestBatches(t *testing.T) {
	tests := []struct {
		name      string
		max       int64
		wantEnds  []string
		wantSizes [][]int64
	}{
		{"without a cap one batch takes every appended row", 0,
			[]string{`{"pos":6}`, `{"pos":6}`}, [][]int64{{2, 1, 3}, nil}},
		{"a cap of four rows cuts the last record in two", 4,
			[]string{`{"pos":4}`, `{"pos":6}`, `{"pos":6}`}, [][]int64{{2, 1, 1}, {2}, nil}},
		{"a cap of one row makes one-row batches", 1,
			[]string{`{"pos":1}`, `{"pos":2}`, `{"pos":3}`, `{"pos":4}`, `{"pos":5}`, `{"pos":6}`, `{"pos":6}`},
			[][]int64{{1}, {1}, {1}, {1}, {1}, {1}, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := arrowmem.NewCheckedAllocator(arrowmem.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			s, err := memory.New(memory.Config{Schema: schema, MaxRowsPerBatch: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			appendOwned(t, s, ints(mem, 0, 1), ints(mem, 2), ints(mem, 3, 4, 5))
			init, _ := s.Initial(context.Background())
			start := string(init)
			var all []int64
			for i, want := range tc.wantEnds {
				end := latest(t, s, start)
				if end != want {
					t.Fatalf("batch %d: latest(%s) = %s, want %s", i, start, end, want)
				}
				vals, sizes := read(t, s, start, end)
				if fmt.Sprint(sizes) != fmt.Sprint(tc.wantSizes[i]) {
					t.Errorf("batch %d: split sizes %v, want %v", i, sizes, tc.wantSizes[i])
				}
				again, _ := read(t, s, start, end)
				if fmt.Sprint(vals) != fmt.Sprint(again) {
					t.Errorf("batch %d: second read %v, first %v", i, again, vals)
				}
				all = append(all, vals...)
				start = end
			}
			if fmt.Sprint(all) != "[0 1 2 3 4 5]" {
				t.Errorf("rows %v, want 0..5", all)
			}
		})
	}
}

func TestSplitsStayValidAfterAppend(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := memory.New(memory.Config{Schema: schema})
	defer s.Close()
	appendOwned(t, s, ints(mem, 0, 1, 2))
	splits, err := s.Splits(context.Background(), sources.Offset(`{"pos":1}`), sources.Offset(`{"pos":3}`))
	if err != nil {
		t.Fatal(err)
	}
	appendOwned(t, s, ints(mem, 3, 4))
	var got []int64
	for _, sp := range splits {
		if err := sp.Read(context.Background(), mem, func(r arrow.Record) error {
			defer r.Release()
			got = append(got, r.Column(0).(*array.Int64).Int64Values()...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[1 2]" {
		t.Errorf("got %v, want [1 2]", got)
	}
}

func TestCommitDropsRecords(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := memory.New(memory.Config{Schema: schema})
	defer s.Close()
	a, b := ints(mem, 0, 1), ints(mem, 2, 3)
	appendOwned(t, s, a, b)
	ctx := context.Background()
	old, _ := s.Splits(ctx, sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":2}`))
	// Position 3 is inside the second record: only the first is dropped.
	if err := s.Commit(ctx, sources.Offset(`{"pos":3}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Splits(ctx, sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":4}`)); !errors.Is(err, sources.ErrOffsetGone) {
		t.Errorf("splits over a dropped record: %v, want ErrOffsetGone", err)
	}
	if err := old[0].Read(ctx, mem, func(r arrow.Record) error { r.Release(); return nil }); !errors.Is(err, sources.ErrOffsetGone) {
		t.Errorf("reading a split of a dropped record: %v, want ErrOffsetGone", err)
	}
	if vals, _ := read(t, s, `{"pos":2}`, `{"pos":4}`); fmt.Sprint(vals) != "[2 3]" {
		t.Errorf("rows after commit %v, want [2 3]", vals)
	}
}

func TestRejects(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := memory.New(memory.Config{Name: "in", Schema: schema})
	defer s.Close()
	appendOwned(t, s, ints(mem, 0, 1))
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"an offset that is not JSON is a bad offset", func() error {
			_, err := s.Latest(ctx, sources.Offset(`pos=1`))
			return err
		}, sources.ErrBadOffset},
		{"an offset with another source's fields is a bad offset", func() error {
			_, err := s.Latest(ctx, sources.Offset(`{"rows":1}`))
			return err
		}, sources.ErrBadOffset},
		{"a negative position is a bad offset", func() error {
			_, err := s.Splits(ctx, sources.Offset(`{"pos":-1}`), sources.Offset(`{"pos":1}`))
			return err
		}, sources.ErrBadOffset},
		{"trailing data after the offset is a bad offset", func() error {
			_, err := s.Latest(ctx, sources.Offset(`{"pos":1}x`))
			return err
		}, sources.ErrBadOffset},
		{"a position past the appended rows is a bad offset", func() error {
			_, err := s.Splits(ctx, sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":9}`))
			return err
		}, sources.ErrBadOffset},
		{"an end before the start is a bad offset", func() error {
			_, err := s.Splits(ctx, sources.Offset(`{"pos":2}`), sources.Offset(`{"pos":1}`))
			return err
		}, sources.ErrBadOffset},
		{"a record of another schema is refused", func() error {
			other := arrow.NewSchema([]arrow.Field{{Name: "w", Type: arrow.PrimitiveTypes.Int64}}, nil)
			b := array.NewRecordBuilder(mem, other)
			defer b.Release()
			r := b.NewRecord()
			defer r.Release()
			return s.Append(r)
		}, memory.ErrSchemaMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == sources.ErrBadOffset && !strings.Contains(err.Error(), `"in"`) {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
}

func TestConcurrentAppendAndRead(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := memory.New(memory.Config{Schema: schema, MaxRowsPerBatch: 7})
	defer s.Close()
	const n = 500
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			r := ints(mem, i)
			if err := s.Append(r); err != nil {
				t.Error(err)
			}
			r.Release()
		}
	}()
	ctx := context.Background()
	start := `{"pos":0}`
	var got []int64
	for len(got) < n {
		end := latest(t, s, start)
		vals, _ := read(t, s, start, end)
		got = append(got, vals...)
		if err := s.Commit(ctx, sources.Offset(end)); err != nil {
			t.Fatal(err)
		}
		start = end
	}
	wg.Wait()
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("row %d is %d", i, v)
		}
	}
}

func TestCloseReleasesAndRefuses(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := memory.New(memory.Config{Schema: schema})
	appendOwned(t, s, ints(mem, 1, 2, 3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	r := ints(mem, 4)
	defer r.Release()
	if err := s.Append(r); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := memory.New(memory.Config{}); err == nil {
		t.Error("a config without a schema was accepted")
	}
	if _, err := memory.New(memory.Config{Schema: schema, MaxRowsPerBatch: -1}); err == nil {
		t.Error("a negative MaxRowsPerBatch was accepted")
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
				t.Errorf("sources/memory depends on %s", p)
			}
		}
	}
}
