// Command nexmark runs Nexmark queries (see /work/shared/nexmark.md and
// sources/generate's Nexmark generator) on sluice's streaming engine and
// reports throughput the way the published numbers are reported: events per
// second per CPU core actually used.
//
//	go run ./benchmarks/nexmark generate --events N --out DIR
//	go run ./benchmarks/nexmark run --query q0|q1|q2|q11 --events N [--input DIR] [--out DIR] [--json]
//	go run ./benchmarks/nexmark results --in FILE [--out FILE.md]
//
// generate writes events [0, N) as Parquet under DIR/person, DIR/auction and
// DIR/bid, and the generator config in DIR/nexmark.json. run builds the
// query with the public Dataset API over dataset.ReadStream of the bid
// stream, either the in-process generator (generate.NewNexmarkStream "bid",
// --batch-events events per micro-batch) or the files of DIR/bid (one file
// per batch, sources/files), and runs it with the AvailableNow trigger and a
// checkpoint in a temp dir into a discarding sink (microbatch.ForeachBatch
// counting rows) or, with --out, the streaming Parquet sink, always in
// append mode. --event-rate (generate and run) sets the generator's events
// per second of event time (default 10 000 000). results turns run --json
// lines into the Markdown table of benchmarks/RESULTS.md (make
// bench-nexmark runs q0, q1, q2 and q11 at 10 M events and writes it).
//
// Queries (one file each, the semantics of the Flink SQL versions):
//
//	q0  pass-through of bids: every column
//	q1  auction, bidder, 0.908 * price AS price (float64), dateTime, extra
//	q2  auction, price of the bids with auction % 123 == 0
//	q11 bidder, count(*) AS bid_count, starttime, endtime per session (gap
//	    10 s) of each bidder; watermark dateTime - 4 s, so a stream in append
//	    mode emits each session once, when the watermark passes its end (a
//	    batch query ignores the watermark and returns every session). At the
//	    default event rate 10 M events span 1 s of event time, so no session
//	    closes by the end of the input and the benchmark emits none.
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
// The test checks, for each query, that the stream over the generator (in
// several micro-batches) and the stream over the generated Parquet into a
// Parquet sink give the same rows as the batch query over that Parquet, and
// that the batch query matches a plain Go loop. For q11 (at 2 000 events/s
// of event time, so sessions close) the streams emit exactly the batch
// query's sessions that end at or before the final watermark (max dateTime
// - 4 s), and the batch sessions match a Go loop.
package main
