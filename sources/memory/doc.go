// Package memory is a streaming source fed by a test: records appended with
// Append become readable in micro-batches, so a test drives a streaming
// query one batch at a time with exactly the rows it chooses.
//
// In: arrow.Records appended by the test (retained by the source). Out:
// splits, one per appended record piece in a batch's range; reading one
// yields a zero-copy slice of the appended record, or, in another process,
// the rows the split carried there.
//
// Offsets are row positions, {"pos":N}: batch (start, end] covers the rows
// start .. end-1 in append order.
//
// Invariants:
//  1. Row positions never move: Append only adds rows after the last one,
//     so Splits(start, end) reads the same rows at any later time, whatever
//     was appended since.
//  2. Commit(end) releases records lying wholly before end; Splits or a
//     split's Read over released rows returns sources.ErrOffsetGone.
//  3. Every method is safe for concurrent use: a test appends while the
//     driver plans and tasks read.
//  4. Close releases every retained record; later calls fail.
//  5. A split travels with its rows: Encode writes its row range, a random
//     id of the Source instance and the rows themselves as an Arrow IPC
//     stream, {"v":1,"kind":"memory","name":..,"split":{"source":"9f3c..",
//     "lo":0,"hi":100,"rows":"<base64>"}}. The instance that made it
//     decodes it to its appended records (zero-copy; ErrOffsetGone once
//     committed away); any other memory source with the same name and
//     schema (the job's own source in a cluster executor) decodes it to the
//     carried rows, decoded once with the Go allocator. Another name, a
//     schema mismatch, or rows that do not decode or do not fill the range
//     are sources.ErrBadSplit naming the source. So the source works on a
//     cluster; Encode fails with ErrOffsetGone once its rows were dropped.
//
// The driver's loop, as seen from here:
//
//	start := Initial()
//	for {
//	    end := Latest(start)            // min(appended rows, start+MaxRowsPerBatch)
//	    for _, s := range Splits(start, end) { s.Read(...) }   // slices of appended records
//	    Commit(end)                     // drop records before end
//	    start = end
//	}
package memory
