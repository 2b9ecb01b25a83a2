// Package examples holds runnable sluice jobs from real use, one directory
// each (orders: order analytics; fraud: card fraud rules with
// FlatMapGroupsWithState). Nothing imports them.
package examples
