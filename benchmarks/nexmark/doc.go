// Command nexmark runs Nexmark queries (see /work/shared/nexmark.md and
// sources/generate's Nexmark generator) on sluice's streaming engine and
// reports throughput the way the published numbers are reported: events per
// second per CPU core actually used.
//
//	go run ./benchmarks/nexmark generate --events N --out DIR
//	go run ./benchmarks/nexmark run --query QUERY --events N [--input DIR] [--out DIR] [--json]
//	go run ./benchmarks/nexmark results --in FILE [--out FILE.md]
//
// generate writes events [0, N) as Parquet under DIR/person, DIR/auction and
// DIR/bid, and the generator config in DIR/nexmark.json. run builds the
// query with the public Dataset API over Streams: the person, auction and
// bid streams (dataset.ReadStream), either of the in-process generator
// (generate.NewNexmarkStream, --batch-events events per micro-batch) or of
// the files of DIR/person, DIR/auction and DIR/bid (one file per stream per
// batch, sources/files); a query's plan reads only the streams it uses. It
// runs the query with the AvailableNow trigger and a checkpoint in a temp
// dir into a discarding sink (microbatch.ForeachBatch counting rows) or,
// with --out, the streaming Parquet sink, always in append mode.
// --event-rate (generate and run) sets the generator's events per second of
// event time (default 10 000 000). results turns run --json lines into the
// Markdown table of benchmarks/RESULTS.md (make bench-nexmark runs q0, q1,
// q2 and q11 at 10 M events and writes it).
//
// Queries (one file each, the semantics of the Flink SQL versions; each
// file quotes the SQL and says how it maps to sluice):
//
//	q0  pass-through of bids: every column
//	q1  auction, bidder, 0.908 * price AS price (float64), dateTime, extra
//	q2  auction, price of the bids with auction % 123 == 0
//	q3  name, city, state, id: people in OR, ID or CA selling in category
//	    10; an unbounded stream-stream inner join, no watermark
//	q4  category, avg: the average winning bid per category, in update mode
//	    (q4-winning feeding an updating aggregation)
//	q4-winning  id, category, final: q4's inner query, the highest bid of
//	    each auction placed while it was open, emitted once it expires
//	q5  auction, num: the auctions with the most bids per 10 s window
//	    sliding by 2 s, ties kept (count, max of the counts, joined back)
//	q7  auction, price, bidder, dateTime, extra: the highest bids of each
//	    10 s tumbling window (max, joined back to the bids)
//	q8  id, name, starttime: people who registered and opened an auction in
//	    the same 10 s tumbling window (a window join)
//	q11 bidder, count(*) AS bid_count, starttime, endtime per session (gap
//	    10 s) of each bidder
//
// Windows and auctions are emitted once, when the watermark (dateTime - 4
// s; q4-winning also expires - 4 s) passes their end; a batch query ignores
// watermarks and returns every window. At the default event rate 10 M events
// span 1 s of event time, so the watermark stays before the first event:
// no window, session or auction closes by the end of the input and q4-winning,
// q5, q7, q8 and q11 emit nothing (they still build all their state); pass
// --event-rate 100000 (100 s of event time) to close windows.
//
// Report fields (--json, one line):
//
//	events                 events of all kinds the input covers (bids are 46 in 50)
//	bids                   input rows the query read, checked against events
//	seconds                wall time of the streaming run (start to termination)
//	events_per_sec         events / seconds
//	cpu_seconds            process user + system CPU time during the run (getrusage)
//	events_per_cpu_second  events / cpu_seconds: events per second per core used
//	batch_p50/p99/max_ms   per batch latestOffset + walCommit + triggerExecution
//	peak_rss_bytes         the process's peak RSS (getrusage ru_maxrss)
//
// This is a main package under benchmarks/ rather than a cmd/sluice
// subcommand: internal/archtest forbids importing benchmarks/ from outside
// it, and the queries are benchmark definitions, not engine API.
//
// The tests check, for each query, that the stream over the generator (in
// several micro-batches) gives the rows the batch query over the Parquet of
// the same events gives, and that the batch query matches a plain Go loop,
// all at 1 M events: q0-q2 also streamed over the Parquet into a Parquet
// sink; q11 at 10 000 events/s of event time (so sessions close), where the
// stream emits exactly the batch sessions that end at or before the final
// watermark (max dateTime - 4 s); q3, q4-winning, q5, q7 and q8 at 10 000
// events/s of event time (100 s, so windows close), where the stream emits
// exactly the batch rows final by its final watermark (checked against the
// events' maxima), and q8 is also streamed over the Parquet into a Parquet
// sink. q4 (update mode, 300 000 events) ends with each category's average
// of the winning bids the Go loop finds for the auctions closed by then.
// In make test's cluster pass (SLUICE_TEST_CLUSTER=3) the same tests run
// every batch query and stream also on a driver and three executor
// processes of the test binary, which rebuild a run's job by name from
// its parameters (streamJob), and compare with the local answers.
package main
