package exec

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

// rowCounting is a Provider whose stores count the rows their scans hand
// out (Scan, ScanWhere, ScanPart) and the full Scans: what a batch reads
// of the state.
type rowCounting struct {
	state.Provider
	rows, scans int
}

type rowCountingStore struct {
	state.Store
	p *rowCounting
}

func (p *rowCounting) Open(spec state.StoreSpec, version int64) (state.Store, error) {
	st, err := p.Provider.Open(spec, version)
	if err != nil {
		return nil, err
	}
	return &rowCountingStore{st, p}, nil
}

func (p *rowCounting) OpenAux(spec state.StoreSpec, version int64) (state.Store, []arrow.Record, error) {
	st, aux, err := p.Provider.OpenAux(spec, version)
	if err != nil {
		return nil, nil, err
	}
	return &rowCountingStore{st, p}, aux, nil
}

func (p *rowCounting) Keep(st state.Store, aux []arrow.Record) {
	p.Provider.Keep(st.(*rowCountingStore).Store, aux)
}

func (s *rowCountingStore) count(fn func(k, v arrow.Record) error) func(k, v arrow.Record) error {
	return func(k, v arrow.Record) error {
		s.p.rows += int(k.NumRows())
		return fn(k, v)
	}
}

func (s *rowCountingStore) Scan(fn func(k, v arrow.Record) error) error {
	s.p.scans++
	return s.Store.Scan(s.count(fn))
}

func (s *rowCountingStore) ScanWhere(col int, less int64, fn func(k, v arrow.Record) error) error {
	return s.Store.ScanWhere(col, less, s.count(fn))
}

func (s *rowCountingStore) ScanPart(parts arrow.Record, fn func(k, v arrow.Record) error) error {
	return s.Store.ScanPart(parts, s.count(fn))
}

var sessIn = arrow.NewSchema([]arrow.Field{
	{Name: "user", Type: arrow.BinaryTypes.String},
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us},
}, nil)

const sec = int64(1_000_000) // µs

func sessRecord(mem memory.Allocator, users []string, ts []int64) arrow.Record {
	b := array.NewRecordBuilder(mem, sessIn)
	defer b.Release()
	for i, u := range users {
		b.Field(0).(*array.StringBuilder).Append(u)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts[i]))
	}
	return b.NewRecord()
}

// sessRun runs one batch of an append-mode session count per user (gap
// 10 s) at version with watermark wm, and returns its output as "user
// start end count" lines, sorted, and the stored sessions after it.
func sessRun(t testing.TB, mem memory.Allocator, stores state.Provider, version, wm int64, recs ...arrow.Record) ([]string, int64) {
	t.Helper()
	sess := SessionSpec{Column: "ts", Gap: 10 * sec, Keys: []string{"user"}, StartName: "window_start", EndName: "window_end"}
	keys := []*expr.Expr{expr.Col("user"), expr.Col("window_start"), expr.Col("window_end")}
	aggs := []Agg{{Func: AggCount, Name: "n"}}
	spec := StateSpec{Provider: stores, Operator: "session-0", KeyGroups: 4, Version: version, Emit: "append",
		EventTimeKey: 2, Unit: arrow.Microsecond, Watermark: wm, Metrics: &Metrics{}}
	op, err := NewStatefulSession(mem, NewRecords(sessIn, recs), sess, keys, aggs, spec, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range drainForTest(t, op) {
		u := r.Column(0).(*array.String)
		st, en := r.Column(1).(*array.Timestamp), r.Column(2).(*array.Timestamp)
		n := r.Column(3).(*array.Int64)
		for i := 0; i < int(r.NumRows()); i++ {
			out = append(out, fmt.Sprintf("%s %d %d %d", u.Value(i), int64(st.Value(i))/sec, int64(en.Value(i))/sec, n.Value(i)))
		}
		r.Release()
	}
	sort.Strings(out)
	var rows int64 = -1
	if o := spec.Metrics.Operators["session-0"]; o != nil {
		rows = o.StateRows
	}
	return out, rows
}

// TestStatefulSessionReadsOnlyTheBatchKeysAndClosedSessions: with 5 000
// users' sessions stored, a batch with rows of two users reads the stored
// sessions of those two and the ones its watermark closes, not the whole
// store (the old code scanned all 5 000), on both state backends; a
// session that is both of a batch key and closed is merged once, and the
// output equals what one batch of all rows gives.
func TestStatefulSessionReadsOnlyTheBatchKeysAndClosedSessions(t *testing.T) {
	for _, backend := range []string{"memory", "disk"} {
		t.Run(backend, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			fs := vfs.NewMem()
			var inner state.Provider = state.NewFileProvider(fs, "/ckpt/state")
			if backend == "disk" {
				inner = state.NewDiskProvider(fs, "/ckpt/state", state.DiskOptions{LocalDir: t.TempDir(), CacheBytes: 1})
			}
			stores := &rowCounting{Provider: inner}
			defer stores.Close()

			// User i has one row at 1000 + i%50 s: a session ending 10 s later.
			const users = 5000
			var us []string
			var ts []int64
			for i := 0; i < users; i++ {
				us, ts = append(us, fmt.Sprintf("u%04d", i)), append(ts, (1000+int64(i%50))*sec)
			}
			r0 := sessRecord(mem, us, ts)
			defer r0.Release()
			if out, rows := sessRun(t, mem, stores, 0, 0, r0); len(out) != 0 || rows != users {
				t.Fatalf("batch 0 emitted %v, stored %d sessions", out, rows)
			}
			// u0042's row joins its open session; u0050's (end 1010 s)
			// joins its session, which the watermark would close.
			r1 := sessRecord(mem, []string{"u0042", "u0050", "u0042"}, []int64{1045 * sec, 1005 * sec, 1050 * sec})
			defer r1.Release()
			stores.rows, stores.scans = 0, 0
			out, rows := sessRun(t, mem, stores, 1, 1010*sec, r1)
			// The watermark closes the 100 sessions of users i%50 == 0
			// but u0050's, which its row extended to 1015 s; u0042's rows
			// merged into its stored session.
			if len(out) != 99 || !strings.HasPrefix(out[0], "u0000 1000 1010 1") || rows != users-99 {
				t.Fatalf("batch 1 emitted %d sessions (first %v), stored %d; want the 99 closed ones, %d", len(out), out[:min(3, len(out))], rows, users-99)
			}
			// The sessions of u0042 and u0050, and the 100 closed ones.
			if stores.scans != 0 || stores.rows > 2+100 {
				t.Fatalf("batch 1 read %d stored sessions in %d full scans; want at most 102 and none", stores.rows, stores.scans)
			}
			// The end of time closes the rest: u0042 and u0050 merged once.
			out, _ = sessRun(t, mem, stores, 2, 1<<62)
			want := map[string]bool{"u0042 1042 1060 3": true, "u0050 1000 1015 2": true}
			for _, l := range out {
				delete(want, l)
			}
			if len(out) != users-99 || len(want) > 0 {
				t.Fatalf("batch 2 emitted %d sessions, want %d; missing %v", len(out), users-99, want)
			}
		})
	}
}
