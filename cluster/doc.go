// Package cluster will hold executor membership (memberlist), the executor
// server and task/shuffle RPC over Arrow Flight. It is not built yet; the
// scheduler's Executor interface is the seam it will implement.
package cluster
