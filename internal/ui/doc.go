// Package ui is the job's live web UI: one page that shows the queries a
// job runs, per query live charts (input against processing rate, batch
// duration by phase, watermark delay, state rows, late rows dropped), the
// recent batches, the plan, the sources with their offsets and lag, and
// the executors.
//
// In: the job's queries (Config.Queries, read through *microbatch.Query's
// Status, LastProgress, RecentProgress and Explain) and its executors
// (LocalExecutors, or ClusterExecutors of a *cluster.Driver). Out: an
// http.Handler the job binary's CLI (microbatch/jobcli) mounts on its UI
// address: the page and its assets, a JSON API for the initial state and
// Server-Sent Events that push a snapshot per completed batch and at
// least one per Interval. docs/ui.md describes the pages.
//
// Invariants:
//  1. Nothing is loaded from the internet: the page, its script and style
//     and the chart library (uPlot, vendored by scripts/vendor-ui with
//     each file's sha256 in assets/vendor/VENDOR, checked by a test) are
//     embedded in the binary, and every answer carries a
//     Content-Security-Policy that allows this origin only.
//  2. Progress crosses as microbatch.Progress's JSON (Spark's
//     StreamingQueryProgress): the page reads Spark's field names.
//  3. Streams are bounded: at most MaxStreams open at once, at most one
//     snapshot per Poll per stream, each write bounded by WriteTimeout.
//  4. No goroutine outlives its stream: a stream ends when its client goes,
//     a write times out, Config.Context ends or Close is called; Close
//     waits for them all.
//  5. The UI only reads: no request changes a query.
//
// One stream's loop (events.go):
//
//	send a snapshot (queries, executors, the followed query's batches after
//	    the last one sent)
//	every Poll until the client goes, Config.Context ends or Close:
//	    if a batch completed, a query started or stopped, or Interval passed:
//	        send a snapshot
package ui
