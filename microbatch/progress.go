package microbatch

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/sources"
)

// Progress describes one completed micro-batch. Its JSON is Spark's
// StreamingQueryProgress (field names, ISO-8601 UTC times, milliseconds;
// MarshalJSON), so tools that read Spark's progress read sluice's.
type Progress struct {
	ID    string // the query's id, stable across restarts (Query.ID)
	RunID string // this start of the query (Query.RunID)
	Name  string // the query's name (StreamWriter.QueryName), "" when unnamed

	Batch          int64
	Timestamp      time.Time // the batch's recorded processing time
	InputRows      int64
	InputRowsPerS  float64 // input rows / time since the previous batch started
	ProcessedPerS  float64 // input rows / this batch's duration
	Durations      map[string]time.Duration
	Watermark      time.Time // zero when no watermark is defined
	Sources        []SourceProgress
	StateOperators []StateProgress
	Sink           SinkProgress

	// IdleInputs are the inputs (watermark ids, "wm-0", ...) the batch's
	// watermark left out as idle (Dataset.WithIdleness); in the JSON,
	// eventTime.idleInputs, comma-separated (Spark's eventTime is a map of
	// strings).
	IdleInputs []string

	// Restarts counts the times the query restarted itself after a
	// transient failure (RestartStrategy) since Start; in the JSON,
	// numRestarts (sluice's own, not Spark's).
	Restarts int64
}

// SourceProgress is one source's part of a batch.
type SourceProgress struct {
	Name string
	// Description is the source's identity (sources.Stream.Identity): what
	// it reads.
	Description string
	Start, End  sources.Offset
	// Latest is the newest offset the source had when the batch was
	// planned, before its rate limit capped End; nil when the source cannot
	// tell (sources.Backlog).
	Latest sources.Offset
	Rows   int64
	// InputRowsPerS and ProcessedPerS are Progress's rates for this
	// source's rows alone.
	InputRowsPerS, ProcessedPerS float64
	// Lag is the records (Kafka: messages, files: files) available after
	// End when the batch was planned: what the query is behind by; -1 when
	// the source cannot tell. PartitionLag breaks it down where the source
	// has partitions (Kafka: "topic/partition"), nil otherwise.
	Lag          int64
	PartitionLag map[string]int64
	// Dropped is the input the source left out of the batch under a policy
	// (sources.Dropper): bad files skipped or quarantined, input gone.
	Dropped []sources.Drop
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

// SinkProgress is the sink's part of a batch.
type SinkProgress struct {
	Description string // the sink's name (sinks.Sink.Name)
	OutputRows  int64  // rows the batch wrote; -1 when not known
	// DeadLettered counts rows of OutputRows the sink rejected and wrote
	// to its dead-letter sink (a bad-record policy, sinks.BadRecordCounter).
	DeadLettered int64
}

// Status is what the query is doing now.
type Status struct {
	Message     string // "Waiting for data", "Processing batch 7", "Stopped"
	Active      bool
	BatchActive bool
}

// Durations keys, in phase order; the names of Spark's durationMs where a
// phase is Spark's too (sinkCommit is sluice's own: Spark counts it in
// addBatch).
const (
	PhaseLatestOffset = "latestOffset"
	PhaseWALCommit    = "walCommit"
	PhaseAddBatch     = "addBatch"
	PhaseSinkCommit   = "sinkCommit"
	PhaseCommitLog    = "commitOffsets"
	PhaseTotal        = "triggerExecution"
)

// sparkTime is Spark's progress time format: ISO-8601, UTC, milliseconds.
const sparkTime = "2006-01-02T15:04:05.000Z"

// MarshalJSON writes p as Spark's StreamingQueryProgress.
func (p Progress) MarshalJSON() ([]byte, error) {
	type eventTime struct {
		Watermark  string `json:"watermark,omitempty"`
		IdleInputs string `json:"idleInputs,omitempty"`
	}
	type stateOp struct {
		OperatorName              string           `json:"operatorName"`
		NumRowsTotal              int64            `json:"numRowsTotal"`
		MemoryUsedBytes           int64            `json:"memoryUsedBytes"`
		NumRowsDroppedByWatermark int64            `json:"numRowsDroppedByWatermark"`
		NumRowsRemoved            int64            `json:"numRowsRemoved"`
		CustomMetrics             map[string]int64 `json:"customMetrics"`
	}
	type source struct {
		Description            string            `json:"description"`
		StartOffset            json.RawMessage   `json:"startOffset"`
		EndOffset              json.RawMessage   `json:"endOffset"`
		LatestOffset           json.RawMessage   `json:"latestOffset"`
		NumInputRows           int64             `json:"numInputRows"`
		InputRowsPerSecond     jsonFloat         `json:"inputRowsPerSecond"`
		ProcessedRowsPerSecond jsonFloat         `json:"processedRowsPerSecond"`
		Metrics                map[string]string `json:"metrics,omitempty"`
	}
	type sink struct {
		Description   string            `json:"description"`
		NumOutputRows int64             `json:"numOutputRows"`
		Metrics       map[string]string `json:"metrics,omitempty"`
	}
	type progress struct {
		ID                     string           `json:"id"`
		RunID                  string           `json:"runId"`
		Name                   *string          `json:"name"`
		Timestamp              string           `json:"timestamp"`
		BatchID                int64            `json:"batchId"`
		BatchDuration          int64            `json:"batchDuration"`
		NumInputRows           int64            `json:"numInputRows"`
		InputRowsPerSecond     jsonFloat        `json:"inputRowsPerSecond"`
		ProcessedRowsPerSecond jsonFloat        `json:"processedRowsPerSecond"`
		DurationMs             map[string]int64 `json:"durationMs"`
		EventTime              eventTime        `json:"eventTime"`
		StateOperators         []stateOp        `json:"stateOperators"`
		Sources                []source         `json:"sources"`
		Sink                   sink             `json:"sink"`
		NumRestarts            int64            `json:"numRestarts,omitempty"`
	}
	out := progress{ID: p.ID, RunID: p.RunID, Timestamp: p.Timestamp.UTC().Format(sparkTime), BatchID: p.Batch,
		BatchDuration: p.Durations[PhaseTotal].Milliseconds(), NumInputRows: p.InputRows,
		InputRowsPerSecond: jsonFloat(p.InputRowsPerS), ProcessedRowsPerSecond: jsonFloat(p.ProcessedPerS),
		DurationMs: map[string]int64{}, StateOperators: []stateOp{}, Sources: []source{},
		Sink: sink{Description: p.Sink.Description, NumOutputRows: p.Sink.OutputRows}, NumRestarts: p.Restarts}
	if p.Sink.DeadLettered > 0 {
		out.Sink.Metrics = map[string]string{"numDeadLetteredRows": strconv.FormatInt(p.Sink.DeadLettered, 10)}
	}
	if p.Name != "" {
		out.Name = &p.Name
	}
	for k, d := range p.Durations {
		out.DurationMs[k] = d.Milliseconds()
	}
	if !p.Watermark.IsZero() {
		out.EventTime.Watermark = p.Watermark.UTC().Format(sparkTime)
	}
	out.EventTime.IdleInputs = strings.Join(p.IdleInputs, ",")
	for _, s := range p.StateOperators {
		out.StateOperators = append(out.StateOperators, stateOp{OperatorName: s.Operator, NumRowsTotal: s.Rows,
			MemoryUsedBytes: s.Bytes, NumRowsDroppedByWatermark: s.DroppedLate, NumRowsRemoved: s.Evicted,
			CustomMetrics: map[string]int64{"stateLoads": s.Loads}})
	}
	for _, s := range p.Sources {
		src := source{Description: s.Description, StartOffset: jsonOffset(s.Start), EndOffset: jsonOffset(s.End),
			LatestOffset: jsonOffset(s.Latest), NumInputRows: s.Rows,
			InputRowsPerSecond: jsonFloat(s.InputRowsPerS), ProcessedRowsPerSecond: jsonFloat(s.ProcessedPerS)}
		if src.Description == "" {
			src.Description = s.Name
		}
		if s.Lag >= 0 {
			// Spark's Kafka source reports these three.
			src.Metrics = map[string]string{"offsetsBehindLatest": strconv.FormatInt(s.Lag, 10)}
			if len(s.PartitionLag) > 0 {
				lo, hi, sum := int64(math.MaxInt64), int64(0), int64(0)
				for _, l := range s.PartitionLag {
					lo, hi, sum = min(lo, l), max(hi, l), sum+l
				}
				src.Metrics["minOffsetsBehindLatest"] = strconv.FormatInt(lo, 10)
				src.Metrics["maxOffsetsBehindLatest"] = strconv.FormatInt(hi, 10)
				src.Metrics["avgOffsetsBehindLatest"] = strconv.FormatFloat(float64(sum)/float64(len(s.PartitionLag)), 'f', 1, 64)
			}
		}
		dropped := map[string]int64{}
		for _, d := range s.Dropped {
			if d.Kind != "" {
				dropped["input"+strings.ToUpper(d.Kind[:1])+d.Kind[1:]] += d.Count // inputSkipped, inputQuarantined, inputLost
			}
		}
		for k, n := range dropped {
			if src.Metrics == nil {
				src.Metrics = map[string]string{}
			}
			src.Metrics[k] = strconv.FormatInt(n, 10)
		}
		out.Sources = append(out.Sources, src)
	}
	return json.Marshal(out)
}

// jsonOffset is an offset as JSON: null when absent.
func jsonOffset(o sources.Offset) json.RawMessage {
	if len(o) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(o)
}

// jsonFloat is a rate: JSON has no NaN or infinity, so those become 0.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, finite(float64(f)), 'f', -1, 64), nil
}
