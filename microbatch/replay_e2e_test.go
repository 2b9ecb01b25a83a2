package microbatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources/generate"
	pqsource "github.com/sluicedata/sluice/sources/parquet"
)

// The checkpoint tools end to end, through the public API: a generated
// order stream, aggregated per minute and region in append mode into the
// Parquet stream sink (partitioned by region), runs to its end; then
// Inspect summarises the checkpoint, Verify finds it sound, and every
// committed batch replays to exactly the rows its Parquet files hold,
// without changing a byte of the checkpoint or the table. A part file
// rewritten with one changed value makes the replay of its batch name the
// difference.
func TestCheckpointToolsEndToEnd(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	root := t.TempDir()
	ckpt, out := filepath.Join(root, "ckpt"), filepath.Join(root, "out")
	writer := func() *microbatch.StreamWriter {
		src, err := generate.NewOrdersStream(generate.OrdersStreamConfig{Orders: generate.Orders{Seed: 3, Customers: 20}, Total: 900, MaxRowsPerBatch: 100})
		if err != nil {
			t.Fatal(err)
		}
		sink, err := pqsink.NewStream(pqsink.StreamConfig{Dir: out, Mem: mem, Options: pqsink.Options{PartitionBy: []string{"region"}}})
		if err != nil {
			t.Fatal(err)
		}
		ds := dataset.ReadStream(src).WithConfig(dataset.Config{Allocator: mem, Parallelism: 2, ShufflePartitions: 3}).
			WithWatermark("ts", 10*time.Second).
			GroupBy(dataset.Window("ts", time.Minute), "region").
			Agg(dataset.CountAll().As("orders"), dataset.Sum(dataset.Col("amount")).As("revenue"))
		return microbatch.WriteStream(ds, sink).Checkpoint(ckpt).OutputMode(sinks.Append)
	}
	q, err := writer().Trigger(microbatch.AvailableNow()).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(); err != nil {
		t.Fatal(err)
	}
	last := q.LastProgress().Batch
	if last < 8 {
		t.Fatalf("only %d batches", last+1)
	}

	s, err := checkpoint.Inspect(vfs.OS{}, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if s.QueryID != q.ID() || s.Committed == nil || *s.Committed != (checkpoint.BatchRange{First: 0, Last: last, Count: last + 1}) ||
		s.Uncommitted != nil || len(s.Sources) != 1 || s.Sources[0].Name != "orders" {
		t.Fatalf("inspect: %s", jsonText(s))
	}
	if len(s.Operators) != 1 || s.Operators[0].Kind != "aggregate" || s.Operators[0].Files == 0 || s.Operators[0].LatestVersion != last+1 {
		t.Fatalf("inspect operators: %s", jsonText(s.Operators))
	}
	if s.LastBatch.Watermark == nil || string(s.LastBatch.Sources[0].End) != `{"rows":900}` {
		t.Fatalf("inspect last batch: %s", jsonText(s.LastBatch))
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "query id     "+q.ID()) || !strings.Contains(text.String(), "agg-0") {
		t.Fatalf("inspect text:\n%s", text.String())
	}

	r, err := checkpoint.Verify(vfs.OS{}, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Files < 2*int(last+1)+1 {
		t.Fatalf("verify: %d files, problems %v", r.Files, r.Problems)
	}

	before, beforeOut := dirSnapshot(t, ckpt), dirSnapshot(t, out)
	var rows, tampered int64 = 0, -1
	for n := int64(0); n <= last; n++ {
		rep, err := microbatch.Replay(ctx, writer(), n)
		if err != nil {
			t.Fatalf("replay batch %d: %v", n, err)
		}
		if !rep.Identical || rep.StateFilesCompared == 0 {
			t.Fatalf("replay batch %d: %+v", n, rep)
		}
		rows += rep.CommittedRows
		if rep.CommittedRows > 0 && n > 0 && tampered < 0 {
			tampered = n
		}
	}
	if rows == 0 || tampered < 0 {
		t.Fatalf("the batches wrote %d rows; want rows in a batch after the first", rows)
	}
	mustBeUnchanged(t, ckpt, before)
	mustBeUnchanged(t, out, beforeOut)

	// One value of one part file of the batch changes.
	parts, _ := filepath.Glob(filepath.Join(out, "region=*", "part-"+itoa(tampered)+"-*.parquet"))
	if len(parts) == 0 {
		t.Fatalf("no part file of batch %d", tampered)
	}
	rewriteWithOneChange(t, mem, parts[0], "orders")
	rep, err := microbatch.Replay(ctx, writer(), tampered)
	if !errors.Is(err, microbatch.ErrReplayDiffers) || rep == nil || rep.Identical || rep.OnlyInReplay != 1 || rep.OnlyInSink != 1 {
		t.Fatalf("replay of the tampered batch %d: %v, report %+v", tampered, err, rep)
	}
	if !strings.Contains(rep.FirstDifference, "in the replay and") || !strings.Contains(err.Error(), "orders=") ||
		!strings.Contains(rep.FirstOnlyInSink, "is absent in the replay and once in the sink") {
		t.Fatalf("first difference %q, error %v", rep.FirstDifference, err)
	}
	text.Reset()
	rep.WriteText(&text)
	t.Logf("replay of the tampered batch:\n%s", text.String())

	// Damage on disk: a flipped byte in an offsets file and in a state file.
	flip := func(path string, at func([]byte) int) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[at(b)] ^= 0x01
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	offsets := filepath.Join(ckpt, "offsets", "3.json")
	flip(offsets, func(b []byte) int { return bytes.Index(b, []byte(`"rows": 400`)) + 9 })
	states, _ := filepath.Glob(filepath.Join(ckpt, "state", "agg-0", "*", "2.delta.arrow"))
	var state string // a file holding region "amer"
	for _, p := range states {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("amer")) {
			state = p
			break
		}
	}
	if state == "" {
		t.Fatalf("no state file of version 2 holds a row of region amer: %v", states)
	}
	flip(state, func(b []byte) int { return bytes.Index(b, []byte("amer")) + 1 })
	r, err = checkpoint.Verify(vfs.OS{}, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 2 || r.Problems[0].Path != offsets || !strings.Contains(r.Problems[0].Problem, "checksum mismatch") ||
		r.Problems[1].Path != state || !strings.Contains(r.Problems[1].Problem, "metadata says") {
		t.Fatalf("verify of the damaged checkpoint: %+v", r.Problems)
	}
}

// rewriteWithOneChange rewrites the Parquet file at path with the int64
// column col of its first row increased by 1000.
func rewriteWithOneChange(t *testing.T, mem memory.Allocator, path, col string) {
	t.Helper()
	ctx := context.Background()
	tbl, err := pqsource.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	splits, _ := tbl.Splits(nil)
	var recs []arrow.Record
	for _, sp := range splits {
		if err := pqsource.ReadSplit(ctx, mem, sp, tbl.Schema, nil, 0, func(r arrow.Record) error {
			recs = append(recs, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	defer releaseRecords(recs)
	i := tbl.Schema.FieldIndices(col)[0]
	old := recs[0].Column(i).(*array.Int64)
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for k := 0; k < old.Len(); k++ {
		v := old.Value(k)
		if k == 0 {
			v += 1000
		}
		b.Append(v)
	}
	changed := b.NewArray()
	defer changed.Release()
	cols := append([]arrow.Array{}, recs[0].Columns()...)
	cols[i] = changed
	first := array.NewRecord(recs[0].Schema(), cols, recs[0].NumRows())
	defer first.Release()
	tmp := t.TempDir()
	fw, err := pqsink.NewFileWriter(mem, tmp, "x", tbl.Schema, pqsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range recs {
		if k == 0 {
			r = first
		}
		if err := fw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	files, err := fw.Close()
	if err != nil || len(files) != 1 {
		t.Fatalf("rewrite: %v, %v", files, err)
	}
	if err := os.Rename(filepath.Join(tmp, files[0].Path), path); err != nil {
		t.Fatal(err)
	}
}

func jsonText(v any) string { b, _ := json.Marshal(v); return string(b) }
