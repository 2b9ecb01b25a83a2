// Package sinktest is the contract suite every sinks.Sink passes: the
// two-phase, exactly-once rules of sinks.Sink written as tests, run against
// each implementation (as prometheus runs one corpus against every engine).
//
// In: a Factory that makes a fresh sink on a checked allocator and a way to
// read back what it committed. Out: subtests named by the rule they check.
//
// Invariants the suite checks:
//  1. Output of a batch, written by several tasks (concurrently too), is
//     invisible until Commit and complete after it.
//  2. Commit is idempotent per batch id: a second Commit, or a re-run of the
//     batch after a crash (new writers, new messages, Commit again), writes
//     the rows once; messages of a run that crashed before Commit never show.
//  3. Sink.Abort and Writer.Abort leave nothing; Abort is idempotent and a
//     no-op for a committed batch.
//  4. A batch with no rows (no Write, a zero-row record, no task) commits.
//  5. Records passed to Write are not retained: the suite releases them right
//     after Write and checks its allocator is empty; the sink's own allocator
//     is empty once the factory's cleanups ran.
//  6. Check accepts the modes the sink supports and rejects the others (and
//     an unknown mode) with an error naming the mode.
//
// Every case writes in sinks.Append with the schema (id int64, name string
// with nulls); ids are unique across a case, so "written once" is a sorted
// comparison of rendered rows.
package sinktest
