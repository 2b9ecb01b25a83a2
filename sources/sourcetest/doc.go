// Package sourcetest is the contract suite for splits that cross a process
// boundary: Stream contracts 5 and 6 of package sources written as checks,
// run by each source's tests against its own streams.
//
// In: the splits of a batch, the streams that must decode them (the one
// that made them, and a second one built from the same config standing in
// for an executor), and a checked allocator. Out: subtests named by the
// rule they check.
//
// Invariants the suite checks:
//  1. Encode then DecodeSplit gives a split with the same Rows, the same
//     bytes when encoded again, and the same rows in the same order when
//     read, on every decoding stream.
//  2. Bytes the stream did not make (garbage, empty, truncated, trailing
//     data, another format version, another kind of source, another source
//     of the same kind, an unknown field) fail with an error wrapping
//     sources.ErrBadSplit that names the source as `kind "name"`, and never
//     panic.
//  3. Every record read is released: the caller's checked allocator is
//     empty afterwards.
package sourcetest
