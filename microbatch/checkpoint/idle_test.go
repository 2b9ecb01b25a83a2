package checkpoint

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
)

// An offsets file written before inputs could be idle (no active_us, no
// idle_inputs) still loads, with neither field set: the driver then counts
// idleness from the next batch.
func TestOffsetsWithoutIdlenessFieldsLoad(t *testing.T) {
	m := vfs.NewMem()
	c := open(t, m, "/ckpt")
	if err := runBatches(c, 1, 100); err != nil {
		t.Fatal(err)
	}
	// Byte for byte what the previous version wrote for batch 2, left
	// uncommitted: Recover hands it back to be re-run.
	old := `{
  "batch": 2,
  "query_id": "` + testQueryID + `",
  "sources": {
    "orders": {
      "identity": "kafka topics=orders",
      "start": {"p0":20},
      "end": {"p0":30}
    }
  },
  "watermark_us": 2000,
  "timestamp_us": 1700000000000002,
  "prev_watermark_us": 1000
}
`
	if err := m.WriteFileAtomic("/ckpt/offsets/2.json", envelope(old)); err != nil {
		t.Fatal(err)
	}
	rec, err := open(t, m, "/ckpt").Recover()
	if err != nil {
		t.Fatal(err)
	}
	e := rec.Rerun
	if e == nil || e.Batch != 2 || e.Watermark != 2000 || e.PrevWatermark == nil || *e.PrevWatermark != 1000 || e.Timestamp != 1700000000000002 {
		t.Fatalf("re-run %+v, want batch 2 as the old file has it", e)
	}
	if e.Active != nil || e.Idle != nil {
		t.Fatalf("active %v, idle %v from a file without them; want both unset", e.Active, e.Idle)
	}
}

// The idleness facts round-trip, appear in the file under their documented
// names, are left out when unset, and a rewrite of the batch with other
// facts is a conflict naming them.
func TestOffsetsIdlenessFieldsRoundTrip(t *testing.T) {
	m := vfs.NewMem()
	c := open(t, m, "/ckpt")
	if err := runBatches(c, 0, 100); err != nil {
		t.Fatal(err)
	}
	raw, err := m.ReadFile("/ckpt/offsets/0.json")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(raw); strings.Contains(s, "active_us") || strings.Contains(s, "idle_inputs") {
		t.Fatalf("offsets without idleness write its fields:\n%s", s)
	}
	e := offsetsFor(1)
	e.Active = map[string]int64{"wm-0": 1_700_000_000_000_001, "wm-1": math.MinInt64 + 1}
	e.Idle = []string{"wm-1"}
	if err := c.WriteOffsets(e); err != nil {
		t.Fatal(err)
	}
	raw, err = m.ReadFile("/ckpt/offsets/1.json")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(raw); !strings.Contains(s, `"active_us": {`) || !strings.Contains(s, `"idle_inputs": [`) {
		t.Fatalf("offsets file lacks active_us or idle_inputs:\n%s", s)
	}
	got, err := open(t, m, "/ckpt").Offsets(1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Active, e.Active) || !reflect.DeepEqual(got.Idle, e.Idle) {
		t.Fatalf("read back active %v idle %v, want %v %v", got.Active, got.Idle, e.Active, e.Idle)
	}
	other := offsetsFor(1)
	other.Active = map[string]int64{"wm-0": 1_700_000_000_000_001, "wm-1": math.MinInt64 + 1}
	err = c.WriteOffsets(other)
	if err == nil || !strings.Contains(err.Error(), "idle_inputs stored") {
		t.Fatalf("rewrite without the idle input: %v; want a conflict naming idle_inputs", err)
	}
}
