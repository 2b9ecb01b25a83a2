// Package internal groups helpers shared by several sluice packages; each
// subpackage has one job (testenv: outside tools for tests; archtest: the
// import-direction rule; rowhash: the one row hash of expressions, shuffles
// and key groups).
package internal
