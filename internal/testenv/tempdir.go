package testenv

import (
	"fmt"
	"os"
)

// tmpEnv marks a process whose test process already gave it a temporary
// directory of its own (OwnTempDir): a child (a kill test's query, a
// cluster executor) shares its parent's, so that a restarted child finds
// what the one before it left, and removes nothing.
const tmpEnv = "SLUICE_TEST_TMPDIR"

// OwnTempDir points TMPDIR at a new directory for the rest of the test
// process and the processes it starts, and returns the function that
// removes it, to call when the tests end. What the code under test puts
// under the system's temporary directory by default (a disk state
// backend's local databases, state.DefaultLocalDir) then goes with the
// test run instead of staying in /tmp. In a child of such a process it
// changes nothing and the function does nothing.
func OwnTempDir() func() {
	if os.Getenv(tmpEnv) != "" {
		return func() {}
	}
	dir, err := os.MkdirTemp("", "sluice-test-")
	if err != nil {
		panic(fmt.Sprintf("testenv: a temporary directory for the tests: %v", err))
	}
	os.Setenv("TMPDIR", dir)
	os.Setenv(tmpEnv, dir)
	return func() { os.RemoveAll(dir) }
}
