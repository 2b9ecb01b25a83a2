// Package testenv finds the outside tools tests need (Python with pyarrow),
// installing them through the project's scripts/. Where a tool cannot be had
// the test is skipped with a message naming what is missing, except under
// CI=true, where a missing tool fails the test so CI always runs everything.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	pyOnce sync.Once
	pyPath string
	pyErr  error
)

// Root is the repository root (the directory holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Python returns the path of a python interpreter with pyarrow installed,
// made by scripts/pyenv.
func Python(t testing.TB) string {
	t.Helper()
	if findPython() == "" {
		Missing(t, "python3 with pyarrow (scripts/pyenv failed: %v)", pyErr)
	}
	return pyPath
}

// PythonIfAny is Python for a test whose main checks need no python: where
// scripts/pyenv cannot make one it logs that the python checks are left
// out and returns "" instead of skipping the test (under CI=true it fails
// the test, as Python does).
func PythonIfAny(t testing.TB) string {
	t.Helper()
	if findPython() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("missing tool (required under CI=true): python3 with pyarrow (scripts/pyenv failed: %v)", pyErr)
		}
		t.Logf("leaving out the pyarrow checks, missing tool: python3 with pyarrow (scripts/pyenv failed: %v)", pyErr)
	}
	return pyPath
}

func findPython() string {
	pyOnce.Do(func() {
		cmd := exec.Command(filepath.Join(Root(), "scripts", "pyenv"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		pyPath, pyErr = strings.TrimSpace(string(out)), err
		if err != nil {
			pyPath = ""
		}
	})
	return pyPath
}

// Missing skips the test, or fails it under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing tool (required under CI=true): "+format, args...)
	}
	t.Skipf("skipping, missing tool: "+format, args...)
}

// RunPython runs a python script with the given args and returns its stdout;
// the test fails with the script's stderr on error.
func RunPython(t testing.TB, script string, args ...string) string {
	t.Helper()
	py := Python(t)
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python failed: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// SoakEnv asks the kill tests for a long soak: SLUICE_SOAK=N multiplies
// their minimum kill counts by N (make test runs them short).
const SoakEnv = "SLUICE_SOAK"

// Soak is n times the soak factor ($SLUICE_SOAK, default 1).
func Soak(t testing.TB, n int) int {
	t.Helper()
	v := os.Getenv(SoakEnv)
	if v == "" {
		return n
	}
	f, err := strconv.Atoi(v)
	if err != nil || f < 1 {
		t.Fatalf("%s=%q: want a whole number >= 1", SoakEnv, v)
	}
	return n * f
}
