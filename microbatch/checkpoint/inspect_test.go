package checkpoint

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
)

const ckDir = "/q/ckpt"

// testCheckpoint is a checkpoint of batches 0..4 (committed) and, with
// pending, offsets of batch 5 without a commit; agg-0 keeps state in two
// key-group ranges, versions 1..5 (batch N commits version N+1).
func testCheckpoint(t *testing.T, pending bool) *vfs.Mem {
	t.Helper()
	fsys := vfs.NewMem()
	c := open(t, fsys, ckDir)
	if err := runBatches(c, 4, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NextEpoch(); err != nil {
		t.Fatal(err)
	}
	if pending {
		if err := c.WriteOffsets(offsetsFor(5)); err != nil {
			t.Fatal(err)
		}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	keySch := arrow.NewSchema([]arrow.Field{{Name: "customer", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	valSch := arrow.NewSchema([]arrow.Field{{Name: "total", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	for _, rg := range [][2]int{{0, 64}, {64, 128}} {
		st, err := state.Open(state.Config{FS: fsys, Dir: ckDir + "/state", StoreSpec: state.StoreSpec{Operator: "agg-0",
			KeyGroups: 128, Lo: rg[0], Hi: rg[1], KeySchema: keySch, ValueSchema: valSch, SnapshotEvery: 3, Allocator: mem}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for v := int64(1); v <= 5; v++ {
			kb := array.NewStringBuilder(mem)
			kb.AppendValues([]string{"c" + string(rune('a'+v)), "c" + string(rune('a'+v+1))}, nil)
			keys := array.NewRecord(keySch, []arrow.Array{kb.NewArray()}, 2)
			tb, nb := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
			tb.AppendValues([]int64{v, 0x1122334455667788}, nil)
			nb.AppendValues([]int64{1, 2}, nil)
			vals := array.NewRecord(valSch, []arrow.Array{tb.NewArray(), nb.NewArray()}, 2)
			for _, b := range []array.Builder{kb, tb, nb} {
				b.Release()
			}
			for i := range keys.Columns() {
				keys.Column(i).Release()
			}
			for i := range vals.Columns() {
				vals.Column(i).Release()
			}
			slots := make([]int32, 2)
			if err := st.Lookup(keys, slots); err != nil {
				t.Fatal(err)
			}
			err := st.Put(keys, vals, slots)
			keys.Release()
			vals.Release()
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Commit(v); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
	}
	return fsys
}

func TestInspectSummarisesTheCheckpoint(t *testing.T) {
	fsys := testCheckpoint(t, true)
	s, err := Inspect(fsys, ckDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.QueryID != testQueryID || s.FormatVersion != FormatVersion || s.KeyGroups != DefaultKeyGroups || s.IdentityHash != testIdentity().Canonical().withKeyGroups(DefaultKeyGroups).Hash() {
		t.Fatalf("header: %+v", s)
	}
	if *s.Committed != (BatchRange{First: 0, Last: 4, Count: 5}) {
		t.Fatalf("committed %+v, want 0..4", *s.Committed)
	}
	lb := s.LastBatch
	if lb.Batch != 4 || lb.Timestamp.UnixMicro() != 1_700_000_000_000_004 || lb.Watermark.UnixMicro() != 4000 || lb.NextWatermark.UnixMicro() != 5000 {
		t.Fatalf("last batch %+v", lb)
	}
	want := []SourceBatchRange{{Name: "orders", Identity: "kafka topics=orders", Start: json.RawMessage(`{"p0":40}`), End: json.RawMessage(`{"p0":50}`)}}
	if !reflect.DeepEqual(lb.Sources, want) {
		t.Fatalf("last batch sources %s, want %s", js(lb.Sources), js(want))
	}
	if s.Uncommitted == nil || s.Uncommitted.Batch != 5 || s.Uncommitted.NextWatermark != nil {
		t.Fatalf("uncommitted %+v, want batch 5 without a commit", s.Uncommitted)
	}
	if len(s.Operators) != 1 {
		t.Fatalf("operators %+v", s.Operators)
	}
	// Per range: deltas 1..5 (2 rows each), snapshot of 3 (live keys
	// 'cb'..'ce': 4 rows); after the snapshot, deltas 4 and 5.
	op := s.Operators[0]
	if op.ID != "agg-0" || op.Ranges != 2 || op.Files != 12 || op.LatestVersion != 5 || op.SnapshotRows != 8 || op.DeltaRows != 8 || op.Bytes == 0 {
		t.Fatalf("operator %+v", op)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"query id     " + testQueryID + " (format v2, 128 key groups, identity ",
		"sources      orders: kafka topics=orders",
		"batches      committed 0..4 (5 batches)",
		"last batch   4 at 2023-11-14T22:13:20.000004Z",
		"  watermark  1970-01-01T00:00:00.004Z",
		"             next 1970-01-01T00:00:00.005Z",
		`  orders     ({"p0":40}, {"p0":50}]`,
		"uncommitted  5 at ",
		"(offsets written, no commit: a restart runs batch 5 again with these offsets)",
		"  agg-0     aggregate  2       12",
	} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, text.String())
		}
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js(s), `"watermark":"1970-01-01T00:00:00.004Z"`) {
		t.Fatalf("JSON: %s", js(s))
	}
}

func TestInspectOfBatchZeroShowsNoWatermarkAndNullStart(t *testing.T) {
	fsys := vfs.NewMem()
	c := open(t, fsys, ckDir)
	if err := runBatches(c, 0, 100); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(fsys, ckDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.LastBatch.Watermark != nil || string(s.LastBatch.Sources[0].Start) != "null" || s.Uncommitted != nil {
		t.Fatalf("batch 0: %s", js(s.LastBatch))
	}
	var text bytes.Buffer
	s.WriteText(&text)
	if !strings.Contains(text.String(), "watermark  none") || !strings.Contains(text.String(), `(null, {"p0":10}]`) {
		t.Fatalf("text:\n%s", text.String())
	}
}

func TestInspectRefusesADirectoryThatIsNoCheckpoint(t *testing.T) {
	fsys := vfs.NewMem()
	fsys.WriteFileAtomic("/q/other/x.txt", []byte("x"))
	_, err := Inspect(fsys, "/q/other")
	if err == nil || !strings.Contains(err.Error(), "/q/other: no metadata.json") {
		t.Fatalf("Inspect: %v", err)
	}
}

func TestVerifyHealthyCheckpoint(t *testing.T) {
	for _, pending := range []bool{false, true} {
		fsys := testCheckpoint(t, pending)
		before := snapshot(t, fsys)
		r, err := Verify(fsys, ckDir)
		if err != nil {
			t.Fatal(err)
		}
		// metadata, epoch, 5 or 6 offsets, 5 commits, 12 state files
		want := 24
		if pending {
			want++
		}
		var text bytes.Buffer
		r.WriteText(&text)
		if !r.OK() || r.Files != want || text.String() != "ok: "+itoa(want)+" files checked in "+ckDir+"\n" {
			t.Fatalf("pending %v: %d files, problems %v, text %q", pending, r.Files, r.Problems, text.String())
		}
		if !reflect.DeepEqual(before, snapshot(t, fsys)) {
			t.Fatal("Verify changed the checkpoint")
		}
	}
}

func TestVerifyNamesEveryProblem(t *testing.T) {
	off2, com3, off4 := ckDir+"/offsets/2.json", ckDir+"/commits/3.json", ckDir+"/offsets/4.json"
	delta2 := ckDir + "/state/agg-0/0-64/2.delta.arrow"
	flip := func(path string, at func(b []byte) int) func(t *testing.T, m *vfs.Mem) {
		return func(t *testing.T, m *vfs.Mem) {
			m.Corrupt(path, func(b []byte) []byte { b[at(b)] ^= 0x04; return b })
		}
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, m *vfs.Mem)
		want   []Problem // each problem's path and a part of its text
	}{
		{name: "a flipped byte in an offsets file fails its checksum",
			damage: flip(off2, func(b []byte) int { return bytes.Index(b, []byte(`"p0": 20`)) + 7 }),
			want:   []Problem{{off2, "checksum mismatch"}}},
		{name: "a truncated commit",
			damage: func(t *testing.T, m *vfs.Mem) { m.Corrupt(com3, func(b []byte) []byte { return b[:len(b)-5] }) },
			want:   []Problem{{com3, "truncated body"}}},
		{name: "a gap in the logs",
			damage: func(t *testing.T, m *vfs.Mem) { m.Remove(off2); m.Remove(ckDir + "/commits/2.json") },
			want:   []Problem{{ckDir + "/offsets", "batch 3 follows batch 1 (missing 2)"}}},
		{name: "a commit without its offsets",
			damage: func(t *testing.T, m *vfs.Mem) { m.Remove(off4) },
			want:   []Problem{{ckDir + "/commits", "commits 0..4 without their offsets"}}},
		{name: "an offsets file of another query",
			damage: func(t *testing.T, m *vfs.Mem) {
				e := offsetsFor(4)
				e.QueryID = "9a1c-other"
				b, _ := encode(e)
				m.WriteFileAtomic(off4, b)
			},
			want: []Problem{{off4, `written for another query or other sources than metadata.json (query_id is "9a1c-other"`}}},
		{name: "a file of an older format version",
			damage: func(t *testing.T, m *vfs.Mem) {
				m.Corrupt(com3, func(b []byte) []byte { b[1] = '1'; return b })
			},
			want: []Problem{{com3, "format version 1, written by an older sluice"}}},
		{name: "missing metadata",
			damage: func(t *testing.T, m *vfs.Mem) { m.Remove(ckDir + "/metadata.json") },
			want:   []Problem{{ckDir + "/metadata.json", "missing while the logs hold batches"}}},
		{name: "a flipped byte in a state file fails its checksum",
			damage: flip(delta2, func(b []byte) int { return bytes.Index(b, []byte("\x88\x77\x66\x55\x44\x33\x22\x11")) }),
			want:   []Problem{{delta2, "metadata says 2 rows with"}}},
		{name: "a truncated state file",
			damage: func(t *testing.T, m *vfs.Mem) { m.Corrupt(delta2, func(b []byte) []byte { return b[:len(b)/2] }) },
			want:   []Problem{{delta2, "corrupt state file"}}},
		{name: "a missing delta the next batch needs",
			damage: func(t *testing.T, m *vfs.Mem) { m.Remove(ckDir + "/state/agg-0/64-128/5.delta.arrow") },
			want: []Problem{{ckDir + "/state/agg-0/64-128",
				"the next batch (5) cannot load its state: version 5 needs the delta of version 5 (after the snapshot of version 3)"}}},
		{name: "state of an operator the query does not have",
			damage: func(t *testing.T, m *vfs.Mem) {
				b, _ := m.ReadFile(delta2)
				m.WriteFileAtomic(ckDir+"/state/dedup-7/0-64/2.delta.arrow", b)
			},
			want: []Problem{{ckDir + "/state/dedup-7/0-64/2.delta.arrow", `sluice.state.operator is "agg-0", its path says "dedup-7"`},
				{ckDir + "/state/dedup-7", "state of no operator of metadata.json's identity"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := testCheckpoint(t, false)
			tc.damage(t, fsys)
			before := snapshot(t, fsys)
			r, err := Verify(fsys, ckDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) != len(tc.want) {
				t.Fatalf("problems %v, want %v", r.Problems, tc.want)
			}
			for i, w := range tc.want {
				if r.Problems[i].Path != w.Path || !strings.Contains(r.Problems[i].Problem, w.Problem) {
					t.Fatalf("problem %d: %+v, want path %s and %q", i, r.Problems[i], w.Path, w.Problem)
				}
			}
			var text bytes.Buffer
			r.WriteText(&text)
			lines := strings.Split(strings.TrimSpace(text.String()), "\n")
			if !strings.HasPrefix(lines[0], tc.want[0].Path+": ") || !strings.HasPrefix(lines[len(lines)-1], itoa(len(tc.want))+" problems in ") {
				t.Fatalf("text:\n%s", text.String())
			}
			if !reflect.DeepEqual(before, snapshot(t, fsys)) {
				t.Fatal("Verify changed the checkpoint")
			}
		})
	}
}

func (id Identity) withKeyGroups(n int) Identity { id.KeyGroups = n; return id }

func itoa(n int) string { return strconv.Itoa(n) }

func js(v any) string { b, _ := json.Marshal(v); return string(b) }
