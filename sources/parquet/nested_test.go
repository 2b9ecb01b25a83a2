package parquet

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/internal/testenv"
)

const nestedScript = `
import sys, json, random
import pyarrow as pa, pyarrow.parquet as pq
out = sys.argv[1]
random.seed(3)
n = 700
def lst(gen):
    r = random.random()
    if r < 0.1: return None
    if r < 0.2: return []
    return [None if random.random() < 0.1 else gen() for _ in range(random.randint(1, 6))]
t = pa.table({
  "id": pa.array(range(n), pa.int64()),
  "li": pa.array([lst(lambda: random.randint(-99, 99)) for _ in range(n)], pa.list_(pa.int64())),
  "ls": pa.array([lst(lambda: random.choice(["a", "bb", "", "ccc"])) for _ in range(n)], pa.list_(pa.string())),
  "lreq": pa.array([[random.randint(0, 9) for _ in range(random.randint(0, 3))] for _ in range(n)],
                   pa.list_(pa.field("item", pa.int32(), nullable=False))),
  "st": pa.array([None if i % 9 == 0 else {"a": None if i % 4 == 0 else i, "b": "s%d" % (i % 5), "d": i * 0.5}
                  for i in range(n)], pa.struct([("a", pa.int32()), ("b", pa.string()), ("d", pa.float64())])),
  "m": pa.array([[("k", 1.5)] for _ in range(n)], pa.map_(pa.string(), pa.float64())),
  "ll": pa.array([[[1], [2, 3]] for _ in range(n)], pa.list_(pa.list_(pa.int64()))),
  "after": ["p%d" % i for i in range(n)],
})
for name, v in [("nested_v1.parquet", "1.0"), ("nested_v2.parquet", "2.0")]:
    pq.write_table(t, out + "/" + name, row_group_size=200, data_page_size=256, write_batch_size=50, data_page_version=v)

def render(v, typ):
    if v is None: return None
    if pa.types.is_list(typ):
        return "[" + ",".join("null" if x is None else render(x, typ.value_type) for x in v) + "]"
    if pa.types.is_struct(typ):
        return "{" + ",".join(f.name + ":" + ("null" if v[f.name] is None else render(v[f.name], f.type)) for f in typ) + "}"
    if pa.types.is_float64(typ):
        import struct
        return str(struct.unpack('<Q', struct.pack('<d', v))[0])
    return str(v)
print(json.dumps({c: [render(v, t.schema.field(c).type) for v in t.column(c).to_pylist()] for c in ["id", "li", "ls", "lreq", "st", "after"]}))
`

func TestNestedListsAndStructs(t *testing.T) {
	dir := t.TempDir()
	var want map[string][]any
	if err := json.Unmarshal([]byte(testenv.RunPython(t, nestedScript, dir)), &want); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"nested_v1.parquet", "nested_v2.parquet"} {
		t.Run(file, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			tab, err := Open(context.Background(), filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			readable := []string{"id", "li", "ls", "lreq", "st", "after"}
			for _, batch := range []int{7, 1000} {
				got, _ := readTable(t, mem, tab, project(t, tab.Schema, readable...), nil, batch)
				compareColumns(t, got, want, readable...)
			}
			splits, _ := tab.Splits(nil)
			for _, c := range []string{"m", "ll"} {
				err := ReadSplit(context.Background(), mem, splits[0], project(t, tab.Schema, "id", c), nil, 10, func(r arrow.Record) error { r.Release(); return nil })
				if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), `"`+c+`"`) {
					t.Errorf("reading %s: %v, want ErrUnsupportedType naming it", c, err)
				}
			}
		})
	}
}
