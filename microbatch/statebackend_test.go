package microbatch_test

import (
	"testing"

	"github.com/sluicedata/sluice/internal/state"
)

// TestCorpusStreamsOnTheDiskStateBackend runs the corpus (streaming
// aggregations, windows, sessions, dedup, joins; one-row batches, random
// cuts, restarts) with every operator's state in the disk backend: each
// stream must give the batch job's answer, as it does in memory.
func TestCorpusStreamsOnTheDiskStateBackend(t *testing.T) {
	corpusBackend = state.BackendDisk
	defer func() { corpusBackend = "" }()
	TestCorpusStreamsEqualTheBatchJob(t)
}
