// Package examples holds runnable sluice jobs from real use, one directory
// each (orders: order analytics). Nothing imports them.
package examples
