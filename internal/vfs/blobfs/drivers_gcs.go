//go:build !sluice_nogcs

package blobfs

// gs:// (Google Cloud Storage). Its SDK is the largest of the three
// (measured: cmd/sluice grows 30.5 MB with it, of 54 MB for all drivers);
// build with -tags sluice_nogcs to leave it out, and gs:// URLs then fail
// to open, naming the scheme.
import _ "gocloud.dev/blob/gcsblob"
