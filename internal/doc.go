// Package internal groups helpers shared by several sluice packages; each
// subpackage has one job (testenv: outside tools for tests; archtest: the
// import-direction rule).
package internal
