package state

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// A stream join side's shape: rows keyed by (sequence, event time).
var (
	logKeySchema = arrow.NewSchema([]arrow.Field{
		{Name: "__seq", Type: arrow.PrimitiveTypes.Int64},
		{Name: "__t", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	logValueSchema = arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "__matched", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "__seen", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
)

type logRowVal struct {
	seq, t  int64
	name    string
	noName  bool
	amount  int64
	price   float64
	matched bool
	seen    int64
}

func logRecords(mem memory.Allocator, rows []logRowVal) (arrow.Record, arrow.Record) {
	kb := array.NewRecordBuilder(mem, logKeySchema)
	vb := array.NewRecordBuilder(mem, logValueSchema)
	defer kb.Release()
	defer vb.Release()
	for _, r := range rows {
		kb.Field(0).(*array.Int64Builder).Append(r.seq)
		kb.Field(1).(*array.Int64Builder).Append(r.t)
		if r.noName {
			vb.Field(0).AppendNull()
		} else {
			vb.Field(0).(*array.StringBuilder).Append(r.name)
		}
		if r.amount%7 == 0 {
			vb.Field(1).AppendNull()
		} else {
			vb.Field(1).(*array.Int64Builder).Append(r.amount)
		}
		vb.Field(2).(*array.Float64Builder).Append(r.price)
		vb.Field(3).(*array.BooleanBuilder).Append(r.matched)
		vb.Field(4).(*array.Int64Builder).Append(r.seen)
	}
	return kb.NewRecord(), vb.NewRecord()
}

// scanRows renders a store's Scan, in its order.
func scanRows(t *testing.T, s Store) []string {
	t.Helper()
	var out []string
	err := s.Scan(func(k, v arrow.Record) error {
		for i := 0; i < int(k.NumRows()); i++ {
			var cells []string
			for _, c := range append(k.Columns(), v.Columns()...) {
				cells = append(cells, c.ValueStr(i))
			}
			out = append(out, strings.Join(cells, "|"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLogStoreMatchesMemStoreInLockstep runs a stream join's operations
// (ascending puts, deletes of live rows in key order and not, a delete of a
// row put in the same batch, watermark evictions recorded in the delta
// instead of tombstones, commits with snapshots, aborts, reopening
// from the files, and now and then an overwrite that turns the log store
// into a hash table) on a memStore and a logStore: after every step they
// scan the same rows in the same order, and every commit writes
// byte-identical files.
func TestLogStoreMatchesMemStoreInLockstep(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: set seed in the test)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	mem := checked(t)
	fsM, fsL := vfs.NewMem(), vfs.NewMem()
	cfg := func(fs vfs.FS, log bool) Config {
		return Config{FS: fs, Dir: "/ck/state", StoreSpec: StoreSpec{Operator: "join-0-left", KeyGroups: 128, Lo: 0, Hi: 64,
			KeySchema: logKeySchema, ValueSchema: logValueSchema, SnapshotEvery: 2, Allocator: mem, Log: log}}
	}
	var ms Store
	var ls *logStore
	open := func(v int64) {
		t.Helper()
		var err error
		if ms, err = Open(cfg(fsM, false), v); err != nil {
			t.Fatal(err)
		}
		if ls, err = openLog(cfg(fsL, true), v); err != nil {
			t.Fatal(err)
		}
	}
	open(0)
	defer func() { ms.Close(); ls.Close() }()
	var (
		version, seq int64
		live         []logRowVal // this batch's view, key order
		committed    []logRowVal
		fallen       int
		logCommits   int
	)
	both := func(what string, fm func(Store) error) {
		t.Helper()
		if err := fm(ms); err != nil {
			t.Fatalf("%s on the memStore: %v", what, err)
		}
		if err := fm(ls); err != nil {
			t.Fatalf("%s on the logStore: %v", what, err)
		}
	}
	del := func(rows []logRowVal, liveOnly bool) {
		t.Helper()
		k, v := logRecords(mem, rows)
		defer k.Release()
		defer v.Release()
		both("delete", func(s Store) error {
			if liveOnly {
				return s.DeleteLive(k)
			}
			return s.Delete(k)
		})
	}
	for step := 0; step < 400; step++ {
		switch op := rng.IntN(100); {
		case op < 35: // new rows
			var rows []logRowVal
			for i := rng.IntN(300) + 1; i > 0; i-- {
				seq += int64(1 + rng.IntN(3))
				r := logRowVal{seq: seq, t: rng.Int64N(1000) - 500, name: strings.Repeat("x", rng.IntN(9)), noName: rng.IntN(9) == 0,
					amount: rng.Int64N(1000), price: []float64{1.5, -0.0, math.NaN(), math.Inf(1), 3}[rng.IntN(5)], seen: rng.Int64N(9)}
				rows = append(rows, r)
			}
			k, v := logRecords(mem, rows)
			both("put", func(s Store) error { return s.Put(k, v, nil) })
			k.Release()
			v.Release()
			live = append(live, rows...)
		case op < 55 && len(live) > 0: // evict live rows, in key order or not
			var gone, stay []logRowVal
			for _, r := range live {
				if rng.IntN(3) == 0 {
					gone = append(gone, r)
				} else {
					stay = append(stay, r)
				}
			}
			if rng.IntN(4) == 0 {
				rng.Shuffle(len(gone), func(i, j int) { gone[i], gone[j] = gone[j], gone[i] })
			}
			del(gone, rng.IntN(2) == 0)
			live = stay
		case op < 58 && len(live) > 0: // a Delete of keys partly not live
			r := live[rng.IntN(len(live))]
			del([]logRowVal{{seq: r.seq, t: r.t}, {seq: seq + 1000, t: 0}}, false)
			live = slices.DeleteFunc(live, func(x logRowVal) bool { return x.seq == r.seq })
		case op < 60 && len(live) > 0: // an overwrite: the log store falls back
			i := rng.IntN(len(live))
			live[i].matched, live[i].seen = true, live[i].seen+1
			k, v := logRecords(mem, live[i:i+1])
			both("overwrite", func(s Store) error { return s.Put(k, v, nil) })
			k.Release()
			v.Release()
			fallen++
		case op < 63: // watermark eviction, on the time key or a value column
			col, less := 1, rng.Int64N(1000)-500
			if rng.IntN(3) == 0 {
				col, less = 3, rng.Int64N(1000) // amount, null when amount%7 == 0
			}
			gone := func(r logRowVal) bool {
				if col == 1 {
					return r.t < less
				}
				return r.amount%7 != 0 && r.amount < less
			}
			if col == 1 && rng.IntN(2) == 0 {
				// The same eviction by a caller that names the keys.
				var rows []logRowVal
				for _, r := range live {
					if gone(r) {
						rows = append(rows, r)
					}
				}
				k, v := logRecords(mem, rows)
				both("evict live", func(s Store) error { return s.EvictLive(k, col, less) })
				k.Release()
				v.Release()
				live = slices.DeleteFunc(live, gone)
				break
			}
			n1, err1 := ms.EvictWhere(col, less)
			n2, err2 := ls.EvictWhere(col, less)
			want := len(live)
			live = slices.DeleteFunc(live, gone)
			if err1 != nil || err2 != nil || n1 != n2 || n1 != want-len(live) {
				t.Fatalf("step %d: evict column %d below %d: memStore %d %v, logStore %d %v, want %d", step, col, less, n1, err1, n2, err2, want-len(live))
			}
		case op < 65: // abort
			both("abort", func(s Store) error { return s.Abort() })
			live = slices.Clone(committed)
		case op < 90: // commit
			version++
			if ls.mem == nil {
				logCommits++
			}
			both(fmt.Sprintf("commit %d", version), func(s Store) error { return s.Commit(version) })
			for _, kind := range []string{kindDelta, kindSnapshot} {
				path := "/ck/state/join-0-left/0-64/" + fileName(version, kind)
				a, errA := fsM.ReadFile(path)
				b, errB := fsL.ReadFile(path)
				if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
					t.Fatalf("step %d: %s: memStore wrote %d bytes (%v), logStore %d (%v): not the same", step, path, len(a), errA, len(b), errB)
				}
			}
			committed = slices.Clone(live)
		default: // reopen both from the files
			ms.Close()
			ls.Close()
			open(version)
			live = slices.Clone(committed)
			if ls.mem != nil {
				t.Fatalf("step %d: a reopened log store is a hash table", step)
			}
		}
		a, b := scanRows(t, ms), scanRows(t, ls)
		if !slices.Equal(a, b) {
			t.Fatalf("step %d: memStore scans %d rows, logStore %d:\n%q\n%q", step, len(a), len(b), a[:min(3, len(a))], b[:min(3, len(b))])
		}
		if len(a) != len(live) || ms.Len() != len(live) || ls.Len() != len(live) {
			t.Fatalf("step %d: %d rows scanned, Len %d and %d, want %d", step, len(a), ms.Len(), ls.Len(), len(live))
		}
	}
	t.Logf("%d commits, %d of them by the log itself; %d overwrites", version, logCommits, fallen)
	if logCommits < 20 {
		t.Fatalf("only %d commits ran on the log path", logCommits)
	}
}

// TestContractOnLogStore runs the Store contract tests on stores opened
// with StoreSpec.Log: whatever the caller does, a log store answers as a
// memStore (turning into one when the caller leaves the log's shape).
func TestContractOnLogStore(t *testing.T) {
	for _, tc := range contractTests {
		if tc.provider {
			continue // providers open what their specs ask for
		}
		t.Run(tc.name, func(t *testing.T) {
			old := testOpen
			testOpen = func(cfg Config, v int64) (Store, error) {
				cfg.Log = true
				return openLog(cfg, v)
			}
			t.Cleanup(func() { testOpen = old })
			tc.fn(t)
		})
	}
}
