// Package benchmarks holds sluice's benchmarks and the baselines they are
// measured against. It sits beside the data path, not on it: each benchmark
// generates or reads its input (sources/, generators), drives the public
// Dataset API (or a streaming query) end to end, and checks the answer
// against an independent computation, so a benchmark run is also a
// correctness test. Nothing in the engine imports this tree.
//
//	generator -> Parquet files -> dataset.Read ... Collect -> result ---+
//	                          \-> sources/parquet decode -> Go loop -----+-> compare, report
//
// Subpackages:
//
//	batch      TPC-H lineitem generator, Q1 and Q6 through the Dataset API,
//	           and a hand-written Go loop baseline (go run ./benchmarks/batch)
//	streaming  generated events -> 10 s tumbling windows per key -> Parquet
//	           sink with a local checkpoint, against a Go map baseline, and
//	           the fixed cost of a batch (go run ./benchmarks/streaming)
//	nexmark    the Nexmark runner (go run ./benchmarks/nexmark run), a thin
//	           main over internal/nexmark (the queries and runner `sluice
//	           nexmark` shares), results in RESULTS.md
//
// Cluster runs (nexmark run --cluster, streaming -cluster, make
// bench-cluster) start a driver and executor processes of the benchmark's
// own binary on 127.0.0.1 with internal/localcluster; internal/measure
// holds the CPU time, peak RSS and percentiles every benchmark reports.
//
// Invariants:
//  1. Inputs are generated deterministically from a seed: the same flags
//     give byte-for-byte the same rows on every machine and run.
//  2. A benchmark exits non-zero when the engine's answer differs from its
//     baseline's; a fast wrong answer is a failure, not a number.
//  3. Reports are one JSON line per run (-json), with the definitions of
//     every ratio in the benchmark's package doc.
package benchmarks
