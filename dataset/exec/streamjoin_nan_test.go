package exec

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

// A stream-stream join matches float keys as Spark does: NaN joins NaN
// (whatever its payload) and -0.0 joins 0.0, within a batch and against
// stored rows, with state kept warm, loaded from files and on disk.
func TestStreamJoinMatchesNaNAndSignedZeroKeys(t *testing.T) {
	left := arrow.NewSchema([]arrow.Field{{Name: "lk", Type: arrow.PrimitiveTypes.Float64}, {Name: "lv", Type: arrow.BinaryTypes.String}}, nil)
	right := arrow.NewSchema([]arrow.Field{{Name: "rk", Type: arrow.PrimitiveTypes.Float64}, {Name: "rv", Type: arrow.BinaryTypes.String}}, nil)
	otherNaN := math.Float64frombits(0x7ff8_0000_0000_0001)
	negZero := math.Copysign(0, -1)
	batch := func(mem memory.Allocator, sch *arrow.Schema, tag string, keys ...float64) []arrow.Record {
		b := array.NewRecordBuilder(mem, sch)
		defer b.Release()
		for i, k := range keys {
			b.Field(0).(*array.Float64Builder).Append(k)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("%s%d", tag, i))
		}
		return []arrow.Record{b.NewRecord()}
	}
	want := [][]string{
		{"l1|r0"},          // -0.0 = 0.0 in batch 0
		{"l0|b1", "l1|b0"}, // stored NaN = new NaN; stored -0.0 = new 0.0
	}
	for _, backend := range []string{"files, provider kept open", "files", "disk"} {
		t.Run(backend, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			fs := vfs.NewMem()
			var p state.Provider = state.NewFileProvider(fs, "/ck/state")
			if backend == "disk" {
				var err error
				if p, err = state.NewProvider(state.BackendDisk, fs, "/ck/state", t.TempDir()); err != nil {
					t.Fatal(err)
				}
			}
			defer func() { p.Close() }()
			spec := StreamJoinSpec{How: JoinInner, LeftKeys: []string{"lk"}, RightKeys: []string{"rk"}, Lower: math.MinInt64, Upper: math.MaxInt64}
			inputs := [][2][]arrow.Record{
				{batch(mem, left, "l", math.NaN(), negZero, 1), batch(mem, right, "r", 0)},
				{batch(mem, left, "l"), batch(mem, right, "b", 0, otherNaN)},
			}
			for v, in := range inputs {
				if backend == "files" && v > 0 {
					p.Close()
					p = state.NewFileProvider(fs, "/ck/state")
				}
				st := StateSpec{Provider: p, Operator: "join-0", KeyGroups: 4, Version: int64(v), Unit: arrow.Microsecond,
					Watermark: math.MinInt64, BatchTime: int64(v), EventTimeKey: -1}
				op, err := NewStreamJoin(mem, NewRecords(left, in[0]), NewRecords(right, in[1]), spec, st, 0, 4)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, rec := range drainForTest(t, op) {
					for i := range int(rec.NumRows()) {
						got = append(got, rec.Column(1).ValueStr(i)+"|"+rec.Column(3).ValueStr(i))
					}
					rec.Release()
				}
				releaseRecords(in[0])
				releaseRecords(in[1])
				slices.Sort(got)
				if !slices.Equal(got, want[v]) {
					t.Fatalf("batch %d: joined %q, want %q", v, got, want[v])
				}
			}
		})
	}
}
