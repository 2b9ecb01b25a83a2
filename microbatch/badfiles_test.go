package microbatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	pq "github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/files"
	srckafka "github.com/sluicedata/sluice/sources/kafka"
)

type fileRow struct {
	ID   int64  `parquet:"id"`
	Name string `parquet:"name"`
}

// conflictRow has the column id as a string: a file the source's schema
// (id int64) cannot read.
type conflictRow struct {
	ID string `parquet:"id"`
}

var fileSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// dropFile writes a Parquet file of rows into dir as a careful writer does
// (temp name, rename), its modification time n seconds after a fixed
// instant so files are taken in n order.
func dropFile[T any](t *testing.T, dir, name string, n int, rows ...T) {
	t.Helper()
	tmp := filepath.Join(dir, ".tmp-"+name)
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	w := pq.NewGenericWriter[T](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 0, 0, n, 0, time.UTC)
	if err := os.Chtimes(tmp, at, at); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// truncate cuts a file to half its size, keeping its modification time:
// what a writer killed mid-copy leaves (no footer).
func truncate(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// fileStream is a files-source query over in, one file per batch, with its
// checkpoint in ckpt; policy adjusts the source's config.
type fileStream struct {
	in, ckpt string
	sink     *recordingSink
	logs     *bytes.Buffer
	reg      *prometheus.Registry
	metrics  *microbatch.Metrics
}

func newFileStream(t *testing.T) *fileStream {
	root := t.TempDir()
	fs := &fileStream{in: filepath.Join(root, "in"), ckpt: filepath.Join(root, "ckpt"), sink: newRecordingSink(), logs: &bytes.Buffer{}}
	if err := os.MkdirAll(fs.in, 0o755); err != nil {
		t.Fatal(err)
	}
	fs.reg = prometheus.NewRegistry()
	m, err := microbatch.NewMetrics(fs.reg)
	if err != nil {
		t.Fatal(err)
	}
	fs.metrics = m
	return fs
}

func (fs *fileStream) logDir() string { return filepath.Join(fs.ckpt, "sources", "in") }

// run runs the query to the end of the files there now and returns it and
// AwaitTermination's error.
func (fs *fileStream) run(t *testing.T, policy func(*files.Config)) (*microbatch.Query, error) {
	t.Helper()
	cfg := files.Config{Name: "in", Dir: fs.in, LogDir: fs.logDir(), Schema: fileSchema, MaxFilesPerBatch: 1}
	if policy != nil {
		policy(&cfg)
	}
	src, err := files.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(fs.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q, err := microbatch.WriteStream(dataset.ReadStream(src), fs.sink).Checkpoint(fs.ckpt).
		Trigger(microbatch.AvailableNow()).Logger(log).Metrics(fs.metrics).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return q, q.AwaitTermination()
}

// referenceRows is what the query writes over only the good files.
func referenceRows(t *testing.T, write func(dir string)) []string {
	t.Helper()
	ref := newFileStream(t)
	write(ref.in)
	if _, err := ref.run(t, nil); err != nil {
		t.Fatalf("reference run: %v", err)
	}
	return sortedStrings(ref.sink.rows())
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// dropped is sluice_input_dropped_total{source="in",kind=kind}.
func (fs *fileStream) dropped(t *testing.T, kind string) float64 {
	t.Helper()
	fams, err := fs.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "sluice_input_dropped_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == "in" && labels["kind"] == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// dropsOf returns the drops the progress of batch reports for source "in".
func dropsOf(t *testing.T, q *microbatch.Query, batch int64) []sources.Drop {
	t.Helper()
	return dropsOfSource(t, q, batch, "in")
}

func dropsOfSource(t *testing.T, q *microbatch.Query, batch int64, source string) []sources.Drop {
	t.Helper()
	for _, p := range q.RecentProgress() {
		if p.Batch != batch {
			continue
		}
		for _, s := range p.Sources {
			if s.Name == source {
				return s.Dropped
			}
		}
	}
	t.Fatalf("no progress of batch %d with source %s", batch, source)
	return nil
}

// A file whose column types conflict with the source fails its batch, every
// run, naming the batch, the source and the file. With BadFiles "skip" the
// batch goes on without it; the decision is recorded in the checkpoint
// before the batch's output commits, so the re-run of a batch whose commit
// failed leaves out the same file even under the default policy; the drop
// is in the batch's progress and logged naming batch, source, file, reason.
func TestABadFileIsSkippedUnderTheSkipPolicyAndTheReRunSkipsItToo(t *testing.T) {
	good := func(dir string) {
		dropFile(t, dir, "a.parquet", 1, fileRow{1, "a"}, fileRow{2, "b"})
		dropFile(t, dir, "c.parquet", 3, fileRow{3, "c"})
	}
	want := referenceRows(t, good)
	fs := newFileStream(t)
	good(fs.in)
	dropFile(t, fs.in, "bad.parquet", 2, conflictRow{"x"})
	bad := filepath.Join(fs.in, "bad.parquet")

	for run := 1; run <= 2; run++ {
		_, err := fs.run(t, nil)
		if err == nil {
			t.Fatalf("run %d: the conflicting file did not fail the query", run)
		}
		for _, part := range []string{"batch 1", "source in", bad, `column "id"`} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("run %d: error %q does not name %s", run, err, part)
			}
		}
	}

	// Skip, but the sink's commit of batch 1 fails: the decision is on disk.
	fs.sink.failNext = errors.New("sink down")
	if _, err := fs.run(t, func(c *files.Config) { c.BadFiles = files.BadFilesSkip }); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("run with a failing sink commit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fs.logDir(), "dropped-1.json")); err != nil {
		t.Fatalf("the skip is not recorded in the checkpoint: %v", err)
	}
	// The re-run of batch 1, under the default policy, skips the same file.
	q, err := fs.run(t, nil)
	if err != nil {
		t.Fatalf("re-run of batch 1 after a recorded skip: %v", err)
	}
	if got := sortedStrings(fs.sink.rows()); !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v (the good files')", got, want)
	}
	drops := dropsOf(t, q, 1)
	if len(drops) != 1 || drops[0].Kind != sources.DropSkipped || drops[0].Input != bad || !strings.Contains(drops[0].Reason, `column "id"`) {
		t.Errorf("batch 1 progress drops %+v, want bad.parquet skipped for its column id", drops)
	}
	for _, p := range q.RecentProgress() {
		if p.Batch == 1 {
			b, _ := json.Marshal(p)
			if !strings.Contains(string(b), `"inputSkipped":"1"`) {
				t.Errorf("progress JSON of batch 1 does not count the skip: %s", b)
			}
		}
	}
	if n := fs.dropped(t, sources.DropSkipped); n != 1 {
		t.Errorf("sluice_input_dropped_total{kind=skipped} = %v, want 1", n)
	}
	logs := fs.logs.String()
	for _, part := range []string{"input dropped", "batch=1", "source=in", "kind=skipped", "input=" + bad} {
		if !strings.Contains(logs, part) {
			t.Errorf("log does not say %q:\n%s", part, logs)
		}
	}
	if _, err := os.Stat(bad); err != nil {
		t.Errorf("skip moved or removed the file: %v", err)
	}
}

// Under BadFiles "quarantine" a truncated file (no footer) moves to the
// quarantine directory, and its batch goes on without it.
func TestATruncatedFileIsQuarantined(t *testing.T) {
	good := func(dir string) {
		dropFile(t, dir, "a.parquet", 1, fileRow{1, "a"})
		dropFile(t, dir, "c.parquet", 3, fileRow{3, "c"})
	}
	want := referenceRows(t, good)
	fs := newFileStream(t)
	good(fs.in)
	dropFile(t, fs.in, "torn.parquet", 2, fileRow{2, "torn"}, fileRow{4, "torn"})
	truncate(t, filepath.Join(fs.in, "torn.parquet"))
	qdir := filepath.Join(t.TempDir(), "quarantine")

	if _, err := fs.run(t, nil); err == nil || !strings.Contains(err.Error(), "torn.parquet") || !strings.Contains(err.Error(), "batch 1") {
		t.Fatalf("a truncated file under the fail policy: %v, want an error naming it and batch 1", err)
	}
	q, err := fs.run(t, func(c *files.Config) { c.BadFiles, c.QuarantineDir = files.BadFilesQuarantine, qdir })
	if err != nil {
		t.Fatalf("run under quarantine: %v", err)
	}
	if got := sortedStrings(fs.sink.rows()); !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	to := filepath.Join(qdir, "torn.parquet")
	if _, err := os.Stat(to); err != nil {
		t.Errorf("the file is not in quarantine: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fs.in, "torn.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the quarantined file is still in the input directory: %v", err)
	}
	drops := dropsOf(t, q, 1)
	if len(drops) != 1 || drops[0].Kind != sources.DropQuarantined || drops[0].To != to {
		t.Errorf("batch 1 progress drops %+v, want torn.parquet quarantined to %s", drops, to)
	}
}

// Deleting a bad file fails the query with "offset no longer available"
// naming it; OffsetsGone "skip" (Spark's failOnDataLoss=false) moves the
// query past it, counted and logged as data loss.
func TestOffsetsGoneSkipMovesAQueryPastADeletedFile(t *testing.T) {
	good := func(dir string) {
		dropFile(t, dir, "a.parquet", 1, fileRow{1, "a"})
		dropFile(t, dir, "c.parquet", 3, fileRow{3, "c"})
	}
	want := referenceRows(t, good)
	fs := newFileStream(t)
	good(fs.in)
	dropFile(t, fs.in, "bad.parquet", 2, conflictRow{"x"})
	bad := filepath.Join(fs.in, "bad.parquet")
	if _, err := fs.run(t, nil); err == nil {
		t.Fatal("the conflicting file did not fail the query")
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	_, err := fs.run(t, nil)
	if !errors.Is(err, sources.ErrOffsetGone) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "batch 1") || !strings.Contains(err.Error(), "OffsetsGone") {
		t.Fatalf("run after deleting the file: %v, want ErrOffsetGone naming it, batch 1 and the option", err)
	}
	q, err := fs.run(t, func(c *files.Config) { c.OffsetsGone = files.OffsetsGoneSkip })
	if err != nil {
		t.Fatalf("run with OffsetsGone skip: %v", err)
	}
	if got := sortedStrings(fs.sink.rows()); !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	drops := dropsOf(t, q, 1)
	if len(drops) != 1 || drops[0].Kind != sources.DropLost || drops[0].Input != bad || !strings.Contains(drops[0].Reason, "deleted") {
		t.Errorf("batch 1 progress drops %+v, want bad.parquet lost", drops)
	}
	if n := fs.dropped(t, sources.DropLost); n != 1 {
		t.Errorf("sluice_input_dropped_total{kind=lost} = %v, want 1", n)
	}
	if logs := fs.logs.String(); !strings.Contains(logs, "kind=lost") || !strings.Contains(logs, "input="+bad) {
		t.Errorf("the loss is not logged:\n%s", logs)
	}
}

// Kafka's failOnDataLoss=false: offsets a recorded batch should read that
// retention deleted fail the batch naming them; with OffsetsGone "skip" the
// re-run goes on without them, and the batch's progress and log report the
// loss with the batch id.
func TestKafkaOffsetsGoneSkipReportsTheLossInTheBatchProgress(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 8 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "events", Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fsys, sink, logs := vfs.NewMem(), newRecordingSink(), &bytes.Buffer{}
	run := func(gone string) (*microbatch.Query, error) {
		src, err := srckafka.New(srckafka.Config{Name: "events", Brokers: c.ListenAddrs(), Topics: []string{"events"},
			MaxOffsetsPerBatch: 4, OffsetsGone: gone, FetchMaxWait: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		q, err := microbatch.WriteStream(dataset.ReadStream(src).Select("value"), sink).Checkpoint("/ckpt").FS(fsys).
			Logger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))).
			Trigger(microbatch.Once()).Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return q, q.AwaitTermination()
	}
	if _, err := run(""); err != nil { // batch 0: offsets 0..3
		t.Fatal(err)
	}
	del := make(kadm.Offsets)
	del.AddOffset("events", 0, 6, -1)
	if resp, err := kadm.NewClient(cl).DeleteRecords(context.Background(), del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	_, err = run("")
	if !errors.Is(err, sources.ErrOffsetGone) || !strings.Contains(err.Error(), "batch 1") || !strings.Contains(err.Error(), `topic "events" partition 0: offsets 4..5 were deleted`) {
		t.Fatalf("batch 1 after retention: %v, want ErrOffsetGone naming batch 1 and offsets 4..5", err)
	}
	q, err := run(srckafka.OffsetsGoneSkip)
	if err != nil {
		t.Fatalf("re-run of batch 1 with OffsetsGone skip: %v", err)
	}
	if got := len(sink.rows()); got != 6 {
		t.Errorf("%d rows committed, want 6 (offsets 0..3, 6, 7)", got)
	}
	drops := dropsOfSource(t, q, 1, "events")
	if len(drops) != 1 || drops[0].Kind != sources.DropLost || drops[0].Input != `topic "events" partition 0 offsets 4..5` || drops[0].Count != 2 {
		t.Errorf("batch 1 progress drops %+v, want offsets 4..5 lost", drops)
	}
	if b, _ := json.Marshal(q.RecentProgress()[len(q.RecentProgress())-1]); !strings.Contains(string(b), `"inputLost":"2"`) {
		t.Errorf("progress JSON of batch 1 does not count 2 lost messages: %s", b)
	}
	for _, part := range []string{"input dropped", "batch=1", "source=events", "kind=lost"} {
		if !strings.Contains(logs.String(), part) {
			t.Errorf("log does not say %q:\n%s", part, logs)
		}
	}
}

// corruptPages overwrites every byte between a Parquet file's leading magic
// and its footer: the footer (schema, row groups) stays sound, the pages
// are garbage.
func corruptPages(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b)
	footer := int(b[n-8]) | int(b[n-7])<<8 | int(b[n-6])<<16 | int(b[n-5])<<24
	for i := 4; i < n-8-footer; i++ {
		b[i] = 0xAB
	}
	st, _ := os.Stat(path)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// Corrupt pages behind a sound footer are found by the task reading them:
// the batch fails naming the file even under BadFiles "skip". VerifyFiles
// reads the pages when the batch is planned, so the policy applies.
func TestCorruptPagesAreSkippedOnlyWithVerifyFiles(t *testing.T) {
	good := func(dir string) {
		dropFile(t, dir, "a.parquet", 1, fileRow{1, "a"})
		dropFile(t, dir, "c.parquet", 3, fileRow{3, "c"})
	}
	want := referenceRows(t, good)
	fs := newFileStream(t)
	good(fs.in)
	dropFile(t, fs.in, "pages.parquet", 2, fileRow{2, "p"}, fileRow{4, "q"})
	corrupt := filepath.Join(fs.in, "pages.parquet")
	corruptPages(t, corrupt)

	skip := func(c *files.Config) { c.BadFiles = files.BadFilesSkip }
	if _, err := fs.run(t, skip); err == nil || !strings.Contains(err.Error(), "batch 1") || !strings.Contains(err.Error(), corrupt) {
		t.Fatalf("corrupt pages under skip without VerifyFiles: %v, want the batch to fail naming the file", err)
	}
	q, err := fs.run(t, func(c *files.Config) { skip(c); c.VerifyFiles = true })
	if err != nil {
		t.Fatalf("corrupt pages under skip with VerifyFiles: %v", err)
	}
	if got := sortedStrings(fs.sink.rows()); !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	drops := dropsOf(t, q, 1)
	if len(drops) != 1 || drops[0].Kind != sources.DropSkipped || drops[0].Input != corrupt || !strings.Contains(drops[0].Reason, "verify") {
		t.Errorf("batch 1 progress drops %+v, want pages.parquet skipped by verification", drops)
	}
}
