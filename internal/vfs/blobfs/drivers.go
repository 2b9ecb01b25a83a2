package blobfs

// The drivers Open can reach, registered for their URL schemes
// (s3://, gs://, azblob://, file://, mem://).
import (
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)
