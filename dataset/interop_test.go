package dataset_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/testenv"
)

const pyWriteAllTypes = `
import sys, datetime, decimal, pyarrow as pa, pyarrow.parquet as pq
n = 1000
def col(f):
    return [None if i % 7 == 3 else f(i) for i in range(n)]
utc = datetime.timezone.utc
t = pa.table({
    "id": pa.array(range(n), pa.int64()),
    "b": pa.array(col(lambda i: i % 2 == 0), pa.bool_()),
    "i8": pa.array(col(lambda i: i % 100 - 50), pa.int8()),
    "i16": pa.array(col(lambda i: i * 3 - 1000), pa.int16()),
    "i32": pa.array(col(lambda i: i * 100003), pa.int32()),
    "u8": pa.array(col(lambda i: i % 256), pa.uint8()),
    "u16": pa.array(col(lambda i: i * 60), pa.uint16()),
    "u32": pa.array(col(lambda i: i * 4000000), pa.uint32()),
    "u64": pa.array(col(lambda i: 2**63 + i), pa.uint64()),
    "f32": pa.array(col(lambda i: i / 4), pa.float32()),
    "f64": pa.array(col(lambda i: i / 3), pa.float64()),
    "s": pa.array(col(lambda i: "s%d-é" % (i % 13)), pa.string()),
    "bin": pa.array(col(lambda i: bytes([i % 256, 7])), pa.binary()),
    "d": pa.array(col(lambda i: datetime.date(2020, 1, 1) + datetime.timedelta(days=i)), pa.date32()),
    "ts_ms": pa.array(col(lambda i: datetime.datetime(2026, 11, 1, tzinfo=utc) + datetime.timedelta(milliseconds=i * 1001)), pa.timestamp("ms", tz="UTC")),
    "ts_us": pa.array(col(lambda i: datetime.datetime(2026, 11, 1) + datetime.timedelta(microseconds=i * 7)), pa.timestamp("us")),
    "ts_ns": pa.array(col(lambda i: i * 1000000007), pa.timestamp("ns", tz="UTC")),
    "dec": pa.array(col(lambda i: decimal.Decimal(i * 101) / 100), pa.decimal128(12, 2)),
    "dec38": pa.array(col(lambda i: decimal.Decimal("1234567890123456789012345678.%010d" % i)), pa.decimal128(38, 10)),
    "lst": pa.array(col(lambda i: [i, i + 1]), pa.list_(pa.int64())),
})
pq.write_table(t, sys.argv[1] + "/a.parquet", row_group_size=300, compression="snappy")
pq.write_table(t.slice(0, 10), sys.argv[1] + "/b.parquet", use_dictionary=False, compression="zstd")
`

const pyCompare = `
import sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
src = pq.read_table(sys.argv[1]).sort_by([("id", "ascending")])
want = src.filter(pc.equal(pc.bit_wise_and(src["id"], 1), 0))
got = pq.read_table(sys.argv[2]).sort_by([("id", "ascending")])
got = got.select(want.column_names)
bad = [c for c in want.column_names if not got[c].equals(want[c]) or got.schema.field(c).type != want.schema.field(c).type]
print(got.num_rows, want.num_rows, ",".join(bad) or "ok")
`

// Files pyarrow writes with every supported type (several row groups,
// dictionary and plain, snappy and zstd) go through a sluice job (read,
// filter, write) and come out, for pyarrow, exactly as pyarrow's own filter
// of the same rows: same values, same types.
func TestAPyarrowDatasetRoundTripsThroughASluiceJob(t *testing.T) {
	_, cfg := checked(t)
	in := filepath.Join(t.TempDir(), "in")
	out := filepath.Join(t.TempDir(), "out")
	testenv.RunPython(t, `import os, sys; os.makedirs(sys.argv[1])`+"\n"+pyWriteAllTypes, in)
	err := dataset.Read(in).WithConfig(cfg).
		Filter(dataset.Col("id").Mod(2).Eq(0)).
		Write(context.Background(), out, dataset.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(testenv.RunPython(t, pyCompare, in, out))
	if got != "505 505 ok" {
		t.Fatalf("pyarrow comparison: %q (rows got, rows want, columns that differ)", got)
	}
}
