package exec

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sinks/parquet"
)

// WrittenSchema is the output of a write task: one row per file written, the
// commit message the driver gathers before it commits the job.
var WrittenSchema = arrow.NewSchema([]arrow.Field{
	{Name: "path", Type: arrow.BinaryTypes.String},
	{Name: "rows", Type: arrow.PrimitiveTypes.Int64},
	{Name: "bytes", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// parquetWrite drains its input into Parquet files in a job's staging
// directory and then yields one WrittenSchema record. On any error it removes
// the files it wrote.
type parquetWrite struct {
	mem    memory.Allocator
	in     Operator
	dir    string
	prefix string
	opts   parquet.Options
	done   bool
}

// NewParquetWrite writes in's records under dir (a staging directory) with
// file names starting with prefix.
func NewParquetWrite(mem memory.Allocator, in Operator, dir, prefix string, opts parquet.Options) Operator {
	return &parquetWrite{mem: mem, in: in, dir: dir, prefix: prefix, opts: opts}
}

func (w *parquetWrite) Schema() *arrow.Schema { return WrittenSchema }

func (w *parquetWrite) Next(ctx context.Context) (arrow.Record, error) {
	if w.done {
		return nil, io.EOF
	}
	w.done = true
	fw, err := parquet.NewFileWriter(w.mem, w.dir, w.prefix, w.in.Schema(), w.opts)
	if err != nil {
		return nil, fmt.Errorf("write parquet: %w", err)
	}
	for {
		rec, err := w.in.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			fw.Abort()
			return nil, err
		}
		err = fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Abort()
			return nil, fmt.Errorf("write parquet: %w", err)
		}
	}
	files, err := fw.Close()
	if err != nil {
		fw.Abort()
		return nil, fmt.Errorf("write parquet: %w", err)
	}
	b := array.NewRecordBuilder(w.mem, WrittenSchema)
	defer b.Release()
	for _, f := range files {
		b.Field(0).(*array.StringBuilder).Append(f.Path)
		b.Field(1).(*array.Int64Builder).Append(f.Rows)
		b.Field(2).(*array.Int64Builder).Append(f.Bytes)
	}
	return b.NewRecord(), nil
}

func (w *parquetWrite) Close() error { return w.in.Close() }
