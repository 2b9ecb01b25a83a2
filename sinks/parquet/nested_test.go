package parquet

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var nestedSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
	{Name: "s", Type: arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
	), Nullable: true},
	{Name: "ls", Type: arrow.ListOf(arrow.StructOf(
		arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "t", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	)), Nullable: true},
	{Name: "ld", Type: arrow.LargeListOf(&arrow.Decimal128Type{Precision: 5, Scale: 2}), Nullable: true},
}, nil)

func TestPyarrowReadsNested(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := recordFromJSON(t, mem, nestedSchema, `[
		{"id": 0, "l": [1, null, 3], "s": {"a": 1, "b": "x"},
		 "ls": [{"x": 1.5, "t": ["p", null]}, null, {"x": null, "t": []}], "ld": ["1.25", null]},
		{"id": 1, "l": [], "s": {"a": null, "b": null}, "ls": [], "ld": []},
		{"id": 2},
		{"id": 3, "l": [7], "s": {"a": 2, "b": "y"}, "ls": [{"x": 2.5, "t": null}], "ld": ["-999.99"]}
	]`)
	defer rec.Release()
	dir := t.TempDir()
	// Two rows per record slice so chunks start mid-record.
	s1, s2 := rec.NewSlice(0, 1), rec.NewSlice(1, 4)
	defer s1.Release()
	defer s2.Release()
	files := writeFiles(t, mem, dir, nestedSchema, Options{RowGroupRows: 2}, s1, s2)
	jsonEqual(t, "pyarrow read", pyRead(t, abs(t, dir, files[0])), `{
		"schema": {"id": "int64", "l": "list<element: int64>", "s": "struct<a: int32, b: string>",
			"ls": "list<element: struct<x: double, t: list<element: string>>>",
			"ld": "large_list<element: decimal128(5, 2)>"},
		"columns": {
			"id": [0, 1, 2, 3],
			"l": [[1, null, 3], [], null, [7]],
			"s": [{"a": 1, "b": "x"}, {"a": null, "b": null}, null, {"a": 2, "b": "y"}],
			"ls": [[{"x": 1.5, "t": ["p", null]}, null, {"x": null, "t": []}], [], null, [{"x": 2.5, "t": null}]],
			"ld": [["1.25", null], [], null, ["-999.99"]]
		}}`)
}

func TestPartitionedNested(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := recordFromJSON(t, mem, nestedSchema, `[
		{"id": 0, "l": [1, 2], "s": {"a": 1, "b": "x"}, "ls": [{"x": 1.5, "t": ["p"]}], "ld": ["1.25"]},
		{"id": 1, "l": [], "s": null, "ls": null, "ld": []},
		{"id": 0, "l": [3], "s": {"a": 2, "b": null}, "ls": [null], "ld": [null]},
		{"id": 1, "l": null, "s": {"a": null, "b": "y"}, "ls": [{"x": null, "t": [null, "q"]}], "ld": null}
	]`)
	defer rec.Release()
	dir := t.TempDir()
	writeFiles(t, mem, dir, nestedSchema, Options{PartitionBy: []string{"id"}}, rec)
	jsonEqual(t, "pyarrow hive read", pyRead(t, dir, "hive"), `{
		"schema": {"l": "list<element: int64>", "s": "struct<a: int32, b: string>",
			"ls": "list<element: struct<x: double, t: list<element: string>>>",
			"ld": "large_list<element: decimal128(5, 2)>", "id": "int32"},
		"columns": {
			"id": [0, 0, 1, 1],
			"l": [[1, 2], [3], [], null],
			"s": [{"a": 1, "b": "x"}, {"a": 2, "b": null}, null, {"a": null, "b": "y"}],
			"ls": [[{"x": 1.5, "t": ["p"]}], [null], null, [{"x": null, "t": [null, "q"]}]],
			"ld": [["1.25"], [null], [], null]
		}}`)
}
