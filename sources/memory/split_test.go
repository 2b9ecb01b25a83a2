package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	arrowmem "github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/memory"
	"github.com/sluicedata/sluice/sources/sourcetest"
)

// filled returns a source named name holding records [1 2 3] [4 5] [6 7 8 9].
func filled(t *testing.T, mem arrowmem.Allocator, name string) *memory.Source {
	t.Helper()
	s, err := memory.New(memory.Config{Name: name, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	appendOwned(t, s, ints(mem, 1, 2, 3), ints(mem, 4, 5), ints(mem, 6, 7, 8, 9))
	return s
}

func TestSplitsRoundTripThroughBytes(t *testing.T) {
	for _, c := range []struct {
		name       string
		start, end string
	}{
		{"splits over whole records decode on the source that made them and on another", `{"pos":0}`, `{"pos":9}`},
		{"splits over parts of records decode on the source that made them and on another", `{"pos":2}`, `{"pos":7}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			s := filled(t, mem, "m")
			// The job's source in another process: same name and schema,
			// nothing appended. Its splits read the rows they carry.
			executor, err := memory.New(memory.Config{Name: "m", Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			defer executor.Close()
			splits, err := s.Splits(context.Background(), sources.Offset(c.start), sources.Offset(c.end))
			if err != nil {
				t.Fatal(err)
			}
			sourcetest.CheckRoundTrip(t, mem, splits, s, executor)
			s.Close()
		})
	}
}

// TestASplitReadsItsRowsOnAnotherInstance is a cluster's view: the driver's
// source encodes a batch's splits, the executor's (another instance, same
// name and schema) decodes and reads them, even after the driver committed
// the batch away, and reads them again on a re-run.
func TestASplitReadsItsRowsOnAnotherInstance(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	driver := filled(t, mem, "m")
	defer driver.Close()
	executor, err := memory.New(memory.Config{Name: "m", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer executor.Close()
	splits, err := driver.Splits(context.Background(), sources.Offset(`{"pos":1}`), sources.Offset(`{"pos":8}`))
	if err != nil {
		t.Fatal(err)
	}
	var encoded [][]byte
	for _, sp := range splits {
		b, err := sp.Encode()
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
	}
	if err := driver.Commit(context.Background(), sources.Offset(`{"pos":9}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := splits[0].Encode(); !errors.Is(err, sources.ErrOffsetGone) {
		t.Fatalf("encode a split of committed rows: %v, want ErrOffsetGone", err)
	}
	var decoded []sources.Split
	for _, b := range encoded {
		sp, err := executor.DecodeSplit(b)
		if err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, sp)
	}
	for run := range 2 {
		if got, want := fmt.Sprint(sourcetest.Read(t, mem, decoded)), `[{"v":2} {"v":3} {"v":4} {"v":5} {"v":6} {"v":7} {"v":8}]`; got != want {
			t.Fatalf("run %d: the executor read %s, want %s", run, got, want)
		}
	}
}

func TestAnotherInstanceRefusesSplitsItCannotRead(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	driver := filled(t, mem, "m")
	defer driver.Close()
	executor, err := memory.New(memory.Config{Name: "m", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer executor.Close()
	splits, err := driver.Splits(context.Background(), sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":3}`))
	if err != nil {
		t.Fatal(err)
	}
	good, err := splits[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Split struct {
			Source string `json:"source"`
			Rows   []byte `json:"rows"`
		} `json:"split"`
	}
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	body := func(lo, hi int64, rows []byte) []byte {
		b, err := sources.MarshalSplit("memory", "m", struct {
			Source string `json:"source"`
			Lo     int64  `json:"lo"`
			Hi     int64  `json:"hi"`
			Rows   []byte `json:"rows,omitempty"`
		}{env.Split.Source, lo, hi, rows})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := executor.DecodeSplit(body(0, 3, env.Split.Rows)); err != nil {
		t.Fatalf("the hand-made body is not what the source writes: %v", err)
	}
	// Rows of another schema: a source of the same name with a string column.
	strSchema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.BinaryTypes.String}}, nil)
	other, err := memory.New(memory.Config{Name: "m", Schema: strSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rb := array.NewRecordBuilder(mem, strSchema)
	rb.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b", "c"}, nil)
	rec := rb.NewRecord()
	rb.Release()
	appendOwned(t, other, rec)
	otherSplits, err := other.Splits(context.Background(), sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":3}`))
	if err != nil {
		t.Fatal(err)
	}
	otherSchema, err := otherSplits[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	named, err := memory.New(memory.Config{Name: "n", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	for _, c := range []struct {
		name string
		on   *memory.Source
		b    []byte
		want string
	}{
		{"a split of another schema is refused", executor, otherSchema, "schema"},
		{"a split of another name is refused", named, good, `it is a split of memory "m"`},
		{"a split without rows is refused", executor, body(0, 3, nil), "carries no rows"},
		{"rows that are not Arrow IPC are refused", executor, body(0, 3, []byte("not arrow")), "rows [0, 3)"},
		{"truncated rows are refused", executor, body(0, 3, env.Split.Rows[:len(env.Split.Rows)-30]), "rows [0, 3)"},
		{"rows that do not fill the range are refused", executor, body(0, 4, env.Split.Rows), "carry 3 rows"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.on.DecodeSplit(c.b)
			if !errors.Is(err, sources.ErrBadSplit) || !strings.Contains(err.Error(), fmt.Sprintf("memory %q", c.on.Name())) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("DecodeSplit = %v, want ErrBadSplit naming the source and %q", err, c.want)
			}
		})
	}
	sourcetest.CheckRefused(t, executor, "memory", good, nil)
}

func TestDecodeSplitRefusesBytesItDidNotMake(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := filled(t, mem, "m")
	twin := filled(t, mem, "m") // same name, same rows, another instance
	defer s.Close()
	defer twin.Close()
	splits, err := s.Splits(context.Background(), sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":9}`))
	if err != nil {
		t.Fatal(err)
	}
	good, err := splits[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	fromTwin, err := twinSplit(t, twin)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Split struct {
			Source string `json:"source"`
		} `json:"split"`
	}
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	// body is a split of s's instance over rows [lo, hi).
	body := func(lo, hi int64) []byte {
		b, err := sources.MarshalSplit("memory", "m", struct {
			Source string `json:"source"`
			Lo     int64  `json:"lo"`
			Hi     int64  `json:"hi"`
		}{env.Split.Source, lo, hi})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := s.DecodeSplit(body(0, 3)); err != nil {
		t.Fatalf("the hand-made body is not what the source writes: %v", err)
	}
	sourcetest.CheckRefused(t, s, "memory", good, map[string][]byte{
		"a split past the rows appended is refused":        body(8, 10),
		"a split spanning two appended records is refused": body(2, 4),
		"an empty split is refused":                        body(3, 3),
		"a split with negative rows is refused":            body(-1, 2),
	})
	// Another memory source with the same name and schema (the job's own
	// source in another process) reads the rows a split carries.
	sp, err := s.DecodeSplit(fromTwin)
	if err != nil {
		t.Fatalf("decode a split of another instance of the same name: %v", err)
	}
	if got, want := fmt.Sprint(sourcetest.Read(t, mem, []sources.Split{sp})), `[{"v":1} {"v":2} {"v":3}]`; got != want {
		t.Fatalf("a split of another instance read %s, want %s", got, want)
	}
}

func twinSplit(t *testing.T, s *memory.Source) ([]byte, error) {
	t.Helper()
	splits, err := s.Splits(context.Background(), sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":3}`))
	if err != nil {
		return nil, err
	}
	return splits[0].Encode()
}

func TestADecodedSplitOfCommittedRowsIsGone(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := filled(t, mem, "m")
	defer s.Close()
	splits, err := s.Splits(context.Background(), sources.Offset(`{"pos":0}`), sources.Offset(`{"pos":3}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := splits[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), sources.Offset(`{"pos":5}`)); err != nil {
		t.Fatal(err)
	}
	sp, err := s.DecodeSplit(b)
	if err != nil {
		t.Fatalf("decode a split of committed rows: %v (reading it is what fails)", err)
	}
	err = sp.Read(context.Background(), mem, func(r arrow.Record) error { r.Release(); return nil })
	if !errors.Is(err, sources.ErrOffsetGone) {
		t.Fatalf("read a split of committed rows: %v, want ErrOffsetGone", err)
	}
}

func TestTheMemorySourceWorksAcrossProcesses(t *testing.T) {
	var s sources.Stream = filled(t, arrowmem.DefaultAllocator, "m")
	if ip, ok := s.(sources.InProcess); ok && ip.InProcess() != "" {
		t.Fatalf("memory source says it works in one process: %s", ip.InProcess())
	}
}

// TestAPartOfARecordOfStringsTravels checks the inline rows of a split that
// starts inside a record with variable-width and null values: the slice's
// offsets must travel rebased.
func TestAPartOfARecordOfStringsTravels(t *testing.T) {
	mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
	}, nil)
	newSource := func() *memory.Source {
		s, err := memory.New(memory.Config{Name: "m", Schema: sch})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	driver, executor := newSource(), newSource()
	defer driver.Close()
	defer executor.Close()
	rec, _, err := array.RecordFromJSON(mem, sch, strings.NewReader(`[
		{"s":"first","l":[1,2]},{"s":null,"l":null},{"s":"third one","l":[]},
		{"s":"","l":[3]},{"s":"fifth","l":[4,5,6]}]`))
	if err != nil {
		t.Fatal(err)
	}
	appendOwned(t, driver, rec)
	splits, err := driver.Splits(context.Background(), sources.Offset(`{"pos":1}`), sources.Offset(`{"pos":4}`))
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.CheckRoundTrip(t, mem, splits, executor)
	if got, want := fmt.Sprint(sourcetest.Read(t, mem, splits)), `[{"l":null,"s":null} {"l":[],"s":"third one"} {"l":[3],"s":""}]`; got != want {
		t.Fatalf("read %s, want %s", got, want)
	}
}
