package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	pqsrc "github.com/sluicedata/sluice/sources/parquet"
)

// decode reads columns of every file into records with sources/parquet,
// all splits in parallel (workers goroutines). Records are returned in split
// order; the caller releases them.
func decode(ctx context.Context, mem memory.Allocator, files []string, columns []string, workers int) ([]arrow.Record, error) {
	t, err := pqsrc.Open(ctx, files...)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	fields := make([]arrow.Field, len(columns))
	for i, c := range columns {
		idx := t.Schema.FieldIndices(c)
		if len(idx) != 1 {
			return nil, fmt.Errorf("decode: no column %q in %s", c, t.Schema)
		}
		fields[i] = t.Schema.Field(idx[0])
	}
	schema := arrow.NewSchema(fields, nil)
	splits, _ := t.Splits(nil)
	out := make([][]arrow.Record, len(splits))
	errs := make([]error, len(splits))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(splits) {
					return
				}
				errs[i] = pqsrc.ReadSplit(ctx, mem, splits[i], schema, t.PartitionColumns, 0, func(r arrow.Record) error {
					out[i] = append(out[i], r)
					return nil
				})
			}
		})
	}
	wg.Wait()
	var recs []arrow.Record
	for _, rs := range out {
		recs = append(recs, rs...)
	}
	if err := errors.Join(errs...); err != nil {
		releaseAll(recs)
		return nil, fmt.Errorf("decode: %w", err)
	}
	return recs, nil
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

// forEachRecord runs fn(i) for every record index on workers goroutines.
// Each fn writes only its own partial result, so the caller merges partials
// in record order and the answer does not depend on scheduling.
func forEachRecord(n, workers int, fn func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = fn(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

var errNulls = errors.New("hand loop: column has nulls; the generator writes none")

func float64s(a arrow.Array) ([]float64, error) {
	c, ok := a.(*array.Float64)
	if !ok {
		return nil, fmt.Errorf("hand loop: column is %s, want float64", a.DataType())
	}
	if c.NullN() > 0 {
		return nil, errNulls
	}
	return c.Float64Values(), nil
}

func date32s(a arrow.Array) ([]arrow.Date32, error) {
	c, ok := a.(*array.Date32)
	if !ok {
		return nil, fmt.Errorf("hand loop: column is %s, want date32", a.DataType())
	}
	if c.NullN() > 0 {
		return nil, errNulls
	}
	return c.Date32Values(), nil
}

// flags returns the offsets and bytes of a string column whose values are
// one character each (checked by the loop on the rows it uses).
func flags(a arrow.Array) (offs []int32, data []byte, err error) {
	c, ok := a.(*array.String)
	if !ok {
		return nil, nil, fmt.Errorf("hand loop: column is %s, want string", a.DataType())
	}
	if c.NullN() > 0 {
		return nil, nil, errNulls
	}
	offs = c.ValueOffsets()
	// The whole value buffer: offsets index it absolutely, even in a slice.
	if b := c.Data().Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	return offs, data, nil
}

var errFlag = errors.New("hand loop: a flag value is not one character")

// q1Acc is Q1's running state of one group.
type q1Acc struct {
	sumQty, sumPrice, sumDiscPrice, sumCharge, sumDisc float64
	count                                              int64
}

// q1Partial is one record's groups: a tiny array indexed by the two flag
// bytes through slot (0 = group not seen yet).
type q1Partial struct {
	slot [1 << 16]uint8
	keys []uint16
	accs []q1Acc
}

func (p *q1Partial) acc(key uint16) *q1Acc {
	s := p.slot[key]
	if s == 0 {
		p.keys = append(p.keys, key)
		p.accs = append(p.accs, q1Acc{})
		s = uint8(len(p.keys))
		p.slot[key] = s
	}
	return &p.accs[s-1]
}

// q1Loop is TPC-H Q1 over typed slices. Columns: l_returnflag,
// l_linestatus, l_quantity, l_extendedprice, l_discount, l_tax, l_shipdate.
func q1Loop(recs []arrow.Record, workers int) (answer, error) {
	parts := make([]*q1Partial, len(recs))
	cutoff := arrow.Date32(q1Cutoff)
	err := forEachRecord(len(recs), workers, func(i int) error {
		rec := recs[i]
		p := &q1Partial{}
		parts[i] = p
		rfOff, rf, err := flags(rec.Column(0))
		if err != nil {
			return err
		}
		lsOff, ls, err := flags(rec.Column(1))
		if err != nil {
			return err
		}
		var cols [4][]float64
		for j := range cols {
			if cols[j], err = float64s(rec.Column(2 + j)); err != nil {
				return err
			}
		}
		qty, price, disc, tax := cols[0], cols[1], cols[2], cols[3]
		ship, err := date32s(rec.Column(6))
		if err != nil {
			return err
		}
		// The groups of the last row are cached: lineitem's flags come in
		// long runs, but the loop does not rely on it.
		lastKey, a := uint16(0), (*q1Acc)(nil)
		for r := range ship {
			if ship[r] > cutoff {
				continue
			}
			if rfOff[r+1]-rfOff[r] != 1 || lsOff[r+1]-lsOff[r] != 1 {
				return errFlag
			}
			key := uint16(rf[rfOff[r]])<<8 | uint16(ls[lsOff[r]])
			if a == nil || key != lastKey {
				a, lastKey = p.acc(key), key
			}
			dp := price[r] * (1 - disc[r])
			a.sumQty += qty[r]
			a.sumPrice += price[r]
			a.sumDiscPrice += dp
			a.sumCharge += dp * (1 + tax[r])
			a.sumDisc += disc[r]
			a.count++
		}
		return nil
	})
	if err != nil {
		return answer{}, err
	}
	total := map[uint16]*q1Acc{}
	for _, p := range parts {
		for j, k := range p.keys {
			t := total[k]
			if t == nil {
				t = &q1Acc{}
				total[k] = t
			}
			s := &p.accs[j]
			t.sumQty += s.sumQty
			t.sumPrice += s.sumPrice
			t.sumDiscPrice += s.sumDiscPrice
			t.sumCharge += s.sumCharge
			t.sumDisc += s.sumDisc
			t.count += s.count
		}
	}
	keys := make([]uint16, 0, len(total))
	for k := range total {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] }) // = order by returnflag, linestatus
	a := answer{names: append(append([]string(nil), q1Floats...), q1Ints...)}
	for _, k := range keys {
		t := total[k]
		n := float64(t.count)
		a.keys = append(a.keys, string([]byte{byte(k >> 8)})+"|"+string([]byte{byte(k)})+"|")
		a.sums = append(a.sums, []float64{t.sumQty, t.sumPrice, t.sumDiscPrice, t.sumCharge, t.sumQty / n, t.sumPrice / n, t.sumDisc / n})
		a.counts = append(a.counts, []int64{t.count})
	}
	return a, nil
}

// q6Loop is TPC-H Q6 over typed slices. Columns: l_shipdate, l_discount,
// l_quantity, l_extendedprice.
func q6Loop(recs []arrow.Record, workers int) (answer, error) {
	sums := make([]float64, len(recs))
	counts := make([]int64, len(recs))
	from, to := arrow.Date32(q6From), arrow.Date32(q6To)
	err := forEachRecord(len(recs), workers, func(i int) error {
		rec := recs[i]
		ship, err := date32s(rec.Column(0))
		if err != nil {
			return err
		}
		var cols [3][]float64
		for j := range cols {
			if cols[j], err = float64s(rec.Column(1 + j)); err != nil {
				return err
			}
		}
		disc, qty, price := cols[0], cols[1], cols[2]
		var sum float64
		var n int64
		for r, d := range ship {
			if d >= from && d < to && disc[r] >= q6DiscLo && disc[r] <= q6DiscHi && qty[r] < q6Qty {
				sum += price[r] * disc[r]
				n++
			}
		}
		sums[i], counts[i] = sum, n
		return nil
	})
	if err != nil {
		return answer{}, err
	}
	var sum float64
	var n int64
	for i := range sums {
		sum += sums[i]
		n += counts[i]
	}
	if n == 0 {
		sum = math.NaN() // SQL: sum over no rows is null
	}
	return answer{keys: []string{""}, sums: [][]float64{{sum}}, counts: [][]int64{{}}, names: q6Floats}, nil
}
