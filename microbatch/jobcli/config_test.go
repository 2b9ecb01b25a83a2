package jobcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKebabNamesFollowGoInitialisms(t *testing.T) {
	for in, want := range map[string]string{"CheckpointDir": "checkpoint-dir", "MaxRowsPerBatch": "max-rows-per-batch",
		"N": "n", "TLSCert": "tls-cert", "HTTPAddr": "http-addr", "ID": "id", "Rows2": "rows2"} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

// A job's config that the machinery cannot take is refused when the
// binary runs, naming the field or the key, before any role starts.
func TestAConfigTheCLICannotTakeIsRefused(t *testing.T) {
	noop := func(context.Context, *Env) error { return nil }
	for _, c := range []struct {
		name string
		cfg  any
		want string
	}{
		{"a map field", &struct{ M map[string]int }{}, "config field M: type map[string]int is not supported"},
		{"a key of the common settings", &struct{ LogLevel string }{}, `two settings named "log-level"`},
		{"a key twice", &struct {
			A string `sluice:"x"`
			B string `sluice:"x"`
		}{}, `two settings named "x"`},
		{"not a pointer", struct{ A string }{}, "config must be a pointer to a struct"},
	} {
		var out bytes.Buffer
		err := Run(context.Background(), Job{Name: "j", Config: c.cfg, Batch: noop}, []string{"batch"}, &out, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestTheFileTakesListsAndRefusesWhatIsNotASetting(t *testing.T) {
	type cfg struct {
		Tags  []string
		Every time.Duration
		On    bool
		Ratio float64
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	for _, c := range []struct {
		name, file string
		want       []string // in config print's output, or the error
		fails      bool
	}{
		{"a YAML list and a comma list", "tags: [a, b]\nevery: 1m30s\non: true\nratio: 0.5\n", []string{"tags: [a, b]", "every: 1m30s", "on: true", "ratio: 0.5"}, false},
		{"a comma list", "tags: a,b\n", []string{"tags: [a, b]"}, false},
		{"an empty file", "", []string{"tags: []", "# default"}, false},
		{"a list", "- a\n- b\n", []string{"want a mapping of setting: value"}, true},
		{"a nested value", "every:\n  x: 1\n", []string{":1: every: want a single value"}, true},
		{"an alias as key", "cluster-join: 127.0.0.1:1\n", []string{`unknown key "cluster-join"`}, true},
		{"a bad boolean", "\n\non: maybe\n", []string{`:3: on: "maybe" is not a boolean`}, true},
	} {
		var out bytes.Buffer
		f := write(strings.ReplaceAll(c.name, " ", "_")+".yaml", c.file)
		err := Run(context.Background(), Job{Name: "j", Config: &cfg{}}, []string{"config", "print", "--config", f}, &out, &out)
		text := out.String()
		if err != nil {
			text = err.Error()
		}
		if (err != nil) != c.fails {
			t.Errorf("%s: error %v, want failure %v\n%s", c.name, err, c.fails, out.String())
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %q lacks %q", c.name, text, w)
			}
		}
	}
}
