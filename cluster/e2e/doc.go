// Package e2e holds the cluster's end-to-end tests: a driver in the test
// process and executors as child processes of the test binary
// (internal/clustertest), running Dataset jobs, killed and stopped at
// chosen points. It has no code of its own.
package e2e
