// Command kafka benchmarks the Kafka stream source (sources/kafka) against a
// raw franz-go consume loop over the same records, and the whole Kafka path
// end to end, on an in-process kfake cluster or a real broker.
//
//	go run ./benchmarks/kafka -json                                   # kfake, 1 M orders, 4 partitions
//	go run ./benchmarks/kafka -json -records 5000000 -partitions 8
//	eval "export $(scripts/kafka up)"; go run ./benchmarks/kafka -json -brokers 127.0.0.1:19092; scripts/kafka down
//	go run ./benchmarks/kafka -cpuprofile /tmp/src.prof && go tool pprof -top /tmp/src.prof
//
// Without -brokers (or SLUICE_KAFKA_BROKERS) the run starts kfake in this
// process, so the "broker" shares the CPUs and its work shows in
// cpu_seconds; with a real broker its JVM runs outside cpu_seconds.
//
// Data path, in one run:
//
//	generate.Orders (seed, -customers, -interval apart, moved back up to -max-delay)
//	  -> JSON values {"order_id":1,"customer":"c-0001","region":"emea","amount":12.34,"ts":<epoch ms>},
//	     key = customer, order i to partition i % -partitions, franz-go's default
//	     producer settings (snappy batches)                                   "produce"
//	(1) kgo client, ConsumePartitions from the start, read_committed, count records    "raw_consume"
//	(2) sources/kafka with ValueSchema = generate.OrdersSchema: Initial, Latest,
//	    Splits, splits read by -parallelism (GOMAXPROCS) goroutines, records released "source"
//	(3) ReadStream(source, MaxOffsetsPerBatch -batch-records)
//	    -> WithWatermark(ts, -watermark-delay) -> GroupBy(Window(ts, -window), customer)
//	    -> Agg(sum(amount) as total, count(*) as orders), update mode
//	    -> sinks/kafka exactly-once, key customer, AvailableNow, local checkpoint      "end_to_end"
//
// Both readers fetch with the source's defaults (16 MiB per fetch and per
// partition, 500 ms max wait, read_committed), so the raw loop differs from
// the source only in what it does with a record: nothing.
//
// Checks (exit status 2 on a mismatch). The source: row count and the sums
// of order_id, amount and ts of the measured read equal the generated
// orders'; then a second, unmeasured read also hashes the customer and
// region strings. End to end: the query read every record and dropped none
// as late; the output topic, read read_committed from the start of each
// partition to its last stable offset (sink markers skipped), folded to the
// last value per (window_start, customer), equals a plain Go map over the
// generated orders, group by group. Update mode emits every changed group
// in every batch, so the fold is the final answer for every window.
//
// Report: one JSON line per measurement (-json), each with
//
//	measurement        produce | raw_consume | source | end_to_end
//	cluster            kfake | apache-kafka
//	records, partitions, gomaxprocs
//	seconds            wall time of the measurement (clients created inside it)
//	records_per_sec    records / seconds
//	cpu_seconds        user+system CPU of this process during the measurement
//	peak_rss_bytes     getrusage ru_maxrss after the measurement: the peak of
//	                   the process so far, so it only grows from line to line
//	                   (kfake keeps every record in this process's memory)
//	source:     splits, readers, arrow_records (records emitted),
//	            ratio_to_raw (records_per_sec / raw_consume's),
//	            cpu_ratio_to_raw (raw_consume's cpu_seconds / this one's),
//	            target (0.70), target_met, check
//	end_to_end: batches (data batches + the no-data batch for the final
//	            watermark), batch_records (MaxOffsetsPerBatch),
//	            batch_p50_ms, batch_p99_ms, batch_max_ms (nearest rank of
//	            triggerExecution, the whole trigger), add_batch_ms_per_batch,
//	            sink_commit_ms_per_batch, output_records (data records in the
//	            output topic), groups (after the fold), dropped_late,
//	            check_seconds (read back + Go computation), progress_missing, check
//
// After commit 19e4226 (builders sized from the previous record, JSON
// fields tried in schema order before the name map), 1 M orders:
//
//	kfake, three runs:  source 3.35-3.52 M rec/s, ratio 0.72-0.78 (target met),
//	                    cpu_ratio_to_raw 0.46-0.55; end_to_end 1.24 M rec/s,
//	                    p50 74 ms, p99 120 ms, check ok
//	Apache Kafka 4.4:   source 2.76 M rec/s, ratio 0.69 (just under), cpu ratio 0.39;
//	                    end_to_end 0.54 M rec/s, p50 102 ms, p99 867 ms, check ok
//
// The figures below are from before that commit; the analysis of where the
// source's time goes still describes what is left.
//
// Measured (2 vCPU VM shared with other builds, GOMAXPROCS 2, commit
// c4dfd81, defaults: 4 partitions, 1,000 customers, 1 h windows, 10 batches):
//
//	kfake, 5 M orders (448 MB of JSON), two runs:
//	  raw_consume  6.0-7.0 M rec/s  (0.83-0.98 s CPU)
//	  source       2.6-4.2 M rec/s  (2.3-3.5 s CPU)   ratio 0.42-0.60, target missed
//	  end_to_end   1.7-2.1 M rec/s  (4.3-5.1 s CPU), 11 batches, p50 241-248 ms,
//	               p99 305-815 ms, peak RSS 1.5 GB (kfake's log), check ok
//	kfake, 1 M:    raw 5.2 M rec/s, source 3.0 M rec/s (ratio 0.58), e2e 1.2 M rec/s
//	Apache Kafka 4.4 (scripts/kafka, same VM), 3 M orders, two runs:
//	  raw_consume  5.6-5.9 M rec/s  (0.63 s CPU)
//	  source       2.9-3.2 M rec/s  (1.7-1.9 s CPU)   ratio 0.52-0.54, target missed
//	  end_to_end   1.3 M rec/s (3.8 s CPU), 11 batches, p50 226-250 ms, p99 293-316 ms,
//	               peak RSS 0.7-0.76 GB, check ok
//	Apache Kafka, 1 M: raw 4.3 M, source 2.8 M rec/s (ratio 0.65); 5 M: ratio 0.49
//
// Why the source misses 70 %: it spends about 3x the raw loop's CPU per
// record (cpu_ratio_to_raw 0.33-0.36), and on 2 cores the raw loop already
// uses 1.2 of them (one fetch goroutine decodes per broker, plus the
// broker), so more readers cannot close the gap. CPU profile of the source
// alone (Apache Kafka, 5 M, 3.0 s of samples), top functions (flat /
// cumulative share):
//
//	runtime.memmove                      7.6 %   (builder growth)
//	s2.s2Decode (snappy)                 7.3 %   (the raw loop pays this too)
//	runtime.memclrNoHeapPointers         5.7 %   (new builder buffers)
//	arrow memory._memset_avx2            5.3 %   (bufferBuilder.resize zeroes the grown part)
//	kgo.readRawRecordsDirect             5.0 / 10.3 %  (the raw loop pays this too)
//	unicode/utf8.Valid                   4.7 %   (JSON strings)
//	runtime.scanObject                   4.0 / 12.3 %  (GC, 11 % of samples in all)
//	kafka.readString                     3.3 / 8.0 %
//	runtime.tryDeferToSpanScan           3.0 %   (GC)
//	aeshashbody / mapaccess2_faststr     2.7 / 6.0 %  (field name -> slot map per JSON field)
//
// Grouped: Split.Read 84 % cumulative; rows.add 28 % (of which Arrow
// BinaryBuilder.Append 17 %, and bufferBuilder.resize 12 %: every 8,192-row
// record starts its builders empty and grows them by doubling, zeroing
// each new buffer); JSON decode 27 %; kgo.ProcessFetchPartition
// (decompress + record parsing, what the raw loop does) 25 %; GC 11 %.
// The metadata columns (key, topic, partition, offset, timestamp, headers)
// are built for every row even though the query selects three columns.
//
// Invariants:
//  1. Same flags, same orders: values depend only on (records, customers,
//     interval, max-delay, seed).
//  2. Each run creates its own topics (sluice-bench-kafka-{in,out}-<pid>-<rand>)
//     and deletes them and the sink's group at the end; a checkpoint lives in
//     a temp dir that is removed, so a run never resumes another.
//  3. The run fails (exit 2) unless the source's rows and the folded output
//     equal the Go computation.
package main
