// Package rowhash is sluice's one row hash: the hash expression
// (expr.Hash), shuffle exchanges and key groups (exec.HashColumns) all call
// Columns, so a row's partition, its key group and hash(...) of its columns
// can never disagree.
//
// In: Arrow columns of equal length. Out: one uint64 per row.
//
// The recipe is a wire and storage contract: executors of one job route rows
// to each other by it, and existing checkpoints keep state in key groups
// chosen by it. It never changes without a checkpoint format version bump,
// and testdata/hash.golden in package exec pins it for every accepted type.
//
//	bytes = for each column, in order:
//	    null (and every row of a null-type column) -> 0x00
//	    otherwise -> 0x01, then the value's canonical bytes:
//	        bool                                  1 byte, 0 or 1
//	        int8/16/32/64, date32, date64,
//	        time32, time64, timestamp, duration   int64 little-endian (widened; the raw value in the column's unit)
//	        uint8/16/32/64                        uint64 little-endian (widened)
//	        float32, float64                      the float64 bits little-endian, -0 as 0, every NaN as 0x7ff8000000000000
//	        decimal128                            the unscaled value: low uint64 LE, then high int64 LE
//	        string, binary (and large variants)   uint32 LE byte length, then the bytes
//	hash  = xxhash64(bytes, seed 0)              (XXH64, github.com/cespare/xxhash/v2)
//
// Invariants:
//  1. Values that grouping and joins treat as equal hash alike: integers of
//     every width, -0 and 0, all NaNs; equal strings whatever their offset
//     width. So int32 7 and int64 7 meet in one partition.
//  2. Values of different types that are not widened alike do not promise to
//     hash alike: decimal(10,2) 1.00 and decimal(10,1) 1.0 differ, as do a
//     date32 and a timestamp of the same instant. Cast keys to one type first.
//  3. The hash of a row depends only on its values, never on the array's
//     offset, chunking or the other rows.
//
// Main loop (two passes over columns, none over rows by type):
//
//	ends[i] = byte length of row i, summed column by column
//	arena  = one buffer; each column writes its bytes at each row's cursor
//	out[i] = xxhash64(arena[row i])
package rowhash
