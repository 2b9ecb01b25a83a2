package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
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
		{"splits over whole records decode on the source that made them", `{"pos":0}`, `{"pos":9}`},
		{"splits over parts of records decode on the source that made them", `{"pos":2}`, `{"pos":7}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := arrowmem.NewCheckedAllocator(arrowmem.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			s := filled(t, mem, "m")
			splits, err := s.Splits(context.Background(), sources.Offset(c.start), sources.Offset(c.end))
			if err != nil {
				t.Fatal(err)
			}
			// In process only: no second stream can decode them.
			sourcetest.CheckRoundTrip(t, mem, splits, s)
			s.Close()
		})
	}
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
		"a split of another memory source with the same name and rows is refused": fromTwin,
		"a split past the rows appended is refused":                               body(8, 10),
		"a split spanning two appended records is refused":                        body(2, 4),
		"an empty split is refused":                                               body(3, 3),
		"a split with negative rows is refused":                                   body(-1, 2),
	})
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

func TestTheMemorySourceSaysItWorksInOneProcess(t *testing.T) {
	var s sources.Stream = filled(t, arrowmem.DefaultAllocator, "m")
	ip, ok := s.(sources.InProcess)
	if !ok || !strings.Contains(ip.InProcess(), "memory of the process") {
		t.Fatalf("memory source is not InProcess with a reason: %v", ok)
	}
}
