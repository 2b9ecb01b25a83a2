// Package examples holds runnable sluice jobs from real use, one directory
// each (orders: order analytics; fraud: card fraud rules with
// FlatMapGroupsWithState; unpaid: orders left-joined with payments within
// 15 minutes, a stream-stream outer join; dashboard: orders per minute,
// revenue by region and conversion rate from Kafka, pushed to a web page
// over a WebSocket). Nothing imports them.
package examples
