package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The Kubernetes manifests start this binary: every argument they give
// must be a flag the command has (deploy/deploy_test.go checks the
// manifests among themselves, this checks them against the CLI).
func TestTheDeployManifestsParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			var kind struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var pod corev1.PodSpec
			switch kind.Kind {
			case "StatefulSet":
				var s appsv1.StatefulSet
				if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				pod = s.Spec.Template.Spec
			case "Deployment":
				var d appsv1.Deployment
				if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				pod = d.Spec.Template.Spec
			default:
				continue
			}
			for _, c := range pod.Containers {
				if len(c.Args) == 0 {
					t.Errorf("%s container %s: no args", f, c.Name)
					continue
				}
				cmd := c.Args[0]
				seen[cmd] = true
				switch cmd {
				case "executor":
					fs, _ := executorFlags()
					if err := fs.Parse(c.Args[1:]); err != nil || fs.NArg() > 0 {
						t.Errorf("%s: sluice executor %v: %v (leftover %v)", f, c.Args[1:], err, fs.Args())
					}
				case "demo":
					fs, o := demoFlags()
					if err := fs.Parse(c.Args[1:]); err != nil || fs.NArg() > 0 {
						t.Errorf("%s: sluice demo %v: %v (leftover %v)", f, c.Args[1:], err, fs.Args())
					}
					if o.cluster.join == "" || o.checkpoint == "" || o.brokers == "" {
						t.Errorf("%s: the driver runs without --cluster-join, --checkpoint or --brokers: %v", f, c.Args)
					}
				default:
					t.Errorf("%s container %s: command %q is no sluice command the manifests should run", f, c.Name, cmd)
				}
			}
		}
	}
	if !seen["executor"] || !seen["demo"] {
		t.Errorf("the manifests run %v, want executor and demo", seen)
	}
}
