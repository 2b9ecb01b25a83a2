//go:build !sluice_noazure

package blobfs

// azblob:// (Azure Blob Storage): cmd/sluice grows 8.4 MB with it; build
// with -tags sluice_noazure to leave it out.
import _ "gocloud.dev/blob/azureblob"
