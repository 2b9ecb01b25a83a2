package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sources"
	srcpq "github.com/sluicedata/sluice/sources/parquet"
)

// group is one output row's identity: a window (by its start, Unix
// microseconds) and a key.
type group struct {
	start int64
	key   string
}

// agg is one output row's values.
type agg struct{ count, sum int64 }

// baseline is the answer computed without the engine: the same events
// (the Rate source's own splits, read directly), a plain Go map per worker,
// and only the windows that end at or before the final watermark wm (Unix
// microseconds), which are the ones append mode has emitted.
func baseline(ctx context.Context, o options, wm int64) (map[group]agg, error) {
	src, err := newSource(o, o.events, 0)
	if err != nil {
		return nil, err
	}
	lo, err := src.Initial(ctx)
	if err != nil {
		return nil, err
	}
	if err := src.Bound(ctx); err != nil {
		return nil, err
	}
	hi, err := src.Latest(ctx, lo)
	if err != nil {
		return nil, err
	}
	splits, err := src.Splits(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	size := o.window.Microseconds()
	next := make(chan sources.Split)
	parts := make([]map[group]agg, o.parallelism)
	errs := make([]error, o.parallelism)
	var wg sync.WaitGroup
	for w := range o.parallelism {
		m := map[group]agg{}
		parts[w] = m
		wg.Go(func() {
			for sp := range next {
				if errs[w] != nil {
					continue
				}
				errs[w] = sp.Read(ctx, o.mem, func(r arrow.Record) error {
					defer r.Release()
					ts := r.Column(0).(*array.Timestamp).TimestampValues()
					vals := r.Column(1).(*array.Int64).Int64Values()
					keys := r.Column(2).(*array.String)
					for i := range ts {
						// Event times are after 1970, so division rounds down.
						g := group{start: int64(ts[i]) / size * size, key: keys.Value(i)}
						a, ok := m[g]
						if !ok {
							g.key = strings.Clone(g.key) // Value aliases the record's buffer
						}
						a.count++
						a.sum += vals[i]
						m[g] = a
					}
					return nil
				})
			}
		})
	}
	for _, sp := range splits {
		next <- sp
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := map[group]agg{}
	for _, m := range parts {
		for g, a := range m {
			if g.start+size > wm {
				continue // window still open
			}
			b := out[g]
			out[g] = agg{b.count + a.count, b.sum + a.sum}
		}
	}
	return out, nil
}

// readOutput reads the sink's table back with dataset.Read: every
// committed row as (window_start, key) -> (count, sum), and the row count,
// failing on a group emitted twice. A table no batch has written a file to
// yet (sources/parquet.ErrNoFiles) has no rows.
func readOutput(ctx context.Context, cfg dataset.Config, dir string) (map[group]agg, int64, error) {
	recs, err := dataset.Read(dir).WithConfig(cfg).CollectRecords(ctx)
	if errors.Is(err, srcpq.ErrNoFiles) {
		return map[group]agg{}, 0, nil // no window closed yet: no batch wrote a file
	}
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	out := map[group]agg{}
	var rows int64
	for _, r := range recs {
		col := func(name string) (arrow.Array, error) {
			idx := r.Schema().FieldIndices(name)
			if len(idx) != 1 {
				return nil, fmt.Errorf("output has no column %q: %s", name, r.Schema())
			}
			return r.Column(idx[0]), nil
		}
		var arrs [4]arrow.Array
		for i, name := range []string{dataset.WindowStart, "key", "count", "sum"} {
			if arrs[i], err = col(name); err != nil {
				return nil, 0, err
			}
		}
		start, ok1 := arrs[0].(*array.Timestamp)
		key, ok2 := arrs[1].(*array.String)
		count, ok3 := arrs[2].(*array.Int64)
		sum, ok4 := arrs[3].(*array.Int64)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, 0, fmt.Errorf("output columns have unexpected types: %s", r.Schema())
		}
		unit := start.DataType().(*arrow.TimestampType).Unit
		for i := 0; i < int(r.NumRows()); i++ {
			if start.IsNull(i) || key.IsNull(i) || count.IsNull(i) || sum.IsNull(i) {
				return nil, 0, fmt.Errorf("output row %d has a null", rows)
			}
			g := group{start: toMicros(int64(start.Value(i)), unit), key: strings.Clone(key.Value(i))}
			if _, dup := out[g]; dup {
				return nil, 0, fmt.Errorf("window %d key %q emitted twice", g.start, g.key)
			}
			out[g] = agg{count.Value(i), sum.Value(i)}
			rows++
		}
	}
	return out, rows, nil
}

func toMicros(v int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return v * 1_000_000
	case arrow.Millisecond:
		return v * 1_000
	case arrow.Nanosecond:
		return v / 1_000
	}
	return v
}

// compare reports the first groups where got and want differ.
func compare(got, want map[group]agg, rows int64) error {
	var diffs []string
	for g, w := range want {
		if a, ok := got[g]; !ok {
			diffs = append(diffs, fmt.Sprintf("window %d key %q: missing, want %+v", g.start, g.key, w))
		} else if a != w {
			diffs = append(diffs, fmt.Sprintf("window %d key %q: got %+v, want %+v", g.start, g.key, a, w))
		}
	}
	for g, a := range got {
		if _, ok := want[g]; !ok {
			diffs = append(diffs, fmt.Sprintf("window %d key %q: got %+v, want no row (window open or no events)", g.start, g.key, a))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return fmt.Errorf("%d of %d groups differ (output %d rows); first: %s", len(diffs), len(want), rows, strings.Join(diffs[:min(5, len(diffs))], "; "))
}

func countWindows(m map[group]agg) int {
	w := map[int64]bool{}
	for g := range m {
		w[g.start] = true
	}
	return len(w)
}
