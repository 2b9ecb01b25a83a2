package parquet

import (
	"fmt"
	"strings"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// Mode is what Commit does when the target already exists (Spark's save modes).
type Mode int

const (
	// ErrorIfExists fails the commit if the target exists and is not empty.
	ErrorIfExists Mode = iota
	// Overwrite replaces the target as a whole.
	Overwrite
	// Append adds the job's files to the target.
	Append
)

func (m Mode) String() string {
	switch m {
	case ErrorIfExists:
		return "error-if-exists"
	case Overwrite:
		return "overwrite"
	case Append:
		return "append"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

const (
	defaultRowGroupRows    = 1 << 20
	defaultTargetFileBytes = 128 << 20
)

// Options shape the files a FileWriter produces. The zero value is valid.
type Options struct {
	Compression     string   // "zstd" (default when ""), "snappy", "gzip", "none"
	RowGroupRows    int64    // max rows per row group; default 1<<20
	TargetFileBytes int64    // roll to a new file once a file reaches about this size; default 128 MiB
	PartitionBy     []string // Hive-style directories col=value/; partition columns are not stored in the files
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	if _, err := o.codec(); err != nil {
		return err
	}
	if o.RowGroupRows < 0 {
		return fmt.Errorf("%w: RowGroupRows %d < 0", ErrInvalidOptions, o.RowGroupRows)
	}
	if o.TargetFileBytes < 0 {
		return fmt.Errorf("%w: TargetFileBytes %d < 0", ErrInvalidOptions, o.TargetFileBytes)
	}
	seen := map[string]bool{}
	for _, c := range o.PartitionBy {
		if c == "" {
			return fmt.Errorf("%w: empty PartitionBy column name", ErrInvalidOptions)
		}
		if seen[c] {
			return fmt.Errorf("%w: PartitionBy column %q repeated", ErrInvalidOptions, c)
		}
		seen[c] = true
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Compression == "" {
		o.Compression = "zstd"
	}
	if o.RowGroupRows == 0 {
		o.RowGroupRows = defaultRowGroupRows
	}
	if o.TargetFileBytes == 0 {
		o.TargetFileBytes = defaultTargetFileBytes
	}
	return o
}

func (o Options) codec() (compress.Codec, error) {
	switch strings.ToLower(o.Compression) {
	case "", "zstd":
		return &pq.Zstd, nil
	case "snappy":
		return &pq.Snappy, nil
	case "gzip":
		return &pq.Gzip, nil
	case "none", "uncompressed":
		return &pq.Uncompressed, nil
	}
	return nil, fmt.Errorf("%w: unknown compression %q", ErrInvalidOptions, o.Compression)
}
