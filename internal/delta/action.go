package delta

import (
	"encoding/json"
	"errors"
)

var (
	// ErrConflict: another writer created the version this one tried to commit.
	ErrConflict = errors.New("delta: concurrent commit")
	// ErrCorrupt: a log file is missing from the range a snapshot needs, or
	// does not parse.
	ErrCorrupt = errors.New("delta: corrupt log")
	// ErrUnsupported: the table uses a protocol feature this package does not implement.
	ErrUnsupported = errors.New("delta: unsupported protocol")
	// ErrNoTable: the location holds no Delta log (or an empty one).
	ErrNoTable = errors.New("delta: not a delta table")
	// ErrNoVersion: the requested version is not (or no longer) in the log.
	ErrNoVersion = errors.New("delta: no such version")
)

// Action is one line of a commit file: exactly one field is set. Actions
// this package does not know (cdc, domainMetadata, ...) leave every field
// nil when read and are ignored by replay.
type Action struct {
	Protocol   *Protocol      `json:"protocol,omitempty"`
	MetaData   *Metadata      `json:"metaData,omitempty"`
	Add        *Add           `json:"add,omitempty"`
	Remove     *Remove        `json:"remove,omitempty"`
	Txn        *Txn           `json:"txn,omitempty"`
	CommitInfo map[string]any `json:"commitInfo,omitempty"`
}

// Protocol is the protocol action: the versions (and features) a reader and
// a writer must implement.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format is the data file format of a table: always parquet.
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is the metaData action: the table's id, schema (a Delta schema
// as JSON text, see schema.go) and partition columns.
type Metadata struct {
	ID               string            `json:"id"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
}

// Add is the add action: a data file joins the table. Path is a URI
// relative to the table (percent-encoded) or absolute; PartitionValues maps
// every partition column to its value as text, nil for null.
type Add struct {
	Path             string             `json:"path"`
	PartitionValues  map[string]*string `json:"partitionValues"`
	Size             int64              `json:"size"`
	ModificationTime int64              `json:"modificationTime"`
	DataChange       bool               `json:"dataChange"`
	Stats            string             `json:"stats,omitempty"`
	// DeletionVector is only read to refuse files that have one.
	DeletionVector json.RawMessage `json:"deletionVector,omitempty"`
}

// Remove is the remove action: a data file leaves the table.
type Remove struct {
	Path              string             `json:"path"`
	DeletionTimestamp *int64             `json:"deletionTimestamp,omitempty"`
	DataChange        bool               `json:"dataChange"`
	PartitionValues   map[string]*string `json:"partitionValues,omitempty"`
	Size              *int64             `json:"size,omitempty"`
}

// Txn is the txn action: application appId has committed its transaction
// version Version (for sluice: the query's batch id).
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}
