package microbatch_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// The progress of a windowed query reads as Spark's StreamingQueryProgress:
// its field names, ISO-8601 UTC times with milliseconds, durations in ms,
// ids that say which query and which run.
func TestProgressIsSparksStreamingQueryProgressJSON(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src, err := srcmem.New(srcmem.Config{Name: "events", Schema: eventSchema, MaxRowsPerBatch: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recs := events(mem, 7, 0, 250, 0)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	src.Append(recs...)
	job := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2}).
		WithWatermark("ts", 5*time.Second).DropDuplicates("ts", "user")
	fs := vfs.NewMem()
	start := func() *microbatch.Query {
		return runToEnd(t, microbatch.WriteStream(job, newRecordingSink()).QueryName("dedup").Checkpoint("/ckpt").FS(fs).
			OutputMode(sinks.Append).Trigger(microbatch.AvailableNow()))
	}
	q := start()
	ps := q.RecentProgress()
	if len(ps) < 3 {
		t.Fatalf("%d batches; want 3 (250 rows, 100 a batch)", len(ps))
	}
	b, err := json.Marshal(ps[1])
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID                     string           `json:"id"`
		RunID                  string           `json:"runId"`
		Name                   string           `json:"name"`
		Timestamp              string           `json:"timestamp"`
		BatchID                *int64           `json:"batchId"`
		NumInputRows           int64            `json:"numInputRows"`
		InputRowsPerSecond     *float64         `json:"inputRowsPerSecond"`
		ProcessedRowsPerSecond float64          `json:"processedRowsPerSecond"`
		DurationMs             map[string]int64 `json:"durationMs"`
		EventTime              struct {
			Watermark string `json:"watermark"`
		} `json:"eventTime"`
		StateOperators []struct {
			OperatorName string `json:"operatorName"`
			NumRowsTotal *int64 `json:"numRowsTotal"`
		} `json:"stateOperators"`
		Sources []struct {
			Description  string          `json:"description"`
			StartOffset  json.RawMessage `json:"startOffset"`
			EndOffset    json.RawMessage `json:"endOffset"`
			NumInputRows int64           `json:"numInputRows"`
		} `json:"sources"`
		Sink struct {
			Description string `json:"description"`
		} `json:"sink"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	switch {
	case got.ID != q.ID() || !uuid.MatchString(got.RunID) || got.RunID != q.RunID() || got.Name != "dedup":
		t.Fatalf("id %q runId %q name %q; want the query's id %q, a UUID run id %q and its name", got.ID, got.RunID, got.Name, q.ID(), q.RunID())
	case got.BatchID == nil || *got.BatchID != 1 || got.NumInputRows != 100 || !iso.MatchString(got.Timestamp):
		t.Fatalf("batch %v, %d rows, timestamp %q in %s", got.BatchID, got.NumInputRows, got.Timestamp, b)
	case got.InputRowsPerSecond == nil || got.ProcessedRowsPerSecond <= 0:
		t.Fatalf("rates missing in %s", b)
	case !iso.MatchString(got.EventTime.Watermark):
		t.Fatalf("eventTime.watermark %q in %s", got.EventTime.Watermark, b)
	case len(got.StateOperators) != 1 || got.StateOperators[0].NumRowsTotal == nil || got.StateOperators[0].OperatorName == "":
		t.Fatalf("stateOperators in %s", b)
	case len(got.Sources) != 1 || got.Sources[0].NumInputRows != 100 || len(got.Sources[0].EndOffset) == 0 || got.Sources[0].Description == "":
		t.Fatalf("sources in %s", b)
	case got.Sink.Description != "recording":
		t.Fatalf("sink in %s", b)
	}
	for _, k := range []string{"latestOffset", "walCommit", "addBatch", "commitOffsets", "triggerExecution"} {
		if _, ok := got.DurationMs[k]; !ok {
			t.Fatalf("durationMs has no %s: %s", k, b)
		}
	}
	// A restart is the same query in a new run.
	if q2 := start(); q2.ID() != q.ID() || q2.RunID() == q.RunID() {
		t.Fatalf("restart: id %s -> %s, run %s -> %s; want the same id and a new run", q.ID(), q2.ID(), q.RunID(), q2.RunID())
	}
}
