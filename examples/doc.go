// Package examples holds runnable sluice jobs from real use, one directory
// each (orders: order analytics; fraud: card fraud rules with
// FlatMapGroupsWithState; unpaid: orders left-joined with payments within
// 15 minutes, a stream-stream outer join; dashboard: orders per minute,
// revenue by region and conversion rate from Kafka, pushed to a web page
// over a WebSocket). Every main is jobcli.Main (microbatch/jobcli): each
// is a binary with the commands of its roles (go run ./examples/orders
// batch, go run ./examples/fraud backfill, go run ./examples/unpaid
// backfill, go run ./examples/dashboard stream). Nothing imports them.
package examples
