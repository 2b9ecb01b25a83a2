package exec

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
)

// statefulDedup passes on the first row of each key it has never seen, across
// micro-batches: the keys seen live in a state store (key group range
// [lo, hi), version spec.Version -> Version+1). With spec.EventTimeKey set,
// keys whose event time is at or behind spec.Watermark are dropped from
// state (rows that old never reach it: a late filter runs before).
type statefulDedup struct {
	mem     memory.Allocator
	in      Operator
	keys    []int // key column indices in the input
	spec    StateSpec
	lo, hi  int
	store   state.Store
	grouper *keyGrouper
	keySch  *arrow.Schema
	done    bool
	err     error
}

// NewStatefulDedup drops rows whose key columns equal an earlier row's,
// in this batch or any earlier one.
func NewStatefulDedup(mem memory.Allocator, in Operator, keys []string, spec StateSpec, lo, hi int) (Operator, error) {
	d := &statefulDedup{mem: mem, in: in, spec: spec, lo: lo, hi: hi}
	var fields []arrow.Field
	var types []arrow.DataType
	for _, k := range keys {
		idx := in.Schema().FieldIndices(k)
		if len(idx) == 0 {
			return nil, fmt.Errorf("drop duplicates: no column %q", k)
		}
		d.keys = append(d.keys, idx[0])
		f := in.Schema().Field(idx[0])
		fields = append(fields, f)
		types = append(types, f.Type)
	}
	d.keySch = arrow.NewSchema(fields, nil)
	g, err := newKeyGrouper(types)
	if err != nil {
		return nil, fmt.Errorf("drop duplicates: %w", err)
	}
	d.grouper = g
	return d, nil
}

func (d *statefulDedup) Schema() *arrow.Schema { return d.in.Schema() }

func (d *statefulDedup) stores() (state.Provider, error) {
	return needProvider(d.spec.Provider, d.spec.Operator)
}

func (d *statefulDedup) open() error {
	stores, err := d.stores()
	if err != nil {
		return err
	}
	st, err := stores.Open(state.StoreSpec{Operator: d.spec.Operator, KeyGroups: d.spec.KeyGroups,
		Lo: d.lo, Hi: d.hi, KeySchema: d.keySch, ValueSchema: arrow.NewSchema(nil, nil),
		TimeColumn: timeColumn(d.keySch, d.spec.EventTimeKey), Allocator: d.mem}, d.spec.Version)
	if err != nil {
		return err
	}
	d.store = st
	return nil
}

func (d *statefulDedup) Next(ctx context.Context) (arrow.Record, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.store == nil && !d.done {
		if err := d.open(); err != nil {
			d.err = fmt.Errorf("drop duplicates %s: %w", d.spec.Operator, err)
			return nil, d.err
		}
	}
	for {
		rec, err := d.in.Next(ctx)
		if err == io.EOF {
			d.err = d.finish()
			if d.err == nil {
				d.err = io.EOF
			}
			return nil, d.err
		}
		if err != nil {
			d.err = err
			return nil, err
		}
		out, err := d.filter(rec)
		rec.Release()
		if err != nil {
			d.err = fmt.Errorf("drop duplicates %s: %w", d.spec.Operator, err)
			return nil, d.err
		}
		if out != nil {
			return out, nil
		}
	}
}

// filter returns the rows of rec whose keys are new (nil when none) and
// records those keys in the store.
func (d *statefulDedup) filter(rec arrow.Record) (arrow.Record, error) {
	n := int(rec.NumRows())
	cols := make([]arrow.Array, len(d.keys))
	for i, k := range d.keys {
		cols[i] = rec.Column(k)
	}
	// First occurrence of each key within the record.
	before := d.grouper.n
	ids := make([]uint32, n)
	d.grouper.assign(cols, ids)
	var first []int
	next := uint32(before)
	for i, id := range ids {
		if id == next {
			first = append(first, i)
			next++
		}
	}
	if len(first) == 0 {
		return nil, nil
	}
	keys := array.NewRecord(d.keySch, cols, int64(n))
	defer keys.Release()
	cand, err := TakeRecord(d.mem, keys, first)
	if err != nil {
		return nil, err
	}
	defer cand.Release()
	slots := make([]int32, len(first))
	if err := d.store.Lookup(cand, slots); err != nil {
		return nil, err
	}
	var fresh, freshIdx []int
	for j, s := range slots {
		if s < 0 {
			fresh = append(fresh, first[j])
			freshIdx = append(freshIdx, j)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	newKeys, err := TakeRecord(d.mem, cand, freshIdx)
	if err != nil {
		return nil, err
	}
	defer newKeys.Release()
	vals := array.NewRecord(arrow.NewSchema(nil, nil), nil, newKeys.NumRows())
	defer vals.Release()
	if err := d.store.Put(newKeys, vals, nil); err != nil {
		return nil, err
	}
	return TakeRecord(d.mem, rec, fresh)
}

func (d *statefulDedup) finish() error {
	d.done = true
	if d.spec.EventTimeKey >= 0 {
		if _, err := d.store.EvictWhere(d.spec.EventTimeKey, d.spec.Watermark+1); err != nil {
			return err
		}
	}
	if err := d.store.Commit(d.spec.Version + 1); err != nil {
		return fmt.Errorf("drop duplicates %s: %w", d.spec.Operator, err)
	}
	d.spec.Metrics.AddState(d.spec.Operator, int64(d.store.Len()), d.store.SizeBytes())
	stores, err := d.stores()
	if err != nil {
		return err
	}
	stores.Keep(d.store, nil)
	d.store = nil
	return nil
}

func (d *statefulDedup) Close() error {
	if d.store != nil {
		d.store.Close()
		d.store = nil
	}
	return d.in.Close()
}
