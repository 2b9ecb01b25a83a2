package generate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/generate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var origin = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// clock is a settable processing-time clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// dump reads (start, end] and renders every row, plus the split sizes.
func dump(t *testing.T, mem memory.Allocator, s sources.Stream, start, end sources.Offset) (rows []string, sizes []int64) {
	t.Helper()
	splits, err := s.Splits(context.Background(), start, end)
	if err != nil {
		t.Fatalf("splits(%s, %s): %v", start, end, err)
	}
	for _, sp := range splits {
		sizes = append(sizes, sp.Rows())
		n := int64(0)
		err := sp.Read(context.Background(), mem, func(r arrow.Record) error {
			defer r.Release()
			if !r.Schema().Equal(s.Schema()) {
				t.Errorf("record schema %s, want %s", r.Schema(), s.Schema())
			}
			n += r.NumRows()
			for i := 0; i < int(r.NumRows()); i++ {
				var cells []string
				for _, c := range r.Columns() {
					cells = append(cells, c.ValueStr(i))
				}
				rows = append(rows, strings.Join(cells, ","))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != sp.Rows() {
			t.Errorf("split said %d rows, read %d", sp.Rows(), n)
		}
	}
	return rows, sizes
}

func mustLatest(t *testing.T, s sources.Stream, start sources.Offset) sources.Offset {
	t.Helper()
	end, err := s.Latest(context.Background(), start)
	if err != nil {
		t.Fatalf("latest(%s): %v", start, err)
	}
	return end
}

func TestRateLatest(t *testing.T) {
	tests := []struct {
		name    string
		max     int64
		start   string
		elapsed time.Duration
		want    string
	}{
		{"at the origin no row is due", 0, `{"rows":0}`, 0, `{"rows":0,"start_us":%d}`},
		{"after one second ten rows are due", 0, `{"rows":0}`, time.Second, `{"rows":10,"start_us":%d}`},
		{"part of a row interval does not make the row due", 0, `{"rows":0}`, 1550 * time.Millisecond, `{"rows":15,"start_us":%d}`},
		{"the batch cap limits how far a batch reaches", 4, `{"rows":3}`, 10 * time.Second, `{"rows":7,"start_us":%d}`},
		{"a clock before the origin leaves the start where it is", 0, `{"rows":0}`, -time.Hour, `{"rows":0,"start_us":%d}`},
		{"a start ahead of the clock is not moved back", 0, `{"rows":50}`, time.Second, `{"rows":50,"start_us":%d}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{origin.Add(tc.elapsed)}
			r, err := generate.NewRate(generate.RateConfig{RowsPerSecond: 10, StartTime: origin, Now: c.now, MaxRowsPerBatch: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			got := mustLatest(t, r, sources.Offset(tc.start))
			if want := fmt.Sprintf(tc.want, origin.UnixMicro()); string(got) != want {
				t.Errorf("latest = %s, want %s", got, want)
			}
		})
	}
}

func TestRateRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	c := &clock{origin.Add(time.Second)}
	r, err := generate.NewRate(generate.RateConfig{RowsPerSecond: 4, Seed: 9, Keys: 3, StartTime: origin, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	start, _ := r.Initial(context.Background())
	end := mustLatest(t, r, start)
	rows, _ := dump(t, mem, r, start, end)
	want := []string{
		"2026-11-23 12:00:00Z,0,", "2026-11-23 12:00:00.25Z,1,",
		"2026-11-23 12:00:00.5Z,2,", "2026-11-23 12:00:00.75Z,3,",
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %q, want 4", rows)
	}
	for i, row := range rows {
		if !strings.HasPrefix(row, want[i]) {
			t.Errorf("row %d = %q, want prefix %q", i, row, want[i])
		}
		if k := row[strings.LastIndexByte(row, ',')+1:]; k != "key-0" && k != "key-1" && k != "key-2" {
			t.Errorf("row %d key %q is not one of 3 keys", i, k)
		}
	}
}

func TestRateSplitsAreDeterministicAndRestartable(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	c := &clock{origin.Add(time.Minute)}
	r, _ := generate.NewRate(generate.RateConfig{RowsPerSecond: 5000, Seed: 1, StartTime: origin, Now: c.now})
	start, _ := r.Initial(context.Background())
	end := mustLatest(t, r, start)
	if want := fmt.Sprintf(`{"rows":300000,"start_us":%d}`, origin.UnixMicro()); string(end) != want {
		t.Fatalf("latest = %s, want %s", end, want)
	}
	first, sizes := dump(t, mem, r, start, end)
	if fmt.Sprint(sizes) != "[65536 65536 65536 65536 37856]" {
		t.Errorf("split sizes %v, want four of 64Ki and the rest", sizes)
	}
	second, _ := dump(t, mem, r, start, end)
	// A restarted query builds a new source, here with another default
	// start time; the recorded offsets keep the rows identical.
	c2 := &clock{origin.Add(time.Hour)}
	restarted, _ := generate.NewRate(generate.RateConfig{RowsPerSecond: 5000, Seed: 1, Now: c2.now})
	third, _ := dump(t, mem, restarted, start, end)
	for i := range first {
		if first[i] != second[i] || first[i] != third[i] {
			t.Fatalf("row %d: %q, then %q, after restart %q", i, first[i], second[i], third[i])
		}
	}
}

func TestRateBound(t *testing.T) {
	c := &clock{origin.Add(time.Second)}
	r, _ := generate.NewRate(generate.RateConfig{RowsPerSecond: 10, StartTime: origin, Now: c.now, MaxRowsPerBatch: 4})
	if err := r.Bound(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	start, _ := r.Initial(context.Background())
	var ends []string
	for i := 0; i < 5; i++ {
		end := mustLatest(t, r, start)
		ends = append(ends, strings.Split(string(end), ",")[0])
		start = end
	}
	if got := strings.Join(ends, " "); got != `{"rows":4 {"rows":8 {"rows":10 {"rows":10 {"rows":10` {
		t.Errorf("bounded batches end at %s, want 4 8 10 10 10", got)
	}
}

func TestOrdersStreamLatest(t *testing.T) {
	tests := []struct {
		name string
		cfg  generate.OrdersStreamConfig
		want string // ends of successive batches from the initial offset
	}{
		{"an unbounded rate takes the batch cap each batch", generate.OrdersStreamConfig{MaxRowsPerBatch: 100},
			`{"rows":100} {"rows":200} {"rows":300}`},
		{"a bounded stream stops at its total", generate.OrdersStreamConfig{Total: 250, MaxRowsPerBatch: 100},
			`{"rows":100} {"rows":200} {"rows":250} {"rows":250}`},
		{"a bounded stream without a cap is one batch", generate.OrdersStreamConfig{Total: 250},
			`{"rows":250} {"rows":250}`},
		{"a rate gives the rows due by the clock", generate.OrdersStreamConfig{RowsPerSecond: 30, StartTime: origin},
			fmt.Sprintf(`{"rows":60,"start_us":%d} {"rows":60,"start_us":%[1]d}`, origin.UnixMicro())},
		{"a rate and a total stop at the total", generate.OrdersStreamConfig{RowsPerSecond: 30, Total: 45, StartTime: origin},
			fmt.Sprintf(`{"rows":45,"start_us":%d} {"rows":45,"start_us":%[1]d}`, origin.UnixMicro())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{origin.Add(2 * time.Second)}
			tc.cfg.Now = c.now
			o, err := generate.NewOrdersStream(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			start, _ := o.Initial(context.Background())
			var ends []string
			for range strings.Split(tc.want, " {") {
				end := mustLatest(t, o, start)
				ends = append(ends, string(end))
				start = end
			}
			if got := strings.Join(ends, " "); got != tc.want {
				t.Errorf("ends %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOrdersStreamReadsTheGenerator(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	gen := generate.Orders{Seed: 5, Customers: 10, MaxDelay: time.Minute}
	o, err := generate.NewOrdersStream(generate.OrdersStreamConfig{Orders: gen, Total: 70000})
	if err != nil {
		t.Fatal(err)
	}
	start := sources.Offset(`{"rows":1000}`)
	end := mustLatest(t, o, start)
	got, sizes := dump(t, mem, o, start, end)
	if fmt.Sprint(sizes) != "[65536 3464]" {
		t.Errorf("split sizes %v", sizes)
	}
	restarted, _ := generate.NewOrdersStream(generate.OrdersStreamConfig{Orders: gen, Total: 70000})
	again, _ := dump(t, mem, restarted, start, end)
	rec := gen.Record(mem, 1000, 69000)
	defer rec.Release()
	for i := range got {
		var cells []string
		for _, c := range rec.Columns() {
			cells = append(cells, c.ValueStr(i))
		}
		if want := strings.Join(cells, ","); got[i] != want || again[i] != want {
			t.Fatalf("row %d: %q, after restart %q, generator %q", i, got[i], again[i], want)
		}
	}
}

func TestBadOffsets(t *testing.T) {
	r, _ := generate.NewRate(generate.RateConfig{Name: "ticks", RowsPerSecond: 1, StartTime: origin})
	o, _ := generate.NewOrdersStream(generate.OrdersStreamConfig{Name: "ticks", Total: 10})
	ctx := context.Background()
	tests := []struct {
		name       string
		s          sources.Stream
		start, end string
	}{
		{"text that is not JSON is refused", r, `rows=1`, `{"rows":2}`},
		{"an offset without rows is refused", r, `{}`, `{"rows":2}`},
		{"a negative row count is refused", r, `{"rows":-1}`, `{"rows":2}`},
		{"an unknown field is refused", r, `{"rows":1,"pos":3}`, `{"rows":2}`},
		{"trailing data is refused", r, `{"rows":1} {}`, `{"rows":2}`},
		{"an end before its start is refused", r, `{"rows":3}`, `{"rows":2}`},
		{"offsets of two time origins are refused", r, `{"rows":1,"start_us":1}`, `{"rows":2,"start_us":2}`},
		{"an offset past a bounded stream's total is refused", o, `{"rows":1}`, `{"rows":11}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Splits(ctx, sources.Offset(tc.start), sources.Offset(tc.end))
			if !errors.Is(err, sources.ErrBadOffset) {
				t.Fatalf("splits: %v, want ErrBadOffset", err)
			}
			if !strings.Contains(err.Error(), `"ticks"`) {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
	if _, err := r.Latest(ctx, sources.Offset(`{"rows":"x"}`)); !errors.Is(err, sources.ErrBadOffset) {
		t.Errorf("latest of a string row count: %v, want ErrBadOffset", err)
	}
}

func TestOffsetsRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	c := &clock{origin.Add(3 * time.Second)}
	r, _ := generate.NewRate(generate.RateConfig{RowsPerSecond: 2, StartTime: origin, Now: c.now})
	start, _ := r.Initial(context.Background())
	end := mustLatest(t, r, start)
	// The end offset, stored and handed back, is a valid start.
	next := mustLatest(t, r, end)
	if string(next) != string(end) {
		t.Errorf("latest(%s) = %s with no time passed", end, next)
	}
	if rows, _ := dump(t, mem, r, end, next); len(rows) != 0 {
		t.Errorf("an empty range read %d rows", len(rows))
	}
	// An offset without a time origin reads with the configured one.
	a, _ := dump(t, mem, r, sources.Offset(`{"rows":0}`), sources.Offset(`{"rows":6}`))
	b, _ := dump(t, mem, r, start, end)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("rows without origin %q, with %q", a, b)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"a rate of zero rows per second is refused", func() error { _, err := generate.NewRate(generate.RateConfig{}); return err }()},
		{"a negative key count is refused", func() error {
			_, err := generate.NewRate(generate.RateConfig{RowsPerSecond: 1, Keys: -1})
			return err
		}()},
		{"an endless orders stream with no limit is refused", func() error {
			_, err := generate.NewOrdersStream(generate.OrdersStreamConfig{})
			return err
		}()},
		{"a negative total is refused", func() error {
			_, err := generate.NewOrdersStream(generate.OrdersStreamConfig{Total: -1})
			return err
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, generate.ErrConfig) {
				t.Errorf("got %v, want ErrConfig", tc.err)
			}
		})
	}
}

func TestKeysAreSpread(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	sp := &generate.RateSplit{Seed: 3, Keys: 7, RowsPerSecond: 1000, From: 0, To: 7000}
	seen := map[string]int{}
	err := sp.Read(context.Background(), mem, func(r arrow.Record) error {
		defer r.Release()
		keys := r.Column(2).(*array.String)
		for i := 0; i < keys.Len(); i++ {
			seen[keys.Value(i)]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 7 {
		t.Errorf("%d distinct keys, want 7: %v", len(seen), seen)
	}
}
