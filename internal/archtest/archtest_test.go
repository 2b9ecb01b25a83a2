// Package archtest enforces the dependency direction of STYLE.md (habit 11)
// and DESIGN.md's "must not" column: the seams (sources, sinks, the state
// store) never import microbatch, scheduler or dataset; nothing imports
// cmd/, examples/ or benchmarks/; dataset (which must not know checkpoints)
// imports nothing from microbatch, directly or transitively, tests included.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testenv"
)

const module = "github.com/sluicedata/sluice"

type pkg struct {
	ImportPath string
	Imports    []string
}

// goList runs go list -json with args in the module root.
func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = testenv.Root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list %s found only %d packages", strings.Join(args, " "), len(pkgs))
	}
	return pkgs
}

func under(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }

// plain is an import path without go list -test's " [x.test]" suffix.
func plain(p string) string {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[:i]
	}
	return p
}

func TestImportDirection(t *testing.T) {
	pkgs := goList(t, "./...")
	seam := func(p string) bool {
		return under(p, module+"/sources") || under(p, module+"/sinks") || under(p, module+"/internal/state")
	}
	engine := []string{module + "/microbatch", module + "/scheduler", module + "/dataset"}
	leaf := []string{module + "/cmd", module + "/examples", module + "/benchmarks"}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if seam(p.ImportPath) {
				for _, e := range engine {
					if under(imp, e) {
						t.Errorf("%s imports %s: seams must not import the engine", p.ImportPath, imp)
					}
				}
			}
			for _, l := range leaf {
				if under(imp, l) && !under(p.ImportPath, l) {
					t.Errorf("%s imports %s: nothing imports cmd/, examples/ or benchmarks/", p.ImportPath, imp)
				}
			}
		}
	}
}

// TestDatasetDoesNotKnowMicrobatch: dataset must not know offsets or
// checkpoints, so nothing in the closure of dataset's packages and their
// tests (go list -test -deps) is a microbatch package. The stateful
// operators reach their state through state.Provider (internal/state).
func TestDatasetDoesNotKnowMicrobatch(t *testing.T) {
	pkgs := goList(t, "-test", "-deps", "./dataset/...")
	sawDataset := false
	for _, p := range pkgs {
		if plain(p.ImportPath) == module+"/dataset/exec" {
			sawDataset = true
		}
		for _, imp := range p.Imports {
			if under(plain(imp), module+"/microbatch") {
				t.Errorf("%s imports %s: dataset and its dependencies must not import microbatch", p.ImportPath, imp)
			}
		}
	}
	if !sawDataset {
		t.Fatal("go list -test -deps ./dataset/... did not list dataset/exec")
	}
}
