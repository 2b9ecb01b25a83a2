package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicedata/sluice/microbatch/jobcli"
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
					s, err := jobcli.Parse(sluiceJob(&demoConfig{}), cmd, c.Args[1:])
					if err != nil {
						t.Errorf("%s: sluice executor %v: %v", f, c.Args[1:], err)
					} else if len(s.Cluster.Join) == 0 || s.Cluster.TLSCert == "" || s.Cluster.Slots == 0 {
						t.Errorf("%s: the executor runs without --join, --tls-cert or --slots: %v", f, c.Args)
					}
				case "demo":
					var cfg demoConfig
					s, err := jobcli.Parse(sluiceJob(&cfg), cmd, c.Args[1:])
					if err != nil {
						t.Errorf("%s: sluice demo %v: %v", f, c.Args[1:], err)
					} else if len(s.Cluster.Join) == 0 || s.CheckpointDir == "" || len(cfg.Brokers) == 0 {
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
