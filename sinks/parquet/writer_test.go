package parquet

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

var allTypes = arrow.NewSchema([]arrow.Field{
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
	{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "America/New_York"}, Nullable: true},
	{Name: "ts_ms", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
	{Name: "ts_us", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
	{Name: "dec38", Type: &arrow.Decimal128Type{Precision: 38, Scale: 5}, Nullable: true},
}, nil)

const allTypesRows = `[
{"b": true, "i8": -128, "i16": -32768, "i32": -2147483648, "i64": -9223372036854775808,
 "u8": 255, "u16": 65535, "u32": 4294967295, "u64": "18446744073709551615",
 "f32": 1.5, "f64": -2.25, "s": "héllo", "ls": "", "bin": "AAEC", "d": 19000,
 "ts_s": 1700000000, "ts_ms": 1700000000123, "ts_us": 1700000000123456, "ts_ns": "2023-11-14T22:13:20.123456789",
 "dec": "12345678.90", "dec38": "-123456789012345678901234567890.12345"},
{},
{"b": false, "i8": 127, "i16": 32767, "i32": 2147483647, "i64": "9223372036854775807",
 "u8": 0, "u16": 0, "u32": 0, "u64": 0,
 "f32": -0.5, "f64": 1e300, "s": "x/y=z", "ls": "large", "bin": "", "d": -1,
 "ts_s": -1, "ts_ms": -1, "ts_us": 0, "ts_ns": -5,
 "dec": "-0.01", "dec38": "0.00001"}
]`

// What pyarrow reads back: seconds come back as milliseconds (Parquet has
// no second unit), zones come back by name through the ARROW:schema key.
const allTypesWant = `{
"schema": {"b": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
  "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
  "f32": "float", "f64": "double", "s": "string", "ls": "large_string", "bin": "binary",
  "d": "date32[day]", "ts_s": "timestamp[ms, tz=America/New_York]", "ts_ms": "timestamp[ms]",
  "ts_us": "timestamp[us, tz=UTC]", "ts_ns": "timestamp[ns]",
  "dec": "decimal128(10, 2)", "dec38": "decimal128(38, 5)"},
"columns": {
  "b": [true, null, false], "i8": [-128, null, 127], "i16": [-32768, null, 32767],
  "i32": [-2147483648, null, 2147483647], "i64": [-9223372036854775808, null, 9223372036854775807],
  "u8": [255, null, 0], "u16": [65535, null, 0], "u32": [4294967295, null, 0],
  "u64": [18446744073709551615, null, 0],
  "f32": [1.5, null, -0.5], "f64": [-2.25, null, 1e+300],
  "s": ["héllo", null, "x/y=z"], "ls": ["", null, "large"], "bin": ["000102", null, ""],
  "d": [19000, null, -1],
  "ts_s": [1700000000000, null, -1000], "ts_ms": [1700000000123, null, -1],
  "ts_us": [1700000000123456, null, 0], "ts_ns": [1700000000123456789, null, -5],
  "dec": ["12345678.90", null, "-0.01"], "dec38": ["-123456789012345678901234567890.12345", null, "0.00001"]
}}`

func TestPyarrowReadsEveryType(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := recordFromJSON(t, mem, allTypes, allTypesRows)
	defer rec.Release()
	dir := t.TempDir()
	files := writeFiles(t, mem, dir, allTypes, Options{}, rec)
	if len(files) != 1 || files[0].Rows != 3 || files[0].Path != "part-00000.parquet" || files[0].Bytes == 0 {
		t.Fatalf("files = %+v", files)
	}
	jsonEqual(t, "pyarrow read", pyRead(t, abs(t, dir, files[0])), allTypesWant)
}

// pyMeta prints the parquet-level facts of a file: per column the
// physical and logical type, codec, statistics, and the page type of the
// first data page read from its header (0 = DATA_PAGE v1, 3 = DATA_PAGE_V2).
const pyMeta = `
import sys, json, pyarrow.parquet as pq
path = sys.argv[1]
md = pq.ParquetFile(path).metadata
raw = open(path, "rb").read()
out = {"num_row_groups": md.num_row_groups, "num_rows": md.num_rows, "row_group_rows": [], "columns": {}}
for r in range(md.num_row_groups):
    out["row_group_rows"].append(md.row_group(r).num_rows)
rg = md.row_group(0)
for i in range(rg.num_columns):
    c = rg.column(i)
    st = c.statistics
    hdr = raw[c.data_page_offset:c.data_page_offset+2]
    # thrift compact: field 1 (i32) header byte 0x15, then zigzag varint of the page type
    page_type = hdr[1] >> 1 if hdr[0] == 0x15 else -1
    out["columns"][c.path_in_schema] = {
        "physical": c.physical_type,
        "logical": str(md.schema.column(i).logical_type),
        "codec": c.compression,
        "has_min_max": bool(st is not None and st.has_min_max),
        "null_count": None if st is None else st.null_count,
        "page_type": page_type,
        "indexes": bool(c.has_column_index and c.has_offset_index),
    }
print(json.dumps(out))
`

func TestParquetSchemaAndMetadata(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := recordFromJSON(t, mem, allTypes, allTypesRows)
	defer rec.Release()
	for _, codec := range []string{"", "snappy", "gzip", "none"} {
		t.Run("codec "+codec, func(t *testing.T) {
			dir := t.TempDir()
			files := writeFiles(t, mem, dir, allTypes, Options{Compression: codec}, rec)
			out := testenv.RunPython(t, pyMeta, abs(t, dir, files[0]))
			var md struct {
				NumRowGroups int `json:"num_row_groups"`
				Columns      map[string]struct {
					Physical  string `json:"physical"`
					Logical   string `json:"logical"`
					Codec     string `json:"codec"`
					HasMinMax bool   `json:"has_min_max"`
					NullCount *int   `json:"null_count"`
					PageType  int    `json:"page_type"`
					Indexes   bool   `json:"indexes"`
				} `json:"columns"`
			}
			if err := json.Unmarshal([]byte(out), &md); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			wantCodec := map[string]string{"": "ZSTD", "snappy": "SNAPPY", "gzip": "GZIP", "none": "UNCOMPRESSED"}[codec]
			wantTypes := map[string]string{
				"b": "BOOLEAN None", "i8": "INT32 Int(bitWidth=8, isSigned=true)", "i16": "INT32 Int(bitWidth=16, isSigned=true)",
				"i32": "INT32 Int(bitWidth=32, isSigned=true)", "i64": "INT64 Int(bitWidth=64, isSigned=true)",
				"u8": "INT32 Int(bitWidth=8, isSigned=false)", "u16": "INT32 Int(bitWidth=16, isSigned=false)",
				"u32": "INT32 Int(bitWidth=32, isSigned=false)", "u64": "INT64 Int(bitWidth=64, isSigned=false)",
				"f32": "FLOAT None", "f64": "DOUBLE None", "s": "BYTE_ARRAY String", "ls": "BYTE_ARRAY String",
				"bin": "BYTE_ARRAY None", "d": "INT32 Date",
				"ts_s":  "INT64 Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false)",
				"ts_ms": "INT64 Timestamp(isAdjustedToUTC=false, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false)",
				"ts_us": "INT64 Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)",
				"ts_ns": "INT64 Timestamp(isAdjustedToUTC=false, timeUnit=nanoseconds, is_from_converted_type=false, force_set_converted_type=false)",
				"dec":   "FIXED_LEN_BYTE_ARRAY Decimal(precision=10, scale=2)",
				"dec38": "FIXED_LEN_BYTE_ARRAY Decimal(precision=38, scale=5)",
			}
			if len(md.Columns) != len(wantTypes) {
				t.Errorf("%d columns, want %d: %s", len(md.Columns), len(wantTypes), out)
			}
			for name, want := range wantTypes {
				c := md.Columns[name]
				if got := c.Physical + " " + c.Logical; got != want {
					t.Errorf("column %s: type %q, want %q", name, got, want)
				}
				if c.Codec != wantCodec {
					t.Errorf("column %s: codec %s, want %s", name, c.Codec, wantCodec)
				}
				if c.PageType != 0 {
					t.Errorf("column %s: first data page type %d, want 0 (DATA_PAGE v1)", name, c.PageType)
				}
				if !c.Indexes {
					t.Errorf("column %s: no column and offset index", name)
				}
				if !c.HasMinMax || c.NullCount == nil || *c.NullCount != 1 {
					t.Errorf("column %s: statistics min/max=%v nulls=%v, want min/max and 1 null", name, c.HasMinMax, c.NullCount)
				}
			}
		})
	}
}

func TestRowGroupsAndFileRolling(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	var recs []arrow.Record
	for r := 0; r < 5; r++ {
		var b strings.Builder
		b.WriteString("[")
		for i := 0; i < 2000; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id": %d, "s": "row-%d-%s"}`, r*2000+i, r*2000+i, strings.Repeat("x", i%50))
		}
		b.WriteString("]")
		recs = append(recs, recordFromJSON(t, mem, schema, b.String()))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()

	t.Run("row groups honour RowGroupRows", func(t *testing.T) {
		dir := t.TempDir()
		files := writeFiles(t, mem, dir, schema, Options{RowGroupRows: 3000}, recs...)
		if len(files) != 1 {
			t.Fatalf("files = %+v", files)
		}
		var md struct {
			NumRowGroups int     `json:"num_row_groups"`
			NumRows      int     `json:"num_rows"`
			RowGroupRows []int64 `json:"row_group_rows"`
		}
		out := testenv.RunPython(t, pyMeta, abs(t, dir, files[0]))
		json.Unmarshal([]byte(out), &md)
		if md.NumRowGroups != 4 || md.NumRows != 10000 || fmt.Sprint(md.RowGroupRows) != "[3000 3000 3000 1000]" {
			t.Errorf("row groups = %s", out)
		}
	})

	t.Run("small TargetFileBytes rolls files, all readable", func(t *testing.T) {
		dir := t.TempDir()
		files := writeFiles(t, mem, dir, schema, Options{RowGroupRows: 1000, TargetFileBytes: 8 << 10}, recs...)
		if len(files) < 3 {
			t.Fatalf("want several files, got %+v", files)
		}
		var total int64
		for i, f := range files {
			if want := fmt.Sprintf("part-%05d.parquet", i); f.Path != want {
				t.Errorf("file %d is %s, want %s", i, f.Path, want)
			}
			total += f.Rows
		}
		if total != 10000 {
			t.Errorf("rows = %d, want 10000", total)
		}
		var got struct {
			Columns struct {
				ID []int64 `json:"id"`
			} `json:"columns"`
		}
		json.Unmarshal([]byte(pyRead(t, dir)), &got)
		if len(got.Columns.ID) != 10000 {
			t.Fatalf("pyarrow read %d rows of the directory", len(got.Columns.ID))
		}
		for i, id := range got.Columns.ID {
			if id != int64(i) {
				t.Fatalf("row %d has id %d", i, id)
			}
		}
	})
}
