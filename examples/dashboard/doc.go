// Command dashboard is a shop's live dashboard: order events stream through
// three streaming queries, and a web page shows their figures, pushed over a
// WebSocket every second.
//
//	go run ./examples/dashboard stream          # prints http://127.0.0.1:8080/ and the job's web UI
//	go run ./examples/dashboard stream --port 0 --rate 200 --duration 1m
//	go run ./examples/dashboard                 # no command: the same as stream
//
// Its main is jobcli's (microbatch/jobcli): `dashboard -h` lists the
// commands, `dashboard stream -h` the settings, each also an environment
// variable (DASHBOARD_PORT, DASHBOARD_RATE, DASHBOARD_SEED,
// DASHBOARD_DURATION, ...) or a key of a --config file. A command line that
// names no command (none at all, or flags only) runs stream, as the
// dashboard did before it had commands. The queries run in the stream role,
// started with jobcli's Env.Start, so they have the job's logger (slog on
// stderr, a line per batch at --log-level info; --log-level warn for a
// quiet terminal), its Prometheus metrics and its web UI (--ui-addr,
// default 127.0.0.1:4040; logged as "web UI" and printed on stdout), and
// stop gracefully on SIGINT or SIGTERM.
//
// By design the dashboard has no backfill, replay or cluster mode, and
// refuses them with the reason. The producer writes each event when the
// wall clock reaches its event time, so at any moment the topic holds only
// the past: a backfill (AvailableNow) would read an empty topic and stop
// (exit 2). Its Kafka is in-process and new each run, and the events start
// at the run's wall-clock time, so a committed batch's input is gone when
// the run ends: checkpoint replay has nothing to replay (exit 1). The page
// reads the figures from the process's memory, so --join is refused
// (exit 2).
//
// In: an in-process Kafka (kfake) whose one-partition topic "orders" holds
// order events as JSON (EventSchema: order id, customer, region, amount,
// status, event time). A producer writes each event when the wall clock
// reaches its event time (events.go): every order is "placed", and 62% of
// them are "paid" 2 to 30 seconds later. Orders come from the orders
// generator of sources/generate; payments are a pure function of the seed
// and the order id, so the stream is reproducible from (seed, start, rate).
//
// The figures (figures.go), each a function of the events Dataset, run as
// their own micro-batch query (1 s trigger; --trigger-interval sets
// another) into a ForeachBatch sink that writes the board:
//
//	figure              query                                      output mode
//	orders per minute   placed and paid events per event-time      update: a batch emits the minutes
//	                    minute (1-minute tumbling windows,         it changed, the open one included;
//	                    10 s watermark)                            the board upserts them, shows 10
//	revenue by region   sum of the amount of paid events per       complete: the whole table each
//	                    region since the start                     batch; the board replaces it
//	conversion rate     paid events / placed events since the      complete: one row (placed, paid,
//	                    start (running; a recent order may still   rate)
//	                    be paid, so it lags the final rate)
//
// Every figure also carries max(offset): the last Kafka offset its rows
// include. The topic is read in order, so a figure is exactly the events
// up to that offset, which is how the tests recompute it from the generator.
//
// Out: the page (page/, embedded). Every second the server (server.go)
// takes a snapshot of the board if a batch changed it, numbers it (seq),
// keeps the last 64 and pushes it to every connected page (hub.go):
//
//	GET /                  the page
//	GET /ws                WebSocket: the latest snapshot, then every push
//	GET /api/snapshot      the latest snapshot as JSON; ?seq=N: push N
//
// The page server listens on 127.0.0.1 only, on --port (default 8080; 0:
// any free port). Checkpoints go to a temporary directory removed at exit;
// with --checkpoint-dir DIR, to DIR/run-<start time>/<query>, a new
// directory each run (a new in-process Kafka and a new event stream: an
// earlier run's offsets would be ahead of the topic), kept for checkpoint
// inspect and verify. Ctrl-C, SIGTERM or the end of --duration stops the
// queries (a batch in flight is abandoned), then the producer, the pushes
// and the page connections, prints a summary line ("stopped: ...") and
// exits 0.
package main
