package microbatch

import (
	"time"

	"github.com/sluicedata/sluice/sources"
)

// Progress describes one completed micro-batch.
type Progress struct {
	Batch          int64
	Timestamp      time.Time // the batch's recorded processing time
	InputRows      int64
	InputRowsPerS  float64 // input rows / time since the previous batch started
	ProcessedPerS  float64 // input rows / this batch's duration
	Durations      map[string]time.Duration
	Watermark      time.Time // zero when no watermark is defined
	Sources        []SourceProgress
	StateOperators []StateProgress
}

// SourceProgress is one source's part of a batch.
type SourceProgress struct {
	Name       string
	Start, End sources.Offset
	Rows       int64
}

// StateProgress is one stateful operator's state after a batch.
type StateProgress struct {
	Operator    string
	Rows        int64
	Bytes       int64
	DroppedLate int64
	// Evicted counts rows a state TTL dropped in the batch.
	Evicted int64
	// Loads counts the key-group ranges read from the checkpoint in the
	// batch instead of found warm (after a restart, or ranges that moved
	// to another executor).
	Loads int64
}

// Status is what the query is doing now.
type Status struct {
	Message     string // "Waiting for data", "Processing batch 7", "Stopped"
	Active      bool
	BatchActive bool
}

// Durations keys, in phase order.
const (
	PhaseLatestOffset = "latestOffset"
	PhaseWALCommit    = "walCommit"
	PhaseAddBatch     = "addBatch"
	PhaseSinkCommit   = "sinkCommit"
	PhaseCommitLog    = "commitLog"
	PhaseTotal        = "triggerExecution"
)
