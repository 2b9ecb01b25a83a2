package parquet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
)

type fuzzRow struct {
	ID   int64   `parquet:"id"`
	Name *string `parquet:"name,optional"`
	F    float64 `parquet:"f"`
	Day  int32   `parquet:"day,date"`
}

// FuzzReadSplit feeds arbitrary bytes to Open and ReadSplit: each must end
// in records or in an error naming the file, never in a panic or a leak.
func FuzzReadSplit(f *testing.F) {
	var buf bytes.Buffer
	w := pq.NewGenericWriter[fuzzRow](&buf, pq.MaxRowsPerRowGroup(3))
	name := "x"
	rows := []fuzzRow{{1, &name, 1.5, 100}, {2, nil, -2, 200}, {3, &name, 0, 300}, {4, nil, 9, 400}}
	if _, err := w.Write(rows); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		p := filepath.Join(t.TempDir(), "fuzz.parquet")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tab, err := Open(context.Background(), p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("Open error %q does not name the file", err)
			}
			return
		}
		splits, _ := tab.Splits(nil)
		for _, s := range splits {
			err := ReadSplit(context.Background(), mem, s, tab.Schema, nil, 2, func(r arrow.Record) error {
				r.Release()
				return nil
			})
			if err != nil && !strings.Contains(err.Error(), p) {
				t.Fatalf("ReadSplit error %q does not name the file", err)
			}
		}
	})
}
