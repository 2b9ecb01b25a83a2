// Package expr is sluice's expression language: a plain-data tree (Expr) that
// plans carry to executors as JSON, a type checker (Expr.DataType) and a
// vectorized evaluator (Eval) over Arrow record batches, plus the row filter
// kernel (FilterRecord) the filter operator uses.
//
// On the data path it sits inside every physical operator of dataset/:
//
//	logical plan ──(Expr, JSON)──> executor
//	arrow.Record ──Eval(expr)──> arrow.Array          (project, aggregate keys, hash)
//	arrow.Record ──Eval(pred)──> *array.Boolean ──FilterRecord──> arrow.Record
//
// What comes in: an Expr tree, an arrow.Record and a memory.Allocator. What
// goes out: one arrow.Array of rec.NumRows() values (owned by the caller), or
// an error wrapping ErrUnknownColumn, ErrType or ErrCast that names the
// expression text.
//
// Invariants:
//
//  1. Eval returns exactly the type DataType reports for the record's schema;
//     both walk the same rules in bind.go (Spark-like promotion, documented on
//     DataType).
//  2. Bad input never panics: wrong argument counts, unknown operators, nil
//     nodes, literals whose Go value does not match their type, unsupported
//     casts and unknown columns are errors.
//  3. Ownership: the result of Eval and FilterRecord is the caller's to
//     Release; inputs are never released. A bare column reference returns the
//     record's own column, retained; FilterRecord with an all-true mask
//     returns rec itself, retained. Every intermediate is released before
//     Eval returns (tests run on memory.NewCheckedAllocator).
//  4. SQL null semantics: arithmetic, comparisons and functions propagate
//     null; AND/OR are Kleene (false AND null = false, true OR null = true);
//     IN is null when the left side is null or when nothing matches and a
//     value is null; CASE treats a null condition as not true; x/0 and x%0 are
//     null (integers and floats alike).
//  5. Integer arithmetic wraps on overflow (two's complement, like Go and
//     Spark's non-ANSI mode); decimal results beyond 38 digits wrap too.
//     Casts are ANSI: an unparseable string or a value that does not fit the
//     target type is an ErrCast naming the value, row and expression.
//  6. Hot loops work on typed slices and bitmaps: no per-row interface calls,
//     no per-row allocation for numeric, temporal, decimal and string
//     comparison and arithmetic kernels. A literal operand stays a scalar; it
//     is never materialized as a column for arithmetic or comparisons.
//  7. hash(...) is the shuffle hash itself (package internal/rowhash, which
//     exchanges and key groups use too), a wire and checkpoint contract: its
//     byte recipe is documented there and pinned by a golden test over every
//     accepted type; it must not change without a format version bump.
//  8. Timestamps with a zone compute calendar fields (extract, date_trunc,
//     add_duration months, casts to date/string) in that zone; without a
//     zone, in UTC. Comparisons of timestamps are of instants, whatever the
//     units or zones.
//  9. Float comparisons (=, <>, <, <=, >, >=, IN, BETWEEN, and so CASE
//     conditions and filters) follow Spark, not IEEE: NaN = NaN is true and
//     NaN is greater than every other value, +Inf included; -0.0 = 0.0. Sort,
//     min/max, grouping and join keys (dataset/exec, internal/rowhash) use
//     the same order.
//
// Eval's main loop, per node (post-order):
//
//	types := DataType(tree)                      // fails before any work
//	eval(node):
//	  col -> retained column; lit -> scalar
//	  args := eval(children)
//	  args := convert(args, types the rules give) // scalars converted once
//	  out := kernel[op][physical type](args)      // typed slices, bitmaps
//	  release(args)
//
// Simplifications worth knowing: decimal / and % return float64; uint64
// mixed with a signed integer is computed in int64 (values above MaxInt64
// wrap); string functions return string (int32 offsets) whatever their
// input; add_duration on a date adds whole days of the nanosecond part
// (truncated).
package expr
