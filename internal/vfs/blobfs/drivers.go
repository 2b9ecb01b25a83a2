package blobfs

// The drivers Open can reach, registered for their URL schemes: s3://,
// mem://, and gocloud's file driver (for tests: Open maps file:// to the
// disk); gs:// and azblob:// in drivers_gcs.go and drivers_azure.go.
import (
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)
