# sluice — make help lists the targets.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -timeout 20m
BENCH_SF  ?= 1

.PHONY: help demo test bench lint fuzz pyenv chromium

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

DEMO_FLAGS ?= --duration 60s

demo: ## run the order analytics stream on an in-process Kafka for 60 s (Ctrl-C stops it; DEMO_FLAGS= runs until Ctrl-C)
	$(GO) run ./cmd/sluice demo $(DEMO_FLAGS)

# The packages whose tests run a second time with every task crossing as
# bytes (dataset.ExecutorIsolated): the batch-equals-stream corpus, joins,
# FlatMapGroupsWithState, the SIGKILL tests and the Nexmark correctness tests.
ISOLATED_PKGS ?= ./dataset/ ./microbatch/ ./microbatch/killjoin/ ./microbatch/killgroups/ ./internal/nexmark/

# The packages whose tests run a third time with a cluster of three
# executor processes of the test binary (SLUICE_TEST_CLUSTER=3): the
# batch-equals-stream corpus and the Nexmark correctness tests run their
# queries on it and must give the local answers; the packages' other tests
# run locally again.
CLUSTER_PKGS ?= ./microbatch/ ./internal/nexmark/

# The packages whose streaming queries (the batch-equals-stream corpus, the
# crash-at-every-durable-step tests, the SIGKILL tests of joins and
# FlatMapGroupsWithState) run a fourth time with their state on the disk
# backend (SLUICE_STATE_BACKEND=disk); each package's tests put its local
# pebble databases under a temporary directory of their own and remove it
# (testenv.OwnTempDir). The join SIGKILL tests run a fifth time with the
# joins' stores indexed from the first batch (SLUICE_STATE_LOG_INDEXES):
# their rows do not stay long enough for the disk backend to index them
# on its own.
DISK_STATE_PKGS ?= ./microbatch/ ./microbatch/killjoin/ ./microbatch/killgroups/

# The passes under an environment variable never reuse cached results: a
# package that reads its variable in TestMain (clustertest.Package does,
# before m.Run) is cached under the environment of the first pass, so
# internal/nexmark's cluster pass silently reused the plain pass's result.
test: pyenv chromium ## run every test (installs pyarrow into .cache/pyenv for the interop tests and Debian's chromium for the web page tests), then the executor contract pass, the cluster pass and the disk state backend pass
	$(GO) test $(TESTFLAGS) $(PKGS)
	SLUICE_EXECUTOR=local-isolated $(GO) test $(TESTFLAGS) -count=1 $(ISOLATED_PKGS)
	SLUICE_TEST_CLUSTER=3 $(GO) test $(TESTFLAGS) -count=1 $(CLUSTER_PKGS)
	SLUICE_STATE_BACKEND=disk $(GO) test $(TESTFLAGS) -count=1 $(DISK_STATE_PKGS)
	SLUICE_STATE_BACKEND=disk SLUICE_STATE_LOG_INDEXES=always $(GO) test $(TESTFLAGS) -count=1 ./microbatch/killjoin/

# Without root a missing browser cannot be installed: the browser tests then
# skip saying so (and fail under CI=true).
chromium: ## find or install (apt-get, Debian's package) the headless Chromium the web page tests drive
	@scripts/chromium >/dev/null || echo "make: no chromium; the web page tests will skip (CI=true: fail)"

pyenv: ## make the Python virtualenv with pyarrow the Parquet interop tests use
	@scripts/pyenv >/dev/null

bench: ## run the benchmarks (TPC-H Q1 and Q6 at BENCH_SF, the streaming window and join jobs) and print JSON lines
	$(GO) run ./benchmarks/batch -query q1 -sf $(BENCH_SF) -data .cache/tpch-sf$(BENCH_SF) -runs 5 -json
	$(GO) run ./benchmarks/batch -query q6 -sf $(BENCH_SF) -data .cache/tpch-sf$(BENCH_SF) -runs 5 -json
	$(GO) run ./benchmarks/streaming -json
	$(GO) run ./benchmarks/streaming -job join -json

# bench-cluster: the distribution tax. Each Nexmark query runs locally and
# on 2 executor processes (--cluster 0 is local), interleaved, the same
# events; then the one-row micro-batch latency in both modes.
BENCH_CLUSTER_EVENTS ?= 10000000
BENCH_CLUSTER_RUNS   ?= 5
.PHONY: bench-cluster
bench-cluster: ## run Nexmark q0 q5 q8 q11 locally and on 2 executor processes (interleaved, BENCH_CLUSTER_RUNS times) and the one-row batch latency in both modes; print the ratios and write the cluster section of benchmarks/RESULTS.md
	@mkdir -p .cache/bin
	$(GO) build -o .cache/bin/nexmark ./benchmarks/nexmark
	$(GO) build -o .cache/bin/streaming ./benchmarks/streaming
	@rm -f .cache/nexmark-cluster.jsonl
	@for r in $$(seq $(BENCH_CLUSTER_RUNS)); do for q in q0 q5 q8 q11; do for c in 0 2; do \
		.cache/bin/nexmark run --query $$q --events $(BENCH_CLUSTER_EVENTS) --cluster $$c --json >> .cache/nexmark-cluster.jsonl || exit 1; \
		tail -n 1 .cache/nexmark-cluster.jsonl; done; done; done
	@for r in $$(seq $(BENCH_CLUSTER_RUNS)); do for c in 0 2; do \
		.cache/bin/streaming -events 1000000 -batch-rows 250000 -empty-batches 200 -cluster $$c -json >> .cache/nexmark-cluster.jsonl || exit 1; \
		tail -n 1 .cache/nexmark-cluster.jsonl; done; done
	.cache/bin/nexmark cluster-results --in .cache/nexmark-cluster.jsonl --results benchmarks/RESULTS.md

BENCH_NEXMARK_EVENTS ?= 10000000
.PHONY: bench-nexmark
bench-nexmark: ## run the Nexmark queries at 10 M events (windowed ones also at 100 000 events/s of event time) and write benchmarks/RESULTS.md
	@mkdir -p .cache/bin && rm -f .cache/nexmark.jsonl
	$(GO) build -o .cache/bin/nexmark ./benchmarks/nexmark
	@for q in q0 q1 q2 q3 q4 q4-winning q5 q7 q8 q11; do .cache/bin/nexmark run --query $$q --events $(BENCH_NEXMARK_EVENTS) --json >> .cache/nexmark.jsonl || exit 1; tail -n 1 .cache/nexmark.jsonl; done
	@for q in q4 q4-winning q5 q7 q8 q11; do .cache/bin/nexmark run --query $$q --events $(BENCH_NEXMARK_EVENTS) --event-rate 100000 --json >> .cache/nexmark.jsonl || exit 1; tail -n 1 .cache/nexmark.jsonl; done
	.cache/bin/nexmark results --in .cache/nexmark.jsonl --out benchmarks/RESULTS.md

lint: ## gofmt, go vet, and the architecture tests (import direction, DESIGN.md's must-not rules)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test ./internal/archtest/

fuzz: ## fuzz the Parquet reader and expression evaluation for 30 s each
	$(GO) test -run '^$$' -fuzz FuzzReadSplit -fuzztime 30s ./sources/parquet/
	$(GO) test -run '^$$' -fuzz FuzzEval -fuzztime 30s ./dataset/expr/

.PHONY: kafka-up kafka-down
kafka-up: ## start a local Apache Kafka broker (KRaft) for the Kafka tests; export the line it prints
	@scripts/kafka up

kafka-down: ## stop the local Kafka broker and delete its data
	@scripts/kafka down

# bench-peers: sluice against Spark 4 (PySpark from PyPI, local[2], batch)
# on the same Parquet, Nexmark q5 and q7. First the answer check, then
# BENCH_PEERS_RUNS rounds interleaved: per query sluice, Spark (one query per
# process: the whole tree's CPU) and Spark warm (the second query of a
# session, timed alone). JSON lines go to .cache/peers.jsonl; the table and
# the "Peers: Spark" section of benchmarks/RESULTS.md come from them.
# The data's row groups are 128 Ki rows (nexmark generate since they are a
# batch's step; older directories have 1 Mi-row groups, hence the new name).
# sluice's batches take at most BENCH_PEERS_BATCH rows of each stream: the
# batch size bounds its memory (q7's peak RSS), at some CPU per batch.
BENCH_PEERS_INPUT ?= .cache/nexmark-10m-100k-rg128k
BENCH_PEERS_RUNS  ?= 3
BENCH_PEERS_BATCH ?= 500000
.PHONY: bench-peers
bench-peers: ## Nexmark q5 and q7 on sluice and on Spark 4 (local[2]) over the same Parquet (10 M events, 100 000 events/s; made if missing): answer check, BENCH_PEERS_RUNS interleaved rounds, the table into benchmarks/RESULTS.md
	@mkdir -p .cache/bin
	$(GO) build -o .cache/bin/nexmark ./benchmarks/nexmark
	@test -f $(BENCH_PEERS_INPUT)/nexmark.json || .cache/bin/nexmark generate --events 10000000 --event-rate 100000 --out $(BENCH_PEERS_INPUT)
	@scripts/spark >/dev/null
	benchmarks/peers/check $(BENCH_PEERS_INPUT) q5 q7 > .cache/peers-check.jsonl
	@rm -f .cache/peers.jsonl .cache/peers-spark.log
	@py=$$(scripts/spark); for r in $$(seq $(BENCH_PEERS_RUNS)); do for q in q5 q7; do \
		.cache/bin/nexmark run --query $$q --input $(BENCH_PEERS_INPUT) --batch-events $(BENCH_PEERS_BATCH) --json > .cache/peers-sluice.json || exit 1; \
		sed 's/^{/{"engine":"sluice",/' .cache/peers-sluice.json >> .cache/peers.jsonl; tail -n 1 .cache/peers.jsonl; \
		for rep in 1 2; do python3 benchmarks/peers/proctree.py -- $$py benchmarks/peers/spark_nexmark.py --query $$q --input $(BENCH_PEERS_INPUT) --repeat $$rep --json \
			>> .cache/peers.jsonl 2>>.cache/peers-spark.log || exit 1; tail -n 1 .cache/peers.jsonl; done; \
	done; done
	python3 benchmarks/peers/table.py --in .cache/peers.jsonl --check .cache/peers-check.jsonl --results benchmarks/RESULTS.md
