package parquet

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

// typesScript writes one table holding every supported type, with nulls in
// every column, in several encodings, and prints the expected values.
const typesScript = `
import sys, json, struct, random, decimal, datetime
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc

out = sys.argv[1]
random.seed(7)
n = 1000

def nulls(vals, k):
    return [None if (i % 7 == k % 7) else v for i, v in enumerate(vals)]

def ints(lo, hi, card=None):
    if card:
        pool = [random.randint(lo, hi) for _ in range(card)] + [lo, hi]
        return [random.choice(pool) for _ in range(n)]
    return [random.randint(lo, hi) for _ in range(n)]

cols = {}
types = {}
def add(name, typ, vals):
    cols[name] = pa.array(nulls(vals, len(cols)), type=typ)

add("b", pa.bool_(), [random.random() < 0.5 for _ in range(n)])
add("i8", pa.int8(), ints(-128, 127))
add("i16", pa.int16(), ints(-32768, 32767, 40))
add("i32", pa.int32(), ints(-2**31, 2**31-1))
add("i64", pa.int64(), ints(-2**63, 2**63-1, 30))
add("u8", pa.uint8(), ints(0, 255))
add("u16", pa.uint16(), ints(0, 65535))
add("u32", pa.uint32(), ints(0, 2**32-1, 20))
add("u64", pa.uint64(), ints(0, 2**64-1))
add("f32", pa.float32(), [struct.unpack('<f', struct.pack('<f', random.uniform(-1e6, 1e6)))[0] for _ in range(n)])
add("f64", pa.float64(), [random.choice([float('inf'), -float('inf'), 0.0, -0.0, 1e-300]) if i % 50 == 0 else random.gauss(0, 1e9) for i in range(n)])
add("s", pa.string(), [random.choice(["", "a", "héllo", "日本語", "x" * 100, "row%d" % i]) for i in range(n)])
add("s_dict", pa.string(), ["cat%d" % random.randint(0, 9) for _ in range(n)])
add("bin", pa.binary(), [bytes(random.randint(0, 255) for _ in range(random.randint(0, 12))) for _ in range(n)])
add("d32", pa.date32(), [datetime.date(1900, 1, 1) + datetime.timedelta(days=random.randint(0, 80000)) for _ in range(n)])
base = datetime.datetime(1960, 1, 1)
for unit in ["s", "ms", "us", "ns"]:
    vals = [random.randint(-10**9, 4 * 10**9) for _ in range(n)]
    mult = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[unit]
    vals = [v * mult + random.randint(0, mult - 1) for v in vals]
    add("ts_" + unit, pa.timestamp(unit), vals)
    add("tstz_" + unit, pa.timestamp(unit, tz="UTC"), vals)
add("dec_small", pa.decimal128(9, 2), [decimal.Decimal(random.randint(-10**9+1, 10**9-1)).scaleb(-2) for _ in range(n)])
add("dec_mid", pa.decimal128(18, 4), [decimal.Decimal(random.randint(-10**18+1, 10**18-1)).scaleb(-4) for _ in range(n)])
add("dec_large", pa.decimal128(38, 10), [decimal.Decimal(random.randint(-10**38+1, 10**38-1)).scaleb(-10) for _ in range(n)])
table = pa.table(cols)

variants = {
  "dict_snappy_v1": dict(use_dictionary=True, compression="snappy", data_page_version="1.0"),
  "plain_zstd_v2": dict(use_dictionary=False, compression="zstd", data_page_version="2.0", store_decimal_as_integer=True,
                        use_byte_stream_split=["f32", "f64"]),
  "delta_none_v1": dict(use_dictionary=False, compression="none", data_page_version="1.0",
                        column_encoding={"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "u64": "DELTA_BINARY_PACKED",
                                         "s": "DELTA_LENGTH_BYTE_ARRAY", "bin": "DELTA_BYTE_ARRAY", "s_dict": "DELTA_BYTE_ARRAY"}),
  "dict_gzip_v2": dict(use_dictionary=True, compression="gzip", data_page_version="2.0", store_decimal_as_integer=True),
}
for name, kw in variants.items():
    pq.write_table(table, out + "/" + name + ".parquet", row_group_size=150, data_page_size=512, write_batch_size=64, **kw)

def render(arr):
    t = arr.type
    vals = arr.to_pylist()
    res = []
    for v, x in zip(vals, range(len(vals))):
        if v is None:
            res.append(None)
        elif pa.types.is_boolean(t):
            res.append("true" if v else "false")
        elif pa.types.is_float32(t):
            res.append(str(struct.unpack('<I', struct.pack('<f', v))[0]))
        elif pa.types.is_float64(t):
            res.append(str(struct.unpack('<Q', struct.pack('<d', v))[0]))
        elif pa.types.is_string(t):
            res.append(v)
        elif pa.types.is_binary(t):
            res.append(v.hex())
        elif pa.types.is_decimal(t):
            res.append(str(int(v.scaleb(t.scale))))
        else:
            res.append(str(v))
    return res

expected = {}
for name in table.column_names:
    arr = table.column(name).combine_chunks()
    t = arr.type
    if pa.types.is_timestamp(t):
        phys = pc.cast(arr, pa.int64())
        if t.unit == "s":  # Parquet has no seconds: stored as milliseconds
            phys = pc.multiply(phys, 1000)
        arr = phys
    elif pa.types.is_date32(t):
        arr = pc.cast(arr, pa.int32())
    expected[name] = render(arr)

# INT96: Spark's legacy timestamps, before and after 1970, and nulls.
ts = [random.randint(-3 * 10**18, 3 * 10**18) for _ in range(300)]
t96 = pa.table({"ts": pa.array(nulls(ts, 3), type=pa.timestamp("ns")), "id": pa.array(range(300), type=pa.int64())})
pq.write_table(t96, out + "/int96.parquet", use_deprecated_int96_timestamps=True, row_group_size=100)
expected["int96"] = render(pc.cast(t96.column("ts").combine_chunks(), pa.int64()))
print(json.dumps(expected))
`

// wantTypes is the Arrow type each column of typesScript must read as.
var wantTypes = map[string]arrow.DataType{
	"b": arrow.FixedWidthTypes.Boolean, "i8": arrow.PrimitiveTypes.Int8, "i16": arrow.PrimitiveTypes.Int16,
	"i32": arrow.PrimitiveTypes.Int32, "i64": arrow.PrimitiveTypes.Int64, "u8": arrow.PrimitiveTypes.Uint8,
	"u16": arrow.PrimitiveTypes.Uint16, "u32": arrow.PrimitiveTypes.Uint32, "u64": arrow.PrimitiveTypes.Uint64,
	"f32": arrow.PrimitiveTypes.Float32, "f64": arrow.PrimitiveTypes.Float64, "s": arrow.BinaryTypes.String,
	"s_dict": arrow.BinaryTypes.String, "bin": arrow.BinaryTypes.Binary, "d32": arrow.FixedWidthTypes.Date32,
	"ts_s": &arrow.TimestampType{Unit: arrow.Millisecond}, "tstz_s": &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"},
	"ts_ms": &arrow.TimestampType{Unit: arrow.Millisecond}, "tstz_ms": &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"},
	"ts_us": &arrow.TimestampType{Unit: arrow.Microsecond}, "tstz_us": &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
	"ts_ns": &arrow.TimestampType{Unit: arrow.Nanosecond}, "tstz_ns": &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"},
	"dec_small": &arrow.Decimal128Type{Precision: 9, Scale: 2}, "dec_mid": &arrow.Decimal128Type{Precision: 18, Scale: 4},
	"dec_large": &arrow.Decimal128Type{Precision: 38, Scale: 10},
}

func TestReadsEveryTypePyarrowWrites(t *testing.T) {
	dir := t.TempDir()
	var want map[string][]any
	if err := json.Unmarshal([]byte(testenv.RunPython(t, typesScript, dir)), &want); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"dict_snappy_v1", "plain_zstd_v2", "delta_none_v1", "dict_gzip_v2"} {
		t.Run(variant, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			tab, err := Open(context.Background(), filepath.Join(dir, variant+".parquet"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(tab.Schema.Fields()); got != len(wantTypes) {
				t.Errorf("schema has %d fields, want %d: %s", got, len(wantTypes), tab.Schema)
			}
			var names []string
			for _, f := range tab.Schema.Fields() {
				names = append(names, f.Name)
				if w, ok := wantTypes[f.Name]; !ok || !arrow.TypeEqual(f.Type, w) {
					t.Errorf("column %s reads as %s, want %v", f.Name, f.Type, w)
				}
			}
			if tab.Files[0].RowGroups != 7 || tab.Files[0].NumRows != 1000 {
				t.Errorf("file has %d row groups, %d rows; want 7, 1000", tab.Files[0].RowGroups, tab.Files[0].NumRows)
			}
			// Odd batch sizes cut pages and row groups in odd places.
			for _, batch := range []int{37, 150, 4096} {
				got, _ := readTable(t, mem, tab, tab.Schema, nil, batch)
				compareColumns(t, got, want, names...)
			}
		})
	}
	t.Run("int96", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		tab, err := Open(context.Background(), filepath.Join(dir, "int96.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		f, _ := tab.Schema.FieldsByName("ts")
		if !arrow.TypeEqual(f[0].Type, &arrow.TimestampType{Unit: arrow.Nanosecond}) {
			t.Errorf("INT96 reads as %s, want timestamp[ns]", f[0].Type)
		}
		got, _ := readTable(t, mem, tab, project(t, tab.Schema, "ts"), nil, 64)
		got["int96"] = got["ts"]
		compareColumns(t, got, want, "int96")
	})
}
