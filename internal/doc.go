// Package internal groups helpers shared by several sluice packages; each
// subpackage has one job (testenv: outside tools for tests; archtest: the
// import-direction rule; rowhash: the one row hash of expressions, shuffles
// and key groups; nexmark: the Nexmark queries, files and runner that
// `sluice nexmark` and benchmarks/nexmark share; localcluster: a driver and
// executor processes of this binary on 127.0.0.1; measure: CPU time, peak
// RSS and batch percentiles; proctest: built binaries run as a test's child
// processes).
package internal
