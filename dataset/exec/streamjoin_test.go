package exec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

var (
	sjLeft = arrow.NewSchema([]arrow.Field{
		{Name: "lk", Type: arrow.PrimitiveTypes.Int64},
		{Name: "lt", Type: arrow.FixedWidthTypes.Timestamp_us},
		{Name: "lv", Type: arrow.BinaryTypes.String},
	}, nil)
	sjRight = arrow.NewSchema([]arrow.Field{
		{Name: "rk", Type: arrow.PrimitiveTypes.Int64},
		{Name: "rt", Type: arrow.FixedWidthTypes.Timestamp_us},
		{Name: "rv", Type: arrow.BinaryTypes.String},
	}, nil)
)

// sjBatch is one side's rows of a batch: n rows in records of up to 7, keys
// in [0, 20), times around at (µs) with jitter, some null.
func sjBatch(mem memory.Allocator, rng *rand.Rand, sch *arrow.Schema, n int, at int64, tag string) []arrow.Record {
	var out []arrow.Record
	for done := 0; done < n; {
		k := min(n-done, 1+rng.IntN(7))
		b := array.NewRecordBuilder(mem, sch)
		for i := 0; i < k; i++ {
			b.Field(0).(*array.Int64Builder).Append(rng.Int64N(20))
			if rng.IntN(40) == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(at + rng.Int64N(4000) - 1000))
			}
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("%s%d", tag, done+i))
		}
		out = append(out, b.NewRecord())
		b.Release()
		done += k
	}
	return out
}

// The stream join gives the same rows in the same order, and writes the
// same state files, whether its stores are kept warm in memory, loaded
// from the files every batch, or disk-backed; a disk-backed side keeps no
// rows in memory between batches (it scans its store), a warm memory side
// keeps exactly its stored rows.
func TestStreamJoinBackendsGiveTheSameRowsInTheSameOrder(t *testing.T) {
	for _, c := range []struct {
		how  JoinType
		ttl  int64
		time bool
	}{
		{JoinInner, 0, true}, {JoinLeft, 0, true}, {JoinRight, 0, true}, {JoinFull, 0, true},
		{JoinSemi, 0, true}, {JoinInner, 3_000, false}, {JoinFull, 5_000, false},
	} {
		t.Run(fmt.Sprintf("%s-ttl%d", c.how, c.ttl), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			spec := StreamJoinSpec{How: c.how, LeftKeys: []string{"lk"}, RightKeys: []string{"rk"},
				Lower: math.MinInt64, Upper: math.MaxInt64, TTL: c.ttl}
			if c.time {
				spec.LeftTime, spec.RightTime, spec.Lower, spec.Upper = "lt", "rt", -2_000, 1_500
				// AddDuration takes nanoseconds.
				spec.Cond = expr.Col("rt").Between(expr.AddDuration(expr.Col("lt"), 0, -2_000_000), expr.AddDuration(expr.Col("lt"), 0, 1_500_000))
			}
			type run struct {
				name  string
				fs    *vfs.Mem
				open  func() state.Provider
				p     state.Provider
				out   [][]string
				keeps bool            // the backend keeps rows between batches
				held  map[string]bool // by side: its store held its rows after the last batch
			}
			runs := []*run{
				{name: "memory, warm", keeps: true},
				{name: "memory, loaded every batch"},
				{name: "disk"},
			}
			local := t.TempDir()
			for i, r := range runs {
				r.fs = vfs.NewMem()
				switch i {
				case 0:
					r.p = state.NewFileProvider(r.fs, "/ck/state")
				case 1:
					r.open = func() state.Provider { return state.NewFileProvider(r.fs, "/ck/state") }
				case 2:
					p, err := state.NewProvider(state.BackendDisk, r.fs, "/ck/state", local)
					if err != nil {
						t.Fatal(err)
					}
					r.p = p
				}
			}
			defer func() {
				for _, r := range runs {
					if r.p != nil {
						r.p.Close()
					}
				}
			}()
			seed := uint64(len(c.how))*1000 + uint64(c.ttl)
			for b := int64(0); b < 14; b++ {
				rng := rand.New(rand.NewPCG(seed, uint64(b)))
				at := b * 1_000
				lrecs := sjBatch(mem, rng, sjLeft, rng.IntN(40), at, "l")
				rrecs := sjBatch(mem, rng, sjRight, rng.IntN(40), at, "r")
				for _, r := range runs {
					p := r.p
					if r.open != nil {
						p = r.open()
					}
					st := StateSpec{Provider: p, Operator: "join-0", KeyGroups: 4, Version: b, Unit: arrow.Microsecond,
						Watermark: at - 2_500, BatchTime: b * 1_000, EventTimeKey: -1}
					if b == 0 {
						st.Watermark = math.MinInt64
					}
					op, err := NewStreamJoin(mem, NewRecords(sjLeft, lrecs), NewRecords(sjRight, rrecs), spec, st, 0, 4)
					if err != nil {
						t.Fatal(err)
					}
					var rows []string
					for _, rec := range drainForTest(t, op) {
						for i := 0; i < int(rec.NumRows()); i++ {
							var row []string
							for _, col := range rec.Columns() {
								row = append(row, col.ValueStr(i))
							}
							rows = append(rows, fmt.Sprint(row))
						}
						rec.Release()
					}
					r.out = append(r.out, rows)
					// What the provider parked with each side's store: the
					// stored rows with a warm memory store, unless the store
					// holds them itself (a log store, as the batch began:
					// one that an overwrite turned into a hash table keeps
					// them from the next batch on), nothing with a
					// disk-backed one.
					j := op.(*streamJoin)
					for _, s := range []*joinSide{j.l, j.r} {
						st, aux, err := p.OpenAux(s.spec, b+1)
						if err != nil {
							t.Fatal(err)
						}
						held, ok := r.held[s.name]
						if !ok {
							held = true // a fresh store of a join side is a log store
						}
						if r.keeps && !held && (aux == nil || rowsOf(aux) != st.Len()) {
							t.Fatalf("%s, batch %d, %s side: kept %d rows (nil: %v) of %d stored", r.name, b, s.name, rowsOf(aux), aux == nil, st.Len())
						}
						if r.keeps && held && len(aux) > 0 {
							t.Fatalf("%s, batch %d, %s side: kept %d rows its log store holds", r.name, b, s.name, rowsOf(aux))
						}
						if r.keeps {
							if r.held == nil {
								r.held = map[string]bool{}
							}
							r.held[s.name] = !state.InMemory(st)
						}
						if !r.keeps && r.open == nil && aux != nil {
							t.Fatalf("%s, batch %d, %s side: kept %d rows in memory", r.name, b, s.name, rowsOf(aux))
						}
						p.Keep(st, aux)
					}
					if r.open != nil {
						p.Close()
					}
				}
				releaseRecords(lrecs)
				releaseRecords(rrecs)
				for _, r := range runs[1:] {
					if !slices.Equal(r.out[b], runs[0].out[b]) {
						t.Fatalf("batch %d: %s gave\n%v\nmemory, warm gave\n%v", b, r.name, r.out[b], runs[0].out[b])
					}
				}
			}
			total := 0
			for _, rows := range runs[0].out {
				total += len(rows)
			}
			if total < 30 {
				t.Fatalf("only %d output rows over 14 batches: the test joins too little", total)
			}
			want := runs[0].fs.Files()
			for _, r := range runs[1:] {
				if got := r.fs.Files(); !slices.Equal(got, want) {
					t.Fatalf("%s wrote state files %v, memory, warm %v", r.name, got, want)
				}
				for _, f := range want {
					a, _ := runs[0].fs.ReadFile(f)
					b, _ := r.fs.ReadFile(f)
					if string(a) != string(b) {
						t.Fatalf("%s: %s differs from the warm memory run's", r.name, f)
					}
				}
			}
		})
	}
}
