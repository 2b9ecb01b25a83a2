// Package archtest enforces the dependency direction of STYLE.md (habit 11)
// and DESIGN.md's "must not" column as import rules (rules, below): the
// seams (sources, sinks, the state store) never import microbatch,
// scheduler or dataset; nothing imports cmd/, examples/ or benchmarks/;
// dataset reaches no checkpoint, Kafka or network package, tests included
// and transitively; microbatch does not import the scheduler or cluster;
// the scheduler reaches no source, sink, plan, Parquet or Kafka package,
// transitively; cluster knows no operators.
package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testenv"
)

const module = "github.com/sluicedata/sluice"

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// goList runs go list -json with args in the module root and checks it
// found the module's packages.
func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	pkgs := goListAll(t, args...)
	if len(pkgs) < 5 {
		t.Fatalf("go list %s found only %d packages", strings.Join(args, " "), len(pkgs))
	}
	return pkgs
}

// goListAll is goList without the sanity minimum (a package may have few deps).
func goListAll(t *testing.T, args ...string) []pkg {
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

// A rule is one line of DESIGN.md's "must not" column as imports: no
// package under From may import a package under any of Not, directly or,
// with Transitive, through any chain of imports, tests included.
type rule struct {
	From       string
	Not        []string
	Transitive bool
	// CodeOnly: the rule binds the packages' code, not their tests (which
	// may, say, start a real cluster to run the package's queries on).
	CodeOnly bool
	// Except are packages under From the rule does not bind, each with
	// its reason in Why.
	Except []string
	Why    string
}

func (r rule) forbidden(p string) bool {
	for _, not := range r.Not {
		if under(p, not) {
			return true
		}
	}
	return false
}

var rules = []rule{
	{From: "dataset", Transitive: true,
		Not: []string{module + "/microbatch", module + "/cluster", module + "/sources/kafka", module + "/sinks/kafka",
			"github.com/twmb/franz-go", "github.com/apache/arrow/go/v17/arrow/flight", "google.golang.org/grpc", "github.com/hashicorp/memberlist"},
		Why: "dataset must not know about offsets, checkpoints or the network"},
	{From: "microbatch", Not: []string{module + "/scheduler", module + "/cluster"}, CodeOnly: true,
		Except: []string{module + "/microbatch/jobcli"},
		Why:    "microbatch must not know how tasks reach executors (jobcli, the job binary's composition root, starts the driver and the executor role)"},
	{From: "scheduler", Transitive: true,
		Not: []string{module + "/sources", module + "/sinks", module + "/dataset", module + "/microbatch",
			"github.com/parquet-go/parquet-go", "github.com/twmb/franz-go"},
		Why: "the scheduler must not know about Kafka or Parquet (it runs stages, never plans)"},
	{From: "cluster", Not: []string{module + "/dataset/exec", module + "/dataset/expr", module + "/microbatch"},
		Why: "cluster must not know about plans beyond serialized tasks"},
	{From: "internal/state", Not: []string{module + "/microbatch", module + "/scheduler", module + "/dataset"},
		Why: "the state store is a seam: it must not import the engine"},
}

// TestDesignMustNotRules checks every rule against go list, test imports
// included.
func TestDesignMustNotRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.From, func(t *testing.T) {
			root := module + "/" + r.From
			args := []string{"./" + r.From + "/..."}
			if r.Transitive {
				args = append([]string{"-deps", "-test"}, args...)
			}
			saw := false
			for _, p := range goListAll(t, args...) {
				from := plain(p.ImportPath)
				if under(from, root) {
					saw = true
				}
				if !r.Transitive && !under(from, root) {
					continue
				}
				if slices.ContainsFunc(r.Except, func(e string) bool { return under(from, e) }) {
					continue
				}
				imports := p.Imports
				if under(from, root) && !r.CodeOnly {
					// A dependency's own tests are not part of the closure.
					imports = append(append(imports, p.TestImports...), p.XTestImports...)
				}
				if r.forbidden(from) {
					continue // reported where the closure enters it
				}
				for _, imp := range imports {
					for _, not := range r.Not {
						if under(plain(imp), not) {
							t.Errorf("%s imports %s: %s", p.ImportPath, plain(imp), r.Why)
						}
					}
				}
			}
			if !saw {
				t.Fatalf("go list %v listed no package under %s", args, root)
			}
		})
	}
}
