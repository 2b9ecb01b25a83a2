package jobcli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
)

// These tests run the checkpoint tools through the built test job: a
// backfill writes the checkpoints of its two queries (rate: a console
// sink; counts: a stateful window count appended to Parquet), then
// inspect, verify and replay read them.

func TestCheckpointCommandsHaveHelpAndRefuseBadCommandLines(t *testing.T) {
	for _, args := range [][]string{{"checkpoint", "-h"}, {"checkpoint", "help"}, {"help", "checkpoint"}, {"checkpoint", "inspect", "-h"},
		{"checkpoint", "verify", "--help"}, {"checkpoint", "replay", "-h"}, {"checkpoint", "replay", "--batch", "3", "-h"}} {
		r := run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: testjob checkpoint") {
			t.Errorf("testjob %v: exit %d, stdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := run(t, nil, "-h"); !strings.Contains(r.stdout, "checkpoint ") {
		t.Errorf("testjob -h does not list the checkpoint command:\n%s", r.stdout)
	}
	// replay takes the stream role's settings and the job's config.
	if r := run(t, nil, "checkpoint", "replay", "-h"); !strings.Contains(r.stdout, "--batch N") || !strings.Contains(r.stdout, "--checkpoint-dir") ||
		!strings.Contains(r.stdout, "--parquet") || !strings.Contains(r.stdout, "[env TESTJOB_CHECKPOINT_DIR]") {
		t.Errorf("checkpoint replay -h lacks its flags or the job's settings:\n%s", r.stdout)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoint"}, "want a subcommand: inspect, verify or replay"},
		{[]string{"checkpoint", "show", dir}, `unknown subcommand "show"`},
		{[]string{"checkpoint", "inspect"}, "want one checkpoint directory, got 0"},
		{[]string{"checkpoint", "verify", dir, dir}, "want one checkpoint directory, got 2"},
		{[]string{"checkpoint", "inspect", dir, "--yaml"}, "flag provided but not defined: -yaml"},
		{[]string{"checkpoint", "replay", "--checkpoint-dir", dir}, "--batch N is required"},
		{[]string{"checkpoint", "replay", "--batch", "last"}, `invalid value "last" for flag --batch`},
		{[]string{"checkpoint", "replay", "--batch", "-1"}, `invalid value "-1" for flag --batch`},
		{[]string{"checkpoint", "replay", "--batch", "0", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"checkpoint", "replay", "--batch", "0"}, "query rate: no checkpoint directory: give --checkpoint-dir"},
		{[]string{"checkpoint", "replay", "--batch", "0", "--checkpoint-dir", dir, "--parquet", dir}, "the job has 2 queries: say which with --query (rate, counts)"},
		{[]string{"checkpoint", "replay", "--batch", "0", "--checkpoint-dir", dir, "--query", "counts"}, `the job has no query "counts": want --query rate`},
	} {
		r := run(t, nil, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("testjob %v: exit %d, want 2 and %q in stderr:\n%s", c.args, r.code, c.want, r.stderr)
		}
	}
	// A directory that is not a checkpoint is a failure, not a usage error.
	for _, sub := range []string{"inspect", "verify"} {
		if r := run(t, nil, "checkpoint", sub, dir); r.code != 1 || !strings.Contains(r.stderr+r.stdout, "metadata.json") {
			t.Errorf("checkpoint %s of an empty directory: exit %d, want 1 naming metadata.json:\n%s%s", sub, r.code, r.stdout, r.stderr)
		}
	}
}

// backfill runs the test job's backfill over 3 s of the rate source (3000
// rows, 7 batches of at most 500) with the Parquet query, and returns the
// checkpoint and Parquet directories and the flags that name them.
func backfill(t *testing.T) (ck, out string, flags []string) {
	t.Helper()
	dir := t.TempDir()
	ck, out = filepath.Join(dir, "ck"), filepath.Join(dir, "out")
	flags = []string{"--checkpoint-dir", ck, "--parquet", out}
	r := run(t, nil, append([]string{"backfill", "--from", "2024-01-01T00:00:00Z", "--to", "2024-01-01T00:00:03Z", "--progress", "never"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return ck, out, flags
}

func TestCheckpointInspectAndVerifyABackfill(t *testing.T) {
	ck, _, _ := backfill(t)
	counts := filepath.Join(ck, "counts")
	r := run(t, nil, "checkpoint", "inspect", counts)
	for _, want := range []string{"checkpoint   " + counts, "sources      rate: rate rows_per_second=1000 seed=0 keys=4",
		"batches      committed 0..6 (7 batches)", "watermark  2024-01-01T00:00:02.999Z", "agg-0     aggregate"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("inspect lacks %q (exit %d):\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
	r = run(t, nil, "checkpoint", "inspect", "--json", counts)
	var s checkpoint.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
		t.Fatalf("inspect --json: exit %d, %v:\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if s.QueryID == "" || s.Committed == nil || s.Committed.Last != 6 || s.LastBatch == nil || len(s.Operators) != 1 || s.Operators[0].Files == 0 {
		t.Errorf("inspect --json: %+v", s)
	}

	r = run(t, nil, "checkpoint", "verify", counts)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("verify of a sound checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A flipped byte in an offsets file's body breaks its checksum.
	bad := filepath.Join(counts, "offsets", "2.json")
	flipLastByteBut(t, bad, 2)
	r = run(t, nil, "checkpoint", "verify", counts)
	if r.code != 1 || !strings.Contains(r.stdout, bad+": ") || !strings.Contains(r.stderr, "1 problems found") {
		t.Errorf("verify after flipping a byte of %s: exit %d, want 1 naming it:\n%s%s", bad, r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, "checkpoint", "verify", counts, "--json")
	var rep checkpoint.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 1 || err != nil || len(rep.Problems) != 1 || rep.Problems[0].Path != bad {
		t.Errorf("verify --json: exit %d, %v, %+v:\n%s%s", r.code, err, rep, r.stdout, r.stderr)
	}
}

// flipLastByteBut flips a byte k bytes before the end of file (in the JSON
// body, before its closing braces and newline).
func flipLastByteBut(t *testing.T, file string, k int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1-k] ^= 0x01
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointReplayProvesABatchOrNamesTheDifference(t *testing.T) {
	ck, out, flags := backfill(t)
	replay := func(args ...string) result {
		return run(t, nil, append(append([]string{"checkpoint", "replay"}, flags...), args...)...)
	}
	// Batch 0 emits nothing (no window closed yet) but writes state;
	// batch 3 is the first to close windows.
	for _, c := range []struct {
		batch string
		rows  string
	}{{"0", "0 rows replayed, 0 rows committed"}, {"3", "4 rows replayed, 4 rows committed"}, {"5", "4 rows replayed, 4 rows committed"}} {
		r := replay("--query", "counts", "--batch", c.batch)
		for _, want := range []string{"replayed batch " + c.batch + " of query ", "state: 2 files of version", "rows identical: " + c.rows,
			"identical: batch " + c.batch + " replays to the output and state it committed"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("replay batch %s lacks %q (exit %d):\n%s%s", c.batch, want, r.code, r.stdout, r.stderr)
			}
		}
	}
	r := replay("--query=counts", "--batch=3", "--json")
	var rep microbatch.ReplayReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil || !rep.Identical || rep.Batch != 3 || rep.CommittedRows != 4 {
		t.Errorf("replay --json: exit %d, %v, %+v:\n%s%s", r.code, err, rep, r.stdout, r.stderr)
	}
	// The job's settings may come from the environment as for its roles.
	r = run(t, []string{"TESTJOB_CHECKPOINT_DIR=" + ck, "TESTJOB_PARQUET=" + out}, "checkpoint", "replay", "--batch", "3", "--query", "counts")
	if r.code != 0 || !strings.Contains(r.stdout, "identical: batch 3") {
		t.Errorf("replay with settings from the environment: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Refusals: a batch never committed; a sink that cannot read back.
	r = replay("--query", "counts", "--batch", "30")
	if r.code != 1 || !strings.Contains(r.stderr, "batch cannot be replayed: batch 30 is not committed (the last committed batch is 6)") {
		t.Errorf("replay of batch 30: exit %d, want 1 saying it is not committed:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = replay("--query", "rate", "--batch", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "sink console cannot read back its committed batches") {
		t.Errorf("replay of the console query: exit %d, want 1 saying its sink cannot read back:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// One changed value in a committed part file of batch 3.
	parts, _ := filepath.Glob(filepath.Join(out, "part-3-*.parquet"))
	if len(parts) == 0 {
		t.Fatalf("no part file of batch 3 in %s", out)
	}
	was, now := changeFirstValue(t, parts[0], "n")
	r = replay("--query", "counts", "--batch", "3")
	for _, want := range []string{"DIFFERENT: 4 rows replayed, 4 rows committed", "1 row only in the replay, 1 row only in the sink",
		"first difference: ", "n=" + was, "n=" + now} {
		if r.code != 1 || !strings.Contains(r.stdout, want) {
			t.Errorf("replay of a tampered batch lacks %q (exit %d):\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "replay differs from the committed output: batch 3") {
		t.Errorf("replay of a tampered batch: stderr does not say it differs:\n%s", r.stderr)
	}
	// The other batches still replay: only batch 3's file changed.
	if r := replay("--query", "counts", "--batch", "5"); r.code != 0 {
		t.Errorf("replay batch 5 after batch 3's file changed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// changeFirstValue rewrites the Parquet file with column col's value in
// its first row plus 1000 (keeping the schema and key-value metadata), and
// returns the old and new values.
func changeFirstValue(t *testing.T, file, col string) (was, now string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := -1
	for i, path := range f.Schema().Columns() {
		if len(path) == 1 && path[0] == col {
			leaf = i
		}
	}
	if leaf < 0 {
		t.Fatalf("%s has no column %s: %v", file, col, f.Schema().Columns())
	}
	var rows []pq.Row
	for _, rg := range f.RowGroups() {
		rr := rg.Rows()
		buf := make([]pq.Row, rg.NumRows())
		n, err := rr.ReadRows(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		rr.Close()
		rows = append(rows, buf[:n]...)
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no rows", file)
	}
	for j, v := range rows[0] {
		if v.Column() == leaf {
			was = v.String()
			rows[0][j] = pq.Int64Value(v.Int64()+1000).Level(v.RepetitionLevel(), v.DefinitionLevel(), leaf)
			now = rows[0][j].String()
		}
	}
	opts := []pq.WriterOption{f.Schema()}
	for _, kv := range f.Metadata().KeyValueMetadata {
		opts = append(opts, pq.KeyValueMetadata(kv.Key, kv.Value))
	}
	var b bytes.Buffer
	w := pq.NewWriter(&b, opts...)
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return was, now
}
