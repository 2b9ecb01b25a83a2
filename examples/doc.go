// Package examples holds runnable sluice jobs from real use, one directory
// each (orders: order analytics; fraud: card fraud rules with
// FlatMapGroupsWithState; unpaid: orders left-joined with payments within
// 15 minutes, a stream-stream outer join). Nothing imports them.
package examples
