package exec

import (
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

// scanCounting is a Provider whose stores count full Scans: a timer must be
// found through ScanWhere on the store's TimeColumn, never by a scan of
// every key.
type scanCounting struct {
	*state.FileProvider
	scans, wheres int
	specs         []state.StoreSpec
}

type scanCountingStore struct {
	state.Store
	p *scanCounting
}

func (p *scanCounting) Open(spec state.StoreSpec, version int64) (state.Store, error) {
	st, err := p.FileProvider.Open(spec, version)
	if err != nil {
		return nil, err
	}
	p.specs = append(p.specs, spec)
	return &scanCountingStore{st, p}, nil
}

func (p *scanCounting) OpenAux(spec state.StoreSpec, version int64) (state.Store, []arrow.Record, error) {
	st, aux, err := p.FileProvider.OpenAux(spec, version)
	if err != nil {
		return nil, nil, err
	}
	p.specs = append(p.specs, spec)
	return &scanCountingStore{st, p}, aux, nil
}

func (p *scanCounting) Keep(st state.Store, aux []arrow.Record) {
	p.FileProvider.Keep(st.(*scanCountingStore).Store, aux)
}

func (s *scanCountingStore) Scan(fn func(k, v arrow.Record) error) error {
	s.p.scans++
	return s.Store.Scan(fn)
}

func (s *scanCountingStore) ScanWhere(col int, less int64, fn func(k, v arrow.Record) error) error {
	s.p.wheres++
	return s.Store.ScanWhere(col, less, fn)
}

// fmgTimer sets the key's timeout to the value of its last row and, when
// the timeout fires, emits the key and drops it.
func fmgTimer(c *GroupCall) (GroupResult, error) {
	k := c.Key[0].(string)
	if c.TimedOut {
		c.Out.Field(0).(*array.StringBuilder).Append(k)
		return GroupResult{Timeout: NoTimestamp}, nil
	}
	vals := c.Rows.Column(1).(*array.Int64)
	return GroupResult{Exists: true, State: []byte("x"), Timeout: vals.Value(vals.Len() - 1)}, nil
}

func fmgTimerRun(t *testing.T, mem memory.Allocator, stores state.Provider, kind TimeoutKind, version, now int64, recs ...arrow.Record) ([]string, int64) {
	t.Helper()
	g := GroupsSpec{Func: "fmgTimer", Keys: []string{"k"}, Timeout: kind, Watermark: NoTimestamp, BatchTime: NoTimestamp}
	if kind == EventTimeTimeout {
		g.Watermark = now
	} else {
		g.BatchTime = now
	}
	return fmgRunSpec(t, mem, stores, g, fmgTimer, version, recs...)
}

// TestFlatMapGroupsTimeoutsWithManyKeysFewDue: 20 000 keys with timeouts
// 0..19 999, and a watermark (batch time) that moves 250 per batch while
// every batch also moves 100 keys' timeouts ahead. Each batch must time
// out exactly the keys whose timeout passed (event time: t < watermark;
// processing time: t <= batch time), in key order, and find them without
// scanning the store.
func TestFlatMapGroupsTimeoutsWithManyKeysFewDue(t *testing.T) {
	for _, kind := range []TimeoutKind{EventTimeTimeout, ProcessingTimeTimeout} {
		t.Run(string(kind), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			const keys = 20_000
			name := func(i int) string { return fmt.Sprintf("k%05d", i) }
			stores := &scanCounting{FileProvider: state.NewFileProvider(vfs.NewMem(), "/ckpt/state")}
			defer stores.Close()
			timeout := map[string]int64{}
			var ks []string
			var vs []int64
			for i := 0; i < keys; i++ {
				ks, vs = append(ks, name(i)), append(vs, int64(i))
				timeout[name(i)] = int64(i)
			}
			r := fmgRecord(mem, ks, vs)
			out, rows := fmgTimerRun(t, mem, stores, kind, 0, -1, r)
			r.Release()
			if len(out) != 0 || rows != keys {
				t.Fatalf("batch 0: %d timed out, %d state rows; want 0, %d", len(out), rows, keys)
			}
			for b := int64(1); b <= 30; b++ {
				now := b * 250
				// Keys 20 000 - 100b .. +100 get a timeout beyond the end.
				var ks []string
				var vs []int64
				for i := keys - 100*int(b); i < keys-100*int(b-1); i++ {
					ks, vs = append(ks, name(i)), append(vs, 1_000_000+int64(i))
					timeout[name(i)] = 1_000_000 + int64(i)
				}
				var want []string
				for k, tm := range timeout {
					if tm < now || (kind == ProcessingTimeTimeout && tm == now) {
						want = append(want, k)
					}
				}
				slices.Sort(want)
				for _, k := range want {
					delete(timeout, k)
				}
				r := fmgRecord(mem, ks, vs)
				scans := stores.scans
				out, rows := fmgTimerRun(t, mem, stores, kind, b, now, r)
				r.Release()
				if !slices.Equal(out, want) {
					t.Fatalf("batch %d (now %d): timed out %d keys %.5q..., want %d %.5q...", b, now, len(out), out, len(want), want)
				}
				if rows != int64(len(timeout)) {
					t.Fatalf("batch %d: %d state rows, want %d", b, rows, len(timeout))
				}
				if stores.scans != scans {
					t.Fatalf("batch %d: %d full scans of the store to find %d due timers", b, stores.scans-scans, len(want))
				}
			}
			if stores.wheres == 0 {
				t.Fatal("no ScanWhere: how were the timers found?")
			}
			for _, s := range stores.specs {
				if s.TimeColumn != "timeout_us" {
					t.Fatalf("store opened with TimeColumn %q, want timeout_us", s.TimeColumn)
				}
			}
		})
	}
}
