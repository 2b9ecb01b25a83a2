package exec

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// PartitionRecord splits rec into n records by HashColumns(key columns) % n,
// the routing of a shuffle: every row lands in exactly one partition, rows
// keep their relative order, and equal keys land in the same partition on
// every machine. Empty partitions are nil. The caller releases the non-nil
// records (with n == 1 the result is rec itself, retained).
func PartitionRecord(mem memory.Allocator, rec arrow.Record, keyCols []int, n int) ([]arrow.Record, error) {
	return partitionRecord(mem, rec, keyCols, n, func(h uint64) int32 { return int32(h % uint64(n)) })
}

// PartitionByKeyGroup splits rec into n records by key group: a row's key
// group is HashColumns(keys) % keyGroups, and partition p holds the key
// groups [KeyGroupLo(p, n, keyGroups), KeyGroupLo(p+1, n, keyGroups)). State
// is stored per key group, so a query restarted with another partition
// count moves whole key groups and never rehashes state.
func PartitionByKeyGroup(mem memory.Allocator, rec arrow.Record, keyCols []int, keyGroups, n int) ([]arrow.Record, error) {
	if keyGroups < n {
		return nil, fmt.Errorf("partition: %d key groups for %d partitions", keyGroups, n)
	}
	return partitionRecord(mem, rec, keyCols, n, func(h uint64) int32 {
		return int32(int(h%uint64(keyGroups)) * n / keyGroups)
	})
}

// KeyGroupLo is the first key group of partition p of n.
func KeyGroupLo(p, n, keyGroups int) int { return (p*keyGroups + n - 1) / n }

func partitionRecord(mem memory.Allocator, rec arrow.Record, keyCols []int, n int, route func(uint64) int32) ([]arrow.Record, error) {
	if n <= 0 {
		return nil, fmt.Errorf("partition: %d partitions", n)
	}
	cols := make([]arrow.Array, len(keyCols))
	for i, k := range keyCols {
		if k < 0 || k >= int(rec.NumCols()) {
			return nil, fmt.Errorf("partition: key column %d out of range (%d columns)", k, rec.NumCols())
		}
		if _, err := keyKindOf(rec.Column(k).DataType()); err != nil {
			return nil, fmt.Errorf("partition by %s: %w", rec.ColumnName(k), err)
		}
		cols[i] = rec.Column(k)
	}
	out := make([]arrow.Record, n)
	rows := int(rec.NumRows())
	if rows == 0 {
		return out, nil
	}
	if n == 1 {
		rec.Retain()
		out[0] = rec
		return out, nil
	}
	hashes := make([]uint64, rows)
	HashColumns(cols, hashes)
	counts := make([]int, n+1)
	part := make([]int32, rows)
	for i, h := range hashes {
		p := route(h)
		part[i] = p
		counts[p+1]++
	}
	for p := 0; p < n; p++ {
		counts[p+1] += counts[p]
	}
	idx := make([]int32, rows)
	pos := append([]int(nil), counts[:n]...)
	for i, p := range part {
		idx[pos[p]] = int32(i)
		pos[p]++
	}
	for p := 0; p < n; p++ {
		if counts[p] == counts[p+1] {
			continue
		}
		out[p] = takeRecord(mem, rec, idx[counts[p]:counts[p+1]])
	}
	return out, nil
}

// takeRecord gathers rows of rec (negative = a null row) into a new record.
func takeRecord(mem memory.Allocator, rec arrow.Record, rows []int32) arrow.Record {
	types := make([]arrow.DataType, rec.NumCols())
	for i, f := range rec.Schema().Fields() {
		types[i] = f.Type
	}
	cols := takeColumns(mem, rec.Columns(), types, rows)
	out := array.NewRecord(rec.Schema(), cols, int64(len(rows)))
	for _, c := range cols {
		c.Release()
	}
	return out
}
