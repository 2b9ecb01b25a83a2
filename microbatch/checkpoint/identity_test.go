package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/blobfs"
)

func TestSchemaText(t *testing.T) {
	ts := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	for _, tt := range []struct {
		name   string
		schema *arrow.Schema
		want   string
	}{
		{"no schema", nil, ""},
		{"no fields", arrow.NewSchema(nil, nil), ""},
		{"flat fields with nullability", arrow.NewSchema([]arrow.Field{
			{Name: "user", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "n", Type: arrow.PrimitiveTypes.Int64},
			{Name: "window_end", Type: ts, Nullable: true},
			{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}},
		}, nil), "user: utf8, n: int64 not null, window_end: timestamp[ms, tz=UTC], amount: decimal(12, 2) not null"},
		{"names that need quoting", arrow.NewSchema([]arrow.Field{
			{Name: "a b", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			{Name: "x:y, z", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			{Name: "__right.user", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			{Name: "", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		}, nil), `"a b": int32, "x:y, z": int32, __right.user: int32, "": int32`},
		{"nested types spell their children", arrow.NewSchema([]arrow.Field{
			{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, arrow.Field{Name: "b", Type: arrow.BinaryTypes.String}), Nullable: true},
			{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
			{Name: "ll", Type: arrow.LargeListOfNonNullable(arrow.BinaryTypes.String)},
			{Name: "f", Type: arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float64), Nullable: true},
			{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
		}, nil), "s: struct<a: int64, b: utf8 not null>, l: list<item: int64>, ll: large_list<item: utf8 not null> not null, " +
			"f: fixed_size_list<3, item: float64>, m: map<key: utf8 not null, value: int64>"},
		{"metadata is not part of it", arrow.NewSchema([]arrow.Field{
			{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true, Metadata: arrow.NewMetadata([]string{"x"}, []string{"y"})},
		}, &arrow.Metadata{}), "k: int64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := SchemaText(tt.schema); got != tt.want {
				t.Fatalf("SchemaText = %q; want %q", got, tt.want)
			}
		})
	}
}

// The hash is part of the format (metadata.json stores it and readers
// check it): it must never change for the same identity.
func TestIdentityHashIsPinnedAndOrderFree(t *testing.T) {
	id := testIdentity()
	id.KeyGroups = DefaultKeyGroups
	if got := id.Hash(); got != "c0b58a35f6cd0bee" {
		t.Fatalf("Hash() = %s; the encoding of identities changed", got)
	}
	a := Identity{KeyGroups: 8,
		Sources:   []SourceIdentity{{"b", "x"}, {"a", "y"}},
		Operators: []OperatorIdentity{{Kind: "drop-duplicates", ID: "dedup-1"}, {Kind: "aggregate", ID: "agg-0"}}}
	b := a.Canonical()
	if !slices.IsSortedFunc(b.Sources, func(x, y SourceIdentity) int { return strings.Compare(x.Name, y.Name) }) || b.Operators[0].ID != "agg-0" {
		t.Fatalf("Canonical() = %+v; want sorted lists", b)
	}
	if a.Hash() != b.Hash() || len(a.Diff(b)) != 0 {
		t.Fatalf("the same identity in another order has hash %s vs %s, diff %q", a.Hash(), b.Hash(), a.Diff(b))
	}
	if a.Sources[0].Name != "b" {
		t.Fatal("Canonical changed its receiver's lists")
	}
}

func TestIdentityDiffSaysWhatDiffers(t *testing.T) {
	base := testIdentity()
	base.KeyGroups = 128
	tests := []struct {
		name string
		edit func(id *Identity)
		want []string
	}{
		{"nothing", func(*Identity) {}, nil},
		{"key groups", func(id *Identity) { id.KeyGroups = 64 }, []string{"key groups were 128 and are now 64"}},
		{"a source's identity", func(id *Identity) { id.Sources[0].Identity = "kafka topics=orders2" },
			[]string{`source "orders": identity was "kafka topics=orders" and is now "kafka topics=orders2"`}},
		{"a source renamed", func(id *Identity) { id.Sources[0].Name = "orders2" }, []string{
			`source "orders" (identity "kafka topics=orders") is no longer read`,
			`source "orders2" (identity "kafka topics=orders") is new`}},
		{"a key schema", func(id *Identity) { id.Operators[0].KeySchema = "customer: int64" },
			[]string{`operator agg-0: key schema was "customer: utf8" and is now "customer: int64"`}},
		{"a value schema and the aggregates", func(id *Identity) {
			id.Operators[0].ValueSchema, id.Operators[0].Aggregates = "total: int64", []string{"max"}
		}, []string{
			`operator agg-0: value schema was "total: int64, n: int64 not null" and is now "total: int64"`,
			`operator agg-0: aggregates was "sum,count" and is now "max"`}},
		{"an operator more and one less", func(id *Identity) {
			id.Operators = []OperatorIdentity{{Kind: "drop-duplicates", ID: "dedup-0", KeySchema: "id: int64 not null"}}
		}, []string{"operator agg-0 (aggregate) is gone", "operator dedup-0 (drop-duplicates) is new"}},
		{"a kind and a state type", func(id *Identity) {
			id.Operators[0].Kind, id.Operators[0].StateType = "flat-map-groups-with-state", "main.Session"
		}, []string{
			`operator agg-0: kind was "aggregate" and is now "flat-map-groups-with-state"`,
			`operator agg-0: state type was "" and is now "main.Session"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := base.Canonical() // a deep copy
			tt.edit(&now)
			if got := base.Diff(now); !slices.Equal(got, tt.want) {
				t.Fatalf("Diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A valid offsets file copied from another query's checkpoint is refused by
// Recover, naming the file and what differs, whether it is the batch to
// re-run or the last committed one; nothing is changed.
func TestRecoverRefusesOffsetsOfAnotherQuery(t *testing.T) {
	for _, tt := range []struct {
		name   string
		batch  int64
		commit bool // the copied batch is committed in the target
	}{
		{"as the batch to re-run", 2, false},
		{"as the last committed batch", 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := vfs.NewMem()
			mine := open(t, m, "/mine")
			must(runBatches(mine, 1, 100))
			if !tt.commit {
				must(mine.WriteOffsets(offsetsFor(2)))
			}
			theirs := open(t, m, "/theirs")
			meta := testMetadata()
			meta.QueryID = "9a1c-other-query"
			must(theirs.WriteMetadata(meta))
			for n := range int64(3) {
				e := offsetsFor(n)
				e.QueryID = meta.QueryID
				must(theirs.WriteOffsets(e))
				must(theirs.WriteCommit(commitFor(n)))
			}
			path := fmt.Sprintf("/mine/offsets/%d.json", tt.batch)
			foreign, err := m.ReadFile(fmt.Sprintf("/theirs/offsets/%d.json", tt.batch))
			must(err)
			must(m.WriteFileAtomic(path, foreign))
			before := snapshot(t, m)
			_, err = open(t, m, "/mine").Recover()
			want := path + `: written for another query or other sources than metadata.json (query_id is "9a1c-other-query", metadata.json's is "5f0c6f1e-query")`
			if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Recover: %v; want ErrForeign saying %q", err, want)
			}
			if !reflect.DeepEqual(before, snapshot(t, m)) {
				t.Fatal("a refused Recover changed the checkpoint")
			}
		})
	}
}

// A checkpoint written by the previous format (version 1: no identity, no
// query id in offsets) is refused with both versions named.
func TestAVersion1CheckpointIsRefusedNotUpgraded(t *testing.T) {
	m := vfs.NewMem()
	v1 := func(body string) []byte {
		return append(fmt.Appendf(nil, "v1 crc32c=%08x\n", crc([]byte(body))), body...)
	}
	must(m.WriteFileAtomic("/ckpt/metadata.json", v1(`{
  "query_id": "5f0c6f1e-query",
  "format_version": 1,
  "key_groups": 128,
  "plan_fingerprint": "fp-1"
}
`)))
	must(m.WriteFileAtomic("/ckpt/offsets/0.json", v1(`{
  "batch": 0,
  "sources": {"orders": {"start": null, "end": {"p0": 10}}},
  "watermark_us": -9223372036854775808,
  "timestamp_us": 1700000000000000
}
`)))
	before := snapshot(t, m)
	c := open(t, m, "/ckpt")
	const want = "format version 1, written by an older sluice; this build reads only version 2 and does not upgrade checkpoints"
	if _, _, err := c.Metadata(); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "/ckpt/metadata.json: "+want) {
		t.Fatalf("Metadata: %v; want ErrVersion saying %q", err, want)
	}
	if _, err := c.Recover(); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Recover: %v; want ErrVersion saying %q", err, want)
	}
	if err := c.WriteMetadata(testMetadata()); !errors.Is(err, ErrVersion) {
		t.Fatalf("WriteMetadata over a version 1 checkpoint: %v; want ErrVersion", err)
	}
	if !reflect.DeepEqual(before, snapshot(t, m)) {
		t.Fatal("refusing a version 1 checkpoint changed it")
	}
}

func TestLockMakesOneOwner(t *testing.T) {
	filesystems(t, func(t *testing.T, fsys vfs.FS, dir string) {
		c := open(t, fsys, dir)
		l, err := c.Lock()
		if err != nil {
			t.Fatal(err)
		}
		_, err = open(t, fsys, dir).Lock()
		lockName := dir + "/lock"
		if b, ok := fsys.(*blobfs.Blob); ok { // a lease object, named by its URL
			lockName = b.URL(lockName)
		}
		want := fmt.Sprintf("checkpoint: %s: checkpoint is owned by another running query: vfs: lock %s: held by pid %d", dir, lockName, os.Getpid())
		if !errors.Is(err, ErrLocked) || !errors.Is(err, vfs.ErrLocked) || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("second Lock: %v; want ErrLocked starting %q", err, want)
		}
		must(l.Close())
		l, err = open(t, fsys, dir).Lock()
		if err != nil {
			t.Fatalf("Lock after the owner closed its lock: %v", err)
		}
		l.Close()
		// The lock file is not a log: recovery ignores it.
		if rec, err := c.Recover(); err != nil || rec.Next != 0 {
			t.Fatalf("Recover beside the lock file: %+v, %v", rec, err)
		}
	})
}
