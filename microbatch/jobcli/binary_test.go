package jobcli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"go.uber.org/goleak"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/internal/proctest"
)

// These tests run internal/testjob, a job built on jobcli, as a built
// binary: what a user's job gets from the package, from the outside.

func testjob(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a job binary")
	}
	return proctest.Build(t, "./internal/testjob")
}

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBuilds()
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// result is how a run of the binary ended.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary to its end (bounded by 2 minutes) with env added.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testjob(t), args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errs.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("testjob %v: %v", args, err)
	}
	return r
}

// cleanEnv is the test's environment without TESTJOB_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TESTJOB_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestEveryCommandHasHelpAndBadCommandLinesExit2(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"help", "stream"}, {"batch", "-h"}, {"backfill", "--help"},
		{"stream", "-h"}, {"executor", "-h"}, {"config", "-h"}, {"config", "print", "-h"}, {"version", "-h"}} {
		r := run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: testjob") {
			t.Errorf("testjob %v: exit %d, stdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := run(t, nil, "stream", "-h"); !strings.Contains(r.stdout, "--checkpoint-dir") || !strings.Contains(r.stdout, "[env TESTJOB_TRIGGER_INTERVAL]") ||
		!strings.Contains(r.stdout, "--ui-addr") || !strings.Contains(r.stdout, "--metrics-addr") || strings.Contains(r.stdout, "--slots") {
		t.Errorf("stream -h lists the wrong settings:\n%s", r.stdout)
	}
	if r := run(t, nil, "executor", "-h"); !strings.Contains(r.stdout, "--metrics-addr") || strings.Contains(r.stdout, "--ui-addr") {
		t.Errorf("executor -h lists the wrong settings (an executor serves metrics, no UI):\n%s", r.stdout)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"batch", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"batch", "extra"}, `unexpected argument "extra"`},
		{[]string{"batch", "--rows", "many"}, `invalid value "many" for flag -rows`},
		{[]string{"batch", "--slots", "2"}, "flag provided but not defined: -slots"},
		{[]string{"config", "show"}, `unknown subcommand "show"`},
		{[]string{"stream", "--flight", "127.0.0.1:1", "--tls-cert", "x.pem"}, "--flight, --tls-cert: cluster settings need --join"},
	} {
		r := run(t, nil, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("testjob %v: exit %d, want 2 and %q in stderr:\n%s", c.args, r.code, c.want, r.stderr)
		}
	}
}

func TestVersionNamesTheBuild(t *testing.T) {
	r := run(t, nil, "version")
	for _, want := range []string{"testjob ", "module   github.com/sluicedata/sluice", "revision ", "go       go1.", "plan fingerprint "} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("version lacks %q (exit %d):\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
}

func TestConfigPrintShowsFlagOverEnvOverFileOverDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(file, []byte("rows: 10\nkeys: 3\nlabel: from-file\ntags: [x, \"y z\"]\ncheckpoint-dir: /data/ck\n"), 0o600)
	r := run(t, []string{"TESTJOB_KEYS=5", "TESTJOB_LABEL=from-env", "TESTJOB_TRIGGER_INTERVAL=3s"},
		"config", "print", "--config", file, "--label", "from-flag", "--verbose")
	if r.code != 0 {
		t.Fatalf("config print: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		`rows: 10 +# file ` + regexp.QuoteMeta(file) + `:1`,
		`keys: 5 +# env TESTJOB_KEYS`,
		`label: from-flag +# flag --label`,
		`tags: \[x, y z\] +# file ` + regexp.QuoteMeta(file) + `:4`,
		`checkpoint-dir: /data/ck +# file`,
		`trigger-interval: 3s +# env TESTJOB_TRIGGER_INTERVAL`,
		`per-batch: 500 +# default`,
		`log-format: text +# default`,
		`verbose: true +# flag --verbose`,
		`max-rows-per-key: 0 +# default`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(r.stdout) {
			t.Errorf("config print lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{`ui-addr: 127.0.0.1:4040 +# default`, `metrics-addr: "" +# default`} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(r.stdout) {
			t.Errorf("config print lacks %q:\n%s", want, r.stdout)
		}
	}
	// The output is a config file that gives the same values.
	again := filepath.Join(t.TempDir(), "again.yaml")
	os.WriteFile(again, []byte(r.stdout), 0o600)
	r2 := run(t, nil, "config", "print", "--config", again)
	for _, want := range []string{"keys: 5 ", "label: from-flag ", `tags: [x, y z] `, "trigger-interval: 3s "} {
		if r2.code != 0 || !strings.Contains(r2.stdout, want) {
			t.Errorf("config print of its own output lacks %q (exit %d):\n%s%s", want, r2.code, r2.stdout, r2.stderr)
		}
	}
}

func TestBadSettingsAreRefusedNamingKeyAndSource(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("rows: 10\nrowz: 11\n"), 0o600)
	badDur := filepath.Join(dir, "dur.yaml")
	os.WriteFile(badDur, []byte("\npause: soon\n"), 0o600)
	for _, c := range []struct {
		env  []string
		args []string
		want []string
	}{
		{nil, []string{"batch", "--keys", "0"}, []string{"invalid setting keys (from flag --keys): 0: want at least 1"}},
		{[]string{"TESTJOB_KEYS=-1"}, []string{"batch"}, []string{"invalid setting keys (from env TESTJOB_KEYS)"}},
		{[]string{"TESTJOB_ROWS=lots"}, []string{"batch"}, []string{"env TESTJOB_ROWS", `"lots" is not an integer`}},
		{nil, []string{"batch", "--config", unknown}, []string{unknown + `:2: unknown key "rowz"`, "known: "}},
		{nil, []string{"batch", "--config", badDur}, []string{badDur + ":2: pause", `"soon" is not a duration`}},
		{[]string{"TESTJOB_CONFIG=" + unknown}, []string{"batch"}, []string{unknown + `:2: unknown key "rowz"`}},
		{nil, []string{"batch", "--log-format", "xml"}, []string{"invalid setting log-format (from flag --log-format)", "want text or json"}},
		{nil, []string{"backfill", "--from", "yesterday", "--to", "2026-01-01T00:00:00Z"}, []string{"invalid setting from (from flag --from)"}},
	} {
		r := run(t, c.env, c.args...)
		for _, w := range c.want {
			if r.code != 1 || !strings.Contains(r.stderr, w) {
				t.Errorf("testjob %v (env %v): exit %d, want 1 and %q:\n%s", c.args, c.env, r.code, w, r.stderr)
			}
		}
	}
}

func TestBatchRunsOnceWithAProgressBar(t *testing.T) {
	r := run(t, []string{"TESTJOB_ROWS=5000"}, "batch", "--keys", "7", "--progress", "always", "--log-format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, "rows=5000 groups=7") {
		t.Fatalf("batch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`tasks 100% .*\((\d+)/(\d+),`).MatchString(r.stderr) {
		t.Errorf("no finished progress bar of tasks on stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, `"msg":"batch done"`) {
		t.Errorf("no JSON log line of the batch's end:\n%s", r.stderr)
	}
	// Not a terminal, progress auto: no bar.
	if r := run(t, nil, "batch"); r.code != 0 || strings.Contains(r.stderr, "tasks") {
		t.Errorf("batch without a terminal drew a bar (exit %d):\n%s", r.code, r.stderr)
	}
}

func TestBackfillReadsItsRangeAndStops(t *testing.T) {
	ck := t.TempDir()
	r := run(t, nil, "backfill", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:00:04Z", "--rate", "1000",
		"--per-batch", "700", "--checkpoint-dir", ck, "--progress", "always")
	if r.code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rows, batches, hi int
	for _, m := range regexp.MustCompile(`rows=(\d+) min=(\d+) max=(\d+)`).FindAllStringSubmatch(r.stdout, -1) {
		n, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[3])
		rows, hi, batches = rows+n, max(hi, h), batches+1
	}
	if rows != 4000 || hi != 3999 || batches != 6 {
		t.Errorf("backfill of 4 s at 1000 rows/s read %d rows up to %d in %d batches, want 4000 up to 3999 in 6:\n%s", rows, hi, batches, r.stdout)
	}
	if !strings.Contains(r.stderr, "rows read 100%") || !strings.Contains(r.stderr, "(4000/4000,") {
		t.Errorf("no finished progress bar of rows on stderr:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(ck, "rate", "commits")); err != nil {
		t.Errorf("no checkpoint under --checkpoint-dir: %v", err)
	}
}

// start starts the binary with the test's environment without TESTJOB_
// variables.
func start(t *testing.T, ctx context.Context, args ...string) *proctest.Proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, testjob(t), args...)
	cmd.Env = cleanEnv()
	return proctest.Start(t, cmd)
}

func values(t *testing.T, out string) (lo, hi int) {
	lo = -1
	for _, m := range regexp.MustCompile(`rows=\d+ min=(\d+) max=(\d+)`).FindAllStringSubmatch(out, -1) {
		l, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[2])
		if lo < 0 || l < lo {
			lo = l
		}
		hi = max(hi, h)
	}
	return lo, hi
}

func TestStreamStopsOnSIGTERMAndARestartContinuesFromTheCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ck := t.TempDir()
	args := []string{"stream", "--checkpoint-dir", ck, "--rate", "2000", "--trigger-interval", "100ms"}
	first := start(t, ctx, args...)
	first.WaitFor(t, first.Stdout, `rows=[1-9]\d* min`, 3, 60*time.Second)
	first.Term(t)
	if !strings.Contains(first.Stderr.String(), "stream stopped on request") {
		t.Errorf("no stop logged:\n%s", first.Stderr.String())
	}
	_, hi1 := values(t, first.Stdout.String())

	second := start(t, ctx, args...)
	second.WaitFor(t, second.Stdout, `rows=[1-9]\d* min`, 1, 60*time.Second)
	second.Term(t)
	lo2, _ := values(t, second.Stdout.String())
	// The restart reads on from the checkpoint: not from 0, and no gap
	// (a batch the stop abandoned re-runs: lo2 may be below hi1).
	if lo2 <= 0 || lo2 > hi1+1 {
		t.Errorf("the first run read up to %d, the restart from %d:\n%s", hi1, lo2, second.Stdout.String())
	}
}

func TestABackfillStopsOnSIGTERMWithExit0(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Years at 1000 rows/s, 100 rows a batch: it would run for hours.
	p := start(t, ctx, "backfill", "--from", "2000-01-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z", "--per-batch", "100",
		"--checkpoint-dir", t.TempDir())
	p.WaitFor(t, p.Stdout, `rows=100 min`, 3, 30*time.Second)
	p.Term(t)
	if !strings.Contains(p.Stderr.String(), "backfill stopped on request") {
		t.Errorf("no stop logged:\n%s", p.Stderr.String())
	}
}

func TestABatchStopsOnSIGTERMWithExit0(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := start(t, ctx, "batch", "--pause", "50s")
	p.WaitFor(t, p.Stderr, `batch started`, 1, 30*time.Second)
	began := time.Now()
	p.Term(t)
	if el := time.Since(began); el > 10*time.Second || strings.Contains(p.Stdout.String(), "groups=") {
		t.Errorf("a batch stopped after %v (output %q)", el, p.Stdout.String())
	}
}

func TestAnExecutorRunsTheTasksOfADriver(t *testing.T) {
	testjob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if _, err := cluster.WriteDevCluster(dir, []string{"driver", "executor"}, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	key, err := cluster.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.WriteGossipKey(filepath.Join(dir, "gossip.key"), key); err != nil {
		t.Fatal(err)
	}
	files := func(role string) []string {
		return []string{"--gossip-key-file", filepath.Join(dir, "gossip.key"), "--tls-ca", filepath.Join(dir, "ca.pem"),
			"--tls-cert", filepath.Join(dir, role+".pem"), "--tls-key", filepath.Join(dir, role+"-key.pem")}
	}
	g, f := proctest.FreePort(t, true), proctest.FreePort(t, false)
	seed := "127.0.0.1:" + g
	e := start(t, ctx, append([]string{"executor", "--join", seed, "--bind", seed, "--flight", "127.0.0.1:" + f, "--slots", "2",
		"--metrics-addr", "127.0.0.1:0"}, files("executor")...)...)
	e.WaitFor(t, e.Stderr, "executor ready", 1, 30*time.Second)
	metricsURL := regexp.MustCompile(`msg=metrics url=(\S+)`).FindStringSubmatch(e.Stderr.String())
	if metricsURL == nil {
		t.Fatalf("the executor logged no metrics URL:\n%s", e.Stderr.String())
	}

	// A batch job's tasks on the executor, counted by the progress bar.
	b := run(t, nil, append([]string{"batch", "--join", seed, "--rows", "3000", "--keys", "3", "--progress", "always"}, files("driver")...)...)
	if b.code != 0 || !strings.Contains(b.stdout, "rows=3000 groups=3") || !regexp.MustCompile(`tasks 100% .*\(\d+/\d+,`).MatchString(b.stderr) {
		t.Fatalf("batch on the cluster: exit %d\n%s%s", b.code, b.stdout, b.stderr)
	}

	// The executor's /metrics count its tasks, and pass Prometheus's lint.
	mt := get(t, metricsURL[1])
	if tm := regexp.MustCompile(`(?m)^sluice_executor_tasks_total (\d+)`).FindStringSubmatch(mt); tm == nil || tm[1] == "0" {
		t.Errorf("the executor's metrics count no task after a batch job ran on it:\n%.2000s", mt)
	}
	if problems, err := promlint.New(strings.NewReader(mt)).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint of the executor's metrics: %v %v", err, problems)
	}

	d := start(t, ctx, append([]string{"stream", "--cluster-join", seed, "--checkpoint-dir", filepath.Join(dir, "ck"), "--trigger-interval", "200ms",
		"--ui-addr", "127.0.0.1:0"}, files("driver")...)...)
	d.WaitFor(t, d.Stdout, `rows=[1-9]\d* min`, 2, 60*time.Second)
	// The driver's UI lists the executor with its process's runtime.
	ui := regexp.MustCompile(`msg="web UI" url=(\S+)`).FindStringSubmatch(d.Stderr.String())
	if ui == nil {
		t.Fatalf("the driver logged no web UI:\n%s", d.Stderr.String())
	}
	var execs struct {
		Executors []struct {
			Role    string `json:"role"`
			Runtime *struct {
				Goroutines int64 `json:"goroutines"`
				HeapBytes  int64 `json:"heapBytes"`
			} `json:"runtime"`
			Stats *struct {
				Tasks int64 `json:"tasks"`
			} `json:"stats"`
		} `json:"executors"`
	}
	body := get(t, ui[1]+"api/executors")
	if err := json.Unmarshal([]byte(body), &execs); err != nil {
		t.Fatalf("api/executors: %v\n%s", err, body)
	}
	if n := len(execs.Executors); n != 2 || execs.Executors[1].Role != "executor" || execs.Executors[1].Runtime == nil ||
		execs.Executors[1].Runtime.Goroutines <= 0 || execs.Executors[1].Runtime.HeapBytes <= 0 || execs.Executors[1].Stats == nil || execs.Executors[1].Stats.Tasks == 0 {
		t.Errorf("the driver's UI should list itself and the executor with its runtime and tasks: %s", body)
	}
	d.Term(t)
	if !strings.Contains(d.Stderr.String(), `msg="executor joined"`) {
		t.Errorf("the driver logged no executor joining:\n%s", d.Stderr.String())
	}
	e.Term(t)
	m := regexp.MustCompile(`msg="executor stopped" node=\S+ tasks=(\d+)`).FindStringSubmatch(e.Stderr.String())
	bm := regexp.MustCompile(`tasks 100% .*\(\d+/(\d+),`).FindStringSubmatch(b.stderr)
	batchTasks, _ := strconv.Atoi(bm[1])
	if m == nil {
		t.Fatalf("the executor did not log its stop:\n%s", e.Stderr.String())
	}
	if n, _ := strconv.Atoi(m[1]); n <= batchTasks {
		t.Errorf("the executor ran no task of the stream's driver (the batch had %d):\n%s", batchTasks, e.Stderr.String())
	}
}
