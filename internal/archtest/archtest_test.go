// Package archtest enforces the dependency direction of STYLE.md (habit 11):
// the seams (sources, sinks, the state store) never import microbatch,
// scheduler or dataset; nothing imports cmd/, examples/ or benchmarks/.
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

func TestImportDirection(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = testenv.Root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
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
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	seam := func(p string) bool {
		return strings.HasPrefix(p, module+"/sources") || strings.HasPrefix(p, module+"/sinks") ||
			strings.HasPrefix(p, module+"/microbatch/state")
	}
	engine := []string{module + "/microbatch", module + "/scheduler", module + "/dataset"}
	leaf := []string{module + "/cmd", module + "/examples", module + "/benchmarks"}
	under := func(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if seam(p.ImportPath) {
				for _, e := range engine {
					if under(imp, e) && !(e == module+"/microbatch" && seam(imp)) {
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
