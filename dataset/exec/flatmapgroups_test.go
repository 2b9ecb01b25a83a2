package exec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

var fmgIn = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64},
}, nil)

var fmgOut = arrow.NewSchema([]arrow.Field{{Name: "line", Type: arrow.BinaryTypes.String}}, nil)

// fmgCount keeps a key's count of rows as decimal text and sets an
// event-time timeout at 100 for keys named "t*"; a timeout emits and
// removes the key.
func fmgCount(c *GroupCall) (GroupResult, error) {
	n := 0
	if c.State != nil {
		n, _ = strconv.Atoi(string(c.State))
	}
	k := c.Key[0].(string)
	var vs []string
	vals := c.Rows.Column(1).(*array.Int64)
	for i := 0; i < vals.Len(); i++ {
		vs = append(vs, fmt.Sprint(vals.Value(i)))
	}
	c.Out.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%s timedout=%v had=%d rows=[%s]", k, c.TimedOut, n, strings.Join(vs, " ")))
	if c.TimedOut {
		return GroupResult{Timeout: NoTimestamp}, nil
	}
	n += vals.Len()
	res := GroupResult{Exists: true, State: []byte(strconv.Itoa(n)), Timeout: NoTimestamp}
	if strings.HasPrefix(k, "t") {
		res.Timeout = 100
	}
	return res, nil
}

func fmgRecord(mem memory.Allocator, keys []string, vals []int64) arrow.Record {
	b := array.NewRecordBuilder(mem, fmgIn)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(keys, nil)
	b.Field(1).(*array.Int64Builder).AppendValues(vals, nil)
	return b.NewRecord()
}

// fmgRun runs one batch (state version) of the operator over recs with the
// given watermark; it returns the output lines and the state rows reported.
func fmgRun(t *testing.T, mem memory.Allocator, stores state.Provider, version, watermark int64, recs ...arrow.Record) ([]string, int64) {
	t.Helper()
	g := GroupsSpec{Func: "fmgCount", Keys: []string{"k"}, Timeout: EventTimeTimeout, Watermark: watermark, BatchTime: NoTimestamp}
	return fmgRunSpec(t, mem, stores, g, fmgCount, version, recs...)
}

// fmgRunSpec runs one batch of the operator g (its function fn, output
// fmgOut) over recs: the first column of its output and the state rows
// reported (-1: none).
func fmgRunSpec(t *testing.T, mem memory.Allocator, stores state.Provider, g GroupsSpec, fn GroupFunc, version int64, recs ...arrow.Record) ([]string, int64) {
	t.Helper()
	m := &Metrics{}
	spec := &StateSpec{Provider: stores, Operator: "groups-0", KeyGroups: 4, Version: version, EventTimeKey: -1, Metrics: m}
	op, err := NewFlatMapGroups(mem, NewRecords(fmgIn, recs), g, fn, fmgOut, spec, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range drainForTest(t, op) {
		col := r.Column(0).(*array.String)
		for i := 0; i < col.Len(); i++ {
			out = append(out, col.Value(i))
		}
		r.Release()
	}
	var rows int64 = -1
	if o := m.Operators["groups-0"]; o != nil {
		rows = o.StateRows
	}
	return out, rows
}

// Keys with rows come first, in order of first appearance with their rows
// in input order; then timed-out keys without rows, in key order. State
// survives a cold reload, and a batch re-run from its version gives the
// same output.
func TestFlatMapGroupsOperatorCallsTimesOutAndRestores(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fs := vfs.NewMem()
	r0 := fmgRecord(mem, []string{"tb", "c", "ta", "tb"}, []int64{1, 2, 3, 4})
	r0b := fmgRecord(mem, []string{"ta", "td"}, []int64{5, 6})
	r1 := fmgRecord(mem, []string{"c", "ta"}, []int64{7, 8})
	defer r0.Release()
	defer r0b.Release()
	defer r1.Release()
	stores := state.NewFileProvider(fs, "/ckpt/state")
	defer func() { stores.Close() }()

	out, rows := fmgRun(t, mem, stores, 0, NoTimestamp, r0, r0b)
	want := []string{
		"tb timedout=false had=0 rows=[1 4]",
		"c timedout=false had=0 rows=[2]",
		"ta timedout=false had=0 rows=[3 5]",
		"td timedout=false had=0 rows=[6]",
	}
	if !slices.Equal(out, want) || rows != 4 {
		t.Fatalf("version 0: %q (%d state rows), want %q (4)", out, rows, want)
	}
	// Watermark 101 passes the timeouts at 100: tb and td time out (key
	// order), ta has rows and is called with them instead.
	want = []string{
		"c timedout=false had=1 rows=[7]",
		"ta timedout=false had=2 rows=[8]",
		"tb timedout=true had=2 rows=[]",
		"td timedout=true had=1 rows=[]",
	}
	for _, cold := range []bool{false, true} {
		if cold {
			// A restart: a new provider loads version 1 from files.
			stores.Close()
			stores = state.NewFileProvider(fs, "/ckpt/state")
		}
		out, rows = fmgRun(t, mem, stores, 1, 101, r1)
		if !slices.Equal(out, want) || rows != 2 {
			t.Fatalf("version 1 (cold %v): %q (%d state rows), want %q (2)", cold, out, rows, want)
		}
	}
	stores.Close()
	stores = state.NewFileProvider(fs, "/ckpt/state")
	out, rows = fmgRun(t, mem, stores, 2, 200, r1)
	want = []string{"c timedout=false had=2 rows=[7]", "ta timedout=false had=3 rows=[8]"}
	if !slices.Equal(out, want) || rows != 2 {
		t.Fatalf("version 2: %q (%d state rows), want %q (2)", out, rows, want)
	}
}
