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
// in [0, 20) or null (which match nothing), times around at (µs) with
// jitter, some null.
func sjBatch(mem memory.Allocator, rng *rand.Rand, sch *arrow.Schema, n int, at int64, tag string) []arrow.Record {
	var out []arrow.Record
	for done := 0; done < n; {
		k := min(n-done, 1+rng.IntN(7))
		b := array.NewRecordBuilder(mem, sch)
		for i := 0; i < k; i++ {
			if rng.IntN(25) == 0 {
				b.Field(0).AppendNull()
			} else {
				b.Field(0).(*array.Int64Builder).Append(rng.Int64N(20))
			}
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
				m     Metrics         // the TTL's evictions count alike
			}
			runs := []*run{
				{name: "memory, warm", keeps: true},
				{name: "memory, loaded every batch"},
				{name: "disk"},
				{name: "disk, indexed"},
				{name: "disk, indexes built and dropped every batch"},
			}
			var batch int64
			for i, r := range runs {
				r.fs = vfs.NewMem()
				local := t.TempDir()
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
				case 3:
					r.p = state.NewDiskProvider(r.fs, "/ck/state", state.DiskOptions{LocalDir: local, LogIndexes: state.IndexAlways})
				case 4:
					// Odd batches keep indexes (rebuilding the local
					// database from the files), even ones drop them at
					// their commit, having read through them.
					r.open = func() state.Provider {
						mode := state.IndexNever
						if batch%2 == 1 {
							mode = state.IndexAlways
						}
						return state.NewDiskProvider(r.fs, "/ck/state", state.DiskOptions{LocalDir: local, LogIndexes: mode})
					}
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
				batch = b
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
						Watermark: at - 2_500, BatchTime: b * 1_000, EventTimeKey: -1, Metrics: &r.m}
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
			evicted := func(r *run) int64 {
				if o := r.m.Operators["join-0"]; o != nil {
					return o.Evicted
				}
				return 0
			}
			for _, r := range runs[1:] {
				if evicted(r) != evicted(runs[0]) {
					t.Fatalf("%s counted %d evicted rows, memory, warm %d", r.name, evicted(r), evicted(runs[0]))
				}
			}
			if c.ttl > 0 && evicted(runs[0]) == 0 {
				t.Fatal("the TTL evicted nothing: the test expires too little")
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

// TestStreamJoinOnDiskReadsOnlyWhatItJoinsAndEvicts: with its state on the
// disk backend, a batch reads the stored rows whose join key a new row of
// the other side has and, for an outer side, the rows the watermark
// evicts; never every stored row. 2 000 stored left rows (key i%1000, at i
// ms); a batch of three right rows (keys 5, 7 and 5000, at 3 s) under a
// watermark that evicts the left rows at or before 1 s (i <= 1000): the
// four left rows of keys 5 and 7 pair (two of them evicted, matched), and
// a left outer join emits the 999 other evicted rows with nulls.
func TestStreamJoinOnDiskReadsOnlyWhatItJoinsAndEvicts(t *testing.T) {
	for _, how := range []JoinType{JoinInner, JoinLeft} {
		t.Run(fmt.Sprint(how), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			inner := state.NewDiskProvider(vfs.NewMem(), "/ck/state", state.DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1, LogIndexes: state.IndexAlways})
			stores := &rowCounting{Provider: inner}
			defer stores.Close()
			const ms = int64(1000) // µs
			spec := StreamJoinSpec{How: how, LeftKeys: []string{"lk"}, RightKeys: []string{"rk"},
				LeftTime: "lt", RightTime: "rt", Lower: -5000 * ms, Upper: 5000 * ms,
				Cond: expr.Col("rt").Between(expr.AddDuration(expr.Col("lt"), 0, -5_000_000_000), expr.AddDuration(expr.Col("lt"), 0, 5_000_000_000))}
			rows := func(sch *arrow.Schema, keys, at []int64) []arrow.Record {
				b := array.NewRecordBuilder(mem, sch)
				defer b.Release()
				for i := range keys {
					b.Field(0).(*array.Int64Builder).Append(keys[i])
					b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(at[i]))
					b.Field(2).(*array.StringBuilder).Append(fmt.Sprint(i))
				}
				return []arrow.Record{b.NewRecord()}
			}
			run := func(version, wm int64, l, r []arrow.Record) (pairs, outer int) {
				t.Helper()
				st := StateSpec{Provider: stores, Operator: "join-0", KeyGroups: 1, Version: version, Unit: arrow.Microsecond,
					Watermark: wm, EventTimeKey: -1}
				op, err := NewStreamJoin(mem, NewRecords(sjLeft, l), NewRecords(sjRight, r), spec, st, 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range drainForTest(t, op) {
					for i := 0; i < int(rec.NumRows()); i++ {
						if rec.Column(3).IsNull(i) {
							outer++
						} else {
							pairs++
						}
					}
					rec.Release()
				}
				releaseRecords(l)
				releaseRecords(r)
				return pairs, outer
			}
			var lk, lt []int64
			for i := int64(0); i < 2000; i++ {
				lk, lt = append(lk, i%1000), append(lt, i*ms)
			}
			if p, o := run(0, math.MinInt64, rows(sjLeft, lk, lt), nil); p+o != 0 {
				t.Fatalf("batch 0: %d pairs, %d outer rows", p, o)
			}
			stores.rows, stores.scans = 0, 0
			p, o := run(1, 6000*ms, nil, rows(sjRight, []int64{5, 7, 5000}, []int64{3000 * ms, 3000 * ms, 3000 * ms}))
			wantOuter, wantRead := 0, 4
			if how == JoinLeft {
				wantOuter, wantRead = 999, 4+1001
			}
			if p != 4 || o != wantOuter {
				t.Fatalf("batch 1: %d pairs, %d outer rows; want 4, %d", p, o, wantOuter)
			}
			if stores.scans != 0 || stores.rows != wantRead {
				t.Fatalf("batch 1 read %d stored rows in %d full scans; want %d and none", stores.rows, stores.scans, wantRead)
			}
			// What is left: the 999 left rows after 1 s and the three right rows.
			stores.rows, stores.scans = 0, 0
			st, err := stores.Open(state.StoreSpec{Operator: "join-0-left", KeyGroups: 1, Lo: 0, Hi: 1, KeySchema: joinKeySchema,
				ValueSchema: sjValueSchema(sjLeft)}, 2)
			if err != nil {
				t.Fatal(err)
			}
			n := st.Len()
			stores.Keep(st, nil)
			if n != 999 {
				t.Fatalf("after batch 1 the left side stores %d rows, want 999", n)
			}
		})
	}
}

// sjValueSchema is a join side's stored values for input schema sch.
func sjValueSchema(sch *arrow.Schema) *arrow.Schema {
	f := append(append([]arrow.Field{}, sch.Fields()...),
		arrow.Field{Name: "__matched", Type: arrow.FixedWidthTypes.Boolean},
		arrow.Field{Name: "__seen", Type: arrow.PrimitiveTypes.Int64})
	return arrow.NewSchema(f, nil)
}

// TestStreamJoinOnDiskWithATTLReadsOnlyWhatItTouchesAndExpires: a join
// with a TTL and no time bound, on the disk backend, reads the stored rows
// whose key a new row of either side has and the rows the TTL expires,
// never every stored row. 1 000 left rows (keys 0-999) stored at batch
// time 0 and 1 000 (keys 1000-1999) at 4 s; a batch at 7 s with a TTL of
// 5 s expires the first thousand but key 5's, which a new right row pairs
// with; key 1500's is renewed by a new left row.
func TestStreamJoinOnDiskWithATTLReadsOnlyWhatItTouchesAndExpires(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	inner := state.NewDiskProvider(vfs.NewMem(), "/ck/state", state.DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1, LogIndexes: state.IndexAlways})
	stores := &rowCounting{Provider: inner}
	defer stores.Close()
	const sec = int64(1_000_000)
	spec := StreamJoinSpec{How: JoinInner, LeftKeys: []string{"lk"}, RightKeys: []string{"rk"},
		Lower: math.MinInt64, Upper: math.MaxInt64, TTL: 5 * sec}
	rows := func(sch *arrow.Schema, from, n int64) []arrow.Record {
		b := array.NewRecordBuilder(mem, sch)
		defer b.Release()
		for i := from; i < from+n; i++ {
			b.Field(0).(*array.Int64Builder).Append(i)
			b.Field(1).(*array.TimestampBuilder).Append(0)
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprint(i))
		}
		return []arrow.Record{b.NewRecord()}
	}
	run := func(version, now int64, l, r []arrow.Record) int {
		t.Helper()
		st := StateSpec{Provider: stores, Operator: "join-0", KeyGroups: 1, Version: version, Unit: arrow.Microsecond,
			Watermark: math.MinInt64, BatchTime: now, EventTimeKey: -1}
		op, err := NewStreamJoin(mem, NewRecords(sjLeft, l), NewRecords(sjRight, r), spec, st, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, rec := range drainForTest(t, op) {
			n += int(rec.NumRows())
			rec.Release()
		}
		releaseRecords(l)
		releaseRecords(r)
		return n
	}
	run(0, 0, rows(sjLeft, 0, 1000), nil)
	run(1, 4*sec, rows(sjLeft, 1000, 1000), nil)
	stores.rows, stores.scans = 0, 0
	if n := run(2, 7*sec, rows(sjLeft, 1500, 1), rows(sjRight, 5, 1)); n != 1 {
		t.Fatalf("batch 2 gave %d pairs, want 1 (the new right row 5 with the stored left row 5)", n)
	}
	// Read: left rows 5 and 1500 (ScanPart) and the 1 000 whose keys
	// were last seen at 0 (ScanWhere), one of them key 5.
	if stores.scans != 0 || stores.rows != 2+1000 {
		t.Fatalf("batch 2 read %d stored rows in %d full scans; want 1002 and none", stores.rows, stores.scans)
	}
	st, err := stores.Open(state.StoreSpec{Operator: "join-0-left", KeyGroups: 1, Lo: 0, Hi: 1, KeySchema: joinKeySchema,
		ValueSchema: sjValueSchema(sjLeft)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	n := st.Len()
	stores.Keep(st, nil)
	// 999 expired: key 5 stays (seen now), the 1 000 of 4 s and the new one.
	if n != 1+1000+1 {
		t.Fatalf("after batch 2 the left side stores %d rows, want 1002", n)
	}
}
