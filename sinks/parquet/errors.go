package parquet

import "errors"

var (
	// ErrTargetExists is returned by Commit in ErrorIfExists mode when the
	// target directory already exists and is not empty.
	ErrTargetExists = errors.New("parquet sink: target exists")
	// ErrUnsupportedType is returned when an Arrow column has a type this sink
	// cannot store (or cannot use as a partition column).
	ErrUnsupportedType = errors.New("parquet sink: unsupported type")
	// ErrInvalidOptions is returned by Options.Validate.
	ErrInvalidOptions = errors.New("parquet sink: invalid options")
	// ErrSchemaMismatch is returned by FileWriter.Write for a record whose
	// schema differs from the writer's.
	ErrSchemaMismatch = errors.New("parquet sink: record schema does not match writer schema")
	// ErrClosed is returned by FileWriter.Write after Close or Abort.
	ErrClosed = errors.New("parquet sink: writer closed")
	// ErrOutOfRange is returned by FileWriter.Write for a value Parquet
	// cannot hold in the mapped type (a seconds timestamp beyond int64 millis).
	ErrOutOfRange = errors.New("parquet sink: value out of range")
)
