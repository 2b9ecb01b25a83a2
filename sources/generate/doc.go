// Package generate makes deterministic data for demos, tests and benchmarks.
//
// In: a seed and a row range. Out: Arrow records.
//
// Invariants:
//  1. Row i is a pure function of (seed, i): any range can be generated on
//     any machine, in parallel, with identical results.
//  2. Records are allocated from the caller's allocator; the caller releases them.
package generate
