// Package generate makes deterministic data for demos, tests and benchmarks.
//
// In: a seed and a row range. Out: Arrow records. Orders makes records
// directly; Rate and OrdersStream are sources.Stream versions for streaming
// queries (stream.go).
//
// Invariants:
//  1. Row i is a pure function of (seed, i): any range can be generated on
//     any machine, in parallel, with identical results.
//  2. Records are allocated from the caller's allocator; the caller releases them.
package generate
