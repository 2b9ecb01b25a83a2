// Command dashboard is a shop's live dashboard: order events stream through
// three streaming queries, and a web page shows their figures, pushed over a
// WebSocket every second.
//
//	go run ./examples/dashboard            # prints http://127.0.0.1:8080/
//	go run ./examples/dashboard -port 0 -rate 200 -duration 1m
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
// their own micro-batch query (1 s trigger) into a ForeachBatch sink that
// writes the board:
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
// The server listens on 127.0.0.1 only. Ctrl-C or SIGTERM stops the
// queries (a batch in flight is abandoned: the checkpoints live in a temp
// directory removed at exit), closes the page connections and exits 0; so
// does the end of -duration.
package main
